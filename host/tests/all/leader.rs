//! Two `kubewasm run` processes against one embedded API server: exactly one reconciles, the
//! other takes over when it stops, and their reconciles never overlap.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kubewasm_apiserver::{ApiServer, Config};

use crate::support;
use crate::support::hello::{self, create_configmap, stamped};
use crate::support::process::{Host, plugin_dir, quick_election, stamps, timestamp};

const LEASE: &str = "kubewasm-test";

async fn holder(leases: &Api<Lease>) -> Option<String> {
    hello::holder(leases, LEASE).await
}

/// Waits until `host` has logged its stamp of ConfigMap `name`. The plugin logs after its patch
/// returns, and the log is read from a pipe, so an annotation seen on the server can come before
/// the line that says who wrote it.
fn wait_stamp_logged(host: &Host, name: &str) {
    let prefix = format!("stamped default/{name}:");
    host.wait_log_where(&format!("its stamp of {name}"), |m| m.starts_with(&prefix));
}

struct Pair {
    server: ApiServer,
    _dir: tempfile::TempDir,
    a: Host,
    b: Host,
    leases: Api<Lease>,
    cms: Api<ConfigMap>,
}

async fn start_pair() -> Pair {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::example("hello")]);
    let a = Host::start("a", &plugins, &kubeconfig, &quick_election(LEASE));
    let b = Host::start("b", &plugins, &kubeconfig, &quick_election(LEASE));
    let client = support::cluster::client_for(&server);
    Pair {
        leases: Api::namespaced(client.clone(), "default"),
        cms: Api::namespaced(client, "default"),
        server,
        _dir: dir,
        a,
        b,
    }
}

/// Which of the two leads: (leader, standby), once the Lease names one of them.
async fn leader_of(pair: &Pair) -> (bool, String) {
    let (ia, ib) = (pair.a.identity(), pair.b.identity());
    let leader = support::eventually("one replica to hold the lease", || async {
        holder(&pair.leases).await
    })
    .await;
    assert!(
        leader == ia || leader == ib,
        "the lease holder {leader} is one of the two replicas ({ia}, {ib})"
    );
    (leader == ia, leader)
}

/// Runs the scenario; `stop` is the signal that stops the first leader ("TERM" or "KILL").
async fn failover(stop: &str) {
    let mut pair = start_pair().await;
    let (a_leads, first) = leader_of(&pair).await;
    for i in 0..3 {
        create_configmap(&pair.cms, &format!("before-{i}")).await;
    }
    for i in 0..3 {
        let name = format!("before-{i}");
        support::eventually(&format!("{name} to be stamped"), || async {
            stamped(&pair.cms, &name).await.then_some(())
        })
        .await;
    }
    let (leader, standby) = if a_leads {
        (&pair.a, &pair.b)
    } else {
        (&pair.b, &pair.a)
    };
    for i in 0..3 {
        wait_stamp_logged(leader, &format!("before-{i}"));
    }
    assert!(
        stamps(standby).is_empty(),
        "the standby never reconciles while the other leads\n{}",
        standby.dump()
    );
    // A stamp is visible before its reconcile returns and is counted: poll.
    let lm = support::wait::wait("the leader to count its reconciles", || {
        let m = leader.metrics();
        (m.sum(
            "controller_runtime_reconcile_total",
            &[("controller", "hello")],
        ) >= 3.0)
            .then_some(m)
    })
    .unwrap_or_else(|| panic!("{}", leader.dump()));
    let sm = standby.metrics();
    assert_eq!(
        sm.sum("controller_runtime_reconcile_total", &[]),
        0.0,
        "the standby counts none"
    );
    assert_eq!(
        lm.get("kubewasm_leader", &[("identity", &first)]),
        Some(1.0)
    );
    assert_eq!(
        sm.get("kubewasm_leader", &[("identity", &standby.identity())]),
        Some(0.0)
    );
    assert_eq!(
        standby.get("/readyz").map(|r| r.0),
        Some(200),
        "a standby whose plugins loaded is ready"
    );

    // Stop the leader; the standby takes over.
    let standby_identity = standby.identity();
    leader.signal(stop);
    let stopped = Instant::now();
    let status = if a_leads {
        pair.a.wait_exit()
    } else {
        pair.b.wait_exit()
    };
    if stop == "TERM" {
        assert!(status.success(), "SIGTERM drains and exits 0: {status}");
    }
    let (leader, standby) = if a_leads {
        (&pair.a, &pair.b)
    } else {
        (&pair.b, &pair.a)
    };
    let new = support::eventually("the standby to take the lease over", || async {
        holder(&pair.leases)
            .await
            .filter(|h| *h == standby_identity)
    })
    .await;
    let took = stopped.elapsed();
    if stop == "TERM" {
        // The leader released the lease: the standby takes it at its next retry, well within
        // one lease duration (3 s; generous margin for a loaded machine).
        assert!(
            took < Duration::from_secs(3) + Duration::from_secs(5),
            "takeover after a release took {took:?}"
        );
    }
    assert_eq!(new, standby_identity);
    for i in 0..3 {
        create_configmap(&pair.cms, &format!("after-{i}")).await;
    }
    for i in 0..3 {
        let name = format!("after-{i}");
        support::eventually(&format!("{name} to be stamped"), || async {
            stamped(&pair.cms, &name).await.then_some(())
        })
        .await;
    }
    for i in 0..3 {
        wait_stamp_logged(standby, &format!("after-{i}"));
    }
    // Never at the same time: every reconcile of the first leader precedes every reconcile of
    // the second, and the second became leader only after the first's last reconcile.
    let first_stamps = stamps(leader);
    let second_stamps = stamps(standby);
    let last_first = first_stamps.iter().max().expect("first leader stamped");
    let first_second = second_stamps.iter().min().expect("second leader stamped");
    assert!(
        last_first < first_second,
        "reconciles overlapped: first leader's last at {last_first}, second's first at {first_second}"
    );
    let elected = timestamp(&standby.wait_log("became the leader"));
    assert!(
        *last_first < elected,
        "the second replica led only after the first stopped reconciling"
    );
    let lease = pair.leases.get(LEASE).await.expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(
        spec.lease_transitions,
        Some(1),
        "one transition: first leader to second"
    );
    drop(pair.a);
    drop(pair.b);
    pair.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_reconciles_and_the_other_takes_over_when_it_is_stopped_with_sigterm() {
    failover("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_leaders_lease_expires_and_the_standby_takes_over_without_overlap() {
    failover("KILL").await;
}

fn election(identity: &str) -> kubewasm::leader::LeaderConfig {
    kubewasm::leader::LeaderConfig {
        namespace: "default".into(),
        name: "elector-test".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_elector_renews_another_never_acquires_and_takes_over_after_a_release() {
    use kubewasm::leader::LeaderElector;
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = support::cluster::client_for(&server);
    let a = LeaderElector::new(client.clone(), election("a")).expect("elector a");
    let b = LeaderElector::new(client.clone(), election("b")).expect("elector b");
    let leading = a.acquire().await;
    // Two lease durations of renewals by a: b keeps waiting.
    let attempt = tokio::time::timeout(Duration::from_secs(6), b.acquire()).await;
    assert!(attempt.is_err(), "b acquired a lease that a kept renewing");
    assert!(!leading.is_lost());
    leading.release().await.expect("release");
    let b_leads = tokio::time::timeout(Duration::from_secs(30), b.acquire())
        .await
        .expect("b takes over a released lease");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let spec = leases
        .get("elector-test")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    b_leads.release().await.expect("release");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires_for_others() {
    use kubewasm::leader::LeaderElector;
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = support::cluster::client_for(&server);
    let a = LeaderElector::new(client.clone(), election("a")).expect("elector a");
    let mut leading = a.acquire().await;
    // Every request fails for a while: a cannot renew.
    server
        .faults()
        .fail_next(40, kubewasm_apiserver::Failure::ServerError);
    tokio::time::timeout(Duration::from_secs(30), leading.lost())
        .await
        .expect("a steps down when it cannot renew");
    let stepped_down = jiff::Timestamp::now();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease = support::eventually("the lease to be readable again", || async {
        leases.get("elector-test").await.ok()
    })
    .await;
    let spec = lease.spec.expect("spec");
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some("a"),
        "a did not release"
    );
    let renewed = spec.renew_time.expect("renewTime").0;
    let expires = renewed + jiff::SignedDuration::from_secs(3);
    assert!(
        stepped_down < expires,
        "a stepped down at {stepped_down}, after its lease (renewed {renewed}) expired for others"
    );
    // Another elector waits for the lease to expire on its own clock before taking over.
    let b = LeaderElector::new(client, election("b")).expect("elector b");
    let started = std::time::Instant::now();
    let b_leads = tokio::time::timeout(Duration::from_secs(30), b.acquire())
        .await
        .expect("b takes over an expired lease");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "b waited a full lease duration after first seeing a's lease"
    );
    b_leads.release().await.expect("release");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_api_server_stops_answering_exits_and_the_standby_takes_over() {
    let mut pair = start_pair().await;
    let (a_leads, _) = leader_of(&pair).await;
    create_configmap(&pair.cms, "before").await;
    support::eventually("before to be stamped", || async {
        stamped(&pair.cms, "before").await.then_some(())
    })
    .await;
    // The leader's reconcile of it has ended (it logs after its last call): slowing the server
    // before that would leave the reconcile hanging on a call, and nothing stamped in its log.
    wait_stamp_logged(if a_leads { &pair.a } else { &pair.b }, "before");
    // Every request now takes 10 s: the leader cannot renew within its 2 s renew deadline.
    pair.server.faults().set_latency(Duration::from_secs(10));
    let status = if a_leads {
        pair.a.wait_exit()
    } else {
        pair.b.wait_exit()
    };
    pair.server.faults().set_latency(Duration::ZERO);
    let (leader, standby) = if a_leads {
        (&pair.a, &pair.b)
    } else {
        (&pair.b, &pair.a)
    };
    assert_eq!(
        status.code(),
        Some(1),
        "a leader that lost its lease exits with an error\n{}",
        leader.dump()
    );
    let lost = timestamp(
        &leader.wait_log("leader election lost; exiting so that only the new leader reconciles"),
    );
    let standby_identity = standby.identity();
    support::eventually("the standby to take the lease over", || async {
        holder(&pair.leases)
            .await
            .filter(|h| *h == standby_identity)
    })
    .await;
    let elected = timestamp(&standby.wait_log("became the leader"));
    assert!(
        lost < elected,
        "the old leader stopped before the new one led"
    );
    create_configmap(&pair.cms, "after").await;
    support::eventually("after to be stamped", || async {
        stamped(&pair.cms, "after").await.then_some(())
    })
    .await;
    wait_stamp_logged(standby, "after");
    let last_old = stamps(leader)
        .into_iter()
        .max()
        .expect("old leader stamped");
    let first_new = stamps(standby)
        .into_iter()
        .min()
        .expect("new leader stamped");
    assert!(last_old < first_new, "reconciles overlapped");
    drop(pair.a);
    drop(pair.b);
    pair.server.shutdown().await;
}
