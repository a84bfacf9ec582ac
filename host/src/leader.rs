//! [`LeaderElector`]: leader election on a `coordination.k8s.io/v1` Lease, as client-go does it.
//!
//! One replica holds the Lease (its `holderIdentity`) and renews it every retry period; the others
//! retry every retry period and take the Lease over only when they have seen it unchanged for a
//! whole lease duration, measured on their own clock from when they observed it (so clock skew
//! between replicas does not matter). Every write carries the Lease's `resourceVersion`, so two
//! replicas can never both win the same round (the API server answers 409 Conflict to the loser).
//!
//! A leader that has not renewed for the renew deadline (shorter than the lease duration) steps
//! down: [`Leadership::lost`] resolves, and the host stops reconciling at once, before any other
//! replica can consider the Lease expired.
//!
//! A standby is *warm* (the default of `kubewasm run`) or *cold*. A warm standby starts its
//! plugins while it waits: informers list and watch, the pump fills each plugin's queue, and only
//! the workers wait behind a closed reconcile gate (`gate.rs`); winning the Lease opens the gate, so the
//! first reconcile needs no list request. A cold standby only compiles its plugins and starts
//! them (informers first) once elected. [`ReplicaState`] names the three states for readiness
//! and metrics.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::Instant;

/// Which part a replica plays, as `/readyz` and the `kubewasm_leader_state` metric report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// It reconciles: it holds the Lease (or leader election is off).
    Leading,
    /// It waits for the Lease with its plugins started: caches synced and queues filled, only the
    /// workers wait.
    WarmStandby,
    /// It waits for the Lease with its plugins compiled but not started (no cache, no queue).
    ColdStandby,
}

impl ReplicaState {
    /// Every state, in the order metrics list them.
    pub const ALL: [ReplicaState; 3] = [
        ReplicaState::Leading,
        ReplicaState::WarmStandby,
        ReplicaState::ColdStandby,
    ];

    /// The name metrics and logs use: `leading`, `warm_standby`, `cold_standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Leading => "leading",
            ReplicaState::WarmStandby => "warm_standby",
            ReplicaState::ColdStandby => "cold_standby",
        }
    }
}

/// Why a leader election call failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The settings cannot work (e.g. the renew deadline is not shorter than the lease duration).
    #[error("invalid leader election settings: {0}")]
    Config(String),
    /// The API server refused or failed a Lease request.
    #[error("failed to {action} lease {namespace}/{name}: {source}")]
    Api {
        /// What was attempted (get, create, update).
        action: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
}

/// Leader election settings; `Default` gives controller-runtime's (15 s / 10 s / 2 s).
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (the election id).
    pub name: String,
    /// This replica's identity (written to `holderIdentity`).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal, for the other replicas.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            name: "kubewasm".into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaderConfig {
    /// Checks that the durations can work: retry < renew deadline < lease duration.
    ///
    /// # Errors
    /// [`LeaderError::Config`] saying which bound is violated.
    pub fn validate(&self) -> Result<(), LeaderError> {
        if self.renew_deadline >= self.lease_duration {
            return Err(LeaderError::Config(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                self.renew_deadline, self.lease_duration
            )));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(LeaderError::Config(format!(
                "the retry period ({:?}) must be positive and shorter than the renew deadline ({:?})",
                self.retry_period, self.renew_deadline
            )));
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(LeaderError::Config(
                "the lease duration must be at least 1s (the Lease counts whole seconds)".into(),
            ));
        }
        if self.identity.is_empty() {
            return Err(LeaderError::Config("the identity must not be empty".into()));
        }
        Ok(())
    }
}

/// `$POD_NAME` (or `$HOSTNAME`, or `kubewasm`) plus a random suffix, so two processes on one host
/// (or a restarted pod with the same name) never share an identity.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "kubewasm".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{base}_{}", &suffix[..8])
}

/// Runs elections for one replica. Cheap to clone.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a standby last saw of the Lease and when (on its own clock).
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
    at: Instant,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Leading,
    /// Someone else holds a valid Lease.
    Held,
}

/// Held while this replica leads; [`Leadership::lost`] resolves when it no longer does.
#[derive(Debug)]
pub struct Leadership {
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    elector: LeaderElector,
}

impl Leadership {
    /// Resolves when the leader could not renew within the renew deadline. Stop reconciling at
    /// once: another replica may acquire the Lease a (lease duration - renew deadline) later.
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// This replica's identity (the Lease's `holderIdentity` while it leads).
    pub fn identity(&self) -> &str {
        self.elector.identity()
    }

    /// Whether leadership has been lost.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Stops renewing and gives the Lease up (clears `holderIdentity`), so a standby can take over
    /// at its next retry instead of waiting for the Lease to expire.
    ///
    /// # Errors
    /// [`LeaderError::Api`] when the Lease could not be read or written; it then expires normally.
    pub async fn release(self) -> Result<(), LeaderError> {
        self.task.abort();
        if self.is_lost() {
            return Ok(());
        }
        self.elector.release().await
    }
}

impl LeaderElector {
    /// An elector for the Lease `config.namespace`/`config.name`.
    ///
    /// # Errors
    /// [`LeaderError::Config`] when the durations cannot work.
    pub fn new(client: kube::Client, config: LeaderConfig) -> Result<Self, LeaderError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        })
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// The settings.
    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    fn api_error(&self, action: &'static str, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            action,
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source: Box::new(source),
        }
    }

    /// Tries every retry period until this replica holds the Lease, then renews it in the
    /// background. Never returns while another replica keeps its Lease valid.
    pub async fn acquire(&self) -> Leadership {
        let mut observed: Option<Observed> = None;
        loop {
            match self.try_acquire_or_renew(&mut observed, false).await {
                Ok(Attempt::Leading) => break,
                Ok(Attempt::Held) => {}
                Err(e) => tracing::warn!("leader election: {e}"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
        tracing::info!(
            identity = %self.config.identity,
            lease = %format!("{}/{}", self.config.namespace, self.config.name),
            "became the leader"
        );
        let (tx, rx) = watch::channel(false);
        let elector = self.clone();
        let task = tokio::spawn(async move { elector.renew_loop(tx).await });
        Leadership {
            lost: rx,
            task,
            elector: self.clone(),
        }
    }

    /// Renews every retry period; signals loss when no renewal succeeded within the renew
    /// deadline, counted from the start of the last successful renewal (the time it wrote).
    async fn renew_loop(&self, lost: watch::Sender<bool>) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = last_renewed + self.config.renew_deadline;
            let started = Instant::now();
            let Some(remaining) = deadline.checked_duration_since(started) else {
                break;
            };
            let mut observed = None;
            match tokio::time::timeout(remaining, self.try_acquire_or_renew(&mut observed, true))
                .await
            {
                Ok(Ok(Attempt::Leading)) => last_renewed = started,
                Ok(Ok(Attempt::Held)) => {
                    tracing::error!("another replica holds the lease; stepping down");
                    break;
                }
                Ok(Err(e)) => tracing::warn!("failed to renew the lease: {e}"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        tracing::error!(
            identity = %self.config.identity,
            "leadership lost: the lease was not renewed within the renew deadline"
        );
        let _ = lost.send(true);
    }

    /// One round: create the Lease if it does not exist, renew it if we hold it, take it over
    /// if it is free or expired. `renewing` says we believe we hold it (so it is renewed even
    /// without a prior observation).
    async fn try_acquire_or_renew(
        &self,
        observed: &mut Option<Observed>,
        renewing: bool,
    ) -> Result<Attempt, LeaderError> {
        let now = MicroTime(jiff::Timestamp::now());
        let duration_secs =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error("get", e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Held),
                Err(e) => Err(self.api_error("create", e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        if !ours {
            if renewing {
                return Ok(Attempt::Held);
            }
            // Someone else's (or nobody's) Lease: valid until we have seen it unchanged for its
            // duration on our clock.
            let changed = observed.as_ref().is_none_or(|o| {
                o.holder != holder
                    || o.renew_time != spec.renew_time
                    || o.resource_version != lease.metadata.resource_version
            });
            if changed {
                *observed = Some(Observed {
                    holder: holder.clone(),
                    renew_time: spec.renew_time.clone(),
                    resource_version: lease.metadata.resource_version.clone(),
                    at: Instant::now(),
                });
            }
            let their_duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.config.lease_duration, Duration::from_secs);
            let seen_at = observed.as_ref().map_or_else(Instant::now, |o| o.at);
            if holder.is_some() && Instant::now() < seen_at + their_duration {
                return Ok(Attempt::Held);
            }
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            if let Some(previous) = &holder {
                tracing::info!(previous = %previous, "the lease expired; taking it over");
            }
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(now);
        // `lease` carries the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Held),
            Err(e) => Err(self.api_error("update", e)),
        }
    }

    /// Gives the Lease up if this replica holds it: clears the holder and sets a 1 s duration.
    async fn release(&self) -> Result<(), LeaderError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error("get", e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.api_error("update", e))?;
        tracing::info!(identity = %self.config.identity, "released the lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, renew: u64, retry: u64) -> LeaderConfig {
        LeaderConfig {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
            ..LeaderConfig::default()
        }
    }

    #[test]
    fn defaults_are_controller_runtimes_and_valid() {
        let c = LeaderConfig::default();
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_renew_deadline_not_shorter_than_the_lease_is_refused() {
        let e = config(10, 10, 2).validate().unwrap_err();
        assert!(e.to_string().contains("renew deadline"), "{e}");
        let e = config(15, 10, 10).validate().unwrap_err();
        assert!(e.to_string().contains("retry period"), "{e}");
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        assert_ne!(default_identity(), default_identity());
    }
}
