//! The RedisCluster walkthrough of `examples/README.md`, for real: `kubewasm dev` started as a
//! process with the `rediscluster` plugin, driven by `kubectl` with the kubeconfig it writes.
//! kubectl creates the CRD and a RedisCluster and sees the StatefulSet, Service and status
//! appear, scales it, and deletes it with cleanup.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::support;
use crate::support::wait::wait;

/// `kubewasm dev`, killed when dropped.
struct Dev {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    /// Runs kubectl against the dev server.
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl 1.32 on PATH?): {e}"))
    }

    /// Runs kubectl and returns its stdout; panics with its stderr when it fails.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n--- kubewasm dev log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `kubectl args` until its stdout satisfies `done`.
    fn eventually(&self, what: &str, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        wait(what, || {
            let out = self.kubectl(args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&stdout) {
                return Some(stdout);
            }
            last = format!("{stdout:?} / {}", String::from_utf8_lossy(&out.stderr));
            None
        })
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}: kubectl {args:?} said {last}\n--- kubewasm dev log ---\n{}",
                self.log()
            )
        })
    }

    /// Polls until `kubectl get args` reports NotFound.
    fn gone(&self, what: &str, args: &[&str]) {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        wait(&format!("{what} to be deleted"), || {
            let out = self.kubectl(&full);
            (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"))
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what} to be deleted\n--- kubewasm dev log ---\n{}",
                self.log()
            )
        });
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rediscluster")
}

/// Starts `kubewasm dev` with only the rediscluster plugin and waits for its kubeconfig.
fn start_dev() -> Dev {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("the plugins folder");
    std::fs::copy(
        support::example("rediscluster"),
        plugins.join("rediscluster.wasm"),
    )
    .expect("copying the plugin");
    let log = std::fs::File::create(dir.path().join("dev.log")).expect("the log file");
    let child = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("dev")
        .arg("--plugins")
        .arg(&plugins)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--kubeconfig-out")
        .arg(dir.path().join("kubeconfig"))
        .arg("--compile-cache")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubewasm-dev-compile-cache"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .expect("kubewasm dev starts");
    let dev = Dev { child, dir };
    wait("kubewasm dev to write its kubeconfig", || {
        dev.kubeconfig().is_file().then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "kubewasm dev wrote no kubeconfig\n--- log ---\n{}",
            dev.log()
        )
    });
    dev
}

#[test]
fn kubectl_creates_scales_and_deletes_a_redis_cluster_under_kubewasm_dev() {
    let dev = start_dev();
    let crd = examples().join("crd.yaml");
    let redis = examples().join("redis.yaml");
    let invalid = examples().join("rejected/too-many-replicas.yaml");

    dev.ok(&["apply", "-f", crd.to_str().unwrap()]);
    dev.eventually(
        "the RedisCluster resource to be served",
        &["get", "redisclusters"],
        |_| true,
    );
    dev.ok(&["apply", "-f", redis.to_str().unwrap()]);

    // The operator creates the StatefulSet and Service and writes the status.
    let jsonpath = |p: &str| format!("jsonpath={p}");
    dev.eventually(
        "the StatefulSet with 3 replicas",
        &[
            "get",
            "statefulset",
            "cache",
            "-o",
            &jsonpath("{.spec.replicas}"),
        ],
        |s| s == "3",
    );
    dev.eventually(
        "the headless Service",
        &[
            "get",
            "service",
            "cache",
            "-o",
            &jsonpath("{.spec.clusterIP}"),
        ],
        |s| s == "None",
    );
    dev.eventually(
        "status Pending with the finalizer",
        &[
            "get",
            "rediscluster",
            "cache",
            "-o",
            &jsonpath("{.status.phase}/{.status.readyReplicas}/{.metadata.finalizers[0]}"),
        ],
        |s| s == "Pending/0/cache.example.com/cleanup",
    );
    // dev mode says what the plugin did, one line per reconcile, without RUST_LOG.
    let log = dev.log();
    assert!(
        log.lines()
            .any(|l| l.starts_with("reconciled rediscluster default/cache (created) in ")),
        "no reconcile line for the new RedisCluster in the dev output:\n{log}"
    );
    let owner = dev.ok(&[
        "get",
        "statefulset",
        "cache",
        "-o",
        &jsonpath("{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}"),
    ]);
    assert_eq!(owner, "RedisCluster/true");

    // Scale through the scale subresource; then play the StatefulSet controller.
    dev.ok(&["scale", "rediscluster", "cache", "--replicas=5"]);
    dev.eventually(
        "the StatefulSet scaled to 5",
        &[
            "get",
            "statefulset",
            "cache",
            "-o",
            &jsonpath("{.spec.replicas}"),
        ],
        |s| s == "5",
    );
    dev.ok(&[
        "patch",
        "statefulset",
        "cache",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":5,"readyReplicas":5}}"#,
    ]);
    dev.eventually(
        "status Running with 5 ready",
        &[
            "get",
            "rediscluster",
            "cache",
            "-o",
            &jsonpath("{.status.phase}/{.status.readyReplicas}"),
        ],
        |s| s == "Running/5",
    );
    dev.ok(&[
        "patch",
        "rediscluster",
        "cache",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"redis:7.4"}}"#,
    ]);
    dev.eventually(
        "the new image in the StatefulSet",
        &[
            "get",
            "statefulset",
            "cache",
            "-o",
            &jsonpath("{.spec.template.spec.containers[0].image}"),
        ],
        |s| s == "redis:7.4",
    );
    dev.eventually(
        "Events for creation, scaling and the image change",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=cache",
            "-o",
            &jsonpath("{.items[*].reason}"),
        ],
        |s| s.contains("Created") && s.contains("Scaling") && s.contains("ImageChanged"),
    );

    // The schema rejects replicas outside 1..20.
    let rejected = dev.kubectl(&["apply", "-f", invalid.to_str().unwrap()]);
    assert!(!rejected.status.success(), "replicas 50 was accepted");
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("spec.replicas"), "{stderr}");

    // Deletion waits for the finalizer, which deletes the StatefulSet and Service.
    dev.ok(&[
        "delete",
        "rediscluster",
        "cache",
        "--wait=true",
        "--timeout=60s",
    ]);
    dev.gone("the RedisCluster", &["rediscluster", "cache"]);
    dev.gone("the StatefulSet", &["statefulset", "cache"]);
    dev.gone("the Service", &["service", "cache"]);
    dev.eventually(
        "the CleanedUp Event",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=cache",
            "-o",
            &jsonpath("{.items[*].reason}"),
        ],
        |s| s.contains("CleanedUp"),
    );
}
