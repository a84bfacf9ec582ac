//! Read-your-writes: a key is not handed to its plugin again until the host's caches hold the
//! writes the key's previous reconcile made — client-go's stale-controller guard (KEP-5647).
//!
//! Reads come from informer caches that trail the API server by the watch's latency. A plugin
//! that writes an object and is run again at once for the same key (it asked to requeue, or
//! the key changed while it ran) would read the object as it was before its own write: it
//! would redo the write, or send a stale `resourceVersion` and get 409 Conflict. The guide's
//! finalizer pattern (patch the finalizer on with the cached `resourceVersion`, return, then
//! patch again from the cache) hits exactly that.
//!
//! So each reconcile runs through a [`Recording`] backend that keeps the `resourceVersion` of
//! every object its creates, replaces and patches return. When the reconcile ends, [`Pending`]
//! keeps them under the key; before the key's next reconcile, [`Pending::wait`] waits until the
//! informer of each written kind has seen that `resourceVersion` (the informer's
//! [`Progress`], a notification, no polling), at most [`WAIT`] from the write. After that it
//! gives up (a debug line; the plugin then reads what the cache holds, as it did before). Writes
//! the cache will never see are not waited for: a kind the plugin has no informer for, an
//! object outside the informer's namespace or label selector, a delete, a `resourceVersion`
//! that is not an integer (compared as integers, as Kubernetes allows since 1.34; the embedded
//! API server's are integers too). Other keys are not held: only the key whose reconcile wrote.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kubewasm_controller::{
    InformerHandle, LabelSelector, ObjectKey, Progress, parse_resource_version,
};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::runtime::{
    ApiError, Backend, DeleteOptions, EventRecord, Kind, ListQuery, PatchRequest, Subresource,
};

/// How long after a write the next reconcile of its key waits, at most, for the caches to hold
/// it (client-go's guard waits in the same range). Watch latency is milliseconds on a healthy
/// cluster; a wait this long means the watch is stuck or the write left the informer's view.
pub const WAIT: Duration = Duration::from_secs(5);

/// The caches of one plugin version: each kind's informer progress and what it watches.
#[derive(Clone, Default)]
pub(crate) struct Caches {
    by_kind: Arc<HashMap<(String, String), Cache>>,
}

#[derive(Clone)]
struct Cache {
    progress: Progress,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
}

impl fmt::Debug for Caches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caches")
            .field("kinds", &self.by_kind.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Caches {
    /// The caches behind `informers` (without holding them: a stopped informer's progress ends
    /// every wait on it).
    pub(crate) fn of(informers: &[InformerHandle]) -> Self {
        let by_kind = informers
            .iter()
            .map(|h| {
                let key = h.key();
                let cache = Cache {
                    progress: h.progress(),
                    namespace: key.namespace.clone(),
                    selector: key
                        .label_selector
                        .as_deref()
                        .and_then(|s| LabelSelector::parse(s).ok()),
                };
                (
                    (key.resource.group.clone(), key.resource.kind.clone()),
                    cache,
                )
            })
            .collect();
        Self {
            by_kind: Arc::new(by_kind),
        }
    }

    fn get(&self, kind: &(String, String)) -> Option<&Cache> {
        self.by_kind.get(kind)
    }

    /// The write to remember for `response`, the object a write of `kind` returned; `None` when
    /// the cache will never see it or already has.
    fn written(&self, kind: &Kind, response: &[u8]) -> Option<Written> {
        #[derive(serde::Deserialize)]
        struct Meta {
            #[serde(rename = "resourceVersion")]
            resource_version: Option<String>,
            namespace: Option<String>,
            #[serde(default)]
            labels: std::collections::BTreeMap<String, String>,
        }
        #[derive(serde::Deserialize)]
        struct Object {
            kind: Option<String>,
            metadata: Meta,
        }
        let kind_key = (kind.group.clone(), kind.kind.clone());
        let cache = self.get(&kind_key)?;
        let object: Object = serde_json::from_slice(response).ok()?;
        let rv = parse_resource_version(object.metadata.resource_version.as_deref()?)?;
        if let Some(ns) = &cache.namespace
            && object.metadata.namespace.as_ref() != Some(ns)
        {
            return None;
        }
        if let Some(selector) = &cache.selector {
            // A subresource (e.g. a Scale) answers with another kind: its labels are not the
            // object's, so whether the informer sees the object is unknown.
            if object.kind.as_deref().is_some_and(|k| k != kind.kind)
                || !selector.matches(&object.metadata.labels)
            {
                return None;
            }
        }
        if cache.progress.has_seen(rv) {
            return None;
        }
        Some(Written {
            kind: kind_key,
            resource_version: rv,
        })
    }
}

/// One write a reconcile made: its kind and the `resourceVersion` the API server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    kind: (String, String),
    resource_version: u64,
}

/// The writes of one reconcile, kept until the key's next reconcile.
#[derive(Debug)]
struct Writes {
    at: Instant,
    caches: Caches,
    writes: Vec<Written>,
}

/// How [`Pending::wait`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The key's last reconcile wrote nothing the caches still lacked: no wait.
    No,
    /// The caches caught up with the key's writes.
    CaughtUp,
    /// [`WAIT`] passed first (or the queue shut down); the reconcile goes ahead.
    GaveUp,
}

/// The writes of each key's last reconcile that the caches had not seen when it ended.
#[derive(Debug)]
pub(crate) struct Pending {
    keys: Mutex<HashMap<ObjectKey, Writes>>,
    limit: Duration,
}

impl Default for Pending {
    fn default() -> Self {
        Self::new(WAIT)
    }
}

impl Pending {
    /// Waits at most `limit` after a write.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            keys: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// Keeps what `recording` saw written for `key`'s next reconcile (replacing what an earlier
    /// reconcile of it left).
    pub(crate) fn remember(&self, key: &ObjectKey, recording: &Recording) {
        let writes = std::mem::take(&mut *recording.writes.lock());
        let mut keys = self.keys.lock();
        if writes.is_empty() {
            keys.remove(key);
        } else {
            keys.insert(
                key.clone(),
                Writes {
                    at: Instant::now(),
                    caches: recording.caches.clone(),
                    writes,
                },
            );
        }
    }

    /// Before a reconcile of `key`: waits until the caches hold what its last reconcile wrote,
    /// at most until [`WAIT`] after those writes, or until `stop` resolves.
    pub(crate) async fn wait(&self, key: &ObjectKey, stop: impl Future<Output = ()>) -> Waited {
        let Some(Writes { at, caches, writes }) = self.keys.lock().remove(key) else {
            return Waited::No;
        };
        let mut lagging: Vec<(Progress, u64)> = writes
            .iter()
            .filter_map(|w| {
                let progress = caches.get(&w.kind)?.progress.clone();
                (!progress.has_seen(w.resource_version)).then_some((progress, w.resource_version))
            })
            .collect();
        if lagging.is_empty() {
            return Waited::No;
        }
        let caught_up = async {
            for (progress, rv) in &mut lagging {
                // `false`: the informer stopped (the plugin is being rewired); nothing to wait for.
                progress.wait_for(*rv).await;
            }
        };
        tokio::select! {
            () = caught_up => Waited::CaughtUp,
            () = tokio::time::sleep_until(at + self.limit) => {
                tracing::debug!(
                    key = %key,
                    "the caches did not catch up with this key's last writes within {:?}; reconciling anyway",
                    self.limit
                );
                Waited::GaveUp
            }
            () = stop => Waited::GaveUp,
        }
    }
}

/// The backend of one reconcile: passes every call to the plugin's backend and keeps the
/// `resourceVersion` of each write that the caches have yet to see.
pub(crate) struct Recording {
    inner: Arc<dyn Backend>,
    caches: Caches,
    writes: Mutex<Vec<Written>>,
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("writes", &self.writes.lock().len())
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Records the writes made through `inner` that `caches` should see.
    pub(crate) fn new(inner: Arc<dyn Backend>, caches: Caches) -> Self {
        Self {
            inner,
            caches,
            writes: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, kind: &Kind, result: &Result<Bytes, ApiError>) {
        if let Ok(response) = result
            && let Some(written) = self.caches.written(kind, response)
        {
            let mut writes = self.writes.lock();
            // Several writes to one kind: the newest covers the older ones.
            match writes.iter_mut().find(|w| w.kind == written.kind) {
                Some(w) => w.resource_version = w.resource_version.max(written.resource_version),
                None => writes.push(written),
            }
        }
    }
}

impl Backend for Recording {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        self.inner.get(kind, namespace, name)
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        self.inner.list(kind, query)
    }

    fn keys(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<ObjectKey>, ApiError> {
        self.inner.keys(kind, query)
    }

    fn count(&self, kind: &Kind, query: &ListQuery) -> Result<u64, ApiError> {
        self.inner.count(kind, query)
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let result = self.inner.create(kind, namespace, body).await;
            self.note(kind, &result);
            result
        })
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let result = self
                .inner
                .replace(kind, namespace, name, body, subresource)
                .await;
            self.note(kind, &result);
            result
        })
    }

    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let result = self
                .inner
                .patch(kind, namespace, name, patch, subresource)
                .await;
            self.note(kind, &result);
            result
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        // A delete returns no resourceVersion to wait for.
        self.inner.delete(kind, namespace, name, options)
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        self.inner.record_event(event)
    }
}
