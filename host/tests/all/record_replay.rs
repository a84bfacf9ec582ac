//! Record and replay through the `kubewasm` binary, as a user runs them: `kubewasm dev
//! --record DIR --record-plugin rediscluster` records the rediscluster example creating its
//! StatefulSet and Service for a RedisCluster applied with kubectl (and not the hello plugin
//! beside it); `kubewasm replay` of that recording on the same build finds nothing to report
//! and exits 0, and on a changed build exits 1 naming the writes that differ with a diff.
//! `kubewasm run --record` records the same way. The recorder is also driven as a layer on a
//! loaded plugin, and replay refuses bad files with a message naming what is wrong.
//!
//! The changed build is `plugins/testing/rediscluster-drift`: the example's own sources with
//! one constant changed (Redis on port 6380), put together by its build.rs. It is replayed as
//! `rediscluster.wasm`, so the only difference is that constant (the host names a plugin's
//! field manager after its file).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use kubewasm_core::recording::{Call, Recording};

use crate::support;
use crate::support::wait::wait;

/// `kubewasm dev` with its stdout in a file, killed when dropped.
struct Dev {
    child: Child,
    dir: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(dir: &Path, plugins: &[PathBuf], args: &[&str]) -> Dev {
        let plugins = support::process::plugin_dir(dir, plugins);
        let out = std::fs::File::create(dir.join("dev.out")).expect("stdout file");
        let err = std::fs::File::create(dir.join("dev.err")).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .arg("dev")
            .arg("--plugins")
            .arg(plugins)
            .args(["--listen", "127.0.0.1:0", "--no-simulate"])
            .arg("--kubeconfig-out")
            .arg(dir.join("kubeconfig"))
            .arg("--compile-cache")
            .arg(support::process::compile_cache())
            .args(args)
            .env_remove("KUBEWASM_POLICY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("kubewasm dev starts");
        let dev = Dev {
            child,
            dir: dir.to_owned(),
        };
        dev.wait_line("the banner", |l| l == "Press Ctrl-C to stop.");
        dev
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("dev.out")).unwrap_or_default()
    }

    fn dump(&self) -> String {
        let err = std::fs::read_to_string(self.dir.join("dev.err")).unwrap_or_default();
        format!("--- stdout ---\n{}--- stderr ---\n{err}", self.stdout())
    }

    fn wait_line(&self, what: &str, matches: impl Fn(&str) -> bool) {
        wait(what, || self.stdout().lines().any(&matches).then_some(()))
            .unwrap_or_else(|| panic!("kubewasm dev never printed {what}\n{}", self.dump()));
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--request-timeout=20s")
            .args(args)
            .env("HOME", &self.dir)
            .output()
            .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl on PATH?): {e}"));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn replay(file: &Path, plugin: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("replay")
        .arg(file)
        .arg("--plugin")
        .arg(plugin)
        .arg("--compile-cache")
        .arg(support::process::compile_cache())
        .args(extra)
        .output()
        .expect("kubewasm replay runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The complete lines of the recording files of `plugin` in `dir`, once they hold a reconcile
/// that created the StatefulSet.
fn recording_with_statefulset(dev: &Dev, dir: &Path, plugin: &str) -> String {
    wait("a recorded create of the StatefulSet", || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{plugin}-")))
            })
            .collect();
        files.sort();
        let text = std::fs::read_to_string(files.first()?).ok()?;
        // Only whole lines: the writer may be in the middle of one.
        let whole = &text[..text.rfind('\n')? + 1];
        let recording = Recording::parse(whole).ok()?;
        let created = recording.reconciles.iter().any(|r| {
            r.calls
                .iter()
                .any(|c| matches!(c, Call::Create { kind, .. } if kind.kind == "StatefulSet"))
        });
        created.then(|| whole.to_owned())
    })
    .unwrap_or_else(|| panic!("nothing recorded a StatefulSet create\n{}", dev.dump()))
}

#[test]
fn a_recording_of_rediscluster_replays_clean_on_its_build_and_diverges_on_a_changed_one() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let records = tmp.path().join("records");
    let dev = Dev::start(
        tmp.path(),
        &[support::example("rediscluster"), support::example("hello")],
        &[
            "--record",
            records.to_str().expect("a UTF-8 path"),
            "--record-plugin",
            "rediscluster",
        ],
    );
    let redis = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rediscluster/redis.yaml");
    dev.kubectl(&["apply", "-f", redis.to_str().expect("a UTF-8 path")]);
    dev.kubectl(&["create", "configmap", "demo", "--from-literal=a=1"]);
    let recorded = recording_with_statefulset(&dev, &records, "rediscluster");
    dev.wait_line("a reconcile of hello", |l| {
        l.starts_with("reconciled hello ")
    });
    drop(dev);

    // --record-plugin: hello reconciled, but only rediscluster was recorded.
    let names: Vec<String> = std::fs::read_dir(&records)
        .expect("the recording folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("rediscluster-")),
        "only rediscluster is recorded: {names:?}"
    );
    let file = tmp.path().join("incident.jsonl");
    std::fs::write(&file, &recorded).expect("the recording copy");
    let recording = Recording::parse(&recorded).expect("a valid recording");
    assert_eq!(recording.header.plugin.name, "rediscluster");
    let first = &recording.reconciles[0];
    assert_eq!(first.key(), "default/cache");
    assert!(
        first.calls.iter().any(|c| c.is_read()) && first.calls.iter().any(|c| c.is_write()),
        "the reads and the writes are recorded: {first:?}"
    );

    // The same build: every reconcile does what was recorded.
    let same = replay(&file, &support::example("rediscluster"), &[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert!(stdout.contains(" 0 diverged"), "{}", text(&same));
    assert!(
        stdout.contains("#1 default/cache (created): same"),
        "{}",
        text(&same)
    );

    // The changed build, under the example's file name.
    let drift_dir = tmp.path().join("drift");
    std::fs::create_dir(&drift_dir).expect("a folder");
    let drift = drift_dir.join("rediscluster.wasm");
    std::fs::copy(support::test_plugin("rediscluster-drift"), &drift).expect("copy the build");
    let changed = replay(&file, &drift, &[]);
    assert_eq!(changed.status.code(), Some(1), "{}", text(&changed));
    let stdout = String::from_utf8_lossy(&changed.stdout);
    for expected in [
        "#1 default/cache (created): DIVERGED",
        "create StatefulSet default/cache: the body differs",
        "- .spec.template.spec.containers[0].ports[0].containerPort: 6379",
        "+ .spec.template.spec.containers[0].ports[0].containerPort: 6380",
        "create Service default/cache: the body differs",
        "- .spec.ports[0].port: 6379",
    ] {
        assert!(
            stdout.contains(expected),
            "no {expected:?} in\n{}",
            text(&changed)
        );
    }
    assert!(
        String::from_utf8_lossy(&changed.stderr).contains("diverged from the recording"),
        "{}",
        text(&changed)
    );

    // --json: the same findings, for machines.
    let json = replay(&file, &drift, &["--json"]);
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    let divergences = &report["reconciles"][0]["divergences"];
    assert!(
        divergences
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["kind"] == "write")),
        "{report:#}"
    );
}

#[test]
fn replay_refuses_a_corrupt_file_or_an_unknown_format_version_with_a_clear_error() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let plugin = support::example("rediscluster");
    let cases = [
        (
            "garbage.jsonl",
            "{\"type\":\"reconcile\",\"id\":",
            "line 1 is not a recording line",
        ),
        ("empty.jsonl", "", "does not start with a recording header"),
        (
            "newer.jsonl",
            "{\"type\":\"header\",\"format\":\"kubewasm-recording\",\"version\":7}\n",
            "it is format version 7, and this build reads version 1",
        ),
    ];
    for (name, content, expected) in cases {
        let file = tmp.path().join(name);
        std::fs::write(&file, content).expect("a file");
        let out = replay(&file, &plugin, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{} is not a recording kubewasm can replay",
                file.display()
            )) && stderr.contains(expected),
            "{name}: {}",
            text(&out)
        );
        assert!(!stderr.contains("panicked"), "{}", text(&out));
    }
    let missing = replay(&tmp.path().join("missing.jsonl"), &plugin, &[]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("failed to read recording"),
        "{}",
        text(&missing)
    );
}

/// One reconcile of `plugin` on `backend` through `recorder`, as the manager runs it.
async fn recorded_reconcile(
    recorder: &kubewasm::record::Recorder,
    plugin: &kubewasm::runtime::Plugin,
    backend: std::sync::Arc<kubewasm::runtime::MemoryBackend>,
    id: u64,
) -> bool {
    use kubewasm::layer::{ReconcileLayer as _, ReconcileScope};
    let request = kubewasm::runtime::Request::new("demo", "a", kubewasm::runtime::Reason::Created);
    let layered = recorder.begin(
        ReconcileScope {
            id,
            plugin,
            request: &request,
        },
        backend,
    );
    let result = plugin.reconcile(layered.backend, request).await;
    let recorded = layered.on_end.is_some();
    if let Some(end) = layered.on_end {
        end(&result);
    }
    recorded
}

#[tokio::test]
async fn the_recorder_writes_each_reconcile_with_its_calls_and_answers_it_by_number() {
    use kubewasm::layer::RecordLookup as _;
    use kubewasm::record::{RecordConfig, Recorder};
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let runtime = support::runtime();
    let hello = support::load(&runtime, &support::example("hello")).await;
    let backend = support::backend();
    backend
        .insert(
            &support::configmaps(),
            serde_json::json!({"metadata": {"namespace": "demo", "name": "a"}}),
        )
        .expect("a ConfigMap");

    let recorder = Recorder::start(RecordConfig::new(tmp.path().join("all"))).expect("starts");
    assert!(recorded_reconcile(&recorder, &hello, backend.clone(), 41).await);
    recorder.flush();
    let files: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("all"))
        .expect("the folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("hello-00000001.jsonl"), "{files:?}");
    let recording = Recording::parse(&std::fs::read_to_string(&files[0]).expect("the file"))
        .expect("a valid recording");
    assert_eq!(recording.header.plugin.name, "hello");
    assert_eq!(recording.header.plugin.version, hello.version());
    let r = &recording.reconciles[0];
    assert_eq!((r.id, r.key().as_str()), (41, "demo/a"));
    let calls: Vec<&str> = r
        .calls
        .iter()
        .map(|c| match c {
            Call::Get { .. } => "get",
            Call::List { .. } => "list",
            Call::Patch { .. } => "patch",
            Call::Event { .. } => "event",
            Call::Log { .. } => "log",
            _ => "other",
        })
        .collect();
    for expected in ["get", "patch", "event", "log"] {
        assert!(calls.contains(&expected), "no {expected} in {calls:?}");
    }
    assert_eq!(r.outcome, kubewasm_core::recording::Outcome::Done);
    // The status page's link: the record by its number, as written.
    let line = recorder.record(41).expect("reconcile 41 is kept");
    assert!(
        line.contains("\"id\":41") && line.contains("\"call\":\"patch\""),
        "{line}"
    );
    assert_eq!(recorder.record(40), None);
    assert_eq!(recorder.dropped(), 0);

    // --record-plugin: another plugin's reconciles run untouched and unrecorded.
    let only = tmp.path().join("only");
    let mut config = RecordConfig::new(&only);
    config.plugins = vec!["rediscluster".into()];
    let recorder = Recorder::start(config).expect("starts");
    assert!(!recorded_reconcile(&recorder, &hello, backend, 42).await);
    recorder.flush();
    assert_eq!(std::fs::read_dir(&only).expect("the folder").count(), 0);
    assert_eq!(recorder.record(42), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubewasm_run_records_too_and_its_recording_replays_clean() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    let server = kubewasm_apiserver::ApiServer::start(kubewasm_apiserver::Config::default())
        .await
        .expect("the embedded API server starts");
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = tmp.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("a kubeconfig");
    let hello = support::example("hello");
    let plugins = support::process::plugin_dir(tmp.path(), std::slice::from_ref(&hello));
    let records = tmp.path().join("records");
    let host = support::process::Host::start(
        "host",
        &plugins,
        &kubeconfig,
        &[
            "--leader-elect=false",
            "--record",
            records.to_str().expect("a UTF-8 path"),
            "--record-max-bytes",
            "1MiB",
        ],
    );
    let cms: Api<ConfigMap> = Api::namespaced(support::cluster::client_for(&server), "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}, "data": {"k": "v"}}))
            .expect("a ConfigMap");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let file = records.join("hello-00000001.jsonl");
    let recorded = wait("a recorded patch of default/x", || {
        let text = std::fs::read_to_string(&file).ok()?;
        let whole = &text[..text.rfind('\n')? + 1];
        let recording = Recording::parse(whole).ok()?;
        recording
            .reconciles
            .iter()
            .any(|r| {
                r.key() == "default/x" && r.calls.iter().any(|c| matches!(c, Call::Patch { .. }))
            })
            .then(|| whole.to_owned())
    })
    .unwrap_or_else(|| {
        panic!(
            "kubewasm run recorded no patch of default/x\n{}",
            host.dump()
        )
    });
    drop(host);
    let copy = tmp.path().join("run.jsonl");
    std::fs::write(&copy, recorded).expect("the copy");
    let out = replay(&copy, &hello, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
