//! Keys sharded across replicas (`kubewasm run --shards=RING`): every replica holds its own
//! membership Lease labelled `kubewasm.dev/ring=RING`, a consistent-hash [`Ring`] over the live
//! members assigns every key one owner, and a replica reconciles only its own keys. Replicas
//! coordinate only through the API server: their Leases.
//!
//! # Handoff
//! A ring *generation* is the set of live members ([`Ring::generation`]). When a replica sees the
//! members change it stops starting keys at once, waits until none of its reconciles in flight
//! is of a key it no longer owns (drained), and then acknowledges the new generation in its
//! Lease (annotation [`ACK_ANNOTATION`]). It starts keys again only once every member of the
//! generation (itself included) acknowledges it. So a key that moves from A to B is started by
//! B only after A acknowledged: A had stopped starting it and drained it. A member that leaves
//! without a word (killed, partitioned) leaves the ring when its Lease has not changed for its
//! lease duration (measured on the observer's clock, as leader election does); it stopped
//! reconciling before that, since a replica that cannot renew its Lease within the renew deadline
//! exits. Every reconcile pauses while a generation settles (about two retry periods).
//!
//! Keys this replica does not own are *parked* (remembered per plugin, not reconciled); when a
//! generation settles, the parked keys it now owns are queued again. Every replica caches every
//! object (full cache, keys filtered), so every replica sees every event: a key's last event is
//! either reconciled by its owner or parked here, and nothing is lost when it moves.

mod ring;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kubewasm_controller::ObjectKey;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

pub use ring::{Ring, VIRTUAL_NODES, hash, key_hash};

/// The label naming a membership Lease's ring.
pub const RING_LABEL: &str = "kubewasm.dev/ring";
/// The annotation where a member acknowledges the generation it has drained to.
pub const ACK_ANNOTATION: &str = "kubewasm.dev/ring-drained";

/// Why joining or running a ring failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The settings cannot work.
    #[error("invalid sharding settings: {0}")]
    Config(String),
    /// The API server refused or failed a Lease request.
    #[error("failed to {action} the ring's membership Lease {name}: {source}")]
    Api {
        /// What was attempted.
        action: &'static str,
        /// The Lease's name.
        name: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
}

/// Sharding settings; the durations mean what they mean for leader election.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Namespace of the membership Leases.
    pub namespace: String,
    /// The ring's name (a DNS label, the value of [`RING_LABEL`]).
    pub ring: String,
    /// This replica's identity (its Lease's `holderIdentity`, its name on the ring).
    pub identity: String,
    /// How long a member stays on the ring after its last renewal, for the others.
    pub lease_duration: Duration,
    /// How long a member keeps reconciling without a successful renewal (it then exits).
    pub renew_deadline: Duration,
    /// How often a member renews its Lease and reads the ring's.
    pub retry_period: Duration,
}

impl ShardConfig {
    /// Checks the ring name and that retry < renew deadline < lease duration.
    ///
    /// # Errors
    /// [`ShardError::Config`] saying what is wrong.
    pub fn validate(&self) -> Result<(), ShardError> {
        let ring = &self.ring;
        let label_ok = !ring.is_empty()
            && ring.len() <= 63
            && ring
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ring.starts_with('-')
            && !ring.ends_with('-');
        if !label_ok {
            return Err(ShardError::Config(format!(
                "the ring name {ring:?} must be a DNS label: 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            )));
        }
        crate::leader::LeaderConfig {
            namespace: self.namespace.clone(),
            name: ring.clone(),
            identity: self.identity.clone(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
        .validate()
        .map_err(|e| ShardError::Config(e.to_string()))
    }

    /// The name of this replica's membership Lease: `RING-IDENTITY`, lowercased, with every
    /// character a Lease name cannot hold turned into `-`.
    pub fn lease_name(&self) -> String {
        let mut name: String = format!("{}-{}", self.ring, self.identity)
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(253);
        while name.ends_with(['-', '.']) {
            name.pop();
        }
        name
    }
}

/// What a replica knows of its ring; behind [`Shards`]' lock.
#[derive(Debug, Default)]
struct State {
    ring: Ring,
    /// Whether every member acknowledged `ring`: only then do keys start.
    settled: bool,
    /// Reconciles in flight, by key hash.
    in_flight: HashMap<u64, usize>,
    /// Generations settled so far.
    settles: u64,
    /// Set when the membership was lost: nothing starts any more.
    stopped: bool,
}

impl State {
    fn owns(&self, me: &str, key: u64) -> bool {
        self.ring.owner(key) == Some(me)
    }
}

/// One replica's view of its ring, which the workers ask before every reconcile
/// ([`Shards::admit`]). Cheap to clone; clones share the view.
#[derive(Clone)]
pub struct Shards {
    identity: Arc<str>,
    state: Arc<Mutex<State>>,
    /// Bumped on every change of `state` (admits and the drain wait on it).
    changed: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Shards")
            .field("identity", &self.identity)
            .field("members", &state.ring.members())
            .field("settled", &state.settled)
            .finish_non_exhaustive()
    }
}

/// Held while a reconcile of an owned key runs: the drain waits for it.
#[derive(Debug)]
pub struct Owned {
    shards: Shards,
    key: u64,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let mut state = self.shards.state.lock();
        if let Some(n) = state.in_flight.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                state.in_flight.remove(&self.key);
            }
        }
        drop(state);
        self.shards.bump();
    }
}

/// A snapshot of a replica's ring, for metrics and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingView {
    /// This replica's identity.
    pub identity: String,
    /// The live members, sorted.
    pub members: Vec<String>,
    /// The generation ([`Ring::generation`]).
    pub generation: String,
    /// Whether every member acknowledged it (keys start only then).
    pub settled: bool,
    /// Generations settled since the start (the first one included).
    pub settles: u64,
}

impl Shards {
    /// A view with no member yet: nothing starts until the first generation settles.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: Arc::from(identity.into()),
            state: Arc::new(Mutex::new(State::default())),
            changed: Arc::new(watch::Sender::new(0)),
        }
    }

    /// This replica's identity on the ring.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A snapshot of the ring.
    pub fn view(&self) -> RingView {
        let state = self.state.lock();
        RingView {
            identity: self.identity.to_string(),
            members: state.ring.members().to_vec(),
            generation: state.ring.generation(),
            settled: state.settled,
            settles: state.settles,
        }
    }

    /// Whether this replica owns the key of `key_hash` in the current ring (settled or not).
    pub fn owns(&self, key_hash: u64) -> bool {
        self.state.lock().owns(&self.identity, key_hash)
    }

    /// Waits until the ring is settled, then: `Some` (hold it while the reconcile runs) when
    /// this replica owns the key, else calls `park` (under the ring's lock, so a settle that
    /// gives the key here cannot slip between the decision and the parking) and returns `None`.
    pub async fn admit(&self, key_hash: u64, park: impl FnOnce()) -> Option<Owned> {
        loop {
            let mut changed = {
                let mut state = self.state.lock();
                if state.settled && !state.stopped {
                    if state.owns(&self.identity, key_hash) {
                        *state.in_flight.entry(key_hash).or_default() += 1;
                        return Some(Owned {
                            shards: self.clone(),
                            key: key_hash,
                        });
                    }
                    park();
                    return None;
                }
                self.changed.subscribe()
            };
            // The sender lives as long as `self`.
            let _ = changed.changed().await;
        }
    }

    /// Resolves after the next settled generation (at once if one settled after `seen`);
    /// returns the count of settled generations, to pass as `seen` next time.
    pub async fn settled_after(&self, seen: u64) -> u64 {
        loop {
            let mut changed = {
                let state = self.state.lock();
                if state.settles > seen && state.settled {
                    return state.settles;
                }
                self.changed.subscribe()
            };
            let _ = changed.changed().await;
        }
    }

    /// Takes the members seen live; a change unsettles the ring (no key starts until every
    /// member acknowledged the new generation). Returns whether the members changed.
    fn observe(&self, members: Vec<String>) -> bool {
        let ring = Ring::new(members);
        let mut state = self.state.lock();
        if state.ring == ring {
            return false;
        }
        tracing::info!(
            identity = %self.identity,
            members = ?ring.members(),
            generation = %ring.generation(),
            "the ring's members changed; draining the keys this replica no longer owns"
        );
        state.ring = ring;
        state.settled = false;
        drop(state);
        self.bump();
        true
    }

    /// Whether no reconcile in flight is of a key this replica does not own in the current ring.
    fn drained(&self) -> bool {
        let state = self.state.lock();
        state
            .in_flight
            .keys()
            .all(|k| state.owns(&self.identity, *k))
    }

    /// Marks `generation` settled if it is still the current one.
    fn settle(&self, generation: &str) {
        let mut state = self.state.lock();
        if state.settled || state.ring.generation() != generation {
            return;
        }
        state.settled = true;
        state.settles += 1;
        tracing::info!(
            identity = %self.identity,
            members = ?state.ring.members(),
            generation,
            "every member acknowledged the ring; reconciling this replica's keys"
        );
        drop(state);
        self.bump();
    }

    /// Stops starting keys for good (the membership was lost).
    fn stop(&self) {
        self.state.lock().stopped = true;
        self.bump();
    }
}

/// Keys a plugin's workers passed over because another replica owns them, by key hash; queued
/// again when a settled generation gives them to this replica.
#[derive(Debug, Default)]
pub struct Parked {
    keys: Mutex<HashMap<ObjectKey, u64>>,
}

impl Parked {
    /// Remembers `key` (of hash `key_hash`).
    pub fn park(&self, key: ObjectKey, key_hash: u64) {
        self.keys.lock().insert(key, key_hash);
    }

    /// Removes and returns the parked keys `shards` owns now.
    pub fn take_owned(&self, shards: &Shards) -> Vec<ObjectKey> {
        let state = shards.state.lock();
        let mut keys = self.keys.lock();
        let owned: Vec<ObjectKey> = keys
            .iter()
            .filter(|(_, h)| state.owns(&shards.identity, **h))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &owned {
            keys.remove(k);
        }
        owned
    }

    /// How many keys are parked.
    pub fn len(&self) -> usize {
        self.keys.lock().len()
    }

    /// Whether no key is parked.
    pub fn is_empty(&self) -> bool {
        self.keys.lock().is_empty()
    }
}

/// This replica's membership: its Lease renewed in the background. [`Membership::lost`]
/// resolves when it could not renew within the renew deadline.
#[derive(Debug)]
pub struct Membership {
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
    name: String,
}

impl Membership {
    /// Resolves when the Lease was not renewed within the renew deadline: stop reconciling at
    /// once (the others take this replica's keys a lease duration after its last renewal).
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|l| *l).await;
    }

    /// Leaves the ring: stops renewing and deletes the Lease, so the others take this replica's
    /// keys at their next read instead of after a lease duration. Call it once no reconcile runs.
    ///
    /// # Errors
    /// [`ShardError::Api`] when the Lease could not be deleted; it then expires on its own.
    pub async fn leave(self) -> Result<(), ShardError> {
        self.task.abort();
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(lease = %self.name, "left the ring");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(ShardError::Api {
                action: "delete",
                name: self.name,
                source: Box::new(e),
            }),
        }
    }
}

/// Joins the ring: creates this replica's membership Lease and keeps it renewed, reads the
/// ring's Leases every retry period, and drives `shards` (members, drain, acknowledgement,
/// settle) from them.
///
/// # Errors
/// [`ShardError::Config`] for bad settings, [`ShardError::Api`] when the Lease cannot be created.
pub async fn join(
    client: kube::Client,
    config: ShardConfig,
) -> Result<(Shards, Membership), ShardError> {
    config.validate()?;
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let member = Member {
        name: config.lease_name(),
        api: api.clone(),
        shards: Shards::new(config.identity.clone()),
        config,
    };
    member.renew("").await?;
    tracing::info!(
        identity = %member.config.identity,
        ring = %member.config.ring,
        lease = %format!("{}/{}", member.config.namespace, member.name),
        "joined the shard ring"
    );
    let (tx, rx) = watch::channel(false);
    let shards = member.shards.clone();
    let name = member.name.clone();
    let task = tokio::spawn(async move { member.run(tx).await });
    Ok((
        shards,
        Membership {
            lost: rx,
            task,
            api,
            name,
        },
    ))
}

/// The background side of a membership.
struct Member {
    config: ShardConfig,
    name: String,
    api: Api<Lease>,
    shards: Shards,
}

/// What this replica last saw of another member's Lease, and when (on its own clock).
struct Seen {
    resource_version: Option<String>,
    at: Instant,
}

impl Member {
    fn api_error(&self, action: &'static str, e: kube::Error) -> ShardError {
        ShardError::Api {
            action,
            name: self.name.clone(),
            source: Box::new(e),
        }
    }

    /// Writes this replica's Lease: holder, a fresh renew time and the acknowledged generation.
    async fn renew(&self, acked: &str) -> Result<(), ShardError> {
        let now = MicroTime(jiff::Timestamp::now());
        let seconds =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error("get", e))?;
        let mut lease = current.unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        lease
            .metadata
            .labels
            .get_or_insert_default()
            .insert(RING_LABEL.to_owned(), self.config.ring.clone());
        lease
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ACK_ANNOTATION.to_owned(), acked.to_owned());
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.acquire_time.get_or_insert_with(|| now.clone());
        spec.renew_time = Some(now);
        let result = if lease.metadata.resource_version.is_some() {
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map_err(|e| self.api_error("update", e))
        } else {
            self.api
                .create(&PostParams::default(), &lease)
                .await
                .map_err(|e| self.api_error("create", e))
        };
        result.map(drop)
    }

    /// The ring's live members and what each acknowledged. A Lease is live until it has not
    /// changed for its lease duration on this replica's clock; this replica counts as live.
    async fn members(
        &self,
        seen: &mut HashMap<String, Seen>,
    ) -> Result<Vec<(String, String)>, ShardError> {
        let leases = self
            .api
            .list(&ListParams::default().labels(&format!("{RING_LABEL}={}", self.config.ring)))
            .await
            .map_err(|e| self.api_error("list", e))?;
        let now = Instant::now();
        let mut live = Vec::new();
        let mut names = Vec::new();
        for lease in leases {
            let Some(name) = lease.metadata.name.clone() else {
                continue;
            };
            names.push(name.clone());
            let Some(spec) = lease.spec.as_ref() else {
                continue;
            };
            let Some(holder) = spec.holder_identity.clone().filter(|h| !h.is_empty()) else {
                continue;
            };
            let acked = lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ACK_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            if holder == self.config.identity {
                live.push((holder, acked));
                continue;
            }
            let entry = seen.entry(name).or_insert_with(|| Seen {
                resource_version: None,
                at: now,
            });
            if entry.resource_version != lease.metadata.resource_version {
                entry
                    .resource_version
                    .clone_from(&lease.metadata.resource_version);
                entry.at = now;
            }
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.config.lease_duration, Duration::from_secs);
            if now < entry.at + duration {
                live.push((holder, acked));
            }
        }
        seen.retain(|name, _| names.contains(name));
        Ok(live)
    }

    /// Renews and reads every retry period (sooner while a drain finishes); signals `lost` and
    /// stops when no renewal succeeded within the renew deadline.
    async fn run(self, lost: watch::Sender<bool>) {
        let mut seen = HashMap::new();
        let mut acked = String::new();
        let mut last_renewed = Instant::now();
        let mut changes = self.shards.changed.subscribe();
        loop {
            let draining = acked != self.shards.state.lock().ring.generation();
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                // While a drain is pending, a finished reconcile may complete it.
                _ = changes.changed(), if draining => {}
            }
            let deadline = last_renewed + self.config.renew_deadline;
            let started = Instant::now();
            let Some(remaining) = deadline.checked_duration_since(started) else {
                break;
            };
            match tokio::time::timeout(remaining, self.step(&mut seen, &mut acked)).await {
                Ok(Ok(())) => last_renewed = started,
                Ok(Err(e)) => tracing::warn!("shard ring: {e}"),
                Err(_) => {}
            }
            if Instant::now() >= last_renewed + self.config.renew_deadline {
                break;
            }
        }
        self.shards.stop();
        tracing::error!(
            identity = %self.config.identity,
            "ring membership lost: the lease was not renewed within the renew deadline"
        );
        let _ = lost.send(true);
    }

    /// One round: renew, read the members, acknowledge a drained generation, settle it once
    /// every member acknowledged it. Succeeds when the renewal did.
    async fn step(
        &self,
        seen: &mut HashMap<String, Seen>,
        acked: &mut String,
    ) -> Result<(), ShardError> {
        self.renew(acked).await?;
        let members = match self.members(seen).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("shard ring: {e}");
                return Ok(());
            }
        };
        self.shards
            .observe(members.iter().map(|(m, _)| m.clone()).collect());
        let generation = self.shards.state.lock().ring.generation();
        if *acked != generation && self.shards.drained() {
            self.renew(&generation).await?;
            tracing::info!(identity = %self.config.identity, generation = %generation, "drained; acknowledged the ring generation");
            acked.clone_from(&generation);
        }
        let everyone = members
            .iter()
            .all(|(m, a)| *m == self.config.identity || *a == generation);
        if *acked == generation && everyone {
            self.shards.settle(&generation);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ring: &str) -> ShardConfig {
        ShardConfig {
            namespace: "default".into(),
            ring: ring.into(),
            identity: "pod-1_ab12CD34".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Key hashes spread over the ring.
    fn keys() -> impl Iterator<Item = u64> {
        (0u64..).map(|i| hash(&i.to_le_bytes()))
    }

    #[test]
    fn ring_names_must_be_dns_labels() {
        assert!(config("workers").validate().is_ok());
        for bad in ["", "Workers", "a_b", "-a", &"a".repeat(64)] {
            let e = config(bad).validate().unwrap_err();
            assert!(e.to_string().contains("DNS label"), "{bad:?}: {e}");
        }
        let mut c = config("w");
        c.renew_deadline = c.lease_duration;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("renew deadline")
        );
    }

    #[test]
    fn lease_names_are_valid_names() {
        assert_eq!(config("workers").lease_name(), "workers-pod-1-ab12cd34");
    }

    #[tokio::test]
    async fn keys_start_only_on_a_settled_ring_and_only_when_owned() {
        let shards = Shards::new("a");
        let a_key = keys()
            .find(|k| Ring::new(["a".to_owned(), "b".to_owned()]).owner(*k) == Some("a"))
            .unwrap();
        let b_key = keys()
            .find(|k| Ring::new(["a".to_owned(), "b".to_owned()]).owner(*k) == Some("b"))
            .unwrap();
        // Nothing starts before the first generation settles.
        let waiting = tokio::spawn({
            let s = shards.clone();
            async move {
                s.admit(a_key, || panic!("a's key is not parked"))
                    .await
                    .is_some()
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert!(shards.observe(vec!["a".into(), "b".into()]));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "an unsettled ring starts nothing");
        shards.settle(&Ring::new(["a".to_owned(), "b".to_owned()]).generation());
        assert!(waiting.await.unwrap());
        let mut parked = false;
        assert!(shards.admit(b_key, || parked = true).await.is_none());
        assert!(parked, "another member's key is parked");
    }

    #[tokio::test]
    async fn a_drain_waits_for_reconciles_of_keys_that_moved() {
        let shards = Shards::new("a");
        let two = Ring::new(["a".to_owned(), "b".to_owned()]);
        let one = Ring::new(["a".to_owned()]);
        let moving = keys()
            .find(|k| one.owner(*k) == Some("a") && two.owner(*k) == Some("b"))
            .unwrap();
        shards.observe(vec!["a".into()]);
        shards.settle(&one.generation());
        let running = shards.admit(moving, || {}).await.expect("owned");
        shards.observe(vec!["a".into(), "b".into()]);
        assert!(
            !shards.drained(),
            "a reconcile of a key that moved is in flight"
        );
        drop(running);
        assert!(shards.drained());
        let parked = Parked::default();
        parked.park(ObjectKey::namespaced("ns", "moving"), moving);
        shards.settle(&two.generation());
        assert!(parked.take_owned(&shards).is_empty(), "b owns it now");
        shards.observe(vec!["a".into()]);
        shards.settle(&one.generation());
        assert_eq!(
            parked.take_owned(&shards),
            vec![ObjectKey::namespaced("ns", "moving")]
        );
        assert!(parked.is_empty());
    }
}
