//! Plugins as OCI artifacts against a real registry (Debian's docker-registry on loopback,
//! `support/registry.rs`): `kubewasm plugin push` then `plugin pull` by tag and by digest give
//! back the pushed bytes under the printed digest; a non-component is not pushed; a tampered
//! blob or manifest, a missing tag, a container image, an oversized component, missing or wrong
//! credentials and a registry that is down are each refused with a clear error, and nothing is
//! written; credentials from the environment or a docker config are used.

use std::path::Path;
use std::process::{Command, Output};

use kubewasm::oci;

use crate::support;
use crate::support::registry::Registry;

fn kubewasm(args: &[&str]) -> Output {
    kubewasm_with(args, &[])
}

/// The real binary with no credentials from the machine this runs on, then `env`.
fn kubewasm_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(args)
        .env("KUBEWASM_COMPILE_CACHE", support::process::compile_cache())
        .env("RUST_LOG", "warn")
        // No credentials from the machine this runs on.
        .env("DOCKER_CONFIG", "/nonexistent")
        .env_remove("KUBEWASM_REGISTRY_USERNAME")
        .env_remove("KUBEWASM_REGISTRY_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("the kubewasm binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn options() -> oci::Options {
    oci::Options {
        plain_http: true,
        credentials: oci::Credentials::Anonymous,
        max_size: kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
    }
}

/// Pushes `file` with the real binary; returns the printed `REPOSITORY@sha256:...`.
fn push(file: &Path, reference: &str) -> String {
    let out = kubewasm(&[
        "plugin",
        "push",
        file.to_str().unwrap(),
        reference,
        "--plain-http",
    ]);
    assert!(out.status.success(), "push failed: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn pull(reference: &str, output: &Path) -> Output {
    kubewasm(&[
        "plugin",
        "pull",
        reference,
        "-o",
        output.to_str().unwrap(),
        "--plain-http",
    ])
}

#[tokio::test]
async fn push_then_pull_by_tag_and_by_digest_gives_the_pushed_bytes_and_the_printed_digest() {
    let registry = Registry::start();
    let hello = support::example("hello");
    let original = std::fs::read(&hello).unwrap();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    let pinned = push(&hello, &reference);
    let digest = pinned
        .strip_prefix(&format!("{}@", registry.repo("team/hello")))
        .unwrap_or_else(|| panic!("push printed {pinned:?}, not REPOSITORY@DIGEST"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    let dir = tempfile::tempdir().unwrap();
    for (how, reference) in [("tag", &reference), ("digest", &pinned)] {
        let file = dir.path().join(format!("by-{how}.wasm"));
        let out = pull(reference, &file);
        assert!(out.status.success(), "pull by {how}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            pinned,
            "pull by {how} prints the digest"
        );
        assert!(
            std::fs::read(&file).unwrap() == original,
            "pull by {how} gives the pushed bytes"
        );
    }

    // The library call later sources use: the same bytes and digests.
    let pulled = oci::pull(&pinned, &options())
        .await
        .expect("pulls by digest");
    assert_eq!(pulled.bytes, original);
    assert_eq!(pulled.digest, digest);
    assert_eq!(pulled.layer_digest, oci::sha256_digest(&original));

    // The artifact is in the wasm OCI artifact layout: the registry stores an OCI manifest
    // whose config and one layer carry the wasm media types.
    let manifest_file = registry.blob_file(digest);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_file).unwrap()).unwrap();
    assert_eq!(manifest["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], oci::CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], oci::LAYER_MEDIA_TYPE);
    assert_eq!(
        manifest["layers"][0]["digest"],
        pulled.layer_digest.as_str()
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.blob_file(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], pulled.layer_digest.as_str());
}

#[test]
fn pushing_a_file_that_is_not_a_kubewasm_component_is_refused_and_nothing_is_pushed() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, wat::parse_str("(module)").unwrap()).unwrap();
    let not_wasm = dir.path().join("notes.wasm");
    std::fs::write(&not_wasm, "just some text\n").unwrap();
    for file in [&core_module, &not_wasm] {
        let reference = format!("{}:v1", registry.repo("team/bad"));
        let out = kubewasm(&[
            "plugin",
            "push",
            file.to_str().unwrap(),
            &reference,
            "--plain-http",
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("refusing to push") && err.contains(&file.display().to_string()),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "no digest printed");
    }
    let out = pull(
        &format!("{}:v1", registry.repo("team/bad")),
        &dir.path().join("out.wasm"),
    );
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_tampered_blob_is_refused_naming_both_digests_and_nothing_is_written() {
    let registry = Registry::start();
    let hello = std::fs::read(support::example("hello")).unwrap();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    let pushed = oci::push(&reference, &hello, &options()).await.unwrap();

    // Same size, one byte flipped: only the digest can tell.
    let blob = registry.blob_file(&pushed.layer_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let tampered = oci::sha256_digest(&bytes);

    for reference in [&reference, &pushed.pinned] {
        let err = oci::pull(reference, &options()).await.unwrap_err();
        assert!(
            matches!(&err, oci::Error::LayerDigest { expected, actual, .. }
                if *expected == pushed.layer_digest && *actual == tampered),
            "{err:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.wasm");
        let out = pull(reference, &file);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&pushed.layer_digest) && stderr.contains(&tampered),
            "the error names both digests: {stderr}"
        );
        assert!(stderr.contains("refused"), "{stderr}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }
}

#[tokio::test]
async fn a_tampered_manifest_pulled_by_digest_is_refused_naming_both_digests() {
    let registry = Registry::start();
    let hello = std::fs::read(support::example("hello")).unwrap();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    let pushed = oci::push(&reference, &hello, &options()).await.unwrap();

    // Still a valid manifest, with other bytes.
    let file = registry.blob_file(&pushed.digest);
    let mut manifest = std::fs::read(&file).unwrap();
    manifest.extend_from_slice(b"\n");
    std::fs::write(&file, &manifest).unwrap();

    let err = oci::pull(&pushed.pinned, &options()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, oci::Error::ManifestDigest { expected, .. } if *expected == pushed.digest),
        "{err:?}"
    );
    assert!(
        message.contains(&pushed.digest) && message.contains(&oci::sha256_digest(&manifest)),
        "{message}"
    );
}

#[tokio::test]
async fn pulling_a_missing_tag_repository_or_digest_says_not_found() {
    let registry = Registry::start();
    let hello = std::fs::read(support::example("hello")).unwrap();
    oci::push(
        &format!("{}:v1", registry.repo("team/hello")),
        &hello,
        &options(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for reference in [
        format!("{}:v2", registry.repo("team/hello")),
        format!("{}:v1", registry.repo("team/nothing-here")),
        format!("{}@sha256:{}", registry.repo("team/hello"), "0".repeat(64)),
    ] {
        let out = pull(&reference, &dir.path().join("out.wasm"));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{reference} was not found in the registry")),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("out.wasm").exists());
}

#[tokio::test]
async fn an_image_that_is_not_a_wasm_artifact_is_refused() {
    let registry = Registry::start();
    // A container image as `docker push` leaves it: an OCI image config and a tar+gzip layer.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let image: oci_client::Reference = format!("{}:1.0", registry.repo("library/app"))
        .parse()
        .unwrap();
    client
        .push(
            &image,
            &[oci_client::client::ImageLayer::oci_v1_gzip(
                b"\x1f\x8b not really a tarball".to_vec(),
                None,
            )],
            oci_client::client::Config::oci_v1(
                br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
                None,
            ),
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        )
        .await
        .expect("the container image is pushed");

    let dir = tempfile::tempdir().unwrap();
    let out = pull(&image.whole(), &dir.path().join("out.wasm"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a wasm artifact")
            && stderr.contains("application/vnd.oci.image.config.v1+json"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.wasm").exists());
}

#[tokio::test]
async fn a_component_over_the_size_cap_is_refused_before_it_is_read() {
    let registry = Registry::start();
    let hello = std::fs::read(support::example("hello")).unwrap();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    oci::push(&reference, &hello, &options()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = kubewasm(&[
        "plugin",
        "pull",
        &reference,
        "-o",
        dir.path().join("out.wasm").to_str().unwrap(),
        "--plain-http",
        "--max-plugin-size",
        "1000",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the component is {} bytes, over the limit of 1000 bytes",
            hello.len()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("out.wasm").exists());
}

#[test]
fn a_registry_that_is_down_is_reported_as_unreachable() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = pull(
        &format!("{addr}/team/hello:v1"),
        &dir.path().join("out.wasm"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach the registry of {addr}/team/hello:v1"
        )),
        "{stderr}"
    );
}

#[test]
fn a_reference_that_does_not_parse_is_a_usage_error() {
    let out = kubewasm(&[
        "plugin",
        "pull",
        "Not A Reference",
        "-o",
        "/tmp/never-written.wasm",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid OCI reference"), "{stderr}");
}

/// bcrypt (cost 4) of `tests-only-password`, as an htpasswd line holds it.
const BCRYPT: &str = "$2b$04$kCBxDRF2H0/WLZrOi2RarOvzYGyseu1MIiY34RphCFxf60dqDIrYa";

#[test]
fn credentials_from_the_environment_or_a_docker_config_are_used_and_refused_ones_say_so() {
    use base64::Engine as _;
    let registry = Registry::with_basic_auth("alice", BCRYPT);
    let hello = support::example("hello");
    let reference = format!("{}:v1", registry.repo("team/hello"));
    let push = |env: &[(&str, &str)]| {
        kubewasm_with(
            &[
                "plugin",
                "push",
                hello.to_str().unwrap(),
                &reference,
                "--plain-http",
            ],
            env,
        )
    };

    // None, and a wrong password: refused, saying with what and how to give others.
    for (env, credentials) in [
        (&[][..], "(anonymous)"),
        (
            &[
                ("KUBEWASM_REGISTRY_USERNAME", "alice"),
                ("KUBEWASM_REGISTRY_PASSWORD", "wrong"),
            ][..],
            "(basic auth as \"alice\")",
        ),
    ] {
        let out = push(env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("the registry refused {reference} {credentials}"))
                && stderr.contains("KUBEWASM_REGISTRY_USERNAME")
                && !stderr.contains("wrong"),
            "{stderr}"
        );
    }

    // From the environment.
    let out = push(&[
        ("KUBEWASM_REGISTRY_USERNAME", "alice"),
        ("KUBEWASM_REGISTRY_PASSWORD", "tests-only-password"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pinned = text(&out.stdout).trim().to_owned();

    // From a docker config, as `docker login` writes it.
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:tests-only-password");
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let file = dir.path().join("out.wasm");
    let out = kubewasm_with(
        &[
            "plugin",
            "pull",
            &pinned,
            "-o",
            file.to_str().unwrap(),
            "--plain-http",
        ],
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&file).unwrap() == std::fs::read(&hello).unwrap());
}

#[test]
fn https_to_a_plain_http_registry_suggests_plain_http() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    let out = kubewasm(&[
        "plugin",
        "pull",
        &reference,
        "-o",
        dir.path().join("out.wasm").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the registry of {reference}"))
            && stderr.contains("pass --plain-http"),
        "{stderr}"
    );
}

#[test]
fn a_registry_sending_more_than_the_cap_is_stopped_there_whatever_the_manifest_says() {
    let registry = Registry::start();
    let hello = support::example("hello");
    let size = std::fs::metadata(&hello).unwrap().len();
    let reference = format!("{}:v1", registry.repo("team/hello"));
    push(&hello, &reference);
    // The manifest still states the original size; the blob now holds 1 MiB more.
    let layer = oci::sha256_digest(&std::fs::read(&hello).unwrap());
    let blob = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&blob, &bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cap = (size + 1000).to_string();
    let out = kubewasm(&[
        "plugin",
        "pull",
        &reference,
        "-o",
        dir.path().join("out.wasm").to_str().unwrap(),
        "--plain-http",
        "--max-plugin-size",
        &cap,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the registry sent more than {cap} bytes for the component"
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("out.wasm").exists());
}
