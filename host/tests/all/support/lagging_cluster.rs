//! Shared by the example operators' tests: a cluster whose cache can lag behind its server and
//! whose next writes can be made to fail, and small helpers to drive reconciles.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use kubewasm::runtime::{
    Action, ApiError, Backend, DeleteOptions, EventRecord, Kind, ListQuery, MemoryBackend,
    PatchRequest, Plugin, Reason, Request, Subresource,
};
use parking_lot::Mutex;
use serde_json::Value;

/// A [`MemoryBackend`] "API server" plus a cache that can be frozen: while frozen, reads see
/// the snapshot taken by [`Cluster::freeze`] and writes still reach the server, which is how
/// a real informer cache lags behind a controller's own writes. [`Cluster::fail_next`]
/// makes the next writes fail (e.g. with a 409 conflict).
///
/// Like the real API server (and unlike the bare `MemoryBackend`), a merge patch that carries
/// `metadata.resourceVersion` is conditional: a stale one is a conflict.
pub struct Cluster {
    /// The source of truth.
    pub server: Arc<MemoryBackend>,
    snapshot: MemoryBackend,
    frozen: AtomicBool,
    kinds: Vec<Kind>,
    failures: Mutex<VecDeque<ApiError>>,
}

fn key_of(bytes: &[u8]) -> (Option<String>, String) {
    let v: Value = serde_json::from_slice(bytes).expect("stored objects are JSON");
    (
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    )
}

impl Cluster {
    /// An empty cluster serving `kinds` (the kinds a freeze snapshots).
    pub fn new(kinds: Vec<Kind>) -> Arc<Self> {
        Arc::new(Self {
            server: Arc::new(MemoryBackend::new()),
            snapshot: MemoryBackend::new(),
            frozen: AtomicBool::new(false),
            kinds,
            failures: Mutex::new(VecDeque::new()),
        })
    }

    /// From now on reads see the cluster as it is now, until [`Cluster::thaw`].
    pub async fn freeze(&self) {
        for kind in &self.kinds {
            for old in self.snapshot.list(kind, &ListQuery::default()).unwrap() {
                let (ns, name) = key_of(&old);
                self.snapshot
                    .delete(kind, ns.as_deref(), &name, DeleteOptions::default())
                    .await
                    .unwrap();
            }
            for bytes in self.server.list(kind, &ListQuery::default()).unwrap() {
                let (ns, name) = key_of(&bytes);
                self.snapshot.insert_raw(kind, ns.as_deref(), &name, bytes);
            }
        }
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Reads see the server again (the cache caught up).
    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// The next write fails with `error` (queue several to fail several writes).
    pub fn fail_next(&self, error: ApiError) {
        self.failures.lock().push_back(error);
    }

    /// The stored object.
    pub fn object(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.server.object(kind, namespace, name)
    }

    /// Every Event recorded.
    pub fn events(&self) -> Vec<EventRecord> {
        self.server.events()
    }

    fn reads(&self) -> &MemoryBackend {
        if self.frozen.load(Ordering::SeqCst) {
            &self.snapshot
        } else {
            &self.server
        }
    }

    fn injected(&self) -> Result<(), ApiError> {
        match self.failures.lock().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Backend for Cluster {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        self.reads().get(kind, namespace, name)
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        self.reads().list(kind, query)
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            self.injected()?;
            self.server.create(kind, namespace, body).await
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
            self.injected()?;
            self.server
                .replace(kind, namespace, name, body, subresource)
                .await
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
            self.injected()?;
            if let PatchRequest::Merge(body) = &patch {
                let body: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::Invalid(format!("the merge patch is not JSON: {e}")))?;
                if let Some(expected) = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    let current = self.server.object(kind, namespace, name).and_then(|v| {
                        v.pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    });
                    if current.as_deref().is_some_and(|c| c != expected) {
                        return Err(ApiError::Conflict(format!(
                            "{kind} {name}: resourceVersion {expected} is stale"
                        )));
                    }
                }
            }
            self.server
                .patch(kind, namespace, name, patch, subresource)
                .await
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.injected()?;
            self.server.delete(kind, namespace, name, options).await
        })
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        self.server.record_event(event)
    }
}

/// Runs one reconcile of `namespace/name` and returns its action; panics with the error.
pub async fn reconcile(
    plugin: &Plugin,
    cluster: &Arc<Cluster>,
    namespace: &str,
    name: &str,
    reason: Reason,
) -> Action {
    let backend: Arc<dyn Backend> = cluster.clone();
    match plugin
        .reconcile(backend, Request::new(namespace, name, reason))
        .await
    {
        Ok(action) => action,
        Err(e) => panic!("reconcile of {namespace}/{name} failed: {e}"),
    }
}

/// A kind value for tests.
pub fn kind(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Kind {
    Kind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

/// The resourceVersion of a stored object.
pub fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
