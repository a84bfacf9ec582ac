//! `InformerFactory`: shared, reference-counted informers, one list+watch per (kind, namespace,
//! label selector) however many plugins use it, each with an indexed [`Store`], a `HasSynced` gate
//! and event subscriptions.
//!
//! An informer starts when the first [`InformerHandle`] for its key is acquired and stops when the last
//! handle is dropped. It runs kube-runtime's `watcher` (pagination, re-list on 410 Gone, resume after a
//! dropped watch, backoff on errors), buffers each (re-)list until it is complete, then replaces the
//! store atomically and tells subscribers what changed. Live watch events update the store, then are
//! sent to subscribers; deletes carry the object's last known state.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource};
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use crate::entry::Entry;
use crate::event::{EventType, ObjectEvent};
use crate::raw::RawObject;
use crate::store::{self, Change, Prepared, Store};
use kubewasm_core::FieldPath;
use kubewasm_core::{LabelSelector, SelectorError};

/// Why an informer could not be acquired.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The informer key's label selector does not parse.
    #[error("invalid label selector for {kind} informer: {source}")]
    Selector {
        /// The kind.
        kind: String,
        /// The parse error.
        #[source]
        source: SelectorError,
    },
    /// A requested field index conflicts with one already declared on the shared store.
    #[error("failed to declare an index on the {kind} informer: {source}")]
    Index {
        /// The kind.
        kind: String,
        /// The conflict.
        #[source]
        source: store::Error,
    },
    /// `acquire` was called outside a tokio runtime, so the watch could not be started.
    #[error("cannot start the {kind} informer outside a tokio runtime")]
    NoRuntime {
        /// The kind.
        kind: String,
    },
}

/// What an informer watches. Two plugins asking for equal keys share one informer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InformerKey {
    /// The kind (group, version, kind, plural), e.g. from discovery or a plugin's manifest.
    pub resource: ApiResource,
    /// Watch one namespace, or all (`None`; also the only choice for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// A server-side label selector, or `None` for every object. Normalized by
    /// [`InformerFactory::acquire`] so that equivalent spellings (`a==b`, ` a=b`) share an informer.
    pub label_selector: Option<String>,
}

impl InformerKey {
    /// Every object of a kind in every namespace.
    pub fn all(resource: ApiResource) -> Self {
        Self {
            resource,
            namespace: None,
            label_selector: None,
        }
    }
}

impl fmt::Display for InformerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource.api_version, self.resource.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(sel) = &self.label_selector {
            write!(f, " with {sel}")?;
        }
        Ok(())
    }
}

/// How the first list is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialList {
    /// A paginated LIST, then a WATCH from its resourceVersion (the default; works on every server).
    List {
        /// Objects per page (`limit`); `None` for the server's default.
        page_size: Option<u32>,
    },
    /// A WATCH with `sendInitialEvents=true` (streaming lists, Kubernetes 1.27+ with the WatchList
    /// feature): the server streams the current objects, then a bookmark, with no LIST request.
    StreamingList,
}

impl Default for InitialList {
    fn default() -> Self {
        Self::List {
            page_size: Some(500),
        }
    }
}

/// How an informer is set up. The watch options (`initial_list`, `keep_managed_fields`) are fixed by the
/// first acquirer of a key; `indexes` are merged: every acquirer's indexes are added to the shared store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InformerOptions {
    /// How the first list is made.
    pub initial_list: InitialList,
    /// Keep `metadata.managedFields` in cached objects (dropped by default).
    pub keep_managed_fields: bool,
    /// Field indexes to declare: name and path, e.g. `("node", "spec.nodeName")`.
    pub indexes: Vec<(String, FieldPath)>,
}

/// Counters of one informer, for the metrics layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InformerStats {
    /// Objects cached now.
    pub objects: usize,
    /// Events applied: initial-list items, adds, modifications, deletes.
    pub initial_items: u64,
    /// Watch ADDED events and objects a re-list found new.
    pub added: u64,
    /// Watch MODIFIED events and objects a re-list found changed.
    pub modified: u64,
    /// Watch DELETED events and objects a re-list found gone.
    pub deleted: u64,
    /// Completed lists (the first one and every re-list).
    pub lists: u64,
    /// Errors from the watcher (failed lists or watches, 410 Gone, ...); each is retried with backoff.
    pub errors: u64,
    /// Objects that could not be cached (e.g. no name).
    pub rejected: u64,
    /// The latest watcher error with its causes (e.g. a 403 or 404 on the list), cleared by the next
    /// complete list: why an informer has not synced.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    initial_items: AtomicU64,
    added: AtomicU64,
    modified: AtomicU64,
    deleted: AtomicU64,
    lists: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
}

struct Informer {
    key: InformerKey,
    resource: Arc<ApiResource>,
    store: Store,
    synced: watch::Sender<bool>,
    /// The newest resourceVersion seen from the list or the watch (0 before any, or when none
    /// parses as an integer), raised after the store holds the object that carried it.
    newest: watch::Sender<u64>,
    /// Held while the store is changed and the change is sent, so a new subscriber gets exactly the
    /// cached objects plus every later event.
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ObjectEvent>>>,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

struct Registered {
    informer: Arc<Informer>,
    handles: usize,
    task: tokio::task::AbortHandle,
}

struct FactoryInner {
    client: kube::Client,
    informers: Mutex<HashMap<InformerKey, Registered>>,
}

/// Creates and shares informers for one API client. Cheap to clone; clones share the informers.
#[derive(Clone)]
pub struct InformerFactory {
    inner: Arc<FactoryInner>,
}

impl fmt::Debug for InformerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .inner
            .informers
            .lock()
            .keys()
            .map(ToString::to_string)
            .collect();
        f.debug_struct("InformerFactory")
            .field("informers", &keys)
            .finish()
    }
}

impl InformerFactory {
    /// A factory whose informers list and watch through `client`.
    pub fn new(client: kube::Client) -> Self {
        Self {
            inner: Arc::new(FactoryInner {
                client,
                informers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A handle on the informer for `key`, starting it if no handle exists. Declares `options.indexes`
    /// on its store (backfilled if the informer already runs). Must be called in a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Selector`] for an invalid label selector, [`Error::Index`] when an index name is
    /// already used for another path, [`Error::NoRuntime`] outside a tokio runtime.
    pub fn acquire(
        &self,
        mut key: InformerKey,
        options: InformerOptions,
    ) -> Result<InformerHandle, Error> {
        let kind = key.resource.kind.clone();
        if let Some(text) = key.label_selector.take() {
            let parsed = LabelSelector::parse(&text).map_err(|source| Error::Selector {
                kind: kind.clone(),
                source,
            })?;
            key.label_selector = (!parsed.selects_all()).then(|| parsed.canonical().to_string());
        }
        let mut informers = self.inner.informers.lock();
        if let Some(reg) = informers.get_mut(&key) {
            reg.handles += 1;
            let handle = InformerHandle {
                informer: Arc::clone(&reg.informer),
                factory: Arc::clone(&self.inner),
            };
            // Backfilling a new index parses every cached object: not under the registry lock (a
            // handle dropped meanwhile would block on it). On error the handle drops and releases.
            drop(informers);
            add_indexes(handle.store(), &options.indexes, &kind)?;
            return Ok(handle);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::NoRuntime { kind: kind.clone() })?;
        let store = Store::new(key.resource.clone(), options.keep_managed_fields);
        add_indexes(&store, &options.indexes, &kind)?;
        let informer = Arc::new(Informer {
            resource: Arc::clone(store.resource()),
            key: key.clone(),
            store,
            synced: watch::Sender::new(false),
            newest: watch::Sender::new(0),
            subscribers: Mutex::new(Vec::new()),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        });
        let api: Api<RawObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(self.inner.client.clone(), ns, &key.resource),
            None => Api::all_with(self.inner.client.clone(), &key.resource),
        };
        let mut config = watcher::Config::default();
        if let Some(sel) = &key.label_selector {
            config = config.labels(sel);
        }
        config = match options.initial_list {
            InitialList::List { page_size: Some(n) } => config.page_size(n),
            InitialList::List { page_size: None } => config,
            InitialList::StreamingList => config.streaming_lists(),
        };
        let task = runtime
            .spawn(run(Arc::clone(&informer), api, config))
            .abort_handle();
        tracing::debug!(informer = %key, "informer started");
        informers.insert(
            key,
            Registered {
                informer: Arc::clone(&informer),
                handles: 1,
                task,
            },
        );
        Ok(InformerHandle {
            informer,
            factory: Arc::clone(&self.inner),
        })
    }

    /// The running informers and their counters.
    pub fn stats(&self) -> Vec<(InformerKey, InformerStats)> {
        self.inner
            .informers
            .lock()
            .iter()
            .map(|(k, r)| (k.clone(), r.informer.stats()))
            .collect()
    }

    /// How many informers run (one per distinct key in use).
    pub fn running(&self) -> usize {
        self.inner.informers.lock().len()
    }
}

fn add_indexes(store: &Store, indexes: &[(String, FieldPath)], kind: &str) -> Result<(), Error> {
    for (name, path) in indexes {
        store
            .add_index(name, path.clone())
            .map_err(|source| Error::Index {
                kind: kind.to_owned(),
                source,
            })?;
    }
    Ok(())
}

impl FactoryInner {
    fn release(&self, key: &InformerKey) {
        let mut informers = self.informers.lock();
        let Some(reg) = informers.get_mut(key) else {
            return;
        };
        reg.handles -= 1;
        if reg.handles == 0 {
            reg.task.abort();
            informers.remove(key);
            tracing::debug!(informer = %key, "informer stopped: last handle released");
        }
    }
}

/// A plugin's use of a shared informer: the store, the `HasSynced` gate and event subscriptions.
/// Cloning takes another reference; dropping the last one stops the informer. A handle keeps its
/// factory's registry alive, so informers stop when their last handle goes even if every
/// [`InformerFactory`] clone was dropped first.
pub struct InformerHandle {
    informer: Arc<Informer>,
    factory: Arc<FactoryInner>,
}

impl fmt::Debug for InformerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InformerHandle")
            .field("key", &self.informer.key.to_string())
            .finish()
    }
}

impl Clone for InformerHandle {
    fn clone(&self) -> Self {
        if let Some(reg) = self.factory.informers.lock().get_mut(&self.informer.key) {
            reg.handles += 1;
        }
        Self {
            informer: Arc::clone(&self.informer),
            factory: Arc::clone(&self.factory),
        }
    }
}

impl Drop for InformerHandle {
    fn drop(&mut self) {
        self.factory.release(&self.informer.key);
    }
}

impl InformerHandle {
    /// What this informer watches.
    pub fn key(&self) -> &InformerKey {
        &self.informer.key
    }

    /// The informer's cache (shared with every other handle).
    pub fn store(&self) -> &Store {
        &self.informer.store
    }

    /// Whether the first complete list has been applied to the store. Stays true through re-lists.
    pub fn has_synced(&self) -> bool {
        *self.informer.synced.borrow()
    }

    /// Waits until [`InformerHandle::has_synced`]. Reconciles must not start before every informer
    /// of the plugin has synced.
    pub async fn wait_synced(&self) {
        let mut rx = self.informer.synced.subscribe();
        // The sender lives in `self.informer`, so `wait_for` cannot see it closed while we wait.
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// Subscribes to events. Objects already cached arrive first as [`EventType::InitialListItem`],
    /// then every later change, in order, with none lost or repeated.
    pub fn subscribe(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subs = self.informer.subscribers.lock();
        for object in self.informer.store.snapshot() {
            let _ = tx.send(ObjectEvent {
                resource: Arc::clone(&self.informer.resource),
                event_type: EventType::InitialListItem,
                object,
                old: None,
                final_state_unknown: false,
                from_list: true,
            });
        }
        subs.push(tx);
        EventReceiver { rx }
    }

    /// Subscribes to changes from now on, without replaying what is cached: for a consumer that
    /// already saw the cache (e.g. a hot-reloaded plugin taking over from its previous version's
    /// subscription, which must not queue every object again).
    pub fn subscribe_changes(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        self.informer.subscribers.lock().push(tx);
        EventReceiver { rx }
    }

    /// This informer's counters.
    pub fn stats(&self) -> InformerStats {
        self.informer.stats()
    }

    /// How far this informer's cache has come, as the newest resourceVersion it has seen: what a
    /// controller checks before trusting its cache after a write of its own (read-your-writes).
    /// Holds no reference on the informer.
    pub fn progress(&self) -> Progress {
        Progress {
            newest: self.informer.newest.subscribe(),
        }
    }
}

/// The newest resourceVersion an informer has seen from its list and watch (see
/// [`InformerHandle::progress`]), to tell whether its cache holds a given write yet.
///
/// resourceVersions are compared as integers: kube-apiserver's are etcd revisions, and since
/// Kubernetes 1.34 clients may compare them (the embedded API server's are integers too). A
/// resourceVersion that does not parse is ignored. The newest is raised only after the store
/// holds the object that carried it, so once it reaches a write's resourceVersion, reads see that
/// write (or something newer). Objects a list returns raise it too; the list's own
/// resourceVersion and watch bookmarks are not seen (kube-runtime's watcher keeps them), so after
/// a quiet period it may trail the server, never lead it.
#[derive(Clone, Debug)]
pub struct Progress {
    newest: watch::Receiver<u64>,
}

impl Progress {
    /// The newest resourceVersion seen, `None` before any.
    pub fn newest(&self) -> Option<u64> {
        Some(*self.newest.borrow()).filter(|rv| *rv > 0)
    }

    /// Whether the cache has seen `resource_version` or a newer one.
    pub fn has_seen(&self, resource_version: u64) -> bool {
        *self.newest.borrow() >= resource_version
    }

    /// Waits, without polling, until the cache has seen `resource_version` or a newer one.
    /// Returns `false` at once if the informer stopped before that (it never will); bound the
    /// wait with a timeout, as the newest only moves when the informer sees a change.
    pub async fn wait_for(&mut self, resource_version: u64) -> bool {
        self.newest
            .wait_for(|rv| *rv >= resource_version)
            .await
            .is_ok()
    }
}

/// A resourceVersion as an integer, `None` when it is not one.
pub fn parse_resource_version(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

/// Waits until every informer in `handles` has synced: the gate a plugin passes before its first
/// reconcile.
pub async fn wait_for_sync(handles: &[&InformerHandle]) {
    futures::future::join_all(handles.iter().map(|h| h.wait_synced())).await;
}

/// A stream of [`ObjectEvent`]s from one informer. Ends when the informer stops.
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<ObjectEvent>,
}

impl EventReceiver {
    /// The next event, or `None` once the informer stopped.
    pub async fn recv(&mut self) -> Option<ObjectEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<ObjectEvent> {
        self.rx.try_recv().ok()
    }
}

impl Stream for EventReceiver {
    type Item = ObjectEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ObjectEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Informer {
    fn stats(&self) -> InformerStats {
        let c = &self.counters;
        InformerStats {
            objects: self.store.len(),
            initial_items: c.initial_items.load(Ordering::Relaxed),
            added: c.added.load(Ordering::Relaxed),
            modified: c.modified.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }

    fn publish(
        &self,
        subs: &mut Vec<mpsc::UnboundedSender<ObjectEvent>>,
        change: Change,
        initial: bool,
        from_list: bool,
    ) {
        let mut final_state_unknown = false;
        let (event_type, object, old, counter) = match change {
            Change::Unchanged(_) => return,
            Change::Added(new) if initial => (
                EventType::InitialListItem,
                new,
                None,
                &self.counters.initial_items,
            ),
            Change::Added(new) => (EventType::Added, new, None, &self.counters.added),
            Change::Modified { new, old } => {
                (EventType::Modified, new, Some(old), &self.counters.modified)
            }
            Change::Deleted {
                last,
                cached,
                final_state_known,
            } => {
                final_state_unknown = !final_state_known;
                (EventType::Deleted, last, cached, &self.counters.deleted)
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let event = ObjectEvent {
            resource: Arc::clone(&self.resource),
            event_type,
            object,
            old,
            final_state_unknown,
            from_list,
        };
        subs.retain(|tx| tx.send(event.clone()).is_ok());
    }

    /// Raises the newest resourceVersion seen to `entry`'s, if that is newer.
    fn saw(&self, entry: &Entry) {
        if let Some(rv) = rv_of(entry) {
            self.raise_newest(rv);
        }
    }

    fn raise_newest(&self, rv: u64) {
        self.newest.send_if_modified(|newest| {
            let newer = rv > *newest;
            if newer {
                *newest = rv;
            }
            newer
        });
    }

    fn on_error(&self, what: &str, error: &dyn std::error::Error) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(informer = %self.key, %error, "{what}");
    }

    fn apply(&self, obj: RawObject) {
        let mut subs = self.subscribers.lock();
        match self.store.apply(obj) {
            Ok(change) => {
                self.saw(change_entry(&change));
                self.publish(&mut subs, change, false, false);
            }
            Err(e) => self.on_error("skipped an object that cannot be cached", &e),
        }
    }

    fn delete(&self, obj: RawObject) {
        let mut subs = self.subscribers.lock();
        match self.store.delete(obj) {
            Ok(change) => {
                self.saw(change_entry(&change));
                self.publish(&mut subs, change, false, false);
            }
            Err(e) => self.on_error("skipped a delete that names no object", &e),
        }
    }

    fn replace(&self, listed: Vec<Prepared>) {
        let initial = !*self.synced.borrow();
        let mut subs = self.subscribers.lock();
        let changes = self.store.replace_prepared(listed);
        let newest = changes
            .iter()
            .filter(|c| !matches!(c, Change::Deleted { .. }))
            .filter_map(|c| rv_of(change_entry(c)))
            .max();
        if let Some(rv) = newest {
            self.raise_newest(rv);
        }
        for change in changes {
            self.publish(&mut subs, change, initial, true);
        }
        *self.last_error.lock() = None;
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        drop(subs);
        self.synced.send_replace(true);
    }
}

/// The object a change is about: its new state, or for a delete its last known one.
fn change_entry(change: &Change) -> &Entry {
    match change {
        Change::Added(e) | Change::Unchanged(e) => e,
        Change::Modified { new, .. } => new,
        Change::Deleted { last, .. } => last,
    }
}

fn rv_of(entry: &Entry) -> Option<u64> {
    entry.resource_version().and_then(parse_resource_version)
}

/// An error and its sources, "outer: inner: root".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How long to wait after a failed watcher step (a failed list or watch, an error event).
///
/// kube-runtime's default backoff (800 ms doubling to 30 s, jittered, reset by any success), except
/// that the first 410 Expired in a row is answered at once: the server is reachable and a re-list is
/// the cure, so waiting would only keep the cache stale. Without this, an informer that had met a few
/// refused connections during an API server restart waited out one more, longer, step (13 s in the
/// fault suite) before re-listing after the 410 that greeted it when the server came back.
#[derive(Default)]
struct Retry {
    backoff: watcher::DefaultBackoff,
    expired_in_a_row: u32,
}

impl Retry {
    /// The delay before the next step after `error`.
    fn after(&mut self, error: &watcher::Error) -> std::time::Duration {
        if expired(error) {
            self.expired_in_a_row += 1;
            if self.expired_in_a_row == 1 {
                return std::time::Duration::ZERO;
            }
        } else {
            self.expired_in_a_row = 0;
        }
        self.backoff.next().unwrap_or(MAX_RETRY_DELAY)
    }

    /// A step succeeded: the next failure starts from the shortest delay again.
    fn reset(&mut self) {
        self.expired_in_a_row = 0;
        kube::runtime::utils::Backoff::reset(&mut self.backoff);
    }
}

/// The longest wait between failed watcher steps (kube-runtime's default ceiling).
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the server answered 410 Gone/Expired: the resourceVersion or continue token is too old.
fn expired(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(status) if status.code == 410)
        }
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::NoResourceVersion => false,
    }
}

async fn run(informer: Arc<Informer>, api: Api<RawObject>, config: watcher::Config) {
    // Not `.default_backoff()`: see [`Retry`]. The watcher is not polled while waiting, as with
    // kube-runtime's StreamBackoff.
    let mut events = watcher::watcher(api, config).boxed();
    let mut retry = Retry::default();
    // The initial list, prepared object by object as it arrives (never all decoded at once).
    let mut listing: Vec<Prepared> = Vec::new();
    // Failures in a row: the first is a warning, repeats of the same failure are debug lines
    // (a kind whose CRD is not installed yet fails at every retry until it is).
    let mut failing: Option<String> = None;
    while let Some(event) = events.next().await {
        // `Init` only says a (re)list begins, before it is sent: it is no sign that a failure is
        // over. Counted as one, every failed list would reset the backoff (a retry every ~1 s)
        // and warn again.
        let succeeded = matches!(&event, Ok(e) if !matches!(e, Event::Init));
        if succeeded && let Some(error) = failing.take() {
            tracing::info!(informer = %informer.key, %error, "watch recovered");
        }
        if succeeded {
            retry.reset();
        }
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(obj)) => match informer.store.prepare(obj) {
                Ok(p) => listing.push(p),
                Err(e) => informer.on_error("skipped a listed object that cannot be cached", &e),
            },
            Ok(Event::InitDone) => informer.replace(std::mem::take(&mut listing)),
            Ok(Event::Apply(obj)) => informer.apply(obj),
            Ok(Event::Delete(obj)) => informer.delete(obj),
            Err(error) => {
                informer.counters.errors.fetch_add(1, Ordering::Relaxed);
                let text = with_causes(&error);
                *informer.last_error.lock() = Some(text.clone());
                if failing.as_deref() == Some(text.as_str()) {
                    tracing::debug!(informer = %informer.key, %error, "watch still failing; retrying with backoff");
                } else if not_served(&error) {
                    tracing::warn!(
                        informer = %informer.key,
                        "the API server does not serve {} {} (is its CustomResourceDefinition installed?); \
                         waiting for it: plugins that need it reconcile once it is served",
                        informer.key.resource.api_version,
                        informer.key.resource.kind
                    );
                } else {
                    tracing::warn!(informer = %informer.key, %error, "watch failed; retrying with backoff");
                }
                failing = Some(text);
                let delay = retry.after(&error);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Whether the API server answered 404 for the kind's collection: the kind is not served (yet).
fn not_served(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(status) if status.code == 404)
        }
        watcher::Error::WatchError(status) => status.code == 404,
        watcher::Error::NoResourceVersion => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn informer() -> Informer {
        let resource = crate::testing::pods();
        let store = Store::new(resource.clone(), false);
        Informer {
            key: InformerKey::all(resource),
            resource: Arc::clone(store.resource()),
            store,
            synced: watch::Sender::new(false),
            newest: watch::Sender::new(0),
            subscribers: Mutex::new(Vec::new()),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        }
    }

    fn pod(name: &str, rv: &str) -> RawObject {
        RawObject::from_json(
            &serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
            })
            .to_string(),
        )
        .expect("a pod")
    }

    fn listed(informer: &Informer, pods: &[(&str, &str)]) -> Vec<Prepared> {
        pods.iter()
            .map(|(n, rv)| informer.store.prepare(pod(n, rv)).expect("prepared"))
            .collect()
    }

    fn subscribe(informer: &Informer) -> mpsc::UnboundedReceiver<ObjectEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        informer.subscribers.lock().push(tx);
        rx
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<ObjectEvent>) -> Vec<(String, EventType, bool)> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push((e.object.name().to_owned(), e.event_type, e.from_list));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn changes_a_relist_finds_are_marked_as_from_a_list_and_live_events_are_not() {
        let informer = informer();
        let mut rx = subscribe(&informer);
        informer.replace(listed(&informer, &[("a", "1"), ("b", "2")]));
        assert_eq!(
            drain(&mut rx),
            [
                ("a".into(), EventType::InitialListItem, true),
                ("b".into(), EventType::InitialListItem, true)
            ]
        );
        informer.apply(pod("c", "3"));
        assert_eq!(drain(&mut rx), [("c".into(), EventType::Added, false)]);
        // A re-list: a changed, b gone, c unchanged (not sent), d new.
        informer.replace(listed(&informer, &[("a", "4"), ("c", "3"), ("d", "5")]));
        assert_eq!(
            drain(&mut rx),
            [
                ("a".into(), EventType::Modified, true),
                ("b".into(), EventType::Deleted, true),
                ("d".into(), EventType::Added, true)
            ]
        );
        informer.delete(pod("d", "6"));
        assert_eq!(drain(&mut rx), [("d".into(), EventType::Deleted, false)]);
    }

    #[test]
    fn progress_follows_the_newest_resource_version_from_lists_and_watch_events() {
        let informer = informer();
        let progress = Progress {
            newest: informer.newest.subscribe(),
        };
        assert_eq!(progress.newest(), None);
        informer.replace(listed(&informer, &[("a", "7"), ("b", "3")]));
        assert_eq!(progress.newest(), Some(7));
        assert!(progress.has_seen(7) && !progress.has_seen(8));
        informer.apply(pod("b", "9"));
        assert_eq!(progress.newest(), Some(9));
        // An older resourceVersion (a re-list of older objects) never lowers it; one that is not
        // an integer is ignored.
        informer.replace(listed(&informer, &[("a", "7")]));
        informer.apply(pod("c", "not-a-number"));
        assert_eq!(progress.newest(), Some(9));
        informer.delete(pod("a", "12"));
        assert_eq!(progress.newest(), Some(12));
    }

    #[tokio::test]
    async fn waiting_for_a_resource_version_ends_when_the_cache_holds_it_or_the_informer_stops() {
        let informer = Arc::new(informer());
        let mut progress = Progress {
            newest: informer.newest.subscribe(),
        };
        let waiter = {
            let mut progress = progress.clone();
            tokio::spawn(async move { progress.wait_for(5).await })
        };
        informer.apply(pod("a", "4"));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "4 is not 5 yet");
        informer.apply(pod("a", "5"));
        assert!(waiter.await.expect("join"), "5 was seen");
        assert!(
            informer
                .store
                .get(Some("ns"), "a")
                .is_some_and(|e| e.resource_version() == Some("5")),
            "the store holds the write once its resourceVersion was seen"
        );
        assert!(progress.wait_for(3).await, "an older one is seen at once");
        drop(informer);
        assert!(
            !progress.wait_for(6).await,
            "a stopped informer never gets there"
        );
    }

    fn gone() -> watcher::Error {
        watcher::Error::WatchError(
            kube::core::Status::failure("too old resource version: 1 (2)", "Expired")
                .with_code(410)
                .boxed(),
        )
    }

    fn unavailable() -> watcher::Error {
        watcher::Error::WatchStartFailed(kube::Error::Api(
            kube::core::Status::failure("injected fault", "InternalError")
                .with_code(500)
                .boxed(),
        ))
    }

    #[test]
    fn the_first_410_in_a_row_relists_at_once_even_after_other_failures() {
        let mut retry = Retry::default();
        for _ in 0..4 {
            assert!(!retry.after(&unavailable()).is_zero());
        }
        assert!(expired(&gone()));
        assert_eq!(retry.after(&gone()), std::time::Duration::ZERO);
    }

    #[test]
    fn repeated_410s_back_off_so_a_server_that_keeps_expiring_is_not_hammered() {
        let mut retry = Retry::default();
        assert!(retry.after(&gone()).is_zero());
        assert!(!retry.after(&gone()).is_zero());
        assert!(!retry.after(&gone()).is_zero());
        retry.reset();
        assert!(retry.after(&gone()).is_zero());
    }

    #[test]
    fn other_failures_back_off_longer_each_time_until_a_success_resets() {
        let mut retry = Retry::default();
        let first = retry.after(&unavailable());
        assert!(!expired(&unavailable()));
        assert!(first >= std::time::Duration::from_millis(400), "{first:?}");
        let mut last = first;
        for _ in 0..3 {
            last = retry.after(&unavailable());
        }
        assert!(last > first, "{first:?} then {last:?}");
        assert!(last <= MAX_RETRY_DELAY * 2);
        retry.reset();
        assert!(retry.after(&unavailable()) < last);
    }
}
