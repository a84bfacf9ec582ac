//! Leader election on the real Lease API: two `kubewasm run` processes (as the same
//! ServiceAccount, with the RBAC `kubewasm rbac` generated) elect one holder on a
//! `coordination.k8s.io/v1` Lease of the real kube-apiserver; the leader is killed with SIGKILL;
//! the standby takes over once the Lease expires, within one lease duration of the leader's
//! last renewal; there are never two holders, and their reconciles never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use parking_lot::Mutex;

use crate::support;
use crate::support::eventually;
use crate::support::hello::{self, create_configmap};
use crate::support::process::{Host, stamps, timestamp};
use crate::support::real::{Deployment, RealCluster};

const LEASE: &str = "kubewasm";
/// Lease timings short enough for a test (the defaults are 15 s / 10 s / 2 s): those of
/// [`Deployment::quick_election`].
const LEASE_DURATION: Duration = Duration::from_secs(4);

/// One observation of the Lease: holder, renewTime, acquireTime, transitions.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    holder: Option<String>,
    renewed: Option<jiff::Timestamp>,
    acquired: Option<jiff::Timestamp>,
    transitions: Option<i32>,
}

fn seen(lease: &Lease) -> Seen {
    let spec = lease.spec.clone().unwrap_or_default();
    Seen {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        renewed: spec.renew_time.map(|t| t.0),
        acquired: spec.acquire_time.map(|t| t.0),
        transitions: spec.lease_transitions,
    }
}

/// Watches the Lease from the side for the whole test: every distinct state, in order.
fn record_lease(leases: Api<Lease>) -> (Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let history = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let sink = Arc::clone(&history);
    let task = tokio::spawn(async move {
        loop {
            if let Ok(Some(lease)) = leases.get_opt(LEASE).await {
                let now = seen(&lease);
                let mut h = sink.lock();
                if h.last() != Some(&now) {
                    h.push(now);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (history, task)
}

async fn all_stamped(cms: &Api<ConfigMap>, prefix: &str) {
    for i in 0..3 {
        hello::wait_stamped(cms, &format!("{prefix}-{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_real_lease_the_standby_takes_over_a_killed_leader_within_one_lease_duration() {
    let c = RealCluster::shared("real-leader").await;
    let policy = format!("default:\n  namespaces: [{}]\n", c.namespace);
    let deployment = c.deploy(&[support::example("hello")], Some(&policy)).await;
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), &c.namespace);
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    let (history, recorder) = record_lease(leases.clone());
    let args = deployment.args(&Deployment::quick_election(LEASE));
    let mut a = Host::start("a", &deployment.plugins, &deployment.kubeconfig, &args);
    let mut b = Host::start("b", &deployment.plugins, &deployment.kubeconfig, &args);
    let (ia, ib) = (a.identity(), b.identity());
    let first = eventually("one replica to hold the Lease", || {
        hello::holder(&leases, LEASE)
    })
    .await;
    assert!(first == ia || first == ib, "{first} is one of {ia}, {ib}");
    let a_leads = first == ia;

    for i in 0..3 {
        create_configmap(&cms, &format!("before-{i}")).await;
    }
    all_stamped(&cms, "before").await;
    {
        let (leader, standby) = if a_leads { (&a, &b) } else { (&b, &a) };
        leader.wait_log_where("its stamps", |m| {
            m.starts_with("stamped ") && m.contains("before-2")
        });
        assert!(
            stamps(standby).is_empty(),
            "the standby reconciled while the other led"
        );
        leader.signal("KILL");
    }
    let killed = Instant::now();
    if a_leads {
        a.wait_exit();
    } else {
        b.wait_exit();
    }
    let (leader, standby) = if a_leads { (&a, &b) } else { (&b, &a) };
    let second = if a_leads { ib.clone() } else { ia.clone() };
    eventually("the standby to take the Lease over", || async {
        hello::holder(&leases, LEASE).await.filter(|h| *h == second)
    })
    .await;
    let took = killed.elapsed();
    for i in 0..3 {
        create_configmap(&cms, &format!("after-{i}")).await;
    }
    all_stamped(&cms, "after").await;
    standby.wait_log_where("its stamps", |m| {
        m.starts_with("stamped ") && m.contains("after-2")
    });
    recorder.abort();

    // Never two holders: the Lease went from the first holder to the second once, and the
    // second acquired it only after the first's last renewal had expired.
    let history = history.lock().clone();
    let holders: Vec<&str> =
        history
            .iter()
            .filter_map(|s| s.holder.as_deref())
            .fold(Vec::new(), |mut v, h| {
                if v.last() != Some(&h) {
                    v.push(h);
                }
                v
            });
    assert_eq!(holders, [first.as_str(), second.as_str()], "{history:#?}");
    let last_renewal = history
        .iter()
        .filter(|s| s.holder.as_deref() == Some(first.as_str()))
        .filter_map(|s| s.renewed)
        .max()
        .expect("the first holder renewed");
    let taken = history
        .iter()
        .find(|s| s.holder.as_deref() == Some(second.as_str()))
        .and_then(|s| s.acquired)
        .expect("the second holder's acquireTime");
    let lease = jiff::SignedDuration::try_from(LEASE_DURATION).expect("a duration");
    assert!(
        taken >= last_renewal + lease,
        "the standby acquired at {taken}, before the first holder's lease (renewed {last_renewal}) expired"
    );
    // Within one lease duration of the last renewal, give or take the standby's retry period
    // and a margin for a loaded machine.
    assert!(
        taken <= last_renewal + lease + jiff::SignedDuration::from_secs(5),
        "the standby took {} after the last renewal to take over",
        taken - last_renewal
    );
    assert_eq!(history.last().and_then(|s| s.transitions), Some(1));
    // Reconciles never overlapped: every stamp of the first precedes the second's election.
    let elected = timestamp(&standby.wait_log("became the leader"));
    let last_first = stamps(leader)
        .into_iter()
        .max()
        .expect("the first leader stamped");
    let first_second = stamps(standby)
        .into_iter()
        .min()
        .expect("the second leader stamped");
    assert!(last_first < elected && elected <= first_second);
    eprintln!("takeover {took:?} after SIGKILL");
    drop(a);
    drop(b);
    c.finish().await;
}
