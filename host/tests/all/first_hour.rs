//! What a newcomer meets in their first hour: `kubewasm dev` shows what plugins log (and a flag
//! quiets it, `RUST_LOG` still decides when set), no colour codes in a pipe, a banner that
//! suggests only what runs, a reload that undoes a failed change says "recovered", a kind that
//! is not served is warned about once (and retried with backoff), and a failure's reason is said
//! once.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use kubewasm::reload::{PluginWatcher, ReloadEvent, WatchOptions};
use kubewasm_apiserver::{ApiServer, Config};
use parking_lot::Mutex;

use crate::support;
use crate::support::process::{Host, compile_cache, plugin_dir};
use crate::support::wait::wait;

/// A `kubewasm dev` process whose stdout and stderr are both collected.
struct Dev {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Dev {
    /// Starts `kubewasm dev` on copies of `plugins` with `args` and `env` (no `RUST_LOG`,
    /// `NO_COLOR` or policy from the test's environment unless given), and waits for its banner.
    fn start(plugins: &[std::path::PathBuf], args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = plugin_dir(dir.path(), plugins);
        let kubeconfig = dir.path().join("dev.kubeconfig");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubewasm"));
        command
            .arg("dev")
            .arg("--plugins")
            .arg(&folder)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--compile-cache")
            .arg(compile_cache())
            .args(args)
            .env_remove("KUBEWASM_POLICY")
            .env_remove("KUBEWASM_PLUGIN_LOG")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("kubewasm dev starts");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let dev = Self {
            child,
            stdout,
            stderr,
            kubeconfig,
            _dir: dir,
        };
        dev.wait_stdout("Press Ctrl-C");
        dev
    }

    fn wait_stdout(&self, text: &str) {
        wait(&format!("kubewasm dev to print {text:?}"), || {
            self.stdout.lock().contains(text).then_some(())
        })
        .unwrap_or_else(|| panic!("{text:?} never printed:\n{}", self.dump()));
    }

    fn wait_stderr(&self, text: &str) {
        wait(&format!("kubewasm dev to log {text:?}"), || {
            self.stderr.lock().contains(text).then_some(())
        })
        .unwrap_or_else(|| panic!("{text:?} never logged:\n{}", self.dump()));
    }

    fn kubectl(&self, args: &[&str]) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl must be installed for this test");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates ConfigMap default/demo and waits for hello's reconcile line on stdout. A plugin's
    /// log line is written (to stderr) during the reconcile, before that line is printed.
    fn reconcile_demo(&self) {
        self.kubectl(&["create", "configmap", "demo", "--from-literal=a=1"]);
        self.wait_stdout("reconciled hello default/demo");
    }

    /// Stops the process and returns (stdout, stderr), everything it wrote.
    fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The readers end when the pipes close.
        wait("the output pipes to close", || {
            (Arc::strong_count(&self.stdout) == 1 && Arc::strong_count(&self.stderr) == 1)
                .then_some(())
        });
        (self.stdout.lock().clone(), self.stderr.lock().clone())
    }

    fn dump(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.lock(),
            self.stderr.lock()
        )
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` to its end on a thread, into the returned text.
fn collect(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            sink.lock().push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
        drop(sink);
    });
    text
}

#[test]
fn kubewasm_dev_shows_what_plugins_log_at_info_with_no_colour_codes_in_a_pipe() {
    let dev = Dev::start(&[support::example("hello")], &[], &[]);
    dev.reconcile_demo();
    dev.wait_stderr("stamped default/demo");
    let (stdout, stderr) = dev.stop();
    let line = stderr
        .lines()
        .find(|l| l.contains("stamped default/demo"))
        .unwrap_or_default();
    assert!(
        line.contains("INFO") && line.contains("kubewasm::plugin"),
        "{line}"
    );
    // On the reconcile's span: which plugin, version and key it came from.
    assert!(
        line.contains("reconcile{plugin=hello") && line.contains("key=default/demo"),
        "{line}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a pipe: {stderr:?}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "colour codes in a pipe: {stdout:?}"
    );
    // The host's own progress is dev's plain stdout lines, not info log lines too.
    assert!(
        !stderr.contains("loading plugin file"),
        "host info lines in dev: {stderr}"
    );
}

#[test]
fn plugin_log_warn_quiets_what_plugins_log_at_info() {
    let dev = Dev::start(&[support::example("hello")], &["--plugin-log", "warn"], &[]);
    dev.reconcile_demo();
    let (_, stderr) = dev.stop();
    assert!(!stderr.contains("stamped"), "{stderr}");
}

#[test]
fn rust_log_decides_over_plugin_log_and_says_so() {
    let dev = Dev::start(
        &[support::example("hello")],
        &["--plugin-log", "info"],
        &[("RUST_LOG", "warn,kubewasm::plugin=off")],
    );
    dev.reconcile_demo();
    let (_, stderr) = dev.stop();
    assert!(!stderr.contains("stamped"), "{stderr}");
    assert!(
        stderr.contains("--plugin-log info is ignored: RUST_LOG is set"),
        "{stderr}"
    );
}

#[test]
fn the_dev_banner_suggests_commands_only_for_the_plugins_that_run() {
    let dev = Dev::start(&[support::example("hello")], &[], &[]);
    let (banner, _) = dev.stop();
    assert!(
        banner.contains("kubectl create configmap demo --from-literal=a=1"),
        "{banner}"
    );
    assert!(
        !banner.contains("rediscluster"),
        "rediscluster does not run: {banner}"
    );
}

#[tokio::test]
async fn restoring_the_serving_file_after_a_failed_change_says_recovered() {
    let cluster = support::cluster::TestCluster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hello.wasm");
    let good = std::fs::read(support::example("hello")).expect("hello.wasm");
    std::fs::write(&path, &good).expect("write");
    let watcher = PluginWatcher::start(
        cluster.runtime.clone(),
        cluster.manager.clone(),
        dir.path(),
        WatchOptions::default(),
    )
    .await
    .expect("the watcher starts");
    let version = kubewasm::runtime::version_of(&good);
    let mut events = watcher.subscribe();
    support::replace_by_rename(&path, b"not a component");
    let failed = next(&mut events).await;
    assert!(matches!(failed, ReloadEvent::Failed { .. }), "{failed}");
    support::replace_by_rename(&path, &good);
    let recovered = next(&mut events).await;
    assert_eq!(
        recovered.to_string(),
        format!("plugin hello recovered: serving {version}")
    );
    assert_eq!(cluster.manager.status()[0].last_reload_error, None);
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_that_is_not_served_is_warned_about_once_and_retried_with_backoff() {
    // `kubewasm run` (which installs no CRD) with the rediscluster example, whose CRD is not
    // installed: its informer's list fails with 404 at every retry.
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::example("rediscluster")]);
    let host = Host::start("host", &plugins, &kubeconfig, &["--leader-elect=false"]);
    let warning = |m: &str| m.contains("is its CustomResourceDefinition installed?");
    let retried = |m: &str| m.contains("watch still failing; retrying with backoff");
    // Three retries after the first failure, each said at debug; the backoff grows (a reset
    // backoff would warn again at every retry and never say "still failing").
    wait("three retries of the list", || {
        (host.logs_where(retried).len() >= 3).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", host.dump()));
    let warnings = host.logs_where(warning);
    assert_eq!(warnings.len(), 1, "{}", host.dump());
    assert_eq!(warnings[0]["level"], "WARN");
    let stamps: Vec<jiff::Timestamp> = host
        .logs_where(|m| warning(m) || retried(m))
        .iter()
        .map(support::process::timestamp)
        .collect();
    // The waits double from 800 ms (jitter only adds): three retries take at least
    // 0.8 + 1.6 + 3.2 s. A lower bound, so a slow machine cannot fail it.
    let took = stamps[3].duration_since(stamps[0]);
    assert!(
        took >= jiff::SignedDuration::from_millis(5_500),
        "three retries in {took:?}: the retries do not back off\n{}",
        host.dump()
    );
    drop(host);
    server.shutdown().await;
}

/// `plugin check` on a file that is not a plugin: the reason, naming the file, said once.
#[test]
fn plugin_check_says_why_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, "not a component").expect("write");
    let bad_manifest = support::test_plugin("bad-manifest");
    for (file, reason) in [
        (bad.as_path(), "not a WebAssembly file"),
        (bad_manifest.as_path(), "invalid manifest"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .args(["plugin", "check"])
            .arg(file)
            .arg("--compile-cache")
            .arg(compile_cache())
            .env_remove("RUST_LOG")
            .output()
            .expect("kubewasm runs");
        let mut stderr = String::new();
        out.stderr
            .as_slice()
            .read_to_string(&mut stderr)
            .expect("utf-8");
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.matches(reason).count(), 1, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
}

/// The watcher's next event, failing the test after [`support::wait::PATIENCE`].
async fn next(events: &mut tokio::sync::broadcast::Receiver<ReloadEvent>) -> ReloadEvent {
    tokio::time::timeout(support::wait::PATIENCE, events.recv())
        .await
        .expect("a reload event in time")
        .expect("the watcher runs")
}
