//! Fault suite, API chaos: the configmap-mirror example runs in the real host while the test keeps
//! creating, changing and deleting mirrored ConfigMaps and the embedded API server misbehaves through
//! its fault handle: dropped watches, forced 410s, bursts of 500 and of 429 with Retry-After, added
//! latency, restarts. After the chaos stops a checker computes the desired state from the final
//! objects (every active source mirrored into each target namespace with its data, no mirror without
//! a source) and compares every informer cache of the Manager with the server: no object may be lost.
//! The Manager runs on the host's own client (`kubewasm::client`, bounded 429 retries); the test's
//! writes use a client that does not retry, and retry explicitly. Set `CHAOS_TRACE=1` to see on stderr
//! when each phase starts and how long convergence took.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config, Failure, Faults};
use kubewasm_controller::{InformerKey, InformerOptions, InformerStats};
use serde_json::json;

/// Where sources live.
const SRC: &str = "chaos-src";
/// The namespaces the sources select (label `chaos=target`).
const TARGETS: [&str; 2] = ["chaos-a", "chaos-b"];
const ENABLED: &str = "mirror.kubewasm.dev/enabled";
const SELECTOR: &str = "mirror.kubewasm.dev/namespace-selector";
const SOURCE: &str = "mirror.kubewasm.dev/source";
/// Sources present before the chaos starts.
const INITIAL_SOURCES: usize = 12;
/// How long convergence may take after the chaos stops (generous: machines are shared).
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

fn source(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": SRC,
            "labels": {ENABLED: "true"},
            "annotations": {SELECTOR: "chaos=target"},
        },
        "data": {"value": value},
    }))
    .expect("a ConfigMap")
}

/// With `CHAOS_TRACE` set, says on stderr when each phase of a scenario starts (to see where time goes).
fn trace(what: &str) {
    if std::env::var_os("CHAOS_TRACE").is_some() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() % 1000.0);
        eprintln!("TRACE {now:.2} {what}");
    }
}

/// Retries `op` until it succeeds: the test's own requests meet the injected faults too. Fails the
/// test when it has not succeeded within a minute.
async fn retrying<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{what} kept failing for 60 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

async fn create_source(api: &Api<ConfigMap>, name: &str, value: &str) {
    retrying(&format!("creating {name}"), || async {
        match api
            .create(&PostParams::default(), &source(name, value))
            .await
        {
            // A create whose answer was lost (a restart cut the connection) may have landed.
            Err(e) if is_code(&e, 409) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

async fn change_source(api: &Api<ConfigMap>, name: &str, value: &str) {
    retrying(&format!("changing {name}"), || async {
        let mut cm = api.get(name).await?;
        cm.data = Some([("value".to_string(), value.to_string())].into());
        cm.metadata.resource_version = None;
        api.replace(name, &PostParams::default(), &cm)
            .await
            .map(|_| ())
    })
    .await;
}

async fn delete_source(api: &Api<ConfigMap>, name: &str) {
    retrying(&format!("deleting {name}"), || async {
        match api.delete(name, &DeleteParams::default()).await {
            Err(e) if is_code(&e, 404) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

/// A writer that keeps creating, changing and deleting sources until stopped.
struct Churn {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Churn {
    fn start(api: Api<ConfigMap>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut writes = 0;
            let mut i = INITIAL_SOURCES;
            while !stopping.load(Ordering::Relaxed) {
                create_source(&api, &format!("s-{i:03}"), "0").await;
                // Change a source created three rounds ago (or an initial one), delete one older.
                change_source(&api, &format!("s-{:03}", i - 3), &i.to_string()).await;
                writes += 2;
                if i.is_multiple_of(3) {
                    delete_source(&api, &format!("s-{:03}", i - 9)).await;
                    writes += 1;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            writes
        });
        Self { stop, task }
    }

    /// Stops the writer; returns how many writes it made.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the writer does not panic")
    }
}

/// What the checker found: objects not in their desired state, and caches that differ from the server.
#[derive(Debug, Default)]
struct Check {
    /// Sources whose mirrors are missing or stale, and mirrors whose source is gone.
    lost: Vec<String>,
    /// Informers whose cache differs from the server, with the first differences.
    stale_caches: Vec<String>,
    sources: usize,
}

/// Desired state from the final objects: each active source in every target namespace with its data;
/// no mirror of a source that is not active.
async fn check_desired(client: &kube::Client, check: &mut Check) -> Result<(), kube::Error> {
    let sources: Vec<ConfigMap> = Api::namespaced(client.clone(), SRC)
        .list(&ListParams::default())
        .await?
        .items;
    let active: BTreeMap<String, ConfigMap> = sources
        .into_iter()
        .filter(|s| {
            s.metadata.deletion_timestamp.is_none()
                && s.metadata.labels.as_ref().and_then(|l| l.get(ENABLED))
                    == Some(&"true".to_string())
        })
        .filter_map(|s| Some((s.metadata.name.clone()?, s)))
        .collect();
    check.sources = active.len();
    for ns in TARGETS {
        let mirrors: BTreeMap<String, ConfigMap> = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|m| Some((m.metadata.name.clone()?, m)))
            .collect();
        for (name, s) in &active {
            let want_source = format!("{SRC}/{name}");
            match mirrors.get(name) {
                Some(m)
                    if m.data == s.data
                        && m.metadata.annotations.as_ref().and_then(|a| a.get(SOURCE))
                            == Some(&want_source) => {}
                Some(_) => check.lost.push(format!("{ns}/{name}: stale mirror")),
                None => check.lost.push(format!("{ns}/{name}: missing mirror")),
            }
        }
        for (name, m) in &mirrors {
            let is_mirror = m
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(SOURCE));
            if is_mirror && !active.contains_key(name) {
                check
                    .lost
                    .push(format!("{ns}/{name}: mirror of a gone source"));
            }
        }
    }
    Ok(())
}

/// Every informer of the Manager holds exactly the server's objects for its key, at the same
/// resourceVersions.
async fn check_caches(cluster: &TestCluster, check: &mut Check) -> Result<(), kube::Error> {
    let informers = cluster.manager.informers();
    for (key, _) in informers.stats() {
        let handle = informers
            .acquire(key.clone(), InformerOptions::default())
            .expect("a running informer can be shared");
        let cached: BTreeMap<(Option<String>, String), String> = handle
            .store()
            .snapshot()
            .iter()
            .map(|e| {
                (
                    (e.namespace().map(str::to_owned), e.name().to_owned()),
                    e.resource_version().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let api: Api<DynamicObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &key.resource),
            None => Api::all_with(cluster.client.clone(), &key.resource),
        };
        let mut params = ListParams::default();
        if let Some(sel) = &key.label_selector {
            params = params.labels(sel);
        }
        let on_server: BTreeMap<(Option<String>, String), String> = api
            .list(&params)
            .await?
            .items
            .into_iter()
            .map(|o| {
                (
                    (
                        o.metadata.namespace.clone(),
                        o.metadata.name.unwrap_or_default(),
                    ),
                    o.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect();
        if cached != on_server {
            let diff: Vec<String> = on_server
                .iter()
                .filter(|(k, rv)| cached.get(*k) != Some(*rv))
                .map(|(k, rv)| format!("{k:?}@{rv} (cached {:?})", cached.get(k)))
                .chain(
                    cached
                        .keys()
                        .filter(|k| !on_server.contains_key(*k))
                        .map(|k| format!("{k:?} cached but gone")),
                )
                .take(5)
                .collect();
            check
                .stale_caches
                .push(format!("{key}: {}", diff.join(", ")));
        }
    }
    Ok(())
}

/// Polls the checker until every object is in its desired state and every cache equals the server;
/// returns how long that took. Fails with what was still wrong after [`CONVERGE_WITHIN`].
async fn converge(cluster: &TestCluster, what: &str) -> (Duration, Check) {
    let start = Instant::now();
    loop {
        let mut check = Check::default();
        let checked = async {
            check_desired(&cluster.client, &mut check).await?;
            check_caches(cluster, &mut check).await
        }
        .await;
        let last = match checked {
            Ok(()) if check.lost.is_empty() && check.stale_caches.is_empty() => {
                trace(&format!("{what}: converged in {:?}", start.elapsed()));
                return (start.elapsed(), check);
            }
            Ok(()) => format!("{check:?}"),
            Err(e) => format!("the checker's request failed: {e}"),
        };
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "{what}: not converged within {CONVERGE_WITHIN:?}; last check: {last}; informers: {:?}",
            cluster.manager.informers().stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The cluster with namespaces, the configmap-mirror plugin and the initial sources, converged.
async fn start() -> TestCluster {
    trace("starting");
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    // The host talks through its own client (bounded retries of 429s: see kubewasm::client).
    let url: http::Uri = server.url().parse().expect("the server URL parses");
    let host_client =
        kubewasm::client::client(kube::Config::new(url.clone())).expect("the host's client");
    // The test's own requests are not retried by the client: `retrying` does it, visibly.
    let mut config = kube::Config::new(url);
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("the test's client");
    let cluster = TestCluster {
        manager: Manager::new(host_client, ManagerConfig::default()),
        runtime: common::runtime(),
        client,
        server,
    };
    let ns = |name: &str, labels: serde_json::Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    cluster.create("namespaces", ns(SRC, json!({}))).await;
    for t in TARGETS {
        cluster
            .create("namespaces", ns(t, json!({"chaos": "target"})))
            .await;
    }
    cluster
        .start_plugin(&common::example("configmap-mirror"))
        .await;
    trace("plugin started");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), SRC);
    for i in 0..INITIAL_SOURCES {
        create_source(&api, &format!("s-{i:03}"), "0").await;
    }
    converge(&cluster, "before the chaos").await;
    cluster
}

fn informer_stats(cluster: &TestCluster) -> Vec<(InformerKey, InformerStats)> {
    cluster.manager.informers().stats()
}

fn retries(cluster: &TestCluster) -> u64 {
    cluster
        .manager
        .status()
        .iter()
        .find(|s| s.name == "configmap-mirror")
        .map_or(0, |s| s.queue.retries)
}

/// What one scenario produced, for its assertions and its row.
struct Outcome {
    writes: usize,
    converged_in: Duration,
    check: Check,
    informers: Vec<(InformerKey, InformerStats)>,
    watch_requests: BTreeMap<String, usize>,
    retries: u64,
}

impl Outcome {
    fn summary(&self, extra: &str) -> String {
        let errors: u64 = self.informers.iter().map(|(_, s)| s.errors).sum();
        let lists: u64 = self.informers.iter().map(|(_, s)| s.lists).sum();
        format!(
            "{extra}{} writes during the chaos; converged in {:.1} s: {} sources mirrored x{}, {} caches == server; informers: {lists} lists, {errors} watch errors; {} reconcile retries",
            self.writes,
            self.converged_in.as_secs_f64(),
            self.check.sources,
            TARGETS.len(),
            self.informers.len(),
            self.retries,
        )
    }
}

/// Runs one scenario: the churn writer runs while `inject` misbehaves, then the checker must see
/// every object in its desired state and every cache equal to the server.
async fn scenario<F, Fut>(cluster: &TestCluster, name: &str, inject: F) -> Outcome
where
    F: FnOnce(Faults) -> Fut,
    Fut: Future<Output = ()>,
{
    let faults = cluster.server.faults();
    faults.clear_requests();
    let retries_before = retries(cluster);
    trace(&format!("{name}: chaos starts"));
    let churn = Churn::start(Api::namespaced(cluster.client.clone(), SRC));
    inject(faults.clone()).await;
    let writes = churn.stop().await;
    trace(&format!("{name}: chaos over"));
    probe(&cluster.client).await;
    let (converged_in, check) = converge(cluster, name).await;
    assert!(check.lost.is_empty());
    let mut watch_requests = BTreeMap::new();
    for r in faults.requests().iter().filter(|r| r.watch) {
        *watch_requests.entry(r.path.clone()).or_default() += 1;
    }
    Outcome {
        writes,
        converged_in,
        check,
        informers: informer_stats(cluster),
        watch_requests,
        retries: retries(cluster) - retries_before,
    }
}

/// Writes one Namespace and one ConfigMap after the chaos, so that the caches can only equal the server
/// once every informer watches again (a cache that stopped watching would still equal the server if
/// nothing changed after the chaos).
async fn probe(client: &kube::Client) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    retrying("labelling the source namespace", || async {
        let mut ns = namespaces.get(SRC).await?;
        ns.metadata
            .labels
            .get_or_insert_default()
            .insert("chaos-probe".into(), stamp.clone());
        ns.metadata.resource_version = None;
        namespaces
            .replace(SRC, &PostParams::default(), &ns)
            .await
            .map(|_| ())
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), SRC);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": format!("probe-{stamp}")}}))
            .expect("a ConfigMap");
    retrying("creating a probe ConfigMap", || async {
        match api.create(&PostParams::default(), &cm).await {
            Err(e) if is_code(&e, 409) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

/// Creates a Secret: a kind no informer of the Manager watches.
async fn unwatched_write(client: &kube::Client, i: usize) {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "default");
    let secret = serde_json::from_value(json!({"metadata": {"name": format!("unwatched-{i}")}}))
        .expect("a Secret");
    retrying("creating a Secret", || async {
        match api.create(&PostParams::default(), &secret).await {
            Err(e) if is_code(&e, 409) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

/// Lets the churn writer and the plugin work a little between injections.
async fn pace() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_lose_no_object_and_every_informer_rewatches() {
    let cluster = start().await;
    let drops = 5;
    let out = scenario(&cluster, "dropped watches", |f| async move {
        for _ in 0..drops {
            pace().await;
            f.drop_watches();
        }
        pace().await;
    })
    .await;
    // Every informer's watch was ended and started again.
    assert_eq!(
        out.watch_requests.len(),
        out.informers.len(),
        "{:?}",
        out.watch_requests
    );
    assert!(
        out.watch_requests.values().all(|n| *n >= 2),
        "every informer re-watched: {:?}",
        out.watch_requests
    );
    let rewatches: usize = out.watch_requests.values().sum();
    common::fault_report::record(
        "api chaos",
        "dropped watches",
        &format!("{drops} x drop_watches, 300 ms apart, while writing"),
        &out.summary(&format!("{rewatches} re-watches; ")),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_410s_make_every_informer_relist_and_lose_no_object() {
    let cluster = start().await;
    let lists_before: u64 = informer_stats(&cluster).iter().map(|(_, s)| s.lists).sum();
    let rounds = 3;
    let client = cluster.client.clone();
    let out = scenario(&cluster, "forced 410s", |f| async move {
        for i in 0..rounds {
            pace().await;
            // A write no informer sees moves the current resourceVersion past every informer's, so
            // that resuming after the compaction is sure to meet 410 Expired.
            unwatched_write(&client, i).await;
            f.compact_history();
            f.drop_watches();
        }
        pace().await;
    })
    .await;
    // Each informer resumed from a compacted resourceVersion, got 410 Expired and listed again.
    for (key, stats) in &out.informers {
        assert!(
            stats.lists >= 2,
            "{key} did not re-list after a 410: {stats:?}"
        );
    }
    let relists = out.informers.iter().map(|(_, s)| s.lists).sum::<u64>() - lists_before;
    common::fault_report::record(
        "api chaos",
        "forced 410s",
        &format!("{rounds} x compact_history + drop_watches while writing"),
        &out.summary(&format!("{relists} re-lists after 410 Expired; ")),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_500s_are_retried_and_lose_no_object() {
    let cluster = start().await;
    // Bursts on whatever comes next (the test's writer, the informers, the plugin), then one
    // aimed at the plugin's own writes, so that the host's retry of a failed write is certain
    // to be exercised however the untargeted bursts were shared out.
    let (bursts, size, aimed) = (5, 20, 5);
    let total = (bursts * size + aimed) as u64;
    let out = scenario(&cluster, "500 bursts", |f| async move {
        for _ in 0..bursts {
            pace().await;
            f.fail_next(size, Failure::ServerError);
        }
        f.fail_next_matching(aimed, Failure::ServerError, |r| {
            r.namespace
                .as_deref()
                .is_some_and(|ns| TARGETS.contains(&ns))
                && matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete")
        });
        let served = tokio::time::timeout(Duration::from_secs(60), async {
            while f.responses_with_status(500) < total {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            served.is_ok(),
            "only {} of {total} injected 500s were served in 60 s",
            f.responses_with_status(500)
        );
        pace().await;
    })
    .await;
    let served = cluster.server.faults().responses_with_status(500);
    assert_eq!(served, total, "every injected 500 was served");
    assert!(
        out.retries > 0,
        "the plugin's writes met 500s and were retried"
    );
    common::fault_report::record(
        "api chaos",
        "500 bursts",
        &format!(
            "{bursts} bursts of {size} x 500 InternalError while writing, then {aimed} aimed at the plugin's writes"
        ),
        &out.summary(&format!("{served} 500s served; ")),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_429s_with_retry_after_are_waited_out_and_lose_no_object() {
    let cluster = start().await;
    let (bursts, size) = (3, 20);
    let out = scenario(&cluster, "429 bursts", |f| async move {
        for _ in 0..bursts {
            pace().await;
            f.fail_next(
                size,
                Failure::TooManyRequests {
                    retry_after: Duration::from_secs(1),
                },
            );
        }
        pace().await;
    })
    .await;
    let served = cluster.server.faults().responses_with_status(429);
    assert_eq!(
        served,
        (bursts * size) as u64,
        "every injected 429 was served"
    );
    common::fault_report::record(
        "api chaos",
        "429 bursts",
        &format!("{bursts} bursts of {size} x 429 TooManyRequests (Retry-After: 1) while writing"),
        &out.summary(&format!("{served} 429s served; ")),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_slows_but_loses_no_object() {
    let cluster = start().await;
    let latency = Duration::from_millis(150);
    let out = scenario(&cluster, "latency", |f| async move {
        f.set_latency(latency);
        for _ in 0..5 {
            pace().await;
        }
        f.set_latency(Duration::ZERO);
    })
    .await;
    common::fault_report::record(
        "api chaos",
        "added latency",
        &format!(
            "{} ms before every response for 1.5 s while writing",
            latency.as_millis()
        ),
        &out.summary(""),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restarts_lose_no_object_and_every_informer_reconnects() {
    let cluster = start().await;
    let (restarts, down_for) = (2, Duration::from_secs(2));
    let out = scenario(&cluster, "restart", |f| async move {
        for _ in 0..restarts {
            pace().await;
            f.restart(down_for).await;
            f.wait_serving().await;
        }
        pace().await;
    })
    .await;
    // Every informer lost its watch and met the refused connections, then caught up (checked above).
    for (key, stats) in &out.informers {
        assert!(
            stats.errors >= 1,
            "{key} never noticed the restarts: {stats:?}"
        );
    }
    common::fault_report::record(
        "api chaos",
        "API server restart",
        &format!(
            "{restarts} restarts: all connections closed, refused for {} s, same address and state",
            down_for.as_secs()
        ),
        &out.summary(""),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_in_one_sequence_loses_no_object() {
    let cluster = start().await;
    let client = cluster.client.clone();
    let out = scenario(&cluster, "all faults in sequence", |f| async move {
        f.set_latency(Duration::from_millis(50));
        pace().await;
        f.fail_next(15, Failure::ServerError);
        pace().await;
        f.drop_watches();
        pace().await;
        f.fail_next(
            15,
            Failure::TooManyRequests {
                retry_after: Duration::from_secs(1),
            },
        );
        pace().await;
        unwatched_write(&client, 0).await;
        f.compact_history();
        f.restart(Duration::from_secs(5)).await;
        f.wait_serving().await;
        pace().await;
        f.fail_next(15, Failure::ServerError);
        f.drop_watches();
        pace().await;
        f.set_latency(Duration::ZERO);
    })
    .await;
    for (key, stats) in &out.informers {
        assert!(
            stats.lists >= 2,
            "{key} did not re-list after the 410: {stats:?}"
        );
    }
    common::fault_report::record(
        "api chaos",
        "all faults in sequence",
        "50 ms latency, 500 burst, dropped watches, 429 burst, compaction + 5 s restart (410 on resume), 500 burst + dropped watches",
        &out.summary(""),
        Some(out.check.lost.len() as u64),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_met_by_the_host_alone_is_waited_out_within_bounded_retries() {
    let cluster = start().await;
    let faults = cluster.server.faults();
    faults.clear_requests();
    let storm = 30;
    faults.fail_next(
        storm,
        Failure::TooManyRequests {
            retry_after: Duration::from_secs(1),
        },
    );
    trace("429 storm: chaos starts");
    // Both informers re-watch into the storm; nothing else sends a request until it is over, so
    // every 429 is met by the host. kube's default client would retry each watch up to 15 times
    // with a backoff growing to minutes; the host's client waits Retry-After at most 10 times and
    // hands the error to the informer's own backoff.
    faults.drop_watches();
    let started = Instant::now();
    while faults.responses_with_status(429) < storm as u64 {
        assert!(
            started.elapsed() < CONVERGE_WITHIN,
            "after {CONVERGE_WITHIN:?} the host has met only {} of {storm} 429s: its requests are stuck in retries",
            faults.responses_with_status(429)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let storm_over = started.elapsed();
    trace("429 storm: chaos over");
    probe(&cluster.client).await;
    let (converged_in, check) = converge(&cluster, "429 storm").await;
    let stats = informer_stats(&cluster);
    for (key, s) in &stats {
        assert!(s.errors >= 1, "{key} should have met the storm: {s:?}");
    }
    let errors: u64 = stats.iter().map(|(_, s)| s.errors).sum();
    common::fault_report::record(
        "api chaos",
        "429 storm on the host",
        &format!("{storm} x 429 (Retry-After: 1) met only by the host's re-watching informers"),
        &format!(
            "all 429s waited out in {:.1} s (at most 10 Retry-After waits per request, then the informer's backoff: {errors} watch errors); converged {:.1} s later, caches == server",
            storm_over.as_secs_f64(),
            converged_in.as_secs_f64()
        ),
        Some(check.lost.len() as u64),
    );
    cluster.stop().await;
}
