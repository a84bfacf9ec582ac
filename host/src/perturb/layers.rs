//! The reconcile layers of a perturbation run: one that counts the plugin's writes, one that
//! crashes a reconcile right after its Nth write, one that serves reads from an older view.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use kubewasm_core::ObjectKey;
use parking_lot::Mutex;

use crate::layer::{Layered, ReconcileLayer, ReconcileScope};
use crate::runtime::{
    ApiError, Backend, DeleteOptions, EventRecord, Kind, ListQuery, PatchRequest, Subresource,
};

/// What a wrapping backend does around each write of one reconcile.
trait WriteHook: Send + Sync + 'static {
    /// Called after a write returned `result`; may replace it.
    fn after_write(
        &self,
        kind: &Kind,
        key: Option<ObjectKey>,
        result: Result<Option<Bytes>, ApiError>,
    ) -> Result<Option<Bytes>, ApiError>;

    /// Why the reconcile ends after the write just made, if it does.
    fn abort_reason(&self) -> Option<String> {
        None
    }

    /// A read of one object; `None` lets the inner backend answer.
    fn get(
        &self,
        _inner: &dyn Backend,
        _kind: &Kind,
        _namespace: Option<&str>,
        _name: &str,
    ) -> Option<Result<Option<Bytes>, ApiError>> {
        None
    }

    /// A list; `None` lets the inner backend answer.
    fn list(
        &self,
        _inner: &dyn Backend,
        _kind: &Kind,
        _query: &ListQuery,
    ) -> Option<Result<Vec<Bytes>, ApiError>> {
        None
    }
}

/// A backend that hands every call to `inner`, with `hook` around writes and reads.
struct Hooked<H> {
    inner: Arc<dyn Backend>,
    hook: H,
}

fn key(namespace: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    }
}

impl<H: WriteHook> Backend for Hooked<H> {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        match self.hook.get(&*self.inner, kind, namespace, name) {
            Some(answer) => answer,
            None => self.inner.get(kind, namespace, name),
        }
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        match self.hook.list(&*self.inner, kind, query) {
            Some(answer) => answer,
            None => self.inner.list(kind, query),
        }
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let out = self.inner.create(kind, namespace, body).await;
            let key = out.as_ref().ok().and_then(|b| crate::runtime::key_of(b));
            required(self.hook.after_write(kind, key, out.map(Some)))
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
            let out = self
                .inner
                .replace(kind, namespace, name, body, subresource)
                .await;
            required(
                self.hook
                    .after_write(kind, Some(key(namespace, name)), out.map(Some)),
            )
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
            let out = self
                .inner
                .patch(kind, namespace, name, patch, subresource)
                .await;
            required(
                self.hook
                    .after_write(kind, Some(key(namespace, name)), out.map(Some)),
            )
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
            let out = self.inner.delete(kind, namespace, name, options).await;
            self.hook
                .after_write(kind, Some(key(namespace, name)), out.map(|()| None))
                .map(|_| ())
        })
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        self.inner.record_event(event)
    }

    fn log(&self, level: tracing::Level, message: &str) {
        self.inner.log(level, message);
    }

    fn abort_reason(&self) -> Option<String> {
        self.hook
            .abort_reason()
            .or_else(|| self.inner.abort_reason())
    }
}

/// A create's, replace's or patch's answer: the object.
fn required(out: Result<Option<Bytes>, ApiError>) -> Result<Bytes, ApiError> {
    out.map(Option::unwrap_or_default)
}

/// Whether a write reached the server and was taken.
fn reached_server<T>(out: &Result<T, ApiError>) -> bool {
    out.is_ok()
}

/// Counts the writes that reach the server, overall and the most in one reconcile.
#[derive(Default)]
pub(crate) struct WriteCount {
    total: AtomicU64,
    most_in_one: AtomicU64,
}

impl WriteCount {
    /// Writes so far.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The most writes one reconcile made.
    pub(crate) fn most_in_one_reconcile(&self) -> u64 {
        self.most_in_one.load(Ordering::Relaxed)
    }
}

struct CountWrites {
    count: Arc<WriteCount>,
    this_reconcile: AtomicU64,
}

impl WriteHook for CountWrites {
    fn after_write(
        &self,
        _kind: &Kind,
        _key: Option<ObjectKey>,
        result: Result<Option<Bytes>, ApiError>,
    ) -> Result<Option<Bytes>, ApiError> {
        if reached_server(&result) {
            self.count.total.fetch_add(1, Ordering::Relaxed);
            let n = self.this_reconcile.fetch_add(1, Ordering::Relaxed) + 1;
            self.count.most_in_one.fetch_max(n, Ordering::Relaxed);
        }
        result
    }
}

impl ReconcileLayer for Arc<WriteCount> {
    fn begin(&self, _scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Layered {
        Layered::pass(Arc::new(Hooked {
            inner: backend,
            hook: CountWrites {
                count: Arc::clone(self),
                this_reconcile: AtomicU64::new(0),
            },
        }))
    }
}

/// Crashes the first reconcile of each key that makes its `after`-th write: the write reaches
/// the server, then the import traps the plugin ([`Backend::abort_reason`]), so the rest of the
/// reconcile never runs and the key is retried as after any trap.
pub(crate) struct CrashAfterWrite {
    after: u64,
    crashed: Mutex<HashSet<ObjectKey>>,
}

impl CrashAfterWrite {
    pub(crate) fn new(after: u64) -> Self {
        Self {
            after,
            crashed: Mutex::default(),
        }
    }

    /// How many reconciles it crashed.
    pub(crate) fn crashes(&self) -> u64 {
        self.crashed.lock().len() as u64
    }
}

struct Crash {
    layer: Arc<CrashAfterWrite>,
    key: ObjectKey,
    writes: AtomicU64,
    abort: Mutex<Option<String>>,
}

impl WriteHook for Crash {
    fn after_write(
        &self,
        _kind: &Kind,
        _key: Option<ObjectKey>,
        result: Result<Option<Bytes>, ApiError>,
    ) -> Result<Option<Bytes>, ApiError> {
        if !reached_server(&result) {
            return result;
        }
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.layer.after && self.layer.crashed.lock().insert(self.key.clone()) {
            *self.abort.lock() = Some(format!(
                "perturbation test: crash after write {n} of this reconcile"
            ));
        }
        result
    }

    fn abort_reason(&self) -> Option<String> {
        self.abort.lock().clone()
    }
}

impl ReconcileLayer for Arc<CrashAfterWrite> {
    fn begin(&self, scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Layered {
        let key = key(
            scope.request.namespace.as_deref().filter(|n| !n.is_empty()),
            &scope.request.name,
        );
        if self.crashed.lock().contains(&key) {
            return Layered::pass(backend);
        }
        Layered::pass(Arc::new(Hooked {
            inner: backend,
            hook: Crash {
                layer: Arc::clone(self),
                key,
                writes: AtomicU64::new(0),
                abort: Mutex::default(),
            },
        }))
    }
}

/// Serves reads from an older view: for `rounds` windows of `window` reconciles each, every
/// read is answered as the same read was first answered in that window, except for the
/// objects the plugin wrote itself during the window (read-your-writes holds, as the host
/// promises); after the last window, reads are fresh.
pub(crate) struct StaleView {
    window: u64,
    rounds: u64,
    state: Mutex<StaleState>,
    stale_answers: AtomicU64,
}

#[derive(Default)]
struct StaleState {
    reconciles: u64,
    gets: HashMap<(String, ObjectKey), Option<Bytes>>,
    lists: HashMap<(String, String), Vec<Bytes>>,
    written: HashSet<(String, ObjectKey)>,
}

impl StaleView {
    pub(crate) fn new(window: u64, rounds: u64) -> Self {
        Self {
            window: window.max(1),
            rounds,
            state: Mutex::default(),
            stale_answers: AtomicU64::new(0),
        }
    }

    /// Whether every stale window has passed (later reads are fresh).
    pub(crate) fn is_over(&self) -> bool {
        self.state.lock().reconciles >= self.window * self.rounds
    }

    /// How many reads were answered with something older than the cache held.
    pub(crate) fn stale_answers(&self) -> u64 {
        self.stale_answers.load(Ordering::Relaxed)
    }
}

struct Stale {
    view: Arc<StaleView>,
}

fn kind_id(kind: &Kind) -> String {
    format!("{}/{}", kind.group, kind.kind)
}

impl WriteHook for Stale {
    fn after_write(
        &self,
        kind: &Kind,
        key: Option<ObjectKey>,
        result: Result<Option<Bytes>, ApiError>,
    ) -> Result<Option<Bytes>, ApiError> {
        if let Some(key) = key
            && reached_server(&result)
        {
            self.view.state.lock().written.insert((kind_id(kind), key));
        }
        result
    }

    fn get(
        &self,
        inner: &dyn Backend,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Result<Option<Bytes>, ApiError>> {
        let id = (kind_id(kind), key(namespace, name));
        let fresh = inner.get(kind, namespace, name);
        let Ok(fresh) = fresh else {
            return Some(fresh);
        };
        let mut state = self.view.state.lock();
        if state.written.contains(&id) {
            return Some(Ok(fresh));
        }
        let old = state
            .gets
            .entry(id)
            .or_insert_with(|| fresh.clone())
            .clone();
        if old != fresh {
            self.view.stale_answers.fetch_add(1, Ordering::Relaxed);
        }
        Some(Ok(old))
    }

    fn list(
        &self,
        inner: &dyn Backend,
        kind: &Kind,
        query: &ListQuery,
    ) -> Option<Result<Vec<Bytes>, ApiError>> {
        let fresh = inner.list(kind, query);
        let Ok(fresh) = fresh else {
            return Some(fresh);
        };
        let kid = kind_id(kind);
        let mut state = self.view.state.lock();
        let mut old = state
            .lists
            .entry((kid.clone(), format!("{query:?}")))
            .or_insert_with(|| fresh.clone())
            .clone();
        // The plugin's own writes show as they are now.
        let written: Vec<ObjectKey> = state
            .written
            .iter()
            .filter(|(k, _)| *k == kid)
            .map(|(_, key)| key.clone())
            .collect();
        drop(state);
        if !written.is_empty() {
            old.retain(|b| crate::runtime::key_of(b).is_none_or(|k| !written.contains(&k)));
            old.extend(
                fresh
                    .iter()
                    .filter(|b| crate::runtime::key_of(b).is_some_and(|k| written.contains(&k)))
                    .cloned(),
            );
        }
        let mut a: Vec<&Bytes> = old.iter().collect();
        let mut b: Vec<&Bytes> = fresh.iter().collect();
        a.sort();
        b.sort();
        if a != b {
            self.view.stale_answers.fetch_add(1, Ordering::Relaxed);
        }
        Some(Ok(old))
    }
}

impl ReconcileLayer for Arc<StaleView> {
    fn begin(&self, _scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Layered {
        let mut state = self.state.lock();
        let n = state.reconciles;
        state.reconciles += 1;
        if n / self.window >= self.rounds {
            return Layered::pass(backend);
        }
        if n.is_multiple_of(self.window) {
            // A new window: the view is taken afresh.
            state.gets.clear();
            state.lists.clear();
            state.written.clear();
        }
        drop(state);
        Layered::pass(Arc::new(Hooked {
            inner: backend,
            hook: Stale {
                view: Arc::clone(self),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::MemoryBackend;
    use serde_json::json;

    fn configmaps() -> Kind {
        Kind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        }
    }

    fn cm(name: &str, value: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"namespace": "ns", "name": name}, "data": {"v": value}})
    }

    fn value(b: &Bytes) -> String {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v["data"]["v"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn a_stale_view_answers_as_first_answered_except_for_the_plugins_own_writes() {
        let memory = Arc::new(MemoryBackend::new());
        let kind = configmaps();
        memory.insert(&kind, cm("other", "1")).unwrap();
        memory.insert(&kind, cm("mine", "1")).unwrap();
        let view = Arc::new(StaleView::new(4, 1));
        let stale = Hooked {
            inner: memory.clone() as Arc<dyn Backend>,
            hook: Stale {
                view: Arc::clone(&view),
            },
        };
        let get = |name| stale.get(&kind, Some("ns"), name).unwrap().unwrap();
        assert_eq!(value(&get("other")), "1");
        assert_eq!(value(&get("mine")), "1");
        let all = ListQuery::namespace(Some("ns"));
        assert_eq!(stale.list(&kind, &all).unwrap().len(), 2);
        // Someone else changes "other" and adds a third: the view does not show it.
        memory.insert(&kind, cm("other", "2")).unwrap();
        memory.insert(&kind, cm("third", "1")).unwrap();
        assert_eq!(value(&get("other")), "1");
        assert_eq!(stale.list(&kind, &all).unwrap().len(), 2);
        assert_eq!(stale.count(&kind, &all).unwrap(), 2);
        // The plugin's own write reads as it is, in gets and lists.
        stale
            .replace(
                &kind,
                Some("ns"),
                "mine",
                Bytes::from(cm("mine", "9").to_string()),
                Subresource::Main,
            )
            .await
            .unwrap();
        assert_eq!(value(&get("mine")), "9");
        let listed: Vec<String> = stale.list(&kind, &all).unwrap().iter().map(value).collect();
        assert!(listed.contains(&"9".to_owned()), "{listed:?}");
        assert!(view.stale_answers() >= 3, "{}", view.stale_answers());
    }

    #[test]
    fn a_stale_view_is_over_after_its_windows() {
        let view = StaleView::new(2, 2);
        for _ in 0..3 {
            view.state.lock().reconciles += 1;
            assert!(!view.is_over());
        }
        view.state.lock().reconciles += 1;
        assert!(view.is_over());
    }

    #[tokio::test]
    async fn a_crash_aborts_right_after_the_nth_write_once_per_key() {
        let memory = Arc::new(MemoryBackend::new());
        let kind = configmaps();
        let layer = Arc::new(CrashAfterWrite::new(2));
        let reconcile = || Hooked {
            inner: memory.clone() as Arc<dyn Backend>,
            hook: Crash {
                layer: Arc::clone(&layer),
                key: key(Some("ns"), "source"),
                writes: AtomicU64::new(0),
                abort: Mutex::default(),
            },
        };
        let first = reconcile();
        let body = |name| Bytes::from(cm(name, "1").to_string());
        first.create(&kind, Some("ns"), body("a")).await.unwrap();
        assert_eq!(first.abort_reason(), None);
        first.create(&kind, Some("ns"), body("b")).await.unwrap();
        // The second write reached the server, then the reconcile is aborted.
        assert!(memory.object(&kind, Some("ns"), "b").is_some());
        assert!(
            first
                .abort_reason()
                .is_some_and(|r| r.contains("crash after write 2")),
            "{:?}",
            first.abort_reason()
        );
        assert_eq!(layer.crashes(), 1);
        // The key's next reconcile is not crashed again.
        let second = reconcile();
        second.create(&kind, Some("ns"), body("c")).await.unwrap();
        second.create(&kind, Some("ns"), body("d")).await.unwrap();
        assert_eq!(second.abort_reason(), None);
        assert_eq!(layer.crashes(), 1);
    }
}
