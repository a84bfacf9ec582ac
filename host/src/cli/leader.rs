//! Flags and glue for running in a cluster: leader election, the health/metrics endpoints and a
//! bounded, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::Manager;
use kubewasm::leader::{LeaderConfig, LeaderElector, Leadership, ReplicaState, default_identity};
use kubewasm::serve::{Health, Routes, serve};

use super::common::parse_duration;

/// Leader election: several replicas run, exactly one reconciles.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaderArgs {
    /// Elect a leader on a coordination.k8s.io Lease so that only one replica reconciles
    /// (`--leader-elect=false` to turn off, e.g. for a single replica).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// Namespace of the Lease [default: the pod's namespace, else "default"].
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, default_value = "kubewasm")]
    pub leader_election_id: String,

    /// How long a Lease stays valid after its last renewal (for the other replicas).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    pub lease_duration: Duration,

    /// How long the leader keeps reconciling without a successful renewal; it then exits
    /// (before the Lease can expire for the others).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub renew_deadline: Duration,

    /// How often to try to acquire or renew the Lease.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub retry_period: Duration,

    /// A standby starts its plugins while it waits for the Lease: caches list, watch and sync,
    /// queues fill, only the workers wait; on winning the Lease they start at once, with no
    /// re-list (`--warm-standby=false`: a standby only compiles its plugins and starts them once
    /// elected).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub warm_standby: bool,

    /// Shard keys across replicas on the ring of this name instead of electing a leader: every
    /// replica holds a membership Lease labelled kubewasm.dev/ring=RING (in the leader election
    /// namespace, with the same durations) and reconciles only the keys a consistent-hash ring
    /// over the live members gives it.
    #[arg(long, value_name = "RING", conflicts_with = "leader_elect")]
    pub shards: Option<String>,
}

impl LeaderArgs {
    /// The sharding settings, when `--shards` is given.
    pub fn shard_config(&self) -> Option<kubewasm::shard::ShardConfig> {
        let ring = self.shards.clone()?;
        Some(kubewasm::shard::ShardConfig {
            namespace: self
                .leader_election_namespace
                .clone()
                .unwrap_or_else(in_cluster_namespace),
            ring,
            identity: default_identity(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        })
    }

    fn config(&self) -> LeaderConfig {
        LeaderConfig {
            namespace: self
                .leader_election_namespace
                .clone()
                .unwrap_or_else(in_cluster_namespace),
            name: self.leader_election_id.clone(),
            identity: default_identity(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

/// The service account's namespace when running in a pod, else "default".
fn in_cluster_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// The probe and metrics endpoints, and how long a shutdown may take.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where to serve /healthz and /readyz ("off" to disable).
    #[arg(long, default_value = "0.0.0.0:8081", value_parser = parse_addr)]
    pub health_addr: Listen,

    /// Where to serve /metrics in Prometheus text ("off" to disable; may equal --health-addr).
    #[arg(long, default_value = "0.0.0.0:8080", value_parser = parse_addr)]
    pub metrics_addr: Listen,

    /// How long a shutdown (SIGTERM, Ctrl-C) waits for reconciles in flight before exiting anyway.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub graceful_shutdown_timeout: Duration,
}

/// An address to listen on, or none ("off").
#[derive(Debug, Clone, Copy)]
pub struct Listen(pub Option<SocketAddr>);

fn parse_addr(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|e| format!("{text:?} is not an address like 0.0.0.0:8081: {e}"))
}

/// Starts the endpoints the arguments ask for: probes on --health-addr, /metrics on
/// --metrics-addr (one server when both addresses are equal).
///
/// # Errors
/// When an address cannot be bound.
pub async fn serve_endpoints(
    args: &ServeArgs,
    manager: &Manager,
    health: &Health,
) -> anyhow::Result<()> {
    let (probes, metrics) = (args.health_addr.0, args.metrics_addr.0);
    let mut servers: Vec<(SocketAddr, Routes)> = Vec::new();
    if let Some(addr) = probes {
        servers.push((
            addr,
            Routes {
                probes: true,
                metrics: metrics == Some(addr),
            },
        ));
    }
    if let Some(addr) = metrics
        && probes != Some(addr)
    {
        servers.push((
            addr,
            Routes {
                probes: false,
                metrics: true,
            },
        ));
    }
    for (addr, routes) in servers {
        serve(addr, manager.clone(), health.clone(), routes)
            .await
            .with_context(|| format!("serving {} on {addr}", routes.paths()))?;
    }
    Ok(())
}

/// Waits to become the leader (when election is on); `None` when election is off. Meanwhile
/// the replica is a warm or cold standby (by `--warm-standby`) for /readyz and the metrics, and
/// leading once elected.
///
/// # Errors
/// When the settings are invalid.
pub async fn elect(
    args: &LeaderArgs,
    client: kube::Client,
    manager: &Manager,
    health: &Health,
) -> anyhow::Result<Option<Leadership>> {
    if !args.leader_elect {
        tracing::info!("leader election is off: this replica reconciles");
        return Ok(None);
    }
    let elector = LeaderElector::new(client, args.config()).context("leader election")?;
    let identity = elector.identity().to_owned();
    let standby = if args.warm_standby {
        ReplicaState::WarmStandby
    } else {
        ReplicaState::ColdStandby
    };
    set_state(manager, health, standby);
    manager.metrics().set_leader(&identity, false);
    tracing::info!(
        identity = %identity,
        lease = %format!("{}/{}", elector.config().namespace, elector.config().name),
        standby = standby.as_str(),
        "waiting to become the leader"
    );
    let leadership = elector.acquire().await;
    manager.metrics().set_leader(&identity, true);
    Ok(Some(leadership))
}

/// Says which part this replica plays on /readyz and in `kubewasm_leader_state`.
pub fn set_state(manager: &Manager, health: &Health, state: ReplicaState) {
    health.set_state(state);
    manager.metrics().set_replica_state(state);
}

/// What ended the run.
pub enum Ended {
    /// SIGTERM or Ctrl-C.
    Signal,
    /// The Lease could not be renewed.
    LostLeadership,
}

/// Waits for a signal or, when leading, the loss of leadership.
pub async fn wait_for_end(
    signal: &mut tokio::task::JoinHandle<()>,
    leadership: Option<&mut Leadership>,
) -> Ended {
    match leadership {
        Some(l) => tokio::select! {
            _ = signal => Ended::Signal,
            () = l.lost() => Ended::LostLeadership,
        },
        None => {
            let _ = signal.await;
            Ended::Signal
        }
    }
}

/// Stops reconciling at once when leadership is lost: exits the process (as controller-runtime
/// does), so no reconcile of this replica can overlap the next leader's. A warm leader exits too
/// rather than closing its gate again: a reconcile in flight cannot be stopped halfway, and a
/// restarted process comes back as a warm standby with fresh caches.
pub fn exit_on_lost_leadership() -> ! {
    tracing::error!("leader election lost; exiting so that only the new leader reconciles");
    std::process::exit(1)
}

/// Graceful shutdown: not ready, no new keys, reconciles in flight finish (bounded), the Lease
/// is released so a standby takes over at once.
pub async fn shut_down(
    manager: &Manager,
    health: &Health,
    leadership: Option<Leadership>,
    timeout: Duration,
) {
    health.set_stopping();
    if tokio::time::timeout(timeout, manager.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "reconciles still running after {timeout:?}; exiting without waiting for them"
        );
    } else {
        tracing::info!("every reconcile in flight has finished");
    }
    if let Some(l) = leadership {
        manager.metrics().set_leader(l.identity(), false);
        if let Err(e) = l.release().await {
            tracing::warn!("{e}; the lease will expire on its own");
        }
    }
}
