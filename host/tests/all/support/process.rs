//! `kubewasm run` as a process against an embedded API server started by the test: its JSON
//! logs collected line by line, its probe/metrics address read from them, HTTP GETs on it.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use super::wait::wait;

/// One `kubewasm run` process.
pub struct Host {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<Value>>>,
    pub name: String,
}

/// Leader election flags with a short lease (3 s, renew deadline 2 s, retry every 0.3 s) on
/// Lease `default/<lease>`, so that failover is quick against the embedded API server.
pub fn quick_election(lease: &str) -> [&str; 10] {
    [
        "--leader-election-namespace",
        "default",
        "--leader-election-id",
        lease,
        "--lease-duration",
        "3s",
        "--renew-deadline",
        "2s",
        "--retry-period",
        "0.3s",
    ]
}

/// A folder holding copies of the named plugins (`example` or `test` builds).
pub fn plugin_dir(dir: &Path, plugins: &[PathBuf]) -> PathBuf {
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).expect("plugin dir");
    for p in plugins {
        std::fs::copy(p, out.join(p.file_name().expect("file name"))).expect("copy plugin");
    }
    out
}

/// The compile cache shared by the tests (warm after the first run).
pub fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubewasm-compile-cache")
}

/// Starts `kubewasm dev` on `plugins` with `args` after the common ones (kubeconfig written to
/// `dir/dev.kubeconfig`, the shared compile cache, no policy from the environment) and reads its
/// start-up banner up to "Press Ctrl-C"; returns the running process and the banner.
pub fn start_dev(dir: &Path, plugins: &Path, args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut dev = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("dev")
        .arg("--plugins")
        .arg(plugins)
        .arg("--kubeconfig-out")
        .arg(dir.join("dev.kubeconfig"))
        .args(args)
        .arg("--compile-cache")
        .arg(compile_cache())
        .env_remove("KUBEWASM_POLICY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubewasm dev starts");
    let stdout = dev.stdout.take().expect("stdout");
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    (dev, banner)
}

/// [`start_dev`], then stops the process; returns the banner.
pub fn dev_banner(dir: &Path, plugins: &Path, args: &[&std::ffi::OsStr]) -> String {
    let (mut dev, banner) = start_dev(dir, plugins, args);
    let _ = dev.kill();
    let _ = dev.wait();
    banner
}

impl Host {
    /// Starts `kubewasm run` with `args` after the common ones (plugins, kubeconfig, local
    /// ephemeral probe/metrics port, JSON logs with reconcile debug lines).
    pub fn start(name: &str, plugins: &Path, kubeconfig: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--plugins")
            .arg(plugins)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--compile-cache")
            .arg(compile_cache())
            .args([
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .env("RUST_LOG", "info,kubewasm=debug,kube=warn")
            .env_remove("POD_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubewasm run starts");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let tag = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => sink.lock().push(v),
                    Err(_) => eprintln!("[{tag}] {line}"),
                }
            }
        });
        Self {
            child,
            lines,
            name: name.to_owned(),
        }
    }

    /// Log lines whose message is `message`.
    pub fn logs(&self, message: &str) -> Vec<Value> {
        self.logs_where(|m| m == message)
    }

    /// Log lines whose message `matches`.
    pub fn logs_where(&self, matches: impl Fn(&str) -> bool) -> Vec<Value> {
        self.lines
            .lock()
            .iter()
            .filter(|l| l["fields"]["message"].as_str().is_some_and(&matches))
            .cloned()
            .collect()
    }

    /// Every log message, for failure output.
    pub fn dump(&self) -> String {
        self.lines
            .lock()
            .iter()
            .map(|l| format!("[{}] {}\n", self.name, l))
            .collect()
    }

    /// Waits for the first log line with `message` and returns it.
    pub fn wait_log(&self, message: &str) -> Value {
        self.wait_log_where(&format!("{message:?}"), |m| m == message)
    }

    /// Waits for the first log line whose message `matches` (described as `what`) and returns
    /// it.
    pub fn wait_log_where(&self, what: &str, matches: impl Fn(&str) -> bool) -> Value {
        wait(&format!("{} to log {what}", self.name), || {
            self.logs_where(&matches).into_iter().next()
        })
        .unwrap_or_else(|| panic!("{}", self.dump()))
    }

    /// The address serving /healthz, /readyz and /metrics (the tests give both the same
    /// address, 127.0.0.1:0, so one server answers all three).
    pub fn addr(&self) -> String {
        let line = self.wait_log("serving HTTP endpoints");
        assert_eq!(
            line["fields"]["paths"].as_str(),
            Some("/healthz /readyz /metrics")
        );
        line["fields"]["address"]
            .as_str()
            .expect("address field")
            .to_owned()
    }

    /// The leader-election identity.
    pub fn identity(&self) -> String {
        self.wait_log("waiting to become the leader")["fields"]["identity"]
            .as_str()
            .expect("identity field")
            .to_owned()
    }

    /// `(status, body)` of GET `path`, or `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&self.addr(), path)
    }

    /// The parsed /metrics.
    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Sends `signal` (e.g. "TERM", "KILL").
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{signal} {}", self.name);
    }

    /// Waits (at most [`PATIENCE`](super::wait::PATIENCE)) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        let exited = wait(&format!("{} to exit", self.name), || {
            child.try_wait().expect("try_wait")
        });
        exited.unwrap_or_else(|| panic!("{} did not exit\n{}", self.name, self.dump()))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the host was doing (its last 200 log lines).
        if std::thread::panicking() {
            let lines = self.lines.lock();
            eprintln!("--- the last log lines of {} ---", self.name);
            for line in &lines[lines.len().saturating_sub(200)..] {
                eprintln!("[{}] {line}", self.name);
            }
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A parsed Prometheus/OpenMetrics text exposition: samples by name and labels.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `(name, sorted labels) -> value`.
    pub samples: HashMap<(String, Vec<(String, String)>), f64>,
    /// `name -> type` from the `# TYPE` lines.
    pub types: HashMap<String, String>,
}

impl Metrics {
    /// Parses the text format strictly enough that a malformed line fails the test.
    pub fn parse(text: &str) -> Self {
        let mut m = Self::default();
        assert!(
            text.trim_end().ends_with("# EOF"),
            "OpenMetrics text ends with # EOF"
        );
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
                m.types.insert(name.to_owned(), ty.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), Vec::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                    let mut labels = Vec::new();
                    let mut rest = body;
                    while !rest.is_empty() {
                        let (key, after) =
                            rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                        let end = after.find('"').unwrap_or_else(|| panic!("{line}"));
                        labels.push((key.to_owned(), after[..end].to_owned()));
                        rest = after[end + 1..].trim_start_matches(',');
                    }
                    labels.sort();
                    (name.to_owned(), labels)
                }
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line}"
            );
            m.samples.insert((name, labels), value);
        }
        m
    }

    /// The value of `name` with exactly `labels`, if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        self.samples.get(&(name.to_owned(), l)).copied()
    }

    /// Sum of `name` over every label set containing `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Times at which `host` stamped a ConfigMap (the `hello` plugin logs each write as
/// `stamped <ns>/<name>: ...`).
pub fn stamps(host: &Host) -> Vec<jiff::Timestamp> {
    host.logs_where(|m| m.starts_with("stamped "))
        .iter()
        .map(timestamp)
        .collect()
}

/// The timestamp of a JSON log line.
pub fn timestamp(line: &Value) -> jiff::Timestamp {
    line["timestamp"]
        .as_str()
        .expect("timestamp")
        .parse()
        .expect("RFC 3339 timestamp")
}
