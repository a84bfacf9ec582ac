//! A warm standby on the real control plane: two `kubewasm run` processes (as the ServiceAccount
//! `kubewasm rbac` generated RBAC for) on a real Lease; the standby's caches sync and its queue
//! fills while the leader reconciles; the leader is killed with SIGKILL, and the standby's
//! informers complete no new list before (or after) its first reconcile.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::support;
use crate::support::eventually;
use crate::support::hello::{self, create_configmap, wait_stamped};
use crate::support::process::Host;
use crate::support::real::{Deployment, RealCluster};
use crate::support::wait::wait;

const LEASE: &str = "kubewasm";

fn reconciles(host: &Host) -> f64 {
    host.metrics().sum(
        "controller_runtime_reconcile_total",
        &[("controller", "hello")],
    )
}

fn lists(host: &Host) -> f64 {
    host.metrics()
        .sum("kubewasm_informer_lists_total", &[("kind", "ConfigMap")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_real_lease_a_warm_standby_takes_over_without_listing_again() {
    let c = RealCluster::shared("real-warm-standby").await;
    let policy = format!("default:\n  namespaces: [{}]\n", c.namespace);
    let deployment = c.deploy(&[support::example("hello")], Some(&policy)).await;
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), &c.namespace);
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    let args = deployment.args(&Deployment::quick_election(LEASE));
    let mut hosts = [
        Host::start("a", &deployment.plugins, &deployment.kubeconfig, &args),
        Host::start("b", &deployment.plugins, &deployment.kubeconfig, &args),
    ];
    let ids = [hosts[0].identity(), hosts[1].identity()];
    let first = eventually("one replica to hold the Lease", || {
        hello::holder(&leases, LEASE)
    })
    .await;
    let leader = ids
        .iter()
        .position(|id| *id == first)
        .unwrap_or_else(|| panic!("{first} is one of {ids:?}"));
    let standby = 1 - leader;
    for i in 0..3 {
        create_configmap(&cms, &format!("before-{i}")).await;
    }
    for i in 0..3 {
        wait_stamped(&cms, &format!("before-{i}")).await;
    }
    {
        let standby = &hosts[standby];
        let m = wait("the standby's queue to hold the three ConfigMaps", || {
            let m = standby.metrics();
            (m.get("workqueue_depth", &[("name", "hello")])
                .unwrap_or(0.0)
                >= 3.0)
                .then_some(m)
        })
        .unwrap_or_else(|| panic!("{}", standby.dump()));
        assert_eq!(
            m.get("kubewasm_leader_state", &[("state", "warm_standby")]),
            Some(1.0)
        );
        assert_eq!(reconciles(standby), 0.0, "a standby never reconciles");
    }
    let before = lists(&hosts[standby]);
    assert!(
        before >= 1.0,
        "the standby's informer listed while it stood by"
    );

    hosts[leader].signal("KILL");
    hosts[leader].wait_exit();
    let standby = &hosts[standby];
    wait("the standby's first reconcile after the failover", || {
        (reconciles(standby) >= 1.0).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", standby.dump()));
    assert_eq!(
        lists(standby),
        before,
        "a warm standby reconciles from the caches it kept, with no new list"
    );
    assert_eq!(
        hello::holder(&leases, LEASE).await,
        Some(ids[1 - leader].clone())
    );
    create_configmap(&cms, "after").await;
    wait_stamped(&cms, "after").await;
    assert_eq!(lists(standby), before);
    assert_eq!(
        standby
            .metrics()
            .get("kubewasm_leader_state", &[("state", "leading")]),
        Some(1.0)
    );
    drop(hosts);
    c.finish().await;
}
