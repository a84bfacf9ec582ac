//! The walk of `examples/README.md`, exactly as printed: `kubewasm dev` started as a process with
//! the four example plugins (its cluster simulating workloads, as by default), and every `kubectl`
//! line of the README's four example sections run by `sh` from the repository root, in order,
//! with the kubeconfig `kubewasm dev` writes. After each command the test waits for what the README
//! says follows it. The list of steps below must name the README's commands one for one, so a
//! change to the README that this test does not follow fails here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::wait::{PATIENCE, wait};

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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

impl Dev {
    /// Starts `kubewasm dev` with the example plugins and waits for its banner (a user pastes
    /// once it says it runs).
    fn start() -> Dev {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("the plugins folder");
        for name in [
            "rediscluster",
            "node-pods",
            "configmap-mirror",
            "scale-schedule",
        ] {
            std::fs::copy(support::example(name), plugins.join(format!("{name}.wasm")))
                .expect("copying an example plugin");
        }
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
        wait("kubewasm dev to print its banner", || {
            (dev.kubeconfig().is_file() && dev.log().contains("Press Ctrl-C to stop."))
                .then_some(())
        })
        .unwrap_or_else(|| panic!("kubewasm dev did not start\n--- log ---\n{}", dev.log()));
        dev
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    /// Runs a README line with `sh` from the repository root, as a user pastes it: KUBECONFIG
    /// exported, and a home of its own (kubectl's discovery cache starts empty). Killed after
    /// [`PATIENCE`].
    fn sh(&self, line: &str) -> Output {
        let mut child = Command::new("sh")
            .args(["-c", line])
            .current_dir(repo_root())
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("sh could not run {line:?}: {e}"));
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{line:?} did not finish within {PATIENCE:?}\n--- kubewasm dev log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("the command's output")
    }

    /// Runs kubectl (not a README line: the test's own look at the cluster).
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--request-timeout=20s")
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl 1.32 on PATH?): {e}"))
    }

    /// Polls `kubectl args` until its stdout satisfies `done`.
    fn eventually(&self, what: &str, args: &[&str], done: impl Fn(&str) -> bool) {
        let mut last = String::new();
        wait(what, || {
            let out = self.kubectl(args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&stdout) {
                return Some(());
            }
            last = format!("{stdout:?} / {}", String::from_utf8_lossy(&out.stderr));
            None
        })
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}: kubectl {args:?} said {last}\n--- kubewasm dev log ---\n{}",
                self.log()
            )
        });
    }

    /// Polls `kubectl get -o jsonpath=...` until it prints `want`.
    fn field_is(&self, what: &str, object: &[&str], jsonpath: &str, want: &str) {
        let mut args = vec!["get"];
        args.extend_from_slice(object);
        let jp = format!("jsonpath={jsonpath}");
        args.extend_from_slice(&["-o", &jp]);
        self.eventually(what, &args, |s| s == want);
    }

    /// Polls until `kubectl get object` reports NotFound.
    fn gone(&self, what: &str, object: &[&str]) {
        let mut args = vec!["get"];
        args.extend_from_slice(object);
        wait(&format!("{what} to be deleted"), || {
            let out = self.kubectl(&args);
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

/// One README line, what it must print (or, when it must fail, say), and what follows it.
struct Step {
    line: &'static str,
    /// The command fails and its stderr contains this.
    fails_with: Option<&'static str>,
    /// Its stdout contains this.
    prints: Option<&'static str>,
    then: fn(&Dev),
}

const fn step(line: &'static str, then: fn(&Dev)) -> Step {
    Step {
        line,
        fails_with: None,
        prints: None,
        then,
    }
}

fn nothing(_: &Dev) {}

fn mirrors(dev: &Dev, want: &str) {
    dev.eventually(
        &format!("mirrors in {want:?}"),
        &[
            "get",
            "configmap",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=kubewasm-configmap-mirror",
            "-o",
            "jsonpath={.items[*].metadata.namespace}",
        ],
        |s| s == want,
    );
}

/// Polls until the node's summary counts `running` Pods Running.
fn summary(dev: &Dev, node: &str, running: u32) {
    let cm = format!("node-pods-{node}");
    dev.eventually(
        &format!("{node}'s summary: {running} Running"),
        &[
            "get",
            "configmap",
            "-n",
            "kube-system",
            &cm,
            "-o",
            "jsonpath={.data}",
        ],
        |s| s.contains(&format!(r#""Running":"{running}""#)),
    );
}

fn steps() -> Vec<Step> {
    vec![
        // 1. RedisCluster
        // kubewasm dev installed the CRD from the plugin's manifest as it loaded: served at once.
        Step {
            prints: Some("redisclusters.cache.example.com"),
            ..step("kubectl get crd redisclusters.cache.example.com", |dev| {
                let log = dev.log();
                assert!(
                    log.lines().any(
                        |l| l == "installed CRD redisclusters.cache.example.com from plugin rediscluster"
                    ),
                    "kubewasm dev did not say it installed the plugin's CRD:\n{log}"
                );
            })
        },
        step("kubectl apply -f examples/rediscluster/redis.yaml", |dev| {
            dev.field_is(
                "a StatefulSet of 3",
                &["statefulset", "cache"],
                "{.spec.replicas}",
                "3",
            );
            dev.field_is(
                "a headless Service",
                &["service", "cache"],
                "{.spec.clusterIP}",
                "None",
            );
            dev.field_is(
                "the owner reference",
                &["statefulset", "cache"],
                "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}",
                "RedisCluster/true",
            );
            dev.field_is(
                "the finalizer",
                &["rediscluster", "cache"],
                "{.metadata.finalizers[0]}",
                "cache.example.com/cleanup",
            );
            // dev mode says what the plugin did, one line per reconcile, without RUST_LOG.
            let log = dev.log();
            assert!(
                log.lines()
                    .any(|l| l.starts_with("reconciled rediscluster default/cache (created) in ")),
                "no reconcile line for the new RedisCluster in the dev output:\n{log}"
            );
        }),
        Step {
            prints: Some("statefulset.apps/cache"),
            ..step(
                "kubectl get redisclusters,statefulsets,services,pods",
                nothing,
            )
        },
        Step {
            prints: Some("roll out complete"),
            ..step("kubectl rollout status statefulset cache", |dev| {
                dev.field_is(
                    "3 Pods",
                    &["statefulset", "cache"],
                    "{.status.readyReplicas}",
                    "3",
                );
            })
        },
        step("kubectl get rediscluster cache", |dev| {
            dev.field_is(
                "the RedisCluster Running with 3 ready",
                &["rediscluster", "cache"],
                "{.status.phase}/{.status.readyReplicas}",
                "Running/3",
            );
        }),
        step("kubectl scale rediscluster cache --replicas=5", |dev| {
            dev.field_is(
                "a StatefulSet of 5",
                &["statefulset", "cache"],
                "{.spec.replicas}",
                "5",
            );
        }),
        step(
            r#"kubectl patch rediscluster cache --type=merge -p '{"spec":{"image":"redis:7.4"}}'"#,
            |dev| {
                dev.field_is(
                    "the new image in the StatefulSet",
                    &["statefulset", "cache"],
                    "{.spec.template.spec.containers[0].image}",
                    "redis:7.4",
                );
            },
        ),
        Step {
            prints: Some("roll out complete"),
            ..step("kubectl rollout status statefulset cache", |dev| {
                dev.field_is(
                    "every Pod on the new image",
                    &["pod", "cache-0"],
                    "{.spec.containers[0].image}",
                    "redis:7.4",
                );
            })
        },
        step("kubectl get rediscluster cache", |dev| {
            dev.field_is(
                "the RedisCluster Running with 5 ready",
                &["rediscluster", "cache"],
                "{.status.phase}/{.status.readyReplicas}",
                "Running/5",
            );
        }),
        step(
            "kubectl get events --field-selector involvedObject.name=cache",
            |dev| {
                dev.eventually(
                    "Events for creation, scaling and the image change",
                    &[
                        "get",
                        "events",
                        "--field-selector",
                        "involvedObject.name=cache",
                        "-o",
                        "jsonpath={.items[*].reason}",
                    ],
                    |s| {
                        s.contains("Created") && s.contains("Scaling") && s.contains("ImageChanged")
                    },
                );
            },
        ),
        Step {
            fails_with: Some("spec.replicas"),
            ..step(
                "kubectl apply -f examples/rediscluster/rejected/too-many-replicas.yaml",
                nothing,
            )
        },
        step("kubectl delete rediscluster cache", |dev| {
            dev.gone("the RedisCluster", &["rediscluster", "cache"]);
            dev.gone("the StatefulSet", &["statefulset", "cache"]);
            dev.gone("the Service", &["service", "cache"]);
            dev.gone("its Pods", &["pod", "cache-0"]);
        }),
        // 2. Pods per Node
        step("kubectl apply -f examples/node-pods/cluster.yaml", nothing),
        Step {
            prints: Some("condition met"),
            ..step(
                "kubectl wait --for=condition=Ready pod/web-1 pod/web-2 pod/batch",
                nothing,
            )
        },
        step(
            "kubectl get configmap -n kube-system -l app.kubernetes.io/managed-by=kubewasm-node-pods",
            |dev| summary(dev, "worker-1", 2),
        ),
        Step {
            prints: Some(r#""Running":"2""#),
            ..step(
                "kubectl get configmap -n kube-system node-pods-worker-1 -o jsonpath='{.data}'; echo",
                nothing,
            )
        },
        step("kubectl delete pod web-2", |dev| {
            summary(dev, "worker-1", 1);
        }),
        step("kubectl delete node worker-2", |dev| {
            dev.gone(
                "worker-2's summary",
                &["configmap", "-n", "kube-system", "node-pods-worker-2"],
            );
        }),
        // 3. ConfigMap mirror
        step(
            "kubectl apply -f examples/configmap-mirror/namespaces.yaml",
            nothing,
        ),
        step(
            "kubectl apply -f examples/configmap-mirror/source.yaml",
            |dev| {
                mirrors(dev, "team-b");
            },
        ),
        Step {
            prints: Some("team-b"),
            ..step(
                "kubectl get configmap -A -l app.kubernetes.io/managed-by=kubewasm-configmap-mirror",
                nothing,
            )
        },
        step(
            "kubectl label namespace team-c env=prod --overwrite",
            |dev| {
                mirrors(dev, "team-b team-c");
            },
        ),
        step(
            r#"kubectl patch configmap shared-settings -n team-a --type=merge -p '{"data":{"log-level":"debug"}}'"#,
            |dev| {
                dev.field_is(
                    "the mirror following its source",
                    &["configmap", "shared-settings", "-n", "team-b"],
                    "{.data.log-level}",
                    "debug",
                );
            },
        ),
        Step {
            prints: Some(r#""log-level":"debug""#),
            ..step(
                "kubectl get configmap shared-settings -n team-b -o jsonpath='{.data}'; echo",
                nothing,
            )
        },
        step("kubectl label namespace team-b env-", |dev| {
            mirrors(dev, "team-c");
        }),
        step(
            "kubectl delete configmap shared-settings -n team-a",
            |dev| {
                mirrors(dev, "");
            },
        ),
        step(
            "kubectl get configmap -A -l app.kubernetes.io/managed-by=kubewasm-configmap-mirror",
            nothing,
        ),
        // 4. ScaleSchedule: its CRD was installed by kubewasm dev, nothing applied it.
        step("kubectl apply -f examples/scale-schedule/web.yaml", |dev| {
            let log = dev.log();
            assert!(
                log.lines().any(|l| l
                    == "installed CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule"),
                "kubewasm dev did not say it installed the plugin's CRD:\n{log}"
            );
        }),
        step(
            "kubectl apply -f examples/scale-schedule/nightly.yaml",
            |dev| {
                dev.field_is(
                    "web scaled to 5",
                    &["deployment", "web"],
                    "{.spec.replicas}",
                    "5",
                );
                dev.field_is(
                    "nightly Scaled, with its finalizer",
                    &["scaleschedule", "nightly"],
                    "{.status.phase}/{.status.observedReplicas}/{.metadata.finalizers[0]}",
                    "Scaled/5/demo.kubewasm.dev/release",
                );
            },
        ),
        Step {
            prints: Some("Scaled"),
            ..step("kubectl get scaleschedules", |dev| {
                let out = dev.kubectl(&["get", "scaleschedules"]);
                let table = String::from_utf8_lossy(&out.stdout);
                assert!(
                    table.lines().next().is_some_and(|h| h.contains("PHASE")),
                    "the CRD's printer column: {table}"
                );
            })
        },
        Step {
            prints: Some("successfully rolled out"),
            ..step("kubectl rollout status deployment web", |dev| {
                dev.field_is(
                    "5 ready Pods",
                    &["deployment", "web"],
                    "{.status.readyReplicas}",
                    "5",
                );
            })
        },
        Step {
            prints: Some("5/5"),
            ..step("kubectl get deployment web", nothing)
        },
        step(
            r#"kubectl patch scaleschedule nightly --type=merge -p '{"spec":{"replicas":3}}'"#,
            |dev| {
                dev.field_is(
                    "web scaled to 3",
                    &["deployment", "web"],
                    "{.spec.replicas}",
                    "3",
                );
            },
        ),
        Step {
            prints: Some("successfully rolled out"),
            ..step("kubectl rollout status deployment web", |dev| {
                dev.field_is(
                    "3 ready Pods",
                    &["deployment", "web"],
                    "{.status.readyReplicas}",
                    "3",
                );
            })
        },
        step("kubectl scale deployment web --replicas=2", |dev| {
            // The plugin saw the Deployment change (the watch maps it to nightly through the
            // index on spec.deployment) and scaled it back, saying so.
            dev.eventually(
                "nightly to scale web back from 2 to 3",
                &[
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.name=nightly",
                    "-o",
                    "jsonpath={.items[*].message}",
                ],
                |s| s.contains("scaled Deployment web from 2 to 3 replicas"),
            );
            dev.field_is(
                "web back at 3",
                &["deployment", "web"],
                "{.spec.replicas}",
                "3",
            );
        }),
        Step {
            prints: Some("3"),
            ..step(
                "kubectl get deployment web -o jsonpath='{.spec.replicas}'; echo",
                nothing,
            )
        },
        Step {
            prints: Some("Scaled"),
            ..step(
                "kubectl get events --field-selector involvedObject.name=nightly",
                nothing,
            )
        },
        Step {
            fails_with: Some("spec.replicas"),
            ..step(
                "kubectl apply -f examples/scale-schedule/rejected/too-many-replicas.yaml",
                nothing,
            )
        },
        step("kubectl delete scaleschedule nightly", |dev| {
            dev.gone("the ScaleSchedule", &["scaleschedule", "nightly"]);
            dev.eventually(
                "a Released Event on web",
                &[
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.name=web,reason=Released",
                    "-o",
                    "jsonpath={.items[*].message}",
                ],
                |s| s.contains("no longer scaled by ScaleSchedule nightly"),
            );
        }),
        Step {
            prints: Some("Released"),
            ..step(
                "kubectl get events --field-selector involvedObject.name=web,reason=Released",
                nothing,
            )
        },
    ]
}

/// The `kubectl` lines of the README's numbered example sections, without their comments.
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("examples/README.md"))
        .expect("examples/README.md");
    let mut lines = Vec::new();
    let (mut in_example, mut in_block) = (false, false);
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_example = title.starts_with(|c: char| c.is_ascii_digit());
        } else if line.starts_with("```") {
            in_block = !in_block;
        } else if in_example && in_block && line.starts_with("kubectl ") {
            // A comment starts at two spaces and a '#'; no command here holds one.
            let command = line.split("  #").next().unwrap_or(line).trim_end();
            lines.push(command.to_string());
        }
    }
    lines
}

#[test]
fn the_steps_are_the_readmes_commands() {
    let readme = readme_lines();
    let steps: Vec<&str> = steps().iter().map(|s| s.line).collect();
    assert_eq!(
        readme, steps,
        "examples/README.md and this test's steps differ: update the steps to follow the README"
    );
}

#[test]
fn the_examples_readme_runs_as_printed_under_kubewasm_dev() {
    let dev = Dev::start();
    for s in steps() {
        let out = dev.sh(s.line);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match s.fails_with {
            Some(why) => assert!(
                !out.status.success() && stderr.contains(why),
                "{:?} should fail saying {why:?}; it said:\n{stdout}\n{stderr}",
                s.line
            ),
            None => assert!(
                out.status.success(),
                "{:?} failed:\n{stdout}\n{stderr}\n--- kubewasm dev log ---\n{}",
                s.line,
                dev.log()
            ),
        }
        if let Some(want) = s.prints {
            assert!(
                stdout.contains(want),
                "{:?} should print {want:?}; it printed:\n{stdout}",
                s.line
            );
        }
        (s.then)(&dev);
    }
}
