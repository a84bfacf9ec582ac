//! [`PluginLoop`]: one plugin's run loop — informer events mapped to keys (the pump), the work
//! queue, the workers that hand each key to the served plugin version, and periodic resyncs —
//! built so the version (and the informers, mapping and backend it needs) can be swapped while
//! keys keep flowing. The [`Manager`](crate::Manager) owns one per plugin.
//!
//! The queue and the workers live as long as the plugin: a reload never drops a queued key and
//! the queue's "never the same key twice at once" holds across versions. Each reconcile loads the
//! [`Served`] version when it starts and keeps it to the end, so reconciles in flight finish on the
//! version they began with. The pump that maps informer events to keys takes a [`Switch`] to move
//! to a new set of subscriptions and a new mapping without a gap. Every reconcile is published to
//! the manager's [`ReconcileHub`] as it starts and ends (built only while someone subscribes).
//!
//! Read-your-writes ([`crate::freshness`]): each reconcile writes through a [`Recording`] of the
//! served backend, and the key's next reconcile first waits (bounded) until the caches hold
//! those writes, so a plugin never reads back an object older than what it wrote itself.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::stream::SelectAll;
use futures::{FutureExt as _, StreamExt as _};
use kubewasm_controller::{
    EventReceiver, EventType, InformerHandle, Item, Mapper, ObjectKey, Priority,
    Reason as QueueReason, Store, Via, WorkQueue, resync, run_workers, wait_for_sync,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::freshness::{Caches, Pending, Recording, Waited};
use crate::layer::{ReconcileLayers, ReconcileScope};
use crate::metrics::{Metrics, Outcome, PluginMetrics};
use crate::reconciles::{ReconcileEvent, ReconcileHub, ReconcileStarted, Reconciled};
use crate::runtime::{
    self, Backend, Kind, Manifest, ObjectRef, Plugin, Reason, ReconcileError, Request,
};

/// Reconcile outcomes of one plugin version.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    ok: AtomicU64,
    errors: AtomicU64,
    faults: AtomicU64,
}

/// How one plugin version has fared: what a user checks after a reload ("is the new version
/// trapping?"). Counted since the version was first served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStats {
    /// The version's identity ([`Plugin::version`]).
    pub version: String,
    /// Whether new reconciles use it.
    pub serving: bool,
    /// Reconciles that succeeded.
    pub ok: u64,
    /// Reconciles where the plugin returned an error.
    pub errors: u64,
    /// Reconciles that trapped, ran past the deadline, hit the memory cap or failed to
    /// instantiate.
    pub faults: u64,
}

/// The version new reconciles use, with what it reads through.
pub(crate) struct Served {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) backend: Arc<dyn Backend>,
    /// The caches the backend reads, to tell when they hold a reconcile's writes.
    caches: Caches,
    counts: Arc<Counts>,
}

/// A new set of subscriptions and mapping for the pump.
pub(crate) struct Switch {
    pub(crate) events: SelectAll<EventReceiver>,
    pub(crate) mapper: Mapper,
    /// The caches of the new informers ([`Caches::of`]).
    pub(crate) caches: Caches,
}

/// How a plugin loop's workers run.
pub(crate) struct WorkerConfig {
    /// Reconciles at once.
    pub(crate) concurrency: usize,
    /// Queue every primary again this often.
    pub(crate) resync: Option<Duration>,
    /// Where reconcile outcomes are counted.
    pub(crate) metrics: Metrics,
    /// Where reconciles are published.
    pub(crate) hub: Arc<ReconcileHub>,
    /// The hooks put around every reconcile.
    pub(crate) layers: ReconcileLayers,
    /// The workers take keys only once it is open (a warm standby's is closed until it leads).
    pub(crate) gate: crate::gate::ReconcileGate,
}

/// One plugin's queue, workers, pump and served version.
pub(crate) struct PluginLoop {
    served: Arc<ArcSwap<Served>>,
    pub(crate) queue: WorkQueue<ObjectKey>,
    switch: mpsc::UnboundedSender<Switch>,
    pump: JoinHandle<()>,
    workers: Mutex<Option<JoinHandle<()>>>,
    resync: Mutex<Option<JoinHandle<()>>>,
    resync_every: Option<Duration>,
    /// Sharded: queues the parked keys a settled ring gives this replica.
    handoff: Option<JoinHandle<()>>,
    /// Every version served so far, oldest first (the last one serves).
    versions: Mutex<Vec<(String, Arc<Counts>)>>,
}

impl PluginLoop {
    /// Starts the pump over `informers` (replaying their caches, so every existing object is
    /// queued once) and, once they have all synced and the gate is open, `concurrency` workers.
    pub(crate) fn start(
        plugin: Plugin,
        backend: Arc<dyn Backend>,
        informers: &[InformerHandle],
        mapper: Mapper,
        queue: WorkQueue<ObjectKey>,
        config: WorkerConfig,
    ) -> Self {
        let WorkerConfig {
            concurrency,
            resync: resync_every,
            metrics,
            hub,
            layers,
            gate: leadership,
        } = config;
        let observe = Observe {
            metrics: metrics.for_plugin(plugin.name()),
            hub,
            layers,
            pending: Arc::new(Pending::default()),
            gate: leadership.clone(),
            parked: Arc::new(crate::shard::Parked::default()),
        };
        let handoff = leadership.shards().map(|shards| {
            tokio::spawn(handoff(
                shards.clone(),
                Arc::clone(&observe.parked),
                queue.clone(),
                Arc::clone(&observe.metrics),
            ))
        });
        let counts = Arc::new(Counts::default());
        let versions = Mutex::new(vec![(plugin.version().to_owned(), Arc::clone(&counts))]);
        let served = Arc::new(ArcSwap::from_pointee(Served {
            plugin: Arc::new(plugin),
            backend,
            caches: Caches::of(informers),
            counts,
        }));
        let primaries = mapper.primaries().clone();
        let events: SelectAll<_> = informers.iter().map(InformerHandle::subscribe).collect();
        let (switch, switches) = mpsc::unbounded_channel();
        let pump = tokio::spawn(pump(events, mapper, switches, queue.clone()));
        let workers = {
            let gate = informers.to_vec();
            let queue = queue.clone();
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let refs: Vec<&InformerHandle> = gate.iter().collect();
                tokio::select! {
                    () = wait_for_sync(&refs) => {}
                    () = queue.closed() => return,
                }
                drop(refs);
                drop(gate);
                // A warm standby: the queue fills meanwhile; the workers start on the Lease.
                tokio::select! {
                    () = leadership.opened() => {}
                    () = queue.closed() => return,
                }
                let closing = queue.clone();
                run_workers(queue, concurrency, move |item| {
                    reconcile(&served, &observe, &closing, item)
                })
                .await;
            })
        };
        let this = Self {
            served,
            queue,
            switch,
            pump,
            workers: Mutex::new(Some(workers)),
            resync: Mutex::new(None),
            handoff,
            resync_every,
            versions,
        };
        this.restart_resync(primaries);
        this
    }

    /// The version new reconciles use.
    pub(crate) fn plugin(&self) -> Arc<Plugin> {
        Arc::clone(&self.served.load().plugin)
    }

    /// The backend the served version reads through.
    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.served.load().backend)
    }

    /// Makes `plugin` (reading through `backend`) the version new reconciles use; reconciles in
    /// flight keep theirs. With `switch`, the pump moves to new subscriptions and mapping first
    /// (and resyncs, if configured, follow the new primaries).
    pub(crate) fn swap(&self, plugin: Plugin, backend: Arc<dyn Backend>, switch: Option<Switch>) {
        let mut caches = self.served.load().caches.clone();
        if let Some(mut switch) = switch {
            caches = std::mem::take(&mut switch.caches);
            let primaries = switch.mapper.primaries().clone();
            // The pump only ends when the queue shuts down; a send then is moot.
            let _ = self.switch.send(switch);
            self.restart_resync(primaries);
        }
        let mut versions = self.versions.lock();
        let counts = match versions.iter().find(|(v, _)| v == plugin.version()) {
            Some((_, c)) => Arc::clone(c),
            None => {
                let c = Arc::new(Counts::default());
                versions.push((plugin.version().to_owned(), Arc::clone(&c)));
                c
            }
        };
        if let Some(i) = versions.iter().position(|(v, _)| v == plugin.version()) {
            // The serving version is the last one listed.
            let entry = versions.remove(i);
            versions.push(entry);
        }
        self.served.store(Arc::new(Served {
            plugin: Arc::new(plugin),
            backend,
            caches,
            counts,
        }));
    }

    /// Queues every cached primary once (after a reload changed what the plugin reconciles or
    /// how it maps watched objects).
    pub(crate) fn queue_all(&self, primaries: &Store, why: &str) -> usize {
        let entries = primaries.snapshot();
        for entry in &entries {
            self.queue.add_with_priority(
                entry.key().clone(),
                QueueReason::Other(why.to_owned().into()),
                Priority::Low,
            );
        }
        entries.len()
    }

    /// Every version served so far, oldest first; the last one serves.
    pub(crate) fn versions(&self) -> Vec<VersionStats> {
        let versions = self.versions.lock();
        let last = versions.len().saturating_sub(1);
        versions
            .iter()
            .enumerate()
            .map(|(i, (version, c))| VersionStats {
                version: version.clone(),
                serving: i == last,
                ok: c.ok.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
                faults: c.faults.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn restart_resync(&self, primaries: Store) {
        let mut task = self.resync.lock();
        if let Some(t) = task.take() {
            t.abort();
        }
        *task = self
            .resync_every
            .map(|every| tokio::spawn(resync(primaries, self.queue.clone(), every)));
    }

    /// Takes no new keys, lets reconciles in flight finish, and stops the pump.
    pub(crate) async fn stop(&self) {
        self.queue.shutdown();
        let workers = self.workers.lock().take();
        if let Some(w) = workers {
            let _ = w.await;
        }
        self.pump.abort();
        if let Some(t) = self.resync.lock().take() {
            t.abort();
        }
        if let Some(t) = &self.handoff {
            t.abort();
        }
    }
}

impl Drop for PluginLoop {
    fn drop(&mut self) {
        self.pump.abort();
        if let Some(t) = self.resync.lock().take() {
            t.abort();
        }
        if let Some(t) = &self.handoff {
            t.abort();
        }
    }
}

/// One reconcile on the version served when it starts; counted against that version, in metrics,
/// and published (started, then finished) to the manager's [`ReconcileHub`].
///
/// After a fault (a trap, the deadline, the memory cap) that took `t`, the worker rests for `t`
/// before taking its next key: a plugin whose keys keep faulting uses at most half of each of its
/// workers, so it cannot take the host's cores from healthy plugins (the fault suite measured a
/// healthy plugin at 0.46-0.89 of its rate beside a plugin faulting on nine keys without this).
/// The rest ends at once when the queue shuts down.
fn reconcile(
    served: &ArcSwap<Served>,
    observe: &Observe,
    queue: &WorkQueue<ObjectKey>,
    item: Item<ObjectKey>,
) -> impl Future<Output = Result<kubewasm_controller::Action, Failed>> + Send + use<> {
    let served = served.load_full();
    let observe = observe.clone();
    let queue = queue.clone();
    let request = request(served.plugin.manifest(), &item);
    async move {
        let Some(request) = request else {
            tracing::debug!(
                plugin = served.plugin.name(),
                key = %item.key,
                "key outside the namespaces the policy allows: not reconciled"
            );
            return Ok(kubewasm_controller::Action::done());
        };
        // Sharded: a key runs only on the replica that owns it (held until it ends, so a
        // handoff drains it); another replica's key is parked until a settled ring gives it here.
        let _owned = match observe.gate.shards() {
            None => None,
            Some(shards) => {
                let hash =
                    crate::shard::key_hash(&served.plugin.manifest().reconciles.kind, &item.key);
                let parked = &observe.parked;
                let parked_key = item.key.clone();
                tokio::select! {
                    owned = shards.admit(hash, || parked.park(parked_key, hash)) => match owned {
                        Some(owned) => Some(owned),
                        None => return Ok(kubewasm_controller::Action::done()),
                    },
                    () = queue.closed() => return Ok(kubewasm_controller::Action::done()),
                }
            }
        };
        // Read-your-writes: the caches first catch up with what this key's last reconcile
        // wrote (bounded; not counted in the reconcile's time).
        let key = item.key.clone();
        match observe.pending.wait(&key, queue.closed()).await {
            Waited::No => {}
            Waited::CaughtUp => observe.metrics.waited_for_caches(false),
            // The queue shut down meanwhile: like a queued key, this one is dropped.
            Waited::GaveUp if queue.is_shutting_down() => {
                return Ok(kubewasm_controller::Action::done());
            }
            Waited::GaveUp => observe.metrics.waited_for_caches(true),
        }
        // The stream's records are built only while someone subscribes: `kubewasm run` pays
        // nothing for them.
        let at = Instant::now();
        let id = observe.hub.next_id();
        let started = observe.hub.has_subscribers().then(|| {
            let (plugin, version) = served.plugin.identity();
            let started = Arc::new(ReconcileStarted {
                id,
                plugin,
                version,
                key: item.key,
                reason: request.reason.clone(),
                at,
            });
            observe
                .hub
                .publish(&ReconcileEvent::Started(Arc::clone(&started)));
            started
        });
        let recording = Arc::new(Recording::new(
            Arc::clone(&served.backend),
            served.caches.clone(),
        ));
        let result = if observe.layers.is_empty() {
            served
                .plugin
                .reconcile(Arc::clone(&recording) as Arc<dyn Backend>, request)
                .await
        } else {
            let layered = observe.layers.begin(
                ReconcileScope {
                    id,
                    plugin: &served.plugin,
                    request: &request,
                },
                Arc::clone(&recording) as Arc<dyn Backend>,
            );
            let result = served
                .plugin
                .reconcile(Arc::clone(&layered.backend), request)
                .await;
            layered.end(&result);
            result
        };
        let took = at.elapsed();
        observe.pending.remember(&key, &recording);
        let counter = match &result {
            Ok(_) => &served.counts.ok,
            Err(ReconcileError::Plugin { .. }) => &served.counts.errors,
            Err(_) => &served.counts.faults,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        observe.metrics.reconciled(
            served.plugin.version(),
            took,
            match &result {
                Ok(runtime::Action::Done) => Ok(Outcome::Success),
                Ok(runtime::Action::RequeueAfter(_)) => Ok(Outcome::RequeueAfter),
                Err(e) => Err(e),
            },
        );
        if let Some(started) = started {
            observe
                .hub
                .publish(&ReconcileEvent::Finished(Arc::new(Reconciled {
                    started,
                    took,
                    result: result.clone(),
                })));
        }
        if matches!(
            result,
            Err(ReconcileError::Trap { .. }
                | ReconcileError::Deadline { .. }
                | ReconcileError::MemoryCap { .. })
        ) {
            tokio::select! {
                () = tokio::time::sleep(took) => {}
                () = queue.closed() => {}
            }
        }
        match result {
            Ok(runtime::Action::Done) => Ok(kubewasm_controller::Action::done()),
            Ok(runtime::Action::RequeueAfter(after)) => {
                Ok(kubewasm_controller::Action::requeue_after(after))
            }
            Err(e) => Err(Failed(e)),
        }
    }
}

/// A failed reconcile, as the workers log it: the error and whose fault it is.
pub(crate) struct Failed(ReconcileError);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Blame first: the error may end with many lines of the plugin's stderr.
        write!(f, "[fault: {}] {}", self.0.blame().as_str(), self.0)
    }
}

/// Where a plugin's reconciles are reported: its metrics and the manager's stream.
#[derive(Clone)]
pub(crate) struct Observe {
    metrics: Arc<PluginMetrics>,
    hub: Arc<ReconcileHub>,
    /// Each key's writes its caches have yet to see.
    pending: Arc<Pending>,
    /// The hooks put around every reconcile.
    layers: ReconcileLayers,
    /// The gate: when sharded, asked per key.
    gate: crate::gate::ReconcileGate,
    /// Keys another replica owns, queued again when a settled ring gives them here.
    parked: Arc<crate::shard::Parked>,
}

/// Sharded: after every settled ring, queues the parked keys this replica now owns (the keys it
/// gained; their last events were parked here), until the queue shuts down.
async fn handoff(
    shards: crate::shard::Shards,
    parked: Arc<crate::shard::Parked>,
    queue: WorkQueue<ObjectKey>,
    metrics: Arc<PluginMetrics>,
) {
    let mut seen = 0;
    loop {
        tokio::select! {
            settles = shards.settled_after(seen) => seen = settles,
            () = queue.closed() => return,
        }
        let gained = parked.take_owned(&shards);
        if !gained.is_empty() {
            tracing::info!(keys = gained.len(), "queueing the keys this replica gained");
            metrics.shard_keys_gained(gained.len());
        }
        for key in gained {
            queue.add_with_priority(
                key,
                QueueReason::Other("shard handoff".into()),
                Priority::Low,
            );
        }
    }
}

/// Maps events to keys until the queue shuts down; on a [`Switch`], first queues what the old
/// subscriptions already delivered (so nothing between the two is lost; duplicates are merged
/// by the queue), then follows the new ones.
async fn pump(
    mut events: SelectAll<EventReceiver>,
    mut mapper: Mapper,
    mut switches: mpsc::UnboundedReceiver<Switch>,
    queue: WorkQueue<ObjectKey>,
) {
    loop {
        if queue.is_shutting_down() {
            return;
        }
        tokio::select! {
            biased;
            switch = switches.recv() => {
                let Some(switch) = switch else { return };
                while let Some(Some(event)) = events.next().now_or_never() {
                    mapper.enqueue(&event, &queue);
                }
                events = switch.events;
                mapper = switch.mapper;
            }
            event = events.next(), if !events.is_empty() => match event {
                Some(event) => mapper.enqueue(&event, &queue),
                // Every informer stopped: wait for a switch (or the end).
                None => events = SelectAll::new(),
            },
            () = queue.closed() => return,
        }
    }
}

/// Turns a queued item into the plugin's request; `None` for a key in a namespace the operator's
/// policy does not allow (the reconciled kind's informer may see every namespace when the policy
/// allows several; such keys are never handed to the plugin).
fn request(manifest: &Manifest, item: &Item<ObjectKey>) -> Option<Request> {
    use kubewasm_controller::Reason as Q;
    if let Some(allowed) = manifest.read_namespaces(&manifest.reconciles.kind)
        && !item
            .key
            .namespace()
            .is_some_and(|ns| allowed.iter().any(|a| a == ns))
    {
        return None;
    }
    fn find_kind<'a>(name: &str, mut candidates: impl Iterator<Item = &'a Kind>) -> Option<Kind> {
        candidates
            .find(|k| k.kind == name || mapping_name(k) == name)
            .cloned()
    }
    let reason = match &item.reason {
        Q::Event {
            kind,
            event,
            object,
            via,
        } => match via {
            Via::Own => match event {
                EventType::InitialListItem | EventType::Added => Reason::Created,
                EventType::Modified => Reason::Changed,
                EventType::Deleted => Reason::Deleted,
            },
            Via::Owner => match find_kind(kind, manifest.owns.iter()) {
                Some(k) => Reason::OwnedChanged(object_ref(k, object)),
                None => Reason::Changed,
            },
            Via::Mapping(name) => match find_kind(name, manifest.watches.iter().map(|w| &w.kind)) {
                Some(k) => Reason::WatchedChanged(object_ref(k, object)),
                None => Reason::Changed,
            },
        },
        Q::Retry => Reason::Retry(item.retries),
        Q::RequeueAfter => Reason::Requeue,
        Q::Resync => Reason::Resync,
        Q::Other(_) => Reason::Changed,
    };
    Some(Request {
        namespace: item.key.namespace().map(str::to_owned),
        name: item.key.name.clone(),
        reason,
    })
}

fn object_ref(kind: Kind, key: &ObjectKey) -> ObjectRef {
    ObjectRef {
        kind,
        namespace: key.namespace().map(str::to_owned),
        name: key.name.clone(),
    }
}

/// The name of a watch mapping in queue reasons: the watched kind.
pub(crate) fn mapping_name(kind: &Kind) -> String {
    if kind.group.is_empty() {
        kind.kind.clone()
    } else {
        format!("{}.{}", kind.kind, kind.group)
    }
}
