//! Warm standbys: two `kubewasm run` processes against one embedded API server. The standby
//! starts its plugins while it waits (caches synced, queue filled, workers waiting), so when the
//! leader is killed it reconciles as soon as it holds the Lease, without a list request; with
//! `--warm-standby=false` it lists first.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kubewasm_apiserver::{ApiServer, Config, RequestRecord};

use crate::support;
use crate::support::hello::{self, create_configmap, wait_stamped};
use crate::support::process::{Host, plugin_dir, quick_election};

const LEASE: &str = "kubewasm-warm";

/// A request that lists: a LIST, or a WATCH that streams the current objects first.
fn lists(r: &RequestRecord) -> bool {
    r.verb == "list" || (r.watch && r.query.contains("sendInitialEvents=true"))
}

/// Two replicas, the hello plugin's plugin folder, and clients.
struct Pair {
    server: ApiServer,
    dir: tempfile::TempDir,
    hosts: [Host; 2],
    leases: Api<Lease>,
    cms: Api<ConfigMap>,
}

async fn start_pair(extra: &[&str]) -> Pair {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::example("hello")]);
    let args: Vec<&str> = quick_election(LEASE).iter().chain(extra).copied().collect();
    let a = Host::start("a", &plugins, &kubeconfig, &args);
    let b = Host::start("b", &plugins, &kubeconfig, &args);
    let client = support::cluster::client_for(&server);
    Pair {
        leases: Api::namespaced(client.clone(), "default"),
        cms: Api::namespaced(client, "default"),
        server,
        dir,
        hosts: [a, b],
    }
}

/// Which host leads, once the Lease names one of them.
async fn leader_index(pair: &Pair) -> usize {
    let ids = [pair.hosts[0].identity(), pair.hosts[1].identity()];
    let holder = support::eventually("one replica to hold the lease", || async {
        hello::holder(&pair.leases, LEASE).await
    })
    .await;
    ids.iter()
        .position(|id| *id == holder)
        .unwrap_or_else(|| panic!("the lease holder {holder} is one of the replicas {ids:?}"))
}

/// The standby's reconciles counted so far.
fn reconciles(host: &Host) -> f64 {
    host.metrics().sum(
        "controller_runtime_reconcile_total",
        &[("controller", "hello")],
    )
}

/// What a failover looked like from the server.
struct Failover {
    /// Which host stood by (and leads now).
    standby: usize,
    /// Every request the server received from the kill until the new leader's first reconcile
    /// was counted.
    requests: Vec<RequestRecord>,
    /// From the kill until that first reconcile was seen.
    took: Duration,
    /// The lists the standby's informers completed, as its metrics count them: before the kill,
    /// and once it has reconciled.
    lists: (f64, f64),
}

/// The lists a host's informers have completed (`kubewasm_informer_lists_total`).
fn informer_lists(host: &Host) -> f64 {
    host.metrics().sum("kubewasm_informer_lists_total", &[])
}

/// The leader reconciles three ConfigMaps; `standing_by` checks the standby; the leader is
/// killed; returns what the server saw until the standby's first reconcile.
async fn failover(pair: &mut Pair, standing_by: impl FnOnce(&Host)) -> Failover {
    let leader = leader_index(pair).await;
    let standby = 1 - leader;
    for i in 0..3 {
        create_configmap(&pair.cms, &format!("before-{i}")).await;
    }
    for i in 0..3 {
        wait_stamped(&pair.cms, &format!("before-{i}")).await;
    }
    standing_by(&pair.hosts[standby]);
    let lists_before = informer_lists(&pair.hosts[standby]);
    assert_eq!(
        reconciles(&pair.hosts[standby]),
        0.0,
        "a standby never reconciles\n{}",
        pair.hosts[standby].dump()
    );

    pair.hosts[leader].signal("KILL");
    // From here on only the standby (and this test, which never lists) talk to the server.
    pair.server.faults().clear_requests();
    let killed = Instant::now();
    pair.hosts[leader].wait_exit();
    let index = standby;
    let standby = &pair.hosts[standby];
    // Its first reconcile: the ConfigMaps queued while it stood by.
    support::wait::wait("the standby's first reconcile after the failover", || {
        (reconciles(standby) >= 1.0).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", standby.dump()));
    let took = killed.elapsed();
    let requests = pair.server.faults().requests();
    let lists_after = informer_lists(standby);
    assert_eq!(
        hello::holder(&pair.leases, LEASE).await,
        Some(standby.identity()),
        "the standby reconciles only once it holds the lease"
    );
    eprintln!("first reconcile of the new leader {took:?} after the kill");
    Failover {
        standby: index,
        requests,
        took,
        lists: (lists_before, lists_after),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_standby_takes_over_a_killed_leader_without_listing_again() {
    let mut pair = start_pair(&[]).await;
    let outcome = failover(&mut pair, |standby| {
        // Standing by: caches synced, the ConfigMaps the leader reconciled sit in its queue.
        let m = support::wait::wait("the standby's queue to hold the three ConfigMaps", || {
            let m = standby.metrics();
            (m.get("workqueue_depth", &[("name", "hello")])
                .unwrap_or(0.0)
                >= 3.0)
                .then_some(m)
        })
        .unwrap_or_else(|| panic!("{}", standby.dump()));
        for (state, value) in [
            ("leading", 0.0),
            ("warm_standby", 1.0),
            ("cold_standby", 0.0),
        ] {
            assert_eq!(
                m.get("kubewasm_leader_state", &[("state", state)]),
                Some(value),
                "state {state}"
            );
        }
        assert_eq!(
            m.get(
                "controller_runtime_active_workers",
                &[("controller", "hello")]
            ),
            Some(0.0)
        );
        standby.wait_log("caches synced; keys are queued and reconciled once this replica leads");
        assert_eq!(
            standby.get("/readyz").map(|r| r.0),
            Some(200),
            "a warm standby whose caches have synced is ready"
        );
    })
    .await;
    let listed: Vec<_> = outcome.requests.iter().filter(|r| lists(r)).collect();
    let (before, after) = outcome.lists;
    assert!(
        before >= 1.0 && after == before,
        "the standby's informers listed while it stood by, not after: {before} then {after}"
    );
    assert!(
        listed.is_empty(),
        "a warm standby reconciles from the caches it kept: no list after the kill, got {listed:#?}"
    );
    // Generous: the lease (3 s) must expire on the standby's clock first; a loaded machine.
    assert!(
        outcome.took < Duration::from_secs(3) + support::wait::PATIENCE,
        "took {:?}",
        outcome.took
    );
    let new_leader = &pair.hosts[outcome.standby];
    let m = new_leader.metrics();
    assert_eq!(
        m.get("kubewasm_leader_state", &[("state", "leading")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("kubewasm_leader_state", &[("state", "warm_standby")]),
        Some(0.0)
    );
    // It goes on reconciling what changes from then on, still without a list.
    create_configmap(&pair.cms, "after").await;
    wait_stamped(&pair.cms, "after").await;
    let listed: Vec<_> = pair
        .server
        .faults()
        .requests()
        .into_iter()
        .filter(lists)
        .collect();
    assert!(listed.is_empty(), "{listed:#?}");
    let Pair { server, hosts, .. } = pair;
    drop(hosts);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_standby_lists_before_its_first_reconcile() {
    let mut pair = start_pair(&["--warm-standby=false"]).await;
    let outcome = failover(&mut pair, |standby| {
        let m = standby.metrics();
        assert_eq!(
            m.get("kubewasm_leader_state", &[("state", "cold_standby")]),
            Some(1.0)
        );
        assert_eq!(
            m.get("workqueue_depth", &[("name", "hello")]),
            None,
            "a cold standby runs no queue"
        );
        assert_eq!(
            standby.get("/readyz").map(|r| r.0),
            Some(200),
            "a cold standby whose plugins loaded is ready"
        );
    })
    .await;
    assert!(
        outcome
            .requests
            .iter()
            .any(|r| lists(r) && r.resource.as_deref() == Some("configmaps")),
        "a cold standby starts its informers once elected: it lists the ConfigMaps, got {:#?}",
        outcome.requests
    );
    assert_eq!(outcome.lists.0, 0.0, "a cold standby runs no informer");
    assert!(outcome.lists.1 >= 1.0, "its informers listed once it led");
    let Pair { server, hosts, .. } = pair;
    drop(hosts);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_standby_hot_reloads_its_plugins_while_it_waits() {
    let pair = start_pair(&[]).await;
    let leader = leader_index(&pair).await;
    let standby = &pair.hosts[1 - leader];
    standby.wait_log("caches synced; keys are queued and reconciled once this replica leads");
    let loads = |host: &Host| {
        host.metrics().sum(
            "kubewasm_plugin_loads_total",
            &[("plugin", "hello"), ("result", "success")],
        )
    };
    assert_eq!(loads(standby), 1.0);
    let path = pair.dir.path().join("plugins").join("hello.wasm");
    let bytes = std::fs::read(&path).expect("read hello.wasm");
    support::replace_by_rename(&path, &support::variant(&bytes, "warm-reload"));
    support::wait::wait("the standby to load the new version", || {
        (loads(standby) >= 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", standby.dump()));
    assert_eq!(
        reconciles(standby),
        0.0,
        "a reload does not make a standby reconcile"
    );
    let Pair { server, hosts, .. } = pair;
    drop(hosts);
    server.shutdown().await;
}
