//! The official Kubernetes Python client (`kubernetes` on PyPI) against the embedded server, unchanged:
//! runs `tests/python/official_client.py` (built-in kinds, strategic merge patches, status, watch,
//! conflicts, deletes, custom resources through CustomObjectsApi, and the dynamic client's discovery and
//! server-side apply), and `tests/python/defaults.py` (the defaults a cluster fills in, as the typed
//! client reads them).
//!
//! Needs `python3` with the `venv` module and access to PyPI the first time: the client is installed
//! once into `target/python-client-venv` and reused. Fails (never skips) when they are missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

use common::server;

/// The client version the scenario is pinned to.
const CLIENT_VERSION: &str = "37.0.2";

fn venv_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp; the venv lives next to it, shared by every build profile.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("python-client-venv")
}

async fn run(what: &str, cmd: &mut Command, limit: Duration, hint: &str) -> Output {
    let out = tokio::time::timeout(limit, cmd.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("failed to run {what}: {e}. {hint}"));
    assert!(
        out.status.success(),
        "{what} failed ({}). {hint}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether the venv's python imports the pinned client version.
async fn has_client(python: &Path) -> bool {
    if !python.exists() {
        return false;
    }
    let check = format!(
        "import kubernetes, sys; sys.exit(0 if kubernetes.__version__ == {CLIENT_VERSION:?} else 1)"
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(python)
            .args(["-c", &check])
            .kill_on_drop(true)
            .output(),
    )
    .await;
    matches!(out, Ok(Ok(o)) if o.status.success())
}

/// The venv's python, creating the venv and installing the client on first use.
///
/// Tests run in processes of their own and may get here together: an exclusive lock on a file
/// beside the venv lets one of them build it while the others wait, then find it ready.
async fn python_with_client() -> PathBuf {
    let dir = venv_dir();
    let python = dir.join("bin").join("python");
    let lock_path = dir.with_extension("lock");
    if let Some(parent) = lock_path.parent() {
        std::fs::create_dir_all(parent).expect("the venv's parent folder");
    }
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .expect("the lock task")
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    let python = python_with_client_locked(&dir, python).await;
    drop(lock);
    python
}

async fn python_with_client_locked(dir: &Path, python: PathBuf) -> PathBuf {
    if has_client(&python).await {
        return python;
    }
    run(
        "python3 -m venv",
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(dir),
        Duration::from_secs(300),
        "This test needs python3 with the venv module (Debian/Ubuntu: apt-get install python3 python3-venv).",
    )
    .await;
    run(
        "pip install kubernetes",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("kubernetes=={CLIENT_VERSION}")),
        Duration::from_secs(900),
        "This test installs the official Kubernetes Python client from PyPI once; it needs pip and network access to PyPI.",
    )
    .await;
    assert!(
        has_client(&python).await,
        "kubernetes=={CLIENT_VERSION} is not importable from {} after installing it",
        python.display()
    );
    python
}

/// Runs `tests/python/{script}` with the client against `server`; its stdout.
async fn scenario(python: &Path, server: &kubewasm_apiserver::ApiServer, script: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = run(
        &format!("the Python client scenario {}", script.display()),
        Command::new(python).arg(&script).arg(&kubeconfig),
        Duration::from_secs(180),
        "The step that failed is printed last.",
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.lines().last() == Some("OK"),
        "the scenario did not finish: {stdout}"
    );
    stdout
}

#[tokio::test]
async fn the_official_python_client_reads_the_defaults_a_cluster_fills_in() {
    let python = python_with_client().await;
    let server = server().await;
    scenario(&python, &server, "defaults.py").await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_official_python_client_works_unchanged() {
    let python = python_with_client().await;
    let server = server().await;
    scenario(&python, &server, "official_client.py").await;
    // Both Deployment patches reached the server as PATCHes; the script checked that the spec patch
    // merged containers and env by name, which only a strategic merge patch does.
    let patches = server
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch" && r.resource.as_deref() == Some("deployments"))
        .count();
    assert_eq!(patches, 2, "one spec patch and one status patch");
    server.shutdown().await;
}
