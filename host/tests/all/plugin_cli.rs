//! `kubewasm plugin new` scaffolds a crate that builds and reconciles unchanged;
//! `kubewasm plugin check` accepts a good component and rejects each kind of bad file with a
//! reason naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};

use crate::support;
use crate::support::eventually;

fn kubewasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(args)
        .env("KUBEWASM_COMPILE_CACHE", compile_cache())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the kubewasm binary runs")
}

fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubewasm-compile-cache")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repository")
        .to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `plugin check` on `path`, expecting exit status 1 and a reason naming the file.
fn check_fails(path: &Path, reason: &str) {
    let out = kubewasm(&["plugin", "check", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
    assert!(
        stderr.contains(&path.display().to_string()),
        "the error does not name the file: {stderr}"
    );
    assert!(stderr.contains(reason), "{reason:?} missing from: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout for a bad plugin");
}

#[tokio::test]
async fn a_scaffolded_plugin_builds_and_reconciles_in_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greeter");
    let out = kubewasm(&[
        "plugin",
        "new",
        "greeter",
        "--path",
        crate_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).unwrap();
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
    assert!(readme.contains("target/wasm32-wasip2/release/greeter.wasm"));
    assert!(readme.contains("kubewasm dev --plugins"));
    assert!(readme.contains("not published"), "{readme}");

    // Build it with the README's command. Sharing the plugins' target dir and lock file
    // reuses what `cargo xtask plugins` compiled (k8s-openapi for wasm takes minutes).
    std::fs::copy(
        repo().join("plugins/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("plugins/Cargo.lock exists");
    let target_dir = repo().join("target/wasm");
    let build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&crate_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "the scaffolded crate does not build:\n{}",
        text(&build.stderr)
    );
    let artifact = target_dir.join("wasm32-wasip2/release/greeter.wasm");

    // Its own unit tests pass natively on the SDK's fake host (sharing the native target
    // dir of the plugins' unit tests).
    let unit = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&crate_dir)
        .args(["test", "--target-dir"])
        .arg(repo().join("plugins/target"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        unit.status.success(),
        "the scaffolded crate's tests fail:\n{}\n{}",
        text(&unit.stdout),
        text(&unit.stderr)
    );
    assert!(
        text(&unit.stdout).contains("reconcile_annotates_the_object_once ... ok"),
        "{}",
        text(&unit.stdout)
    );
    // As the README: `mkdir -p plugins && cp ... plugins/greeter.wasm` in the crate's folder.
    let plugins = crate_dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let component = plugins.join("greeter.wasm");
    std::fs::copy(&artifact, &component).unwrap();

    let check = kubewasm(&["plugin", "check", component.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("configmaps: get, list, watch, patch"));

    // It reconciles, unchanged, under `kubewasm dev` started as its README says (from the crate's
    // folder, which gets `kubewasm-dev.kubeconfig`), driven by the README's kubectl lines.
    assert!(
        readme.contains("kubewasm dev --plugins plugins "),
        "the README's dev command changed: {readme}"
    );
    let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
    let mut dev = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(["dev", "--plugins", "plugins"])
        .current_dir(&crate_dir)
        .env("KUBEWASM_COMPILE_CACHE", compile_cache())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("kubewasm dev starts");
    let dev_log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
    let kubeconfig = crate_dir.join("kubewasm-dev.kubeconfig");
    eventually("kubewasm dev to write its kubeconfig", || {
        let ready = kubeconfig.is_file() && dev_log().contains("kubewasm dev is running.");
        async move { ready.then_some(()) }
    })
    .await;
    let lines = readme_shell_lines(&readme, "then, in another shell:");
    assert_eq!(lines.len(), 4, "export, create, get, get events: {lines:?}");
    assert_eq!(lines[0], "export KUBECONFIG=kubewasm-dev.kubeconfig");
    let sh = |line: &str| {
        Command::new("sh")
            .args(["-c", &format!("{}\n{line}", lines[0])])
            .current_dir(&crate_dir)
            .env("HOME", dir.path())
            .output()
            .expect("sh runs")
    };
    let created = sh(&lines[1]);
    assert!(
        created.status.success(),
        "{:?} failed: {}\n--- kubewasm dev ---\n{}",
        lines[1],
        text(&created.stderr),
        dev_log()
    );
    eventually("the scaffolded plugin annotates the ConfigMap", || {
        let out = sh(&lines[2]);
        let done = out.status.success()
            && text(&out.stdout).contains(r#""kubewasm.dev/reconciled-by":"greeter""#);
        async move { done.then_some(()) }
    })
    .await;
    let events = sh(&lines[3]);
    assert!(
        text(&events.stdout).contains("Reconciled"),
        "{:?} shows no Reconciled event: {}{}",
        lines[3],
        text(&events.stdout),
        text(&events.stderr)
    );
    let _ = dev.kill();
    let _ = dev.wait();
}

/// The lines of the first `sh` block after `marker` in a README, without trailing comments.
fn readme_shell_lines(readme: &str, marker: &str) -> Vec<String> {
    let after = &readme[readme.find(marker).expect("the marker is in the README")..];
    after
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.split("   #").next().unwrap_or(l).trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn plugin_new_inside_a_repository_depends_on_its_sdk_by_a_relative_path() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("sdk")).unwrap();
    std::fs::write(
        repo.path().join("sdk/Cargo.toml"),
        "[package]\nname = \"kubewasm-sdk\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(repo.path().join("plugins")).unwrap();
    let crate_dir = repo.path().join("plugins/pod-watch");
    let out = kubewasm(&[
        "plugin",
        "new",
        "pod-watch",
        "--kind",
        "Pod",
        "--path",
        crate_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains(r#"kubewasm-sdk = { path = "../../sdk" }"#),
        "{cargo_toml}"
    );
    assert!(cargo_toml.contains("[workspace]"), "a workspace of its own");
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("use k8s_openapi::api::core::v1::Pod;"),
        "{lib}"
    );
    assert!(lib.contains("pub struct PodWatch;"), "{lib}");
}

#[test]
fn plugin_new_refuses_an_existing_folder_and_a_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    let out = kubewasm(&["plugin", "new", "taken", "--path", taken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_dir(&taken).unwrap().count(),
        1,
        "nothing written"
    );

    let path = dir.path().join("x");
    let out = kubewasm(&[
        "plugin",
        "new",
        "My Plugin",
        "--path",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a valid plugin name"));
    assert!(!path.exists());
}

#[test]
fn plugin_check_prints_the_manifest_hash_and_permissions_of_a_good_component() {
    let path = support::example("hello");
    let bytes = std::fs::read(&path).unwrap();
    let sha = hex::encode(Sha256::digest(&bytes));

    let out = kubewasm(&["plugin", "check", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for needle in [
        "plugin hello is valid",
        &sha,
        &format!("{} bytes", bytes.len()),
        "kubewasm:controller/plugin@0.1.0",
        "kubewasm:controller/reconciler@0.1.0",
        "reconciles:   configmaps (v1 ConfigMap)",
        "concurrency:  2",
        "configmaps: get, list, watch, patch",
        "resources: [configmaps]  verbs: [get, list, watch, patch]",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }

    let out = kubewasm(&["plugin", "check", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(report["sha256"], sha.as_str());
    assert_eq!(report["size"], bytes.len());
    assert_eq!(report["world"], "kubewasm:controller/plugin@0.1.0");
    assert_eq!(
        report["manifest"]["reconciles"]["kind"]["kind"],
        "ConfigMap"
    );
    assert_eq!(report["manifest"]["concurrency"], 2);
    assert_eq!(
        report["permissions"][0]["verbs"],
        serde_json::json!(["get", "list", "watch", "patch"])
    );
    assert_eq!(
        report["rbac"][0]["resources"],
        serde_json::json!(["configmaps"])
    );
}

#[test]
fn plugin_check_shows_watches_and_indexes() {
    let out = kubewasm(&[
        "plugin",
        "check",
        support::example("node-pods").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("index-lookup"), "{stdout}");
    assert!(stdout.contains("indexes:      ") && !stdout.contains("indexes:      -"));
}

#[test]
fn plugin_check_rejects_each_kind_of_bad_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    check_fails(
        &write("notes.wasm", b"hello, I am a text file\n"),
        "not a WebAssembly file",
    );
    check_fails(&write("empty.wasm", b""), "not a WebAssembly file");
    let good = std::fs::read(support::example("hello")).unwrap();
    check_fails(
        &write("truncated.wasm", &good[..good.len() / 2]),
        "failed to compile",
    );
    let module = wat::parse_str(r#"(module (func (export "reconcile")))"#).unwrap();
    check_fails(&write("core.wasm", &module), "not a component");
    let other_world = wat::parse_str(
        r#"(component
             (core module $m (func (export "run")))
             (core instance $i (instantiate $m))
             (func $run (canon lift (core func $i "run")))
             (instance $r (export "run" (func $run)))
             (export "wasi:cli/run@0.2.0" (instance $r)))"#,
    )
    .unwrap();
    check_fails(
        &write("other-world.wasm", &other_world),
        "does not implement world kubewasm:controller/plugin@0.1.0",
    );
    check_fails(&support::test_plugin("bad-manifest"), "invalid manifest");
    check_fails(&dir.path().join("absent.wasm"), "failed to read plugin");
    let fifo = dir.path().join("pipe.wasm");
    support::mkfifo(&fifo);
    // Reading a FIFO with no writer would hang the check forever.
    check_fails(&fifo, "is not a regular file (it is a FIFO)");
}

#[test]
fn plugin_check_refuses_a_file_over_max_plugin_size_unread() {
    let hello = support::example("hello");
    let out = kubewasm(&[
        "plugin",
        "check",
        hello.to_str().unwrap(),
        "--max-plugin-size",
        "1KiB",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("over the limit of 1024 bytes"), "{stderr}");
    assert!(stderr.contains("hello.wasm"), "{stderr}");
}

#[test]
fn plugin_check_without_a_file_is_a_usage_error() {
    let out = kubewasm(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
