//! Loading the example plugin and reconciling against the in-memory backend.

use std::sync::Arc;

use kubewasm::runtime::{Action, Backend, EventType, Reason, Request, Verb};
use serde_json::json;

use crate::support;

#[tokio::test]
async fn the_example_plugin_stamps_a_configmap_and_records_an_event() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("hello")).await;
    assert_eq!(plugin.name(), "hello");
    let backend = support::backend();
    let cm = support::configmaps();
    backend
        .insert(
            &cm,
            json!({"metadata": {"name": "a", "namespace": "demo"}, "data": {"x": "1", "y": "2"}}),
        )
        .unwrap();
    backend
        .insert(&cm, json!({"metadata": {"name": "b", "namespace": "demo"}}))
        .unwrap();
    backend
        .insert(
            &cm,
            json!({"metadata": {"name": "elsewhere", "namespace": "other"}}),
        )
        .unwrap();

    let dyn_backend: Arc<dyn Backend> = backend.clone();
    let action = plugin
        .reconcile(
            dyn_backend.clone(),
            Request::new("demo", "a", Reason::Created),
        )
        .await
        .unwrap();
    assert_eq!(action, Action::Done);

    let a = backend.object(&cm, Some("demo"), "a").unwrap();
    assert_eq!(a["metadata"]["annotations"]["hello.kubewasm.dev/keys"], "2");
    assert_eq!(
        a["metadata"]["annotations"]["hello.kubewasm.dev/siblings"],
        "2"
    );
    let events = backend.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, "a");
    assert_eq!(events[0].namespace.as_deref(), Some("demo"));
    assert_eq!(events[0].reason, "Stamped");
    assert_eq!(events[0].event_type, EventType::Normal);
    assert_eq!(events[0].reporting_controller, "kubewasm/hello");
    assert!(events[0].note.contains("2 keys"), "{}", events[0].note);
}

#[tokio::test]
async fn reconciling_again_changes_nothing_and_a_missing_object_is_done() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("hello")).await;
    let backend = support::backend();
    let cm = support::configmaps();
    backend
        .insert(&cm, json!({"metadata": {"name": "a", "namespace": "demo"}}))
        .unwrap();
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    plugin
        .reconcile(
            dyn_backend.clone(),
            Request::new("demo", "a", Reason::Created),
        )
        .await
        .unwrap();
    let version =
        backend.object(&cm, Some("demo"), "a").unwrap()["metadata"]["resourceVersion"].clone();

    let again = plugin
        .reconcile(
            dyn_backend.clone(),
            Request::new("demo", "a", Reason::Resync),
        )
        .await
        .unwrap();
    assert_eq!(again, Action::Done);
    assert_eq!(
        backend.object(&cm, Some("demo"), "a").unwrap()["metadata"]["resourceVersion"],
        version
    );
    assert_eq!(backend.events().len(), 1);

    let gone = plugin
        .reconcile(dyn_backend, Request::new("demo", "gone", Reason::Deleted))
        .await
        .unwrap();
    assert_eq!(gone, Action::Done);
}

#[tokio::test]
async fn the_manifest_is_read_once_at_load_and_validated() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("hello")).await;
    let m = plugin.manifest();
    assert_eq!(m.reconciles.kind.kind, "ConfigMap");
    assert_eq!(m.reconciles.kind.plural, "configmaps");
    assert_eq!(m.concurrency, 2);
    let verbs = m.verbs("", "ConfigMap").unwrap();
    assert!(verbs.contains(Verb::Get) && verbs.contains(Verb::List) && verbs.contains(Verb::Patch));
    assert!(!verbs.contains(Verb::Delete));
}

#[tokio::test]
async fn many_reconciles_of_one_plugin_run_concurrently_in_separate_stores() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("hello")).await;
    let backend = support::backend();
    let cm = support::configmaps();
    for i in 0..16 {
        backend
            .insert(
                &cm,
                json!({"metadata": {"name": format!("cm-{i}"), "namespace": "demo"}}),
            )
            .unwrap();
    }
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (p, b) = (plugin.clone(), dyn_backend.clone());
            tokio::spawn(async move {
                p.reconcile(b, Request::new("demo", &format!("cm-{i}"), Reason::Created))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Action::Done);
    }
    assert_eq!(backend.events().len(), 16);
}
