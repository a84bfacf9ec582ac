//! Projected cache reads (`get-fields`, `list-fields`, `list-by-index-fields`) across the
//! WebAssembly boundary: what the plugin receives, and what the manifest lets it ask.

use std::sync::Arc;

use kubewasm::runtime::{
    Action, ApiError, Backend, MemoryBackend, Plugin, Reason, ReconcileError, Request,
};
use serde_json::{Value, json};

use crate::support;

async fn setup() -> (Plugin, Arc<dyn Backend>) {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("projection")).await;
    let backend: Arc<MemoryBackend> = support::backend();
    let cm = support::configmaps();
    for (name, owner, a) in [
        ("cm", "me", "1"),
        ("other", "me", "2"),
        ("foreign", "you", "3"),
    ] {
        backend
            .insert(
                &cm,
                json!({"metadata": {"name": name, "namespace": "demo",
                                    "labels": {"owner": owner, "tier": "x"},
                                    "annotations": {"big": "not wanted"}},
                       "data": {"a": a, "b": "not wanted"}}),
            )
            .expect("inserts");
    }
    backend
        .insert(
            &support::pods(),
            json!({"metadata": {"name": "p", "namespace": "demo"},
                   "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
        )
        .expect("inserts");
    (plugin, backend)
}

async fn call(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    what: &str,
) -> Result<Action, ReconcileError> {
    plugin
        .reconcile(backend.clone(), Request::new("demo", what, Reason::Resync))
        .await
}

/// The answer the plugin reported (its `other(...)` error).
async fn answer(plugin: &Plugin, backend: &Arc<dyn Backend>, what: &str) -> String {
    match call(plugin, backend, what).await {
        Err(ReconcileError::Plugin {
            error: ApiError::Other(answer),
            ..
        }) => answer,
        other => panic!("{what}: expected the plugin's answer, got {other:?}"),
    }
}

#[tokio::test]
async fn get_fields_returns_only_the_requested_fields_and_the_identity() {
    let (plugin, backend) = setup().await;
    let got: Value = serde_json::from_str(&answer(&plugin, &backend, "get").await).expect("JSON");
    let meta = &got["metadata"];
    assert_eq!(got["data"], json!({"a": "1"}));
    assert_eq!(meta["labels"], json!({"owner": "me"}));
    assert_eq!(meta["name"], "cm");
    assert_eq!(meta["namespace"], "demo");
    assert!(meta["resourceVersion"].is_string(), "{got}");
    assert!(meta["uid"].is_string(), "{got}");
    assert!(meta.get("annotations").is_none(), "{got}");
    let keys: Vec<&String> = got.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["data", "metadata"], "nothing else crosses: {got}");
}

#[tokio::test]
async fn get_fields_of_a_missing_object_is_none() {
    let (plugin, backend) = setup().await;
    assert_eq!(answer(&plugin, &backend, "get-missing").await, "none");
}

#[tokio::test]
async fn list_fields_and_list_by_index_fields_select_then_project() {
    let (plugin, backend) = setup().await;
    // name=data.a+(other data keys that crossed): only `a` crossed.
    assert_eq!(answer(&plugin, &backend, "list").await, "cm=1+0,other=2+0");
    assert_eq!(answer(&plugin, &backend, "list-by-index").await, "cm,other");
}

#[tokio::test]
async fn get_fields_needs_only_get_but_list_fields_needs_list() {
    let (plugin, backend) = setup().await;
    let pod: Value =
        serde_json::from_str(&answer(&plugin, &backend, "get-pod").await).expect("JSON");
    assert_eq!(pod["spec"], json!({"nodeName": "n1"}));
    for what in ["list-pods", "list-pods-by-index"] {
        match call(&plugin, &backend, what).await {
            Err(ReconcileError::Plugin {
                error: ApiError::Forbidden(msg),
                ..
            }) => assert!(msg.contains("list"), "{what}: {msg}"),
            other => panic!("{what}: expected forbidden, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_field_path_or_an_undeclared_index_is_invalid() {
    let (plugin, backend) = setup().await;
    for (what, needle) in [("bad-path", "data..a"), ("bad-index", "nope")] {
        match call(&plugin, &backend, what).await {
            Err(ReconcileError::Plugin {
                error: ApiError::Invalid(msg),
                ..
            }) => assert!(msg.contains(needle), "{what}: {msg}"),
            other => panic!("{what}: expected invalid, got {other:?}"),
        }
    }
}
