//! API chaos on a real control plane: the fault suite's configmap-mirror scenario
//! (`support::mirror_chaos`) while kube-apiserver restarts, while etcd's history is compacted
//! under the host's watches (so they resume into `410 Gone` and must re-list), and while etcd
//! itself restarts. Each test has a control plane of its own (it stops and starts its parts).
//! After the chaos the checker computes the desired state from the final objects and compares
//! every informer cache of the host's Manager with the real server: no object may be lost.

use std::time::Duration;

use kubewasm::{Manager, ManagerConfig};
use kubewasm_controller::{InformerKey, InformerStats};
use kubewasm_controlplane::Component;

use crate::support;
use crate::support::mirror_chaos::{
    Check, Churn, INITIAL_SOURCES, World, converge, create_source, pace, probe, trace,
};
use crate::support::real::RealCluster;

/// A control plane of the test's own, the configmap-mirror plugin in a Manager on the host's
/// client, the namespaces and the initial sources, converged.
struct Chaos {
    cluster: RealCluster,
    manager: Manager,
    /// The test's writes: no client retries (the chaos helpers retry visibly).
    client: kube::Client,
    world: World,
    _runtime: kubewasm::runtime::Runtime,
}

async fn start(test: &str) -> Chaos {
    trace("starting");
    let cluster = RealCluster::own(test).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    // The host talks through its own client (bounded 429 retries: see kubewasm::kube_client).
    let host_client = kubewasm::kube_client::client(config.clone()).expect("the host's client");
    let mut test_config = config;
    test_config.default_retry = false;
    let client = kube::Client::try_from(test_config).expect("the test's client");
    let world = World {
        src: format!("{}-src", cluster.namespace),
        targets: vec![
            format!("{}-a", cluster.namespace),
            format!("{}-b", cluster.namespace),
        ],
    };
    world.create_namespaces(&client).await;
    let runtime = support::runtime();
    let manager = Manager::new(host_client, ManagerConfig::default());
    let plugin = support::load(&runtime, &support::example("configmap-mirror")).await;
    manager.start(plugin).expect("the plugin starts");
    manager.wait_synced().await;
    let api = world.sources(&client);
    for i in 0..INITIAL_SOURCES {
        create_source(&world, &api, &format!("s-{i:03}"), "0").await;
    }
    converge(&client, &manager, &world, "before the chaos").await;
    Chaos {
        cluster,
        manager,
        client,
        world,
        _runtime: runtime,
    }
}

/// What a scenario left: writes made during it, the check, the informers' counters.
struct Outcome {
    writes: usize,
    converged_in: Duration,
    check: Check,
    informers: Vec<(InformerKey, InformerStats)>,
}

impl Outcome {
    fn summary(&self) -> String {
        let errors: u64 = self.informers.iter().map(|(_, s)| s.errors).sum();
        let lists: u64 = self.informers.iter().map(|(_, s)| s.lists).sum();
        format!(
            "{} writes during the chaos; converged in {:.1} s: {} sources mirrored x2, {} caches == server; informers: {lists} lists, {errors} watch errors",
            self.writes,
            self.converged_in.as_secs_f64(),
            self.check.sources,
            self.informers.len(),
        )
    }
}

/// Runs the churn writer while `inject` acts on the control plane, then waits for the checker.
async fn scenario(chaos: &mut Chaos, name: &str, inject: impl FnOnce(&mut RealCluster)) -> Outcome {
    trace(&format!("{name}: chaos starts"));
    let churn = Churn::start(chaos.world.clone(), chaos.world.sources(&chaos.client));
    pace().await;
    // Stopping and starting processes blocks for seconds: keep the runtime's other worker
    // (the churn writer, the host's informers and workers) running meanwhile.
    tokio::task::block_in_place(|| inject(&mut chaos.cluster));
    pace().await;
    let writes = churn.stop().await;
    trace(&format!("{name}: chaos over"));
    probe(&chaos.client, &chaos.world).await;
    let (converged_in, check) = converge(&chaos.client, &chaos.manager, &chaos.world, name).await;
    assert!(check.lost.is_empty());
    Outcome {
        writes,
        converged_in,
        check,
        informers: chaos.manager.informers().stats(),
    }
}

async fn finish(chaos: Chaos) {
    chaos.manager.shutdown().await;
    chaos.cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_real_kube_apiserver_loses_no_object() {
    let mut chaos = start("real-chaos-apiserver").await;
    let out = scenario(&mut chaos, "kube-apiserver restart", |c| {
        c.plane()
            .restart_component(Component::ApiServer)
            .expect("kube-apiserver starts again");
    })
    .await;
    for (key, stats) in &out.informers {
        assert!(
            stats.errors >= 1,
            "{key} never noticed the restart: {stats:?}"
        );
    }
    support::fault_report::record(
        "real cluster",
        "kube-apiserver restart",
        "SIGTERM to the real kube-apiserver while writing; started again on the same port and etcd",
        &out.summary(),
        Some(out.check.lost.len() as u64),
    );
    finish(chaos).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_resuming_into_a_compacted_etcd_get_410_relist_and_lose_no_object() {
    let mut chaos = start("real-chaos-compaction").await;
    let lists_before: u64 = chaos
        .manager
        .informers()
        .stats()
        .iter()
        .map(|(_, s)| s.lists)
        .sum();
    let out = scenario(&mut chaos, "etcd compaction", |c| {
        // With kube-apiserver down the host's watches break; etcd's history is compacted past
        // every resourceVersion the host has seen; the new kube-apiserver answers the host's
        // resuming watches with 410 Gone.
        let plane = c.plane();
        plane.stop_component(Component::ApiServer);
        plane.compact_etcd().expect("etcd compacts");
        plane
            .start_component(Component::ApiServer)
            .expect("kube-apiserver starts again");
    })
    .await;
    for (key, stats) in &out.informers {
        assert!(
            stats.lists >= 2,
            "{key} did not re-list after the 410: {stats:?}"
        );
    }
    let relists = out.informers.iter().map(|(_, s)| s.lists).sum::<u64>() - lists_before;
    support::fault_report::record(
        "real cluster",
        "etcd compaction (410)",
        "kube-apiserver stopped, etcd compacted past every resourceVersion the host saw, started again",
        &format!("{relists} re-lists after 410 Gone; {}", out.summary()),
        Some(out.check.lost.len() as u64),
    );
    finish(chaos).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_etcd_under_the_real_kube_apiserver_loses_no_object() {
    let mut chaos = start("real-chaos-etcd").await;
    let out = scenario(&mut chaos, "etcd restart", |c| {
        let plane = c.plane();
        plane.stop_component(Component::Etcd);
        std::thread::sleep(Duration::from_secs(2));
        plane
            .start_component(Component::Etcd)
            .expect("etcd starts again");
    })
    .await;
    support::fault_report::record(
        "real cluster",
        "etcd restart",
        "SIGTERM to etcd under the real kube-apiserver while writing; down 2 s, same data",
        &out.summary(),
        Some(out.check.lost.len() as u64),
    );
    finish(chaos).await;
}
