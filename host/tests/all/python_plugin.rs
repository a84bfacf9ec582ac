//! The Python example plugin (`plugins/python/labeler`, built with componentize-py) runs in
//! the same runtime as the Rust plugins: its manifest is validated, its cache reads, merge
//! patches and Events reach the backend, a capability denial reaches Python as the typed
//! `forbidden` error it can catch, and a Python exception fails the reconcile naming its cause.
//!
//! The `py-faults` test plugin checks that faults inside the interpreter (an escaping
//! exception, a spin, unbounded allocation) are contained like a Rust plugin's.
//!
//! Each component is ~18-19 MB (CPython inside) and takes seconds to compile, so each is loaded
//! once per test process and shared by its tests; the on-disk compile cache shared by the
//! runtime tests makes every later load (other processes under nextest, later runs) cheap.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kubewasm::runtime::{
    Action, ApiError, Backend, DeleteOptions, EventRecord, EventType, Kind, LabelSelector,
    ListQuery, MemoryBackend, PatchRequest, Plugin, Reason, ReconcileError, Request, Subresource,
    Verb, WatchMapping, WitVersion,
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::support;

type ApiResult<T> = Result<T, ApiError>;

const ENABLED: &str = "labeler.kubewasm.dev/enabled";
const FROM: &str = "labeler.kubewasm.dev/from";
const LABELS: &str = "labeler.kubewasm.dev/labels";
const COPIED_FROM: &str = "labeler.kubewasm.dev/copied-from";

/// Loads `target/<dir>/<name>.wasm` in a runtime that outlives the calling test's tokio
/// runtime (it owns no tokio resources).
async fn load_once(dir: &str, name: &str) -> Plugin {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(dir)
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask plugins` first (it builds the Python plugins with \
         componentize-py)",
        path.display()
    );
    support::load(&support::runtime(), &path).await
}

/// The labeler example plugin, loaded once for every test of this file.
async fn labeler() -> &'static Plugin {
    static PLUGIN: OnceCell<Plugin> = OnceCell::const_new();
    PLUGIN.get_or_init(|| load_once("plugins", "labeler")).await
}

/// The `py-faults` test plugin, loaded once for every test of this file.
async fn faults() -> &'static Plugin {
    static PLUGIN: OnceCell<Plugin> = OnceCell::const_new();
    PLUGIN
        .get_or_init(|| load_once("test-plugins", "py-faults"))
        .await
}

async fn fault(name: &str) -> Result<Action, ReconcileError> {
    faults()
        .await
        .reconcile(
            support::backend(),
            Request::new("demo", name, Reason::Changed),
        )
        .await
}

fn kind(kind: &str, plural: &str, namespaced: bool) -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

fn namespaces() -> Kind {
    kind("Namespace", "namespaces", false)
}

/// A cluster with namespace `demo` (labelled `team=payments`) and the enabled ConfigMap
/// `demo/app` carrying `annotations`.
fn cluster(annotations: Value) -> Arc<MemoryBackend> {
    let backend = support::backend();
    backend
        .insert(
            &namespaces(),
            json!({"metadata": {"name": "demo", "labels": {"team": "payments", "tier": "gold"}}}),
        )
        .unwrap();
    backend
        .insert(
            &support::configmaps(),
            json!({
                "metadata": {
                    "name": "app", "namespace": "demo",
                    "labels": {ENABLED: "true"},
                    "annotations": annotations,
                },
                "data": {"k": "v"},
            }),
        )
        .unwrap();
    backend
}

async fn reconcile(backend: &Arc<MemoryBackend>, name: &str) -> Result<Action, ReconcileError> {
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    labeler()
        .await
        .reconcile(dyn_backend, Request::new("demo", name, Reason::Changed))
        .await
}

fn configmap(backend: &MemoryBackend, name: &str) -> Value {
    backend
        .object(&support::configmaps(), Some("demo"), name)
        .expect("the ConfigMap exists")
}

fn resource_version(backend: &MemoryBackend, name: &str) -> String {
    configmap(backend, name)["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned()
}

#[tokio::test]
async fn the_python_plugins_are_built_against_the_current_wit() {
    // componentize-py builds against `wit/`: kubewasm:controller@0.2.0, served without the
    // 0.1.0 adapter.
    assert_eq!(labeler().await.wit_version(), WitVersion::V0_2);
    assert_eq!(faults().await.wit_version(), WitVersion::V0_2);
}

#[tokio::test]
async fn the_python_plugin_loads_with_its_declared_manifest() {
    let plugin = labeler().await;
    assert_eq!(plugin.name(), "labeler");
    let m = plugin.manifest();
    assert_eq!(m.reconciles.kind, support::configmaps());
    let selector = m
        .reconciles
        .label_selector
        .as_ref()
        .expect("a label selector");
    assert_eq!(
        selector,
        &LabelSelector::parse(&format!("{ENABLED}=true")).unwrap()
    );
    assert_eq!(m.concurrency, 2);
    let [watch] = m.watches.as_slice() else {
        panic!("one watch expected: {:?}", m.watches)
    };
    assert_eq!(watch.kind, namespaces());
    assert!(
        matches!(&watch.mapping, WatchMapping::IndexLookup { index, .. } if index == "by-namespace")
    );
    assert_eq!(m.indexes[0].name, "by-namespace");
    assert!(m.verbs("", "ConfigMap").unwrap().contains(Verb::Patch));
    assert!(m.verbs("", "Service").unwrap().contains(Verb::Get));
    assert!(
        m.verbs("", "Secret").is_none(),
        "Secrets must not be granted"
    );
}

#[tokio::test]
async fn labels_are_copied_from_the_namespace_with_a_merge_patch_and_an_event() {
    let backend = cluster(json!({}));
    assert_eq!(reconcile(&backend, "app").await.unwrap(), Action::Done);

    let cm = configmap(&backend, "app");
    assert_eq!(cm["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        cm["metadata"]["labels"][ENABLED], "true",
        "other labels kept"
    );
    assert!(
        cm["metadata"]["labels"].get("tier").is_none(),
        "only `team` by default"
    );
    assert_eq!(cm["metadata"]["annotations"][COPIED_FROM], "Namespace/demo");
    assert_eq!(cm["data"]["k"], "v");

    let events = backend.events();
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}")
    };
    assert_eq!(event.kind, support::configmaps());
    assert_eq!(
        (event.namespace.as_deref(), event.name.as_str()),
        (Some("demo"), "app")
    );
    assert_eq!(event.event_type, EventType::Normal);
    assert_eq!(event.reason, "Labeled");
    assert_eq!(event.note, "copied team=payments from Namespace/demo");
    assert_eq!(event.action, "Patch");
    assert_eq!(event.reporting_controller, "kubewasm/labeler");
}

#[tokio::test]
async fn a_configmap_already_in_line_is_not_written_again() {
    let backend = cluster(json!({}));
    reconcile(&backend, "app").await.unwrap();
    let rv = resource_version(&backend, "app");

    assert_eq!(reconcile(&backend, "app").await.unwrap(), Action::Done);
    assert_eq!(resource_version(&backend, "app"), rv, "no second write");
    assert_eq!(backend.events().len(), 1, "no second event");
}

#[tokio::test]
async fn a_changed_source_label_is_copied_again() {
    let backend = cluster(json!({}));
    reconcile(&backend, "app").await.unwrap();
    backend
        .insert(
            &namespaces(),
            json!({"metadata": {"name": "demo", "labels": {"team": "billing"}}}),
        )
        .unwrap();
    reconcile(&backend, "app").await.unwrap();
    assert_eq!(
        configmap(&backend, "app")["metadata"]["labels"]["team"],
        "billing"
    );
    assert_eq!(
        backend.events()[1].note,
        "copied team=billing from Namespace/demo"
    );
}

#[tokio::test]
async fn the_source_and_label_keys_named_in_annotations_are_used() {
    let backend = cluster(json!({FROM: "ServiceAccount/builder", LABELS: "team, tier,absent"}));
    backend
        .insert(
            &kind("ServiceAccount", "serviceaccounts", true),
            json!({"metadata": {"name": "builder", "namespace": "demo",
                                "labels": {"team": "search", "tier": "silver", "other": "x"}}}),
        )
        .unwrap();
    reconcile(&backend, "app").await.unwrap();

    let labels = &configmap(&backend, "app")["metadata"]["labels"];
    assert_eq!(labels["team"], "search");
    assert_eq!(labels["tier"], "silver");
    assert!(labels.get("other").is_none() && labels.get("absent").is_none());
    assert_eq!(
        backend.events()[0].note,
        "copied team=search, tier=silver from ServiceAccount/builder"
    );
}

#[tokio::test]
async fn a_forbidden_read_reaches_python_as_the_typed_error_and_becomes_a_warning() {
    // The manifest does not grant Secrets: the host answers `forbidden`, the plugin catches
    // that case (and only that case) and reports it instead of failing the reconcile.
    let backend = cluster(json!({FROM: "Secret/token"}));
    let rv = resource_version(&backend, "app");
    assert_eq!(reconcile(&backend, "app").await.unwrap(), Action::Done);

    assert_eq!(resource_version(&backend, "app"), rv, "nothing written");
    let events = backend.events();
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}")
    };
    assert_eq!(event.event_type, EventType::Warning);
    assert_eq!(event.reason, "SourceForbidden");
    assert!(
        event.note.starts_with("cannot read Secret/token: ")
            && event.note.contains("does not declare kind Secret"),
        "the host's forbidden message reaches Python: {:?}",
        event.note
    );
}

#[tokio::test]
async fn a_missing_source_is_retried_after_a_minute_with_a_warning() {
    let backend = cluster(json!({FROM: "Service/web"}));
    assert_eq!(
        reconcile(&backend, "app").await.unwrap(),
        Action::RequeueAfter(std::time::Duration::from_secs(60))
    );
    let events = backend.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::Warning);
    assert_eq!(events[0].reason, "SourceMissing");
    assert_eq!(events[0].note, "Service/web does not exist");
}

#[tokio::test]
async fn an_unknown_source_kind_is_reported_not_retried() {
    // ConfigMaps are not a source: the host caches only the enabled ones.
    for source in ["Deployment/web", "ConfigMap/defaults", "Service"] {
        let backend = cluster(json!({FROM: source}));
        assert_eq!(reconcile(&backend, "app").await.unwrap(), Action::Done);
        let events = backend.events();
        assert_eq!(events.len(), 1, "{source}: {events:?}");
        assert_eq!(events[0].event_type, EventType::Warning);
        assert_eq!(events[0].reason, "InvalidSource");
        assert!(
            events[0].note.contains(&format!("'{source}'")),
            "{:?}",
            events[0].note
        );
    }
}

#[tokio::test]
async fn a_deleted_configmap_needs_nothing() {
    let backend = cluster(json!({}));
    assert_eq!(reconcile(&backend, "gone").await.unwrap(), Action::Done);
    assert!(backend.events().is_empty());
}

#[tokio::test]
async fn a_python_exception_fails_the_reconcile_naming_its_cause() {
    // Annotations that are not a map: `annotations.get(...)` raises AttributeError.
    let backend = cluster(json!("not-a-map"));
    let rv = resource_version(&backend, "app");
    match reconcile(&backend, "app").await {
        Err(ReconcileError::Plugin {
            plugin,
            error: ApiError::Other(msg),
        }) => {
            assert_eq!(plugin, "labeler");
            assert!(
                msg.starts_with("AttributeError: 'str' object has no attribute 'get' (at app.py:"),
                "{msg:?}"
            );
        }
        other => panic!("expected a failed reconcile naming the exception, got {other:?}"),
    }
    assert_eq!(resource_version(&backend, "app"), rv, "nothing written");
}

#[tokio::test]
async fn a_host_error_other_than_forbidden_fails_the_reconcile() {
    // The ConfigMap vanishes between the read and the patch: `not-found` from the patch is
    // re-raised by the plugin, so the host retries the key.
    let backend = Arc::new(VanishingBackend(cluster(json!({}))));
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    let result = labeler()
        .await
        .reconcile(dyn_backend, Request::new("demo", "app", Reason::Changed))
        .await;
    assert!(
        matches!(
            &result,
            Err(ReconcileError::Plugin {
                error: ApiError::NotFound(_),
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_exception_escaping_reconcile_traps_with_the_python_traceback() {
    match fault("raise").await {
        Err(ReconcileError::Trap { plugin, stderr, .. }) => {
            assert_eq!(plugin, "py-faults");
            assert!(
                stderr.contains("Traceback")
                    && stderr.contains("ValueError: cannot reconcile demo/raise"),
                "the traceback names the exception: {stderr:?}"
            );
        }
        other => panic!("expected a trap carrying the traceback, got {other:?}"),
    }
    // Only that store died: the next reconcile of the plugin runs normally.
    assert_eq!(fault("fine").await.unwrap(), Action::Done);
}

#[tokio::test]
async fn a_typed_error_raised_by_python_is_the_reconcile_error() {
    match fault("err").await {
        Err(ReconcileError::Plugin {
            error: ApiError::Conflict(msg),
            ..
        }) => assert_eq!(msg, "stale resourceVersion"),
        other => panic!("expected the plugin's conflict error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_spinning_python_plugin_is_stopped_at_its_deadline() {
    let result = fault("spin").await;
    assert!(
        matches!(result, Err(ReconcileError::Deadline { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_python_plugin_allocating_without_bound_hits_the_memory_cap() {
    let result = fault("allocate").await;
    assert!(
        matches!(result, Err(ReconcileError::MemoryCap { cap, .. }) if cap == support::config().memory_cap),
        "{result:?}"
    );
}

/// A cluster where every object vanishes just before it is patched: reads succeed, patches
/// answer `not-found`.
struct VanishingBackend(Arc<MemoryBackend>);

impl Backend for VanishingBackend {
    fn get(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> ApiResult<Option<Bytes>> {
        self.0.get(kind, namespace, name)
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> ApiResult<Vec<Bytes>> {
        self.0.list(kind, query)
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, ApiResult<Bytes>> {
        self.0.create(kind, namespace, body)
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, ApiResult<Bytes>> {
        self.0.replace(kind, namespace, name, body, subresource)
    }

    fn patch<'a>(
        &'a self,
        _: &'a Kind,
        _: Option<&'a str>,
        name: &'a str,
        _: PatchRequest,
        _: Subresource,
    ) -> BoxFuture<'a, ApiResult<Bytes>> {
        Box::pin(async move { Err(ApiError::NotFound(format!("{name} was deleted"))) })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, ApiResult<()>> {
        self.0.delete(kind, namespace, name, options)
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, ApiResult<()>> {
        self.0.record_event(event)
    }
}
