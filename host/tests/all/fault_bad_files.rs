//! Fault suite, bad plugin files: a watched plugins folder (hot reload) serves version 1 of a
//! plugin; one at a time, its file is replaced by a bad one, and the same bad content is added
//! as a new file. Each time the watcher reports a clear error naming the file and the cause
//! (file state, reload event, plugin status), and version 1 keeps serving: a new object is
//! reconciled by version 1, as the manager's stream of reconciles shows.

use std::path::Path;
use std::time::Duration;

use kubewasm::reload::{PluginWatcher, ReloadEvent, WatchOptions};
use serde_json::json;

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;

/// The size cap of this watcher: small, so the huge file stays cheap.
const MAX_SIZE: u64 = 8 << 20;

// ---------------------------------------------------------------------------------------------
// Bad files.

/// How a bad file is put in place.
enum Bad {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A sparse file of this size (starts with the component header, so only its size is wrong).
    Sized(u64),
    /// A symlink to a hidden symlink pointing back: reading it fails with ELOOP.
    SymlinkLoop,
    /// A file whose read fails (see `unreadable`).
    Unreadable,
    /// A FIFO: opening it for reading would block until a writer comes.
    Fifo,
    /// A symlink to a file that does not exist.
    DanglingSymlink,
}

/// Puts `bad` at `path` without a moment where `path` is missing (a missing file would stop the
/// plugin): built under a hidden name, then renamed over `path`.
fn put(path: &Path, bad: &Bad) {
    let dir = path.parent().expect("a folder");
    let name = path.file_name().expect("a name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    match bad {
        Bad::Bytes(bytes) => std::fs::write(&tmp, bytes).expect("write"),
        Bad::Sized(size) => {
            std::fs::write(&tmp, b"\0asm\x0d\0\x01\0").expect("write");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&tmp)
                .expect("open");
            f.set_len(*size).expect("grow the sparse file");
        }
        Bad::SymlinkLoop => {
            let back = dir.join(format!(".{name}.loop"));
            let _ = std::fs::remove_file(&back);
            std::os::unix::fs::symlink(path, &back).expect("symlink back");
            std::os::unix::fs::symlink(&back, &tmp).expect("symlink");
        }
        Bad::Unreadable => unreadable(&tmp),
        Bad::DanglingSymlink => {
            std::os::unix::fs::symlink(dir.join("..data/absent.wasm"), &tmp).expect("symlink");
        }
        Bad::Fifo => {
            support::mkfifo(&tmp);
        }
    }
    std::fs::rename(&tmp, path).expect("rename into place");
}

fn running_as_root() -> bool {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("`id -u` runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A file that cannot be read. As a normal user: a copy of the plugin with mode 000. As root,
/// permissions do not stop reads, so: a symlink to `/proc/self/mem`, a regular file whose read
/// at offset 0 fails with EIO (address 0 is never mapped).
fn unreadable(at: &Path) {
    if running_as_root() {
        std::os::unix::fs::symlink("/proc/self/mem", at).expect("symlink");
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::copy(support::example("hello"), at).expect("copy");
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    }
}

fn unreadable_cause() -> &'static str {
    if running_as_root() {
        "Input/output error"
    } else {
        "Permission denied"
    }
}

fn core_module() -> Vec<u8> {
    wat::parse_str(r#"(module (func (export "reconcile")))"#).expect("wat")
}

fn other_world() -> Vec<u8> {
    wat::parse_str(
        r#"(component
             (core module $m (func (export "run")))
             (core instance $i (instantiate $m))
             (func $run (canon lift (core func $i "run")))
             (instance $r (export "run" (func $run)))
             (export "wasi:cli/run@0.2.0" (instance $r)))"#,
    )
    .expect("wat")
}

fn other_wit_version() -> Vec<u8> {
    wat::parse_str(
        r#"(component
             (core module $m (func (export "f") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $f (result u32) (canon lift (core func $i "f")))
             (instance $r (export "get-manifest" (func $f)))
             (export "kubewasm:controller/reconciler@1.0.0" (instance $r)))"#,
    )
    .expect("wat")
}

// ---------------------------------------------------------------------------------------------
// The host.

fn options() -> WatchOptions {
    WatchOptions {
        watch: true,
        debounce: Duration::from_millis(100),
        // Long: the test is driven by filesystem events.
        rescan: Duration::from_secs(3600),
        sync_timeout: Duration::from_secs(60),
        max_plugin_size: MAX_SIZE,
    }
}

/// Waits until the watcher's state of `path` says `cause`, and returns that error.
async fn file_error(watcher: &PluginWatcher, path: &Path, cause: &str) -> String {
    eventually(
        &format!("an error saying {cause:?} for {}", path.display()),
        || async {
            watcher
                .files()
                .into_iter()
                .find(|(p, _)| p == path)
                .and_then(|(_, s)| s.error)
                .filter(|e| e.contains(cause))
        },
    )
    .await
}

/// Creates ConfigMap `name` and waits until the served plugin stamped it; returns the versions
/// that reconciled it.
async fn reconciled_by(cluster: &TestCluster, name: &str) -> Vec<String> {
    cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}),
        )
        .await;
    let api = cluster.dynamic("v1", "ConfigMap", "configmaps", Some("default"));
    eventually(&format!("{name} is stamped"), || {
        let api = api.clone();
        async move {
            let cm = api.get(name).await.ok()?;
            cm.metadata
                .annotations?
                .contains_key("hello.kubewasm.dev/keys")
                .then_some(())
        }
    })
    .await;
    cluster
        .reconciles
        .versions("victim", &format!("default/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_plugin_file_is_reported_and_the_old_version_keeps_serving() {
    let hello = std::fs::read(support::example("hello")).expect("hello.wasm");
    let v1 = kubewasm::runtime::version_of(&hello);
    let cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().expect("a plugins folder");
    let victim = dir.path().join("victim.wasm");
    std::fs::write(&victim, &hello).expect("write v1");
    let watcher = PluginWatcher::start(
        cluster.runtime.clone(),
        cluster.manager.clone(),
        dir.path(),
        options(),
    )
    .await
    .expect("the plugins folder is watched");
    let mut events = watcher.subscribe();
    cluster.manager.wait_synced().await;
    let ran = reconciled_by(&cluster, "before").await;
    assert!(!ran.is_empty() && ran.iter().all(|v| *v == v1), "{ran:?}");

    let root = running_as_root();
    let scenarios: Vec<(&str, String, Bad, String)> = vec![
        (
            "truncated",
            "the first half of a good component".into(),
            Bad::Bytes(hello[..hello.len() / 2].to_vec()),
            "failed to compile plugin".into(),
        ),
        (
            "empty",
            "an empty file".into(),
            Bad::Bytes(Vec::new()),
            "not a WebAssembly file".into(),
        ),
        (
            "not wasm",
            "a text file".into(),
            Bad::Bytes(b"hello, I am a text file\n".to_vec()),
            "not a WebAssembly file".into(),
        ),
        (
            "core module",
            "a core wasm module".into(),
            Bad::Bytes(core_module()),
            "it is a core WebAssembly module, not a component".into(),
        ),
        (
            "other world",
            "a wasi:cli/run component".into(),
            Bad::Bytes(other_world()),
            "does not implement world kubewasm:controller/plugin@0.2.0".into(),
        ),
        (
            "other WIT version",
            "a component exporting reconciler@1.0.0".into(),
            Bad::Bytes(other_wit_version()),
            "does not implement world kubewasm:controller/plugin@0.2.0".into(),
        ),
        (
            "huge file",
            format!("a 9 MiB file (cap {} MiB)", MAX_SIZE >> 20),
            Bad::Sized(9 << 20),
            format!("is 9437184 bytes, over the limit of {MAX_SIZE} bytes"),
        ),
        (
            "symlink loop",
            "a symlink to a symlink back to it".into(),
            Bad::SymlinkLoop,
            "Too many levels of symbolic links".into(),
        ),
        (
            "unreadable",
            if root {
                "a symlink to /proc/self/mem (reads fail with EIO; chmod 000 does not stop root)"
                    .into()
            } else {
                "a copy of the plugin with mode 000".into()
            },
            Bad::Unreadable,
            unreadable_cause().into(),
        ),
        (
            "fifo",
            "a FIFO named *.wasm (a read would block forever)".into(),
            Bad::Fifo,
            "is not a regular file (it is a FIFO)".into(),
        ),
        (
            "dangling symlink",
            "a symlink to a file that does not exist".into(),
            Bad::DanglingSymlink,
            "which does not exist".into(),
        ),
    ];

    for (i, (scenario, injected, bad, cause)) in scenarios.iter().enumerate() {
        let failures = watcher.failures();
        put(&victim, bad);
        let added = dir.path().join(format!("added-{i}.wasm"));
        put(&added, bad);

        // Both failures are announced (the replaced file's with the version that keeps serving),
        // naming the file and the cause.
        let (mut replaced, mut added_seen) = (None, None);
        eventually(&format!("{scenario}: both failures are announced"), || {
            while let Ok(event) = events.try_recv() {
                if let ReloadEvent::Failed { path, serving, .. } = &event {
                    if *path == victim {
                        assert_eq!(serving.as_deref(), Some(v1.as_str()), "{event}");
                        replaced = Some(event.to_string());
                    } else if *path == added {
                        assert_eq!(serving, &None, "{event}");
                        added_seen = Some(event.to_string());
                    }
                }
            }
            std::future::ready((replaced.is_some() && added_seen.is_some()).then_some(()))
        })
        .await;
        let announced = replaced.unwrap_or_default();
        assert!(
            announced.contains(cause.as_str())
                && announced.contains("victim.wasm")
                && announced.contains(&format!("version {v1} keeps serving")),
            "{announced}"
        );
        let announced_added = added_seen.unwrap_or_default();
        assert!(
            announced_added.contains(cause.as_str())
                && announced_added.contains(&format!("added-{i}.wasm")),
            "{announced_added}"
        );
        // The same in the watcher's file states.
        let replaced_error = file_error(&watcher, &victim, cause).await;
        let added_error = file_error(&watcher, &added, cause).await;
        assert!(replaced_error.contains("victim.wasm"), "{replaced_error}");
        assert!(
            added_error.contains(&format!("added-{i}.wasm")),
            "{added_error}"
        );
        assert!(watcher.failures() >= failures + 2);
        let status = cluster
            .manager
            .status()
            .into_iter()
            .find(|s| s.name == "victim")
            .expect("victim still runs");
        assert_eq!(status.version, v1, "{scenario}: version 1 keeps serving");
        assert!(
            status
                .last_reload_error
                .as_deref()
                .is_some_and(|e| e.contains(cause.as_str())),
            "{scenario}: the plugin's status says why: {status:?}"
        );
        let names: Vec<String> = cluster
            .manager
            .status()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["victim".to_owned()], "{scenario}");

        // New reconciles still run on version 1.
        let probe = format!("probe-{i}");
        let ran = reconciled_by(&cluster, &probe).await;
        assert!(
            !ran.is_empty() && ran.iter().all(|v| *v == v1),
            "{scenario}: {probe} was reconciled by {ran:?}, not only {v1}"
        );
        std::fs::remove_file(&added).expect("remove the added file");
        support::fault_report::record(
            "bad plugin files",
            scenario,
            injected,
            &format!(
                "error names file and cause ({}); v1 keeps serving, new object reconciled by v1",
                short(cause)
            ),
            Some(0),
        );
    }

    // The watcher still works: a good new version replaces version 1.
    let mut v2_bytes = hello.clone();
    // A custom section (id 0, 16 bytes: name length 13, "kubewasm-test", "v2"): other bytes,
    // same behaviour.
    v2_bytes.extend_from_slice(b"\0\x10\x0dkubewasm-testv2");
    let v2 = kubewasm::runtime::version_of(&v2_bytes);
    put(&victim, &Bad::Bytes(v2_bytes));
    eventually("version 2 serves", || async {
        let p = cluster.manager.plugin("victim")?;
        (p.version() == v2).then_some(())
    })
    .await;
    assert_eq!(cluster.manager.status()[0].last_reload_error, None);
    watcher.stop().await;
    cluster.stop().await;
}

fn short(cause: &str) -> String {
    let mut s: String = cause.chars().take(48).collect();
    if s.len() < cause.len() {
        s.push_str("...");
    }
    s
}

#[test]
fn kubewasm_dev_refuses_a_plugin_file_over_max_plugin_size_and_runs_the_others() {
    // panic.wasm is ~80 KB, hello.wasm ~500 KB: a 256 KiB cap lets one through.
    let (small, big) = (support::test_plugin("panic"), support::example("hello"));
    let big_size = std::fs::metadata(&big).expect("hello.wasm").len();
    assert!(std::fs::metadata(&small).expect("panic.wasm").len() < 256 << 10);
    assert!(big_size > 256 << 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = support::process::plugin_dir(dir.path(), &[small, big]);
    let banner = support::process::dev_banner(
        dir.path(),
        &plugins,
        &["--max-plugin-size".as_ref(), "256KiB".as_ref()],
    );
    assert!(banner.contains("plugins:     panic\n"), "{banner}");
    let refused = banner
        .lines()
        .find(|l| l.contains("not loaded:") && l.contains("hello.wasm"))
        .unwrap_or_else(|| panic!("hello is reported as not loaded: {banner}"));
    assert!(
        refused.contains(&format!(
            "is {big_size} bytes, over the limit of 262144 bytes (raise it with --max-plugin-size)"
        )),
        "{refused}"
    );
}
