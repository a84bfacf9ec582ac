//! Fault suite, plugin faults: each fault runs in a faulty plugin inside a running host (the
//! embedded API server, the real manager, informers and queues) while a healthy plugin
//! reconciles its own workload. For every fault: the host survives, the faulty key is retried
//! with backoff (not in a hot loop), metrics and logs name the plugin and the cause, and the
//! healthy plugin completes all its work without an error. The healthy plugin's reconcile rate
//! alone and beside the fault is measured and reported (not asserted: machines are shared).
//!
//! Plugins: `plugins/testing/faulty` (the ConfigMap's name in namespace `faulty` picks the fault)
//! and `plugins/testing/steady` (bumps a counter annotation to a target in namespace `healthy`).
//! Each scenario loads them under its own names (`faulty-<scenario>`, `steady-<scenario>`), so
//! logs and metrics of scenarios never mix.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubewasm::runtime::{Runtime, RuntimeConfig};
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::json;

use crate::support;
use crate::support::cluster::{TestCluster, client_for};
use crate::support::eventually;
use crate::support::logs::Logs;

/// The reconcile deadline of these hosts: short, so deadline faults cost little time.
const DEADLINE: Duration = Duration::from_millis(500);
/// The queue's first retry delay (the default: 5 ms, doubling).
const BASE_DELAY: Duration = Duration::from_millis(5);
/// How long the faulty key's attempts are counted.
const WINDOW: Duration = Duration::from_secs(5);
/// The healthy workload of one measurement: ConfigMaps, each bumped this many times.
const BATCH: usize = 16;
const TARGET: u64 = 20;

/// Logged events that contain every needle.
fn logged(needles: &[&str]) -> Vec<String> {
    Logs::capture().events_with(needles)
}

// ---------------------------------------------------------------------------------------------
// The host under test.

async fn start_cluster() -> TestCluster {
    let _ = Logs::capture();
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = client_for(&server);
    let runtime = Runtime::new(RuntimeConfig {
        deadline: DEADLINE,
        memory_cap: 64 << 20,
        pool_slots: 16,
        ..support::config()
    })
    .expect("the runtime starts");
    let manager = Manager::new(client.clone(), ManagerConfig::default());
    let cluster = TestCluster::from_parts(server, client, runtime, manager);
    for ns in ["healthy", "faulty"] {
        cluster
            .create(
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
    }
    cluster
}

/// Copies test plugin `plugin` into `dir` as `<name>.wasm` (the plugin is named after the file).
fn plugin_as(dir: &Path, plugin: &str, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(support::test_plugin(plugin), &path)
        .unwrap_or_else(|e| panic!("copying {plugin} to {}: {e}", path.display()));
    path
}

fn configmaps(cluster: &TestCluster, namespace: &str) -> Api<ConfigMap> {
    Api::namespaced(cluster.client.clone(), namespace)
}

async fn create_configmap(cluster: &TestCluster, ns: &str, name: &str, data: &[(&str, String)]) {
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    configmaps(cluster, ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("creating {ns}/{name}: {e}"));
}

/// Counts of `controller_runtime_reconcile_total` and `..._errors_total` for `controller` in
/// the manager's metrics.
fn reconcile_counts(cluster: &TestCluster, controller: &str) -> (f64, f64) {
    let text = metrics_text(cluster);
    let value = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let total = text
        .lines()
        .filter(|l| {
            l.starts_with("controller_runtime_reconcile_total{")
                && l.contains(&format!("controller=\"{controller}\""))
        })
        .map(value)
        .sum();
    let errors = text
        .lines()
        .filter(|l| {
            l.starts_with("controller_runtime_reconcile_errors_total{")
                && l.contains(&format!("controller=\"{controller}\""))
        })
        .map(value)
        .sum();
    (total, errors)
}

fn metrics_text(cluster: &TestCluster) -> String {
    cluster.manager.render_metrics()
}

/// Creates `BATCH` ConfigMaps named `<prefix>-<i>` in `healthy`, each with target `TARGET`, and
/// waits until the healthy plugin has bumped every one to its target. Returns the healthy
/// plugin's reconciles per second over the batch.
async fn healthy_batch(cluster: &TestCluster, steady: &str, prefix: &str) -> f64 {
    let (before, _) = reconcile_counts(cluster, steady);
    let started = Instant::now();
    for i in 0..BATCH {
        create_configmap(
            cluster,
            "healthy",
            &format!("{prefix}-{i}"),
            &[("target", TARGET.to_string())],
        )
        .await;
    }
    let api = configmaps(cluster, "healthy");
    eventually(
        &format!("the healthy plugin brings batch {prefix} to {TARGET}"),
        || {
            let api = api.clone();
            async move {
                let list = api.list(&ListParams::default()).await.ok()?;
                let done = list
                    .items
                    .iter()
                    .filter(|c| {
                        c.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(&format!("{prefix}-")))
                    })
                    .filter(|c| {
                        c.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("steady.kubewasm.dev/count"))
                            .is_some_and(|v| *v == TARGET.to_string())
                    })
                    .count();
                (done == BATCH).then_some(())
            }
        },
    )
    .await;
    let took = started.elapsed();
    let (after, _) = reconcile_counts(cluster, steady);
    // Reconciles still running when the last patch landed are counted by then or soon after;
    // the work itself is fixed: TARGET writes per ConfigMap.
    let work = (after - before).max((BATCH as u64 * TARGET) as f64);
    work / took.as_secs_f64()
}

/// The most attempts a key failing from its first attempt can make in `window` when every retry
/// waits at least the queue's backoff (`BASE_DELAY`, doubling): attempt k starts at least
/// `BASE_DELAY * (2^(k-1) - 1)` after the first.
fn backoff_bound(window: Duration) -> usize {
    let mut attempts = 1;
    let mut waited = Duration::ZERO;
    let mut delay = BASE_DELAY;
    while waited + delay <= window {
        waited += delay;
        delay *= 2;
        attempts += 1;
    }
    attempts
}

/// What one fault scenario expects of metrics and logs.
struct Fault {
    /// The ConfigMap name in namespace `faulty` (picks the fault).
    scenario: &'static str,
    /// What was injected, for the summary row.
    injected: &'static str,
    /// Data of the faulty ConfigMap.
    data: &'static [(&'static str, &'static str)],
    /// A Prometheus counter of the manager that must count the fault for the plugin, if any.
    counter: Option<&'static str>,
    /// Text the logged failure must contain (the cause).
    cause: &'static str,
}

/// What a scenario measured, for extra checks and its row.
struct Measured {
    cluster: TestCluster,
    faulty: String,
    attempts: usize,
    bound: usize,
    alone: f64,
    beside: f64,
    failure_lines: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Measured {
    fn outcome(&self, extra: &str) -> String {
        format!(
            "host up; {} attempts in {}s (backoff allows <= {}){extra}; healthy rate {:.0}/s alone (mean of before and after), {:.0}/s beside: ratio {:.2}",
            self.attempts,
            WINDOW.as_secs(),
            self.bound,
            self.alone,
            self.beside,
            self.beside / self.alone
        )
    }
}

/// Runs `fault` beside the healthy plugin and checks what every fault must satisfy.
async fn run_fault(fault: &Fault) -> Measured {
    let cluster = start_cluster().await;
    let dir = tempfile::tempdir().expect("a plugins folder");
    let steady = format!("steady-{}", fault.scenario);
    let faulty = format!("faulty-{}", fault.scenario);
    cluster
        .start_plugin(&plugin_as(dir.path(), "steady", &steady))
        .await;
    healthy_batch(&cluster, &steady, "warmup").await;
    let alone = healthy_batch(&cluster, &steady, "alone").await;

    // The fault, on its own object.
    let data: Vec<(&str, String)> = fault
        .data
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    create_configmap(&cluster, "faulty", fault.scenario, &data).await;
    cluster
        .start_plugin(&plugin_as(dir.path(), "faulty", &faulty))
        .await;
    let key = format!("faulty/{}", fault.scenario);
    let first = eventually("the fault's first attempt", || {
        let (faulty, key) = (faulty.clone(), key.clone());
        let cluster = &cluster;
        async move { cluster.reconciles.attempts(&faulty, &key).first().copied() }
    })
    .await;
    let beside = healthy_batch(&cluster, &steady, "beside").await;
    let rest = WINDOW.saturating_sub(first.elapsed());
    tokio::time::sleep(rest).await;
    let in_window = cluster
        .reconciles
        .attempts(&faulty, &key)
        .into_iter()
        .filter(|t| t.duration_since(first) <= WINDOW)
        .count();
    let bound = backoff_bound(WINDOW);

    // The host survived and still serves: both plugins run, a new healthy object converges.
    let names: Vec<String> = cluster
        .manager
        .status()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(
        names.contains(&steady) && names.contains(&faulty),
        "{names:?}"
    );
    // The faulty plugin's metrics outlive it; the healthy rate is measured alone once more, so the
    // ratio compares with the mean of before and after (the machine's load drifts).
    assert!(cluster.manager.stop(&faulty).await);
    let alone_after = healthy_batch(&cluster, &steady, "after").await;
    let alone = (alone + alone_after) / 2.0;
    // The faulty key was retried, with backoff.
    assert!(
        in_window >= 2,
        "{faulty}: the failing key was retried ({in_window} attempts in {WINDOW:?})"
    );
    assert!(
        in_window <= bound,
        "{faulty}: {in_window} attempts in {WINDOW:?} is more than backoff allows ({bound})"
    );
    // The healthy plugin never failed.
    let (total, errors) = reconcile_counts(&cluster, &steady);
    assert!(total >= (4 * BATCH as u64 * TARGET) as f64, "{total}");
    assert_eq!(errors, 0.0, "{steady} had reconcile errors");
    // Metrics name the plugin and count the fault.
    let text = metrics_text(&cluster);
    let errors_line =
        format!("controller_runtime_reconcile_errors_total{{controller=\"{faulty}\"}}");
    assert!(
        text.contains(&errors_line),
        "{errors_line} missing from\n{text}"
    );
    if let Some(counter) = fault.counter {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{counter}{{plugin=\"{faulty}\"")))
            .unwrap_or_else(|| panic!("{counter} for {faulty} missing from\n{text}"));
        assert!(!line.ends_with(" 0"), "{line}");
    }
    // Logs name the plugin and the cause.
    let failure_lines = logged(&[
        "reconcile failed; retrying with backoff",
        &format!("plugin {faulty} "),
    ]);
    assert!(
        failure_lines
            .iter()
            .all(|l| l.contains("error=[fault: plugin] plugin ")),
        "every logged failure of {faulty} says it was the plugin's fault: {failure_lines:?}"
    );
    assert!(
        failure_lines.iter().any(|l| l.contains(fault.cause)),
        "no logged failure of {faulty} says {:?}: {:?}",
        fault.cause,
        failure_lines
            .iter()
            .map(|l| l.chars().take(400).collect::<String>())
            .collect::<Vec<_>>()
    );
    Measured {
        cluster,
        faulty,
        attempts: in_window,
        bound,
        alone,
        beside,
        failure_lines,
        _dir: dir,
    }
}

fn record(fault: &Fault, m: &Measured, extra: &str) {
    support::fault_report::record(
        "plugin faults",
        fault.scenario,
        fault.injected,
        &m.outcome(extra),
        Some(0),
    );
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_is_retried_with_backoff_while_others_keep_reconciling() {
    let fault = Fault {
        scenario: "panic",
        injected: "guest panic on every reconcile",
        data: &[],
        counter: Some("kubewasm_plugin_traps_total"),
        cause: "faulty plugin panicked on purpose",
    };
    let m = run_fault(&fault).await;
    record(&fault, &m, "; trap counted, panic message logged");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline_and_retried_with_backoff() {
    let fault = Fault {
        scenario: "spin",
        injected: "infinite loop in the guest",
        data: &[],
        counter: Some("kubewasm_plugin_deadline_exceeded_total"),
        cause: "exceeded its deadline",
    };
    let m = run_fault(&fault).await;
    // Each attempt ran to the deadline, then its worker rested as long before the next key.
    let starts = m.cluster.reconciles.attempts(&m.faulty, "faulty/spin");
    for pair in starts.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= 2 * DEADLINE, "attempts {gap:?} apart: {starts:?}");
    }
    record(
        &fault,
        &m,
        "; deadline counted; worker rests as long as each attempt ran",
    );
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_stopped_at_the_memory_cap_and_retried_with_backoff() {
    let fault = Fault {
        scenario: "memory-bomb",
        injected: "allocates 1 MiB at a time forever",
        data: &[],
        counter: Some("kubewasm_plugin_memory_cap_total"),
        cause: "exceeded its memory cap",
    };
    let m = run_fault(&fault).await;
    record(&fault, &m, "; memory cap counted");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_traps_with_a_stack_overflow_and_is_retried_with_backoff() {
    let fault = Fault {
        scenario: "recursion",
        injected: "unbounded recursion",
        data: &[],
        counter: Some("kubewasm_plugin_traps_total"),
        cause: "stack overflow",
    };
    let m = run_fault(&fault).await;
    record(&fault, &m, "; trap counted as stack overflow");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_always_errors_is_retried_at_a_rate_its_backoff_caps() {
    let fault = Fault {
        scenario: "always-error",
        injected: "returns an error on every reconcile",
        data: &[],
        counter: None,
        cause: "fails every reconcile on purpose",
    };
    let m = run_fault(&fault).await;
    record(&fault, &m, "; error text logged");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_that_outlives_its_deadline_is_cut_at_the_deadline() {
    let fault = Fault {
        scenario: "slow",
        injected: "sleeps 2x the deadline (1 s) in a host call",
        data: &[("sleep_ms", "1000")],
        counter: Some("kubewasm_plugin_deadline_exceeded_total"),
        cause: "exceeded its deadline",
    };
    let m = run_fault(&fault).await;
    record(&fault, &m, "; deadline counted");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_message_is_cut_before_it_reaches_the_log() {
    let fault = Fault {
        scenario: "huge-return",
        injected: "returns an 8 MiB error message",
        data: &[("bytes", "8388608")],
        counter: None,
        cause: "cut by the host",
    };
    let m = run_fault(&fault).await;
    let longest = m.failure_lines.iter().map(String::len).max().unwrap_or(0);
    assert!(
        longest < 8 << 10,
        "a logged failure of {} is {longest} bytes long",
        m.faulty
    );
    assert!(
        m.failure_lines
            .iter()
            .any(|l| l.contains("more bytes of the plugin's error message cut by the host")),
        "the log says the message was cut"
    );
    record(
        &fault,
        &m,
        &format!("; logged error cut to {longest} bytes"),
    );
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_far_over_the_api_server_limit_fails_fast_as_invalid() {
    let fault = Fault {
        scenario: "huge-write",
        injected: "creates a ConfigMap with 4 MiB of data (limit 3 MiB)",
        data: &[("bytes", "4194304")],
        counter: None,
        cause: "over the API server's limit of 3145728 bytes; nothing was sent",
    };
    let m = run_fault(&fault).await;
    let creates = m
        .cluster
        .server
        .faults()
        .requests()
        .iter()
        .filter(|r| r.verb == "create" && r.resource.as_deref() == Some("configmaps"))
        .filter(|r| r.namespace.as_deref() == Some("faulty"))
        .count();
    // One create: the test's own faulty ConfigMap. The plugin's oversized body never left the host.
    assert_eq!(
        creates, 1,
        "the oversized body never reached the API server"
    );
    let child = configmaps(&m.cluster, "faulty")
        .get_opt("huge-write-child")
        .await
        .expect("get");
    assert!(child.is_none());
    record(&fault, &m, "; `invalid` naming the size, nothing sent");
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_loop_of_host_calls_is_stopped_at_the_deadline_and_its_log_flood_is_capped() {
    let fault = Fault {
        scenario: "host-call-loop",
        injected: "cache get + log call in a tight loop forever",
        data: &[],
        counter: Some("kubewasm_plugin_deadline_exceeded_total"),
        cause: "exceeded its deadline",
    };
    let m = run_fault(&fault).await;
    let all_attempts = m
        .cluster
        .reconciles
        .attempts(&m.faulty, "faulty/host-call-loop")
        .len();
    let lines = logged(&["host-call-loop: ", &m.faulty]).len();
    let floods = logged(&["plugin log flood: dropped", &m.faulty]);
    assert!(
        lines <= all_attempts * 1000,
        "{lines} log lines for {all_attempts} reconciles"
    );
    assert!(!floods.is_empty(), "one line says how much was dropped");
    record(
        &fault,
        &m,
        &format!(
            "; deadline counted; log capped: {lines} lines kept over {all_attempts} reconciles"
        ),
    );
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_print_loop_fills_its_pipe_and_its_flood_is_capped_in_the_log() {
    let fault = Fault {
        scenario: "print-loop",
        injected: "println! in a loop forever (fills the 1 MiB stdout pipe)",
        data: &[],
        counter: Some("kubewasm_plugin_traps_total"),
        cause: "failed printing to stdout",
    };
    let m = run_fault(&fault).await;
    let all_attempts = m
        .cluster
        .reconciles
        .attempts(&m.faulty, "faulty/print-loop")
        .len();
    let lines = logged(&["print-loop: line ", &m.faulty]).len();
    let floods = logged(&["plugin stdout flood: dropped", &m.faulty]);
    assert!(
        lines <= all_attempts * 1000,
        "{lines} stdout lines for {all_attempts} reconciles"
    );
    assert!(!floods.is_empty(), "one line says how much was dropped");
    record(
        &fault,
        &m,
        &format!(
            "; trap counted; stdout capped: {lines} lines kept over {all_attempts} reconciles"
        ),
    );
    m.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_once_in_one_plugin_leaves_the_healthy_plugin_unharmed() {
    let cluster = start_cluster().await;
    let dir = tempfile::tempdir().expect("a plugins folder");
    let (steady, faulty) = ("steady-all", "faulty-all");
    cluster
        .start_plugin(&plugin_as(dir.path(), "steady", steady))
        .await;
    healthy_batch(&cluster, steady, "warmup").await;
    let alone = healthy_batch(&cluster, steady, "alone").await;
    let faults: [(&str, &[(&str, &str)]); 9] = [
        ("panic", &[]),
        ("spin", &[]),
        ("memory-bomb", &[]),
        ("recursion", &[]),
        ("huge-return", &[]),
        ("huge-write", &[("bytes", "4194304")]),
        ("host-call-loop", &[]),
        ("always-error", &[]),
        ("slow", &[("sleep_ms", "1000")]),
    ];
    for (name, data) in faults {
        let data: Vec<(&str, String)> = data.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        create_configmap(&cluster, "faulty", name, &data).await;
    }
    cluster
        .start_plugin(&plugin_as(dir.path(), "faulty", faulty))
        .await;
    let first = eventually("the first fault's first attempt", || async {
        faults
            .iter()
            .filter_map(|(name, _)| {
                let key = format!("faulty/{name}");
                cluster.reconciles.attempts(faulty, &key).first().copied()
            })
            .min()
    })
    .await;
    let beside = healthy_batch(&cluster, steady, "beside").await;
    tokio::time::sleep(WINDOW.saturating_sub(first.elapsed())).await;
    let bound = backoff_bound(WINDOW);
    // Retries come before keys from the initial list (as in controller-runtime's priority queue),
    // so the slowest faults may get their first turn only once the others' backoff has grown.
    eventually("every fault was attempted", || async {
        faults
            .iter()
            .all(|(name, _)| {
                !cluster
                    .reconciles
                    .attempts(faulty, &format!("faulty/{name}"))
                    .is_empty()
            })
            .then_some(())
    })
    .await;
    let mut per_key = Vec::new();
    for (name, _) in faults {
        let key = format!("faulty/{name}");
        let in_window = cluster
            .reconciles
            .attempts(faulty, &key)
            .into_iter()
            .filter(|t| t.duration_since(first) <= WINDOW)
            .count();
        assert!(
            in_window <= bound,
            "{key}: {in_window} attempts in {WINDOW:?}"
        );
        per_key.push(format!("{name} {in_window}"));
    }
    // After an attempt that ran to its deadline, the plugin's only worker rested as long before
    // taking the next key (any key): the plugin used at most half of it.
    let mut runs: Vec<(String, Instant)> = faults
        .iter()
        .flat_map(|(name, _)| {
            let key = format!("faulty/{name}");
            let attempts = cluster.reconciles.attempts(faulty, &key);
            attempts.into_iter().map(move |t| (key.clone(), t))
        })
        .collect();
    runs.sort_by_key(|(_, t)| *t);
    let to_deadline = ["faulty/spin", "faulty/host-call-loop", "faulty/slow"];
    let mut rested = 0;
    for pair in runs.windows(2) {
        if to_deadline.contains(&pair[0].0.as_str()) {
            let gap = pair[1].1.duration_since(pair[0].1);
            assert!(
                gap >= 2 * DEADLINE,
                "{} ran to its deadline, yet {} started {gap:?} after it",
                pair[0].0,
                pair[1].0
            );
            rested += 1;
        }
    }
    assert!(rested >= 1, "{runs:?}");
    let status = cluster.manager.status();
    assert_eq!(status.len(), 2, "{status:?}");
    let text = metrics_text(&cluster);
    for counter in [
        "kubewasm_plugin_traps_total",
        "kubewasm_plugin_deadline_exceeded_total",
        "kubewasm_plugin_memory_cap_total",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{counter}{{plugin=\"{faulty}\""))),
            "{counter} for {faulty} missing from\n{text}"
        );
    }
    assert!(cluster.manager.stop(faulty).await);
    let alone_after = healthy_batch(&cluster, steady, "after").await;
    let alone = (alone + alone_after) / 2.0;
    let (_, errors) = reconcile_counts(&cluster, steady);
    assert_eq!(errors, 0.0, "{steady} had reconcile errors");
    support::fault_report::record(
        "plugin faults",
        "all at once",
        "the 9 faults above on 9 keys of one plugin (concurrency 1)",
        &format!(
            "host up; attempts in {}s per key (backoff allows <= {bound}): {}; healthy rate {alone:.0}/s alone (mean of before and after), {beside:.0}/s beside: ratio {:.2}",
            WINDOW.as_secs(),
            per_key.join(", "),
            beside / alone
        ),
        Some(0),
    );
    cluster.stop().await;
}
