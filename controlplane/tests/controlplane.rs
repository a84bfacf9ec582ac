//! The control plane as `cargo xtask cluster up` and the tests start it: the binaries report
//! their real versions, kubectl works with the admin kubeconfig, a Deployment's Pods are
//! scheduled onto kwok's Node and become Running, the real authorizer refuses an unprivileged
//! token, and no process outlives the control plane (attached or detached).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kubewasm_controlplane::{Binaries, Component, ControlPlane, Options, Tool};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/k8s-bin")
}

fn start(dir: &Path, detached: bool) -> ControlPlane {
    let mut options = Options::new(bin_dir(), dir.join("plane"));
    options.detached = detached;
    ControlPlane::start(options).unwrap_or_else(|e| panic!("the control plane starts: {e}"))
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after 90 s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pids of the control plane's processes, from its `state.json`.
fn pids(dir: &Path) -> Vec<u32> {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("plane/state.json")).expect("state.json"),
    )
    .expect("state.json is JSON");
    state["pids"]
        .as_object()
        .expect("pids")
        .values()
        .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn the_binaries_report_the_releases_the_tools_modules_pin() {
    let binaries = Binaries::new(bin_dir());
    for tool in [
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
    ] {
        assert_eq!(
            binaries.version(tool).unwrap(),
            "Kubernetes v1.37.2",
            "{tool}"
        );
    }
    assert!(binaries.version(Tool::Etcd).unwrap().contains("3.7.3"));
    assert!(binaries.version(Tool::Kwok).unwrap().contains("v0.8.0"));
}

#[test]
fn kubectl_works_and_pods_of_a_deployment_run_on_kwoks_node() {
    let dir = tempfile::tempdir().unwrap();
    let plane = start(dir.path(), false);
    let kc = plane.kubeconfig().to_owned();
    let (ok, version) = kubectl(&kc, &["version", "-o", "json"]);
    assert!(ok, "{version}");
    assert!(version.contains("\"gitVersion\": \"v1.37.2\""), "{version}");
    let (ok, nodes) = kubectl(&kc, &["get", "nodes", "--no-headers"]);
    assert!(
        ok && nodes.contains("kwok-node-0") && nodes.contains(" Ready "),
        "{nodes}"
    );
    let (ok, out) = kubectl(
        &kc,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    assert!(ok, "{out}");
    eventually("the Deployment's two Pods to run on kwok-node-0", || {
        let (_, pods) = kubectl(
            &kc,
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase} {end}",
            ],
        );
        pods.trim() == "kwok-node-0/Running kwok-node-0/Running"
    });
    // The real authorizer: a token nobody granted anything.
    let sa_token = {
        let (ok, out) = kubectl(&kc, &["create", "serviceaccount", "nobody"]);
        assert!(ok, "{out}");
        let (ok, token) = kubectl(&kc, &["create", "token", "nobody"]);
        assert!(ok, "{token}");
        token.lines().last().unwrap_or_default().trim().to_owned()
    };
    let nobody = dir.path().join("nobody.kubeconfig");
    plane
        .write_kubeconfig(&nobody, &sa_token, "nobody")
        .unwrap();
    let (ok, out) = kubectl(&nobody, &["get", "configmaps"]);
    assert!(!ok && out.contains("forbidden"), "{out}");
    let pids = pids(dir.path());
    assert_eq!(
        pids.len(),
        5,
        "etcd, kube-apiserver, controller manager, scheduler, kwok"
    );
    plane.stop();
    assert!(
        pids.iter().all(|p| !running(*p)),
        "a process outlived stop()"
    );
}

#[test]
fn a_restarted_kube_apiserver_serves_the_same_objects_and_compaction_reports_a_revision() {
    let dir = tempfile::tempdir().unwrap();
    let mut plane = start(dir.path(), false);
    let kc = plane.kubeconfig().to_owned();
    let (ok, out) = kubectl(&kc, &["create", "configmap", "kept", "--from-literal=a=b"]);
    assert!(ok, "{out}");
    plane.restart_component(Component::ApiServer).unwrap();
    let (ok, out) = kubectl(
        &kc,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.a}"],
    );
    assert!(ok && out.trim() == "b", "{out}");
    let first = plane.compact_etcd().unwrap();
    let second = plane.compact_etcd().unwrap();
    assert!(
        second > first,
        "each compaction moves past the last: {first} then {second}"
    );
}

#[test]
fn a_detached_control_plane_outlives_its_handle_until_stop_detached() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path(), true).leave_running();
    let pids = pids(dir.path());
    assert_eq!(pids.len(), 5);
    assert!(pids.iter().all(|p| running(*p)), "left running");
    assert_eq!(
        kubewasm_controlplane::stop_detached(&dir.path().join("plane")),
        5
    );
    eventually("every process to be gone", || {
        pids.iter().all(|p| !running(*p))
    });
    assert_eq!(
        kubewasm_controlplane::stop_detached(&dir.path().join("plane")),
        0
    );
}

#[test]
fn a_missing_binary_is_an_error_that_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = ControlPlane::start(Options::new(
        dir.path().join("no-bin"),
        dir.path().join("plane"),
    ))
    .expect_err("nothing to start");
    assert!(e.to_string().contains("cargo xtask cluster-tools"), "{e}");
}
