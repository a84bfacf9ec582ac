//! Fault suite, API chaos: the configmap-mirror example runs in the real host while the test keeps
//! creating, changing and deleting mirrored ConfigMaps and the embedded API server misbehaves through
//! its fault handle: dropped watches, forced 410s, bursts of 500 and of 429 with Retry-After, added
//! latency, restarts. After the chaos stops a checker computes the desired state from the final
//! objects (every active source mirrored into each target namespace with its data, no mirror without
//! a source) and compares every informer cache of the Manager with the server: no object may be lost
//! (`support::mirror_chaos`, shared with the same chaos on a real control plane in `real_chaos.rs`).
//! The Manager runs on the host's own client (`kubewasm::kube_client`, bounded 429 retries); the test's
//! writes use a client that does not retry, and retry explicitly. Set `CHAOS_TRACE=1` to see on stderr
//! when each phase starts and how long convergence took.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config, Failure, Faults};
use kubewasm_controller::{InformerKey, InformerStats};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::mirror_chaos::{
    CONVERGE_WITHIN, Check, Churn, INITIAL_SOURCES, World, create_source, pace, probe, trace,
};

/// The namespaces the sources select (label `chaos=target`).
const TARGETS: [&str; 2] = ["chaos-a", "chaos-b"];

/// Sources in `chaos-src`, mirrored into [`TARGETS`].
fn world() -> World {
    World {
        src: "chaos-src".into(),
        targets: TARGETS.map(String::from).to_vec(),
    }
}

async fn converge(cluster: &TestCluster, what: &str) -> (Duration, Check) {
    support::mirror_chaos::converge(&cluster.client, &cluster.manager, &world(), what).await
}

/// The cluster with namespaces, the configmap-mirror plugin and the initial sources, converged.
async fn start() -> TestCluster {
    trace("starting");
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    // The host talks through its own client (bounded retries of 429s: see kubewasm::kube_client).
    let url: http::Uri = server.url().parse().expect("the server URL parses");
    let host_client =
        kubewasm::kube_client::client(kube::Config::new(url.clone())).expect("the host's client");
    // The test's own requests are not retried by the client: `retrying` does it, visibly.
    let mut config = kube::Config::new(url);
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("the test's client");
    let cluster = TestCluster::from_parts(
        server,
        client,
        support::runtime(),
        Manager::new(host_client, ManagerConfig::default()),
    );
    let world = world();
    world.create_namespaces(&cluster.client).await;
    cluster
        .start_plugin(&support::example("configmap-mirror"))
        .await;
    trace("plugin started");
    let api = world.sources(&cluster.client);
    for i in 0..INITIAL_SOURCES {
        create_source(&world, &api, &format!("s-{i:03}"), "0").await;
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
    let churn = Churn::start(world(), world().sources(&cluster.client));
    inject(faults.clone()).await;
    let writes = churn.stop().await;
    trace(&format!("{name}: chaos over"));
    probe(&cluster.client, &world()).await;
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
    support::fault_report::record(
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
    let out = scenario(&cluster, "forced 410s", |f| async move {
        for _ in 0..rounds {
            pace().await;
            // Compaction past every informer's resourceVersion and the end of their watches in one
            // step: resuming is sure to meet 410 Expired, whatever the writers are doing meanwhile.
            f.expire_watches();
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
    support::fault_report::record(
        "api chaos",
        "forced 410s",
        &format!("{rounds} x expire_watches (compaction past now + dropped watches) while writing"),
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
    support::fault_report::record(
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
    support::fault_report::record(
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
    support::fault_report::record(
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
    support::fault_report::record(
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
        f.expire_watches();
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
    support::fault_report::record(
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
    probe(&cluster.client, &world()).await;
    let (converged_in, check) = converge(&cluster, "429 storm").await;
    let stats = informer_stats(&cluster);
    for (key, s) in &stats {
        assert!(s.errors >= 1, "{key} should have met the storm: {s:?}");
    }
    let errors: u64 = stats.iter().map(|(_, s)| s.errors).sum();
    support::fault_report::record(
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
