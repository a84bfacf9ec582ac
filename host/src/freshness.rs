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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    use kubewasm_apiserver::{ApiServer, Config};
    use kubewasm_controller::{InformerFactory, InformerKey, InformerOptions};
    use serde_json::json;

    use super::*;
    use crate::cluster::api_resource;

    fn configmaps() -> Kind {
        Kind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        }
    }

    fn response(namespace: &str, labels: serde_json::Value, rv: &str) -> Bytes {
        Bytes::from(
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": namespace, "labels": labels, "resourceVersion": rv},
            })
            .to_string(),
        )
    }

    /// The embedded API server, a client, and a synced ConfigMap informer on namespace `a`
    /// with label selector `app=x`.
    async fn setup() -> (ApiServer, kube::Client, InformerHandle) {
        let server = ApiServer::start(Config::default())
            .await
            .expect("the embedded API server starts");
        let mut config = kube::Config::new(server.url().parse().expect("the URL parses"));
        config.default_namespace = "default".into();
        let client = kube::Client::try_from(config).expect("a client");
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("a Namespace"),
            )
            .await
            .expect("the namespace is created");
        let informer = InformerFactory::new(client.clone())
            .acquire(
                InformerKey {
                    namespace: Some("a".into()),
                    label_selector: Some("app=x".into()),
                    ..InformerKey::all(api_resource(&configmaps()))
                },
                InformerOptions::default(),
            )
            .expect("the informer starts");
        informer.wait_synced().await;
        (server, client, informer)
    }

    #[tokio::test]
    async fn only_writes_the_cache_will_see_and_has_not_seen_yet_are_waited_for() {
        let (server, client, informer) = setup().await;
        let caches = Caches::of(std::slice::from_ref(&informer));
        let far = "999999";
        let cm = configmaps();
        assert!(
            caches
                .written(&cm, &response("a", json!({"app": "x"}), far))
                .is_some()
        );
        assert!(
            caches
                .written(&cm, &response("b", json!({"app": "x"}), far))
                .is_none(),
            "outside the informer's namespace"
        );
        assert!(
            caches
                .written(&cm, &response("a", json!({"app": "y"}), far))
                .is_none(),
            "outside its label selector"
        );
        assert!(
            caches
                .written(&cm, &response("a", json!({"app": "x"}), "opaque-rv"))
                .is_none(),
            "a resourceVersion that is not an integer"
        );
        let secrets = Kind {
            kind: "Secret".into(),
            plural: "secrets".into(),
            ..configmaps()
        };
        assert!(
            caches
                .written(&secrets, &response("a", json!({"app": "x"}), far))
                .is_none(),
            "a kind without a cache"
        );
        // A write the cache already holds.
        let api: Api<ConfigMap> = Api::namespaced(client, "a");
        let created = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": "seen", "labels": {"app": "x"}}}),
                )
                .expect("a ConfigMap"),
            )
            .await
            .expect("created");
        let rv = created
            .metadata
            .resource_version
            .expect("a resourceVersion");
        let mut progress = informer.progress();
        progress.wait_for(rv.parse().expect("an integer")).await;
        assert!(
            caches
                .written(&cm, &response("a", json!({"app": "x"}), &rv))
                .is_none()
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn the_next_reconcile_waits_for_the_write_and_gives_up_after_the_bound() {
        let (server, client, informer) = setup().await;
        let caches = Caches::of(std::slice::from_ref(&informer));
        let key = ObjectKey::namespaced("a", "cm");
        let backend: Arc<dyn Backend> = Arc::new(crate::runtime::MemoryBackend::new());

        // A write the informer never sees: the wait ends at the bound.
        let pending = Pending::new(Duration::ZERO);
        let recording = Recording::new(Arc::clone(&backend), caches.clone());
        recording.note(
            &configmaps(),
            &Ok(response("a", json!({"app": "x"}), "999999")),
        );
        pending.remember(&key, &recording);
        assert_eq!(
            pending.wait(&key, std::future::pending()).await,
            Waited::GaveUp
        );
        assert_eq!(
            pending.wait(&key, std::future::pending()).await,
            Waited::No,
            "a wait takes the key's writes"
        );

        // A real write: the wait ends when the informer has it.
        let pending = Pending::default();
        let api: Api<ConfigMap> = Api::namespaced(client, "a");
        let created = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": "cm", "labels": {"app": "x"}}}),
                )
                .expect("a ConfigMap"),
            )
            .await
            .expect("created");
        let recording = Recording::new(Arc::clone(&backend), caches.clone());
        recording.note(
            &configmaps(),
            &Ok(Bytes::from(serde_json::to_vec(&created).expect("json"))),
        );
        pending.remember(&key, &recording);
        let waited = pending.wait(&key, std::future::pending()).await;
        assert!(
            matches!(waited, Waited::CaughtUp | Waited::No),
            "{waited:?}"
        );
        assert!(
            informer.store().get(Some("a"), "cm").is_some(),
            "once the wait is over, the cache holds the write"
        );
        // A reconcile that wrote nothing leaves nothing to wait for.
        pending.remember(&key, &Recording::new(backend, caches));
        assert_eq!(pending.wait(&key, std::future::pending()).await, Waited::No);
        server.shutdown().await;
    }
}
