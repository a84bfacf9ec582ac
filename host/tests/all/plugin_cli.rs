//! `kubewasm plugin new` scaffolds a crate that builds (small enough for a ConfigMap) and
//! reconciles unchanged, for a built-in kind or (`--crd`) a custom resource of its own;
//! `kubewasm plugin check` accepts a good component and rejects each kind of bad file with a
//! reason naming it; `kubewasm plugin crd` prints the CRDs a component ships.

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

/// The largest plugin a ConfigMap carries: `binaryData` is base64 (4/3 larger) and a
/// ConfigMap holds at most 1 MiB.
const CONFIGMAP_PLUGIN_LIMIT: u64 = 750_000;

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd
}

/// Builds a scaffolded crate with its README's command, sharing the plugins' lock file and a
/// target dir (which reuses what `cargo xtask plugins` compiled: k8s-openapi for wasm takes
/// minutes); returns the component.
fn build_scaffold(crate_dir: &Path, crate_name: &str, readme: &str) -> PathBuf {
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
    assert!(readme.contains(&format!("target/wasm32-wasip2/release/{crate_name}.wasm")));
    std::fs::copy(
        repo().join("plugins/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("plugins/Cargo.lock exists");
    let target_dir = repo().join("target/wasm");
    let build = cargo()
        .current_dir(crate_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "the scaffolded crate does not build:\n{}",
        text(&build.stderr)
    );
    let artifact = target_dir.join(format!("wasm32-wasip2/release/{crate_name}.wasm"));
    let size = std::fs::metadata(&artifact).expect("the component").len();
    assert!(
        size < CONFIGMAP_PLUGIN_LIMIT,
        "{} is {size} bytes, too big for a ConfigMap (limit {CONFIGMAP_PLUGIN_LIMIT})",
        artifact.display()
    );
    artifact
}

/// Runs the scaffolded crate's own unit tests natively on the SDK's fake host (sharing the
/// native target dir of the plugins' unit tests); returns their output.
fn scaffold_unit_tests(crate_dir: &Path) -> String {
    let unit = cargo()
        .current_dir(crate_dir)
        .args(["test", "--target-dir"])
        .arg(repo().join("plugins/target"))
        .output()
        .expect("cargo runs");
    assert!(
        unit.status.success(),
        "the scaffolded crate's tests fail:\n{}\n{}",
        text(&unit.stdout),
        text(&unit.stderr)
    );
    text(&unit.stdout)
}

/// `kubewasm dev --plugins plugins` started in `crate_dir` as the README says (it writes
/// `kubewasm-dev.kubeconfig` there), once it is running; logs to `log`.
async fn start_dev(crate_dir: &Path, log: &Path) -> std::process::Child {
    let file = std::fs::File::create(log).unwrap();
    let dev = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(["dev", "--plugins", "plugins"])
        .current_dir(crate_dir)
        .env("KUBEWASM_COMPILE_CACHE", compile_cache())
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("kubewasm dev starts");
    let kubeconfig = crate_dir.join("kubewasm-dev.kubeconfig");
    eventually("kubewasm dev to write its kubeconfig", || {
        let ready = kubeconfig.is_file()
            && std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains("kubewasm dev is running.");
        async move { ready.then_some(()) }
    })
    .await;
    dev
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

    // Built with the README's command, it fits a ConfigMap; its own tests pass.
    let artifact = build_scaffold(&crate_dir, "greeter", &readme);
    let unit = scaffold_unit_tests(&crate_dir);
    assert!(
        unit.contains("reconcile_annotates_the_object_once ... ok"),
        "{unit}"
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
    let mut dev = start_dev(&crate_dir, &dir.path().join("dev.log")).await;
    let dev_log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
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

#[tokio::test]
async fn a_scaffolded_crd_operator_builds_ships_its_crd_and_reconciles_in_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greeting-op");
    let out = kubewasm(&[
        "plugin",
        "new",
        "greeting-op",
        "--crd",
        "demo.example.com/v1/Greeting",
        "--path",
        crate_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "kubewasm plugin crd target/wasm32-wasip2/release/greeting_op.wasm | kubectl apply -f -"
        ),
        "{}",
        text(&out.stdout)
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        ".gitignore",
        "example.yaml",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).unwrap();

    let artifact = build_scaffold(&crate_dir, "greeting_op", &readme);
    let unit = scaffold_unit_tests(&crate_dir);
    for test in [
        "reconcile_reports_ready_in_the_status_once ... ok",
        "reconcile_of_a_deleted_object_does_nothing ... ok",
        "the_crd_validates_the_spec ... ok",
    ] {
        assert!(unit.contains(test), "{test} missing from:\n{unit}");
    }

    // The README's rustdoc command works from the crate and documents the fake host.
    let doc_line = readme
        .lines()
        .find(|l| l.starts_with("cargo doc "))
        .expect("the README gives a cargo doc command");
    let doc_args: Vec<&str> = doc_line
        .split_whitespace()
        .skip(1)
        .filter(|a| *a != "--open")
        .collect();
    let doc = cargo()
        .current_dir(&crate_dir)
        .args(&doc_args)
        .arg("--target-dir")
        .arg(repo().join("plugins/target"))
        .output()
        .expect("cargo runs");
    assert!(doc.status.success(), "{doc_line}: {}", text(&doc.stderr));
    assert!(
        repo()
            .join("plugins/target/doc/kubewasm_sdk/testing/struct.FakeHost.html")
            .is_file(),
        "{doc_line} did not document kubewasm_sdk::testing"
    );

    // `plugin crd` on the built component, as the README runs it: the derive's CRD as YAML.
    let crd_line = readme
        .lines()
        .find(|l| l.starts_with("kubewasm plugin crd target/") && !l.contains('|'))
        .expect("the README prints the CRD");
    let out = kubewasm(&["plugin", "crd", artifact.to_str().unwrap()]);
    assert!(out.status.success(), "{crd_line}: {}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(yaml.starts_with("---\n"), "{yaml}");
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
        .collect();
    assert_eq!(docs.len(), 1, "{yaml}");
    let crd = &docs[0];
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "greetings.demo.example.com");
    let replicas = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["replicas"];
    assert_eq!(
        (&replicas["minimum"], &replicas["maximum"]),
        (&1.into(), &10.into())
    );

    // Under `kubewasm dev`, driven by the README's lines: the CRD installs, the example
    // reconciles to Ready, and the schema refuses a bad spec.
    let plugins = crate_dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&artifact, plugins.join("greeting-op.wasm")).unwrap();
    let mut dev = start_dev(&crate_dir, &dir.path().join("dev.log")).await;
    let dev_log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
    let lines = readme_shell_lines(&readme, "then, in another shell:");
    assert_eq!(
        lines.len(),
        5,
        "export, see the CRD dev installed, apply the example, get, get events: {lines:?}"
    );
    assert_eq!(lines[0], "export KUBECONFIG=kubewasm-dev.kubeconfig");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubewasm")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sh = |line: &str| {
        Command::new("sh")
            .args(["-c", &format!("{}\n{line}", lines[0])])
            .current_dir(&crate_dir)
            .env("HOME", dir.path())
            .env("PATH", &path)
            .env("KUBEWASM_COMPILE_CACHE", compile_cache())
            .output()
            .expect("sh runs")
    };
    assert!(lines[1].starts_with("kubectl get crd greetings.demo.example.com"));
    let installed = sh(&lines[1]);
    assert!(
        installed.status.success()
            && text(&installed.stdout).contains("greetings.demo.example.com"),
        "{:?} failed: {}\n--- kubewasm dev ---\n{}",
        lines[1],
        text(&installed.stderr),
        dev_log()
    );
    // The kind is served once the CRD is established (kubectl reads discovery afresh).
    eventually("kubectl to apply the example Greeting", || {
        let out = sh(&lines[2]);
        async move { out.status.success().then_some(()) }
    })
    .await;
    eventually("the operator to report Ready in the status", || {
        let out = sh(&lines[3]);
        let done = out.status.success() && text(&out.stdout).contains("Ready");
        async move { done.then_some(()) }
    })
    .await;
    let table = text(&sh(&lines[3]).stdout);
    assert!(
        table.contains("REPLICAS") && table.contains("PHASE"),
        "the printer columns: {table}"
    );
    let events = sh(&lines[4]);
    assert!(
        text(&events.stdout).contains("Reconciled"),
        "{:?} shows no Reconciled event: {}{}\n--- kubewasm dev ---\n{}",
        lines[4],
        text(&events.stdout),
        text(&events.stderr),
        dev_log()
    );
    let refused = sh("sed 's/replicas: 2/replicas: 11/' example.yaml | kubectl apply -f -");
    assert!(!refused.status.success(), "replicas 11 was accepted");
    assert!(
        text(&refused.stderr).contains("spec.replicas"),
        "{}",
        text(&refused.stderr)
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
        "kubewasm:controller/plugin@0.2.0",
        "kubewasm:controller/reconciler@0.2.0",
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
    assert_eq!(report["world"], "kubewasm:controller/plugin@0.2.0");
    assert_eq!(report["reuseInstances"], false);
    assert_eq!(report["customResources"], serde_json::json!([]));
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
fn plugin_check_names_the_wit_version_a_component_was_built_against() {
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wit-0.1.0/hello.wasm");
    let out = kubewasm(&["plugin", "check", "--json", v1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(report["world"], "kubewasm:controller/plugin@0.1.0");
    assert!(
        report["interfaces"]
            .to_string()
            .contains("kubewasm:controller/reconciler@0.1.0"),
        "{report}"
    );
    // The names come from the component's type: each a whole `ns:pkg/interface@x.y.z`, never a
    // fragment of the bytes around it (a scan of the file once listed `wasi:sockets/udp@0.2.63`).
    let probe = support::test_plugin("probe");
    let out = kubewasm(&["plugin", "check", "--json", probe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    let names = report["interfaces"]
        .as_array()
        .expect("a list of interfaces");
    assert!(
        names.iter().any(|n| n == "wasi:io/streams@0.2.6"),
        "{names:?}"
    );
    for name in names {
        let name = name.as_str().unwrap();
        let (_, version) = name.split_once('@').expect("a versioned name");
        assert!(
            ["0.1.0", "0.2.0"].contains(&version)
                || version.starts_with("0.2.") && version.len() == 5,
            "{name} is not a WIT interface name"
        );
    }
}

#[test]
fn plugin_check_shows_the_crds_a_plugin_ships_and_whether_it_keeps_instances() {
    let path = support::example("scale-schedule");
    let out = kubewasm(&["plugin", "check", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("crds:         scaleschedules.demo.kubewasm.dev"),
        "{stdout}"
    );
    assert!(
        stdout.contains("instances:    a fresh one per reconcile"),
        "{stdout}"
    );
    let labeler = support::example("labeler");
    let out = kubewasm(&["plugin", "check", "--json", labeler.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(
        report["reuseInstances"], true,
        "the Python labeler keeps its interpreter"
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
        "does not implement world kubewasm:controller/plugin@0.2.0",
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
fn plugin_crd_prints_the_crd_an_example_ships_as_its_yaml_file_says() {
    let out = kubewasm(&[
        "plugin",
        "crd",
        support::example("rediscluster").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
        .collect();
    let file = std::fs::read_to_string(repo().join("examples/rediscluster/crd.yaml")).unwrap();
    let expected: serde_json::Value = serde_yaml::from_str(&file).unwrap();
    assert_eq!(docs, [expected], "{yaml}");
}

#[test]
fn plugin_crd_says_so_when_a_plugin_ships_no_crd_and_names_a_bad_file() {
    let hello = support::example("hello");
    let out = kubewasm(&["plugin", "crd", hello.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "nothing to apply: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("plugin hello") && stderr.contains("defines no custom resources"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.wasm");
    std::fs::write(&notes, b"not wasm").unwrap();
    let out = kubewasm(&["plugin", "crd", notes.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("notes.wasm") && stderr.contains("not a WebAssembly file"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = kubewasm(&["plugin", "crd"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn plugin_new_refuses_a_malformed_crd_and_crd_with_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("op");
    for args in [
        &["--crd", "Greeting"][..],
        &["--crd", "example/v1/Greeting"],
        &["--crd", "demo.example.com/v1/Greeting", "--kind", "Pod"],
    ] {
        let mut all = vec!["plugin", "new", "op", "--path", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = kubewasm(&all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!path.exists(), "{args:?} wrote the crate");
    }
}

#[test]
fn plugin_check_without_a_file_is_a_usage_error() {
    let out = kubewasm(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
