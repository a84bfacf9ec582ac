//! Every import checks the caller's manifest: undeclared kinds, verbs and indexes come back
//! to the plugin as typed errors (not traps), which the probe plugin returns as its result.

use std::sync::Arc;

use kubewasm::runtime::{Action, ApiError, Backend, Plugin, Reason, ReconcileError, Request};
use serde_json::json;

use crate::support;

async fn probe(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    what: &str,
) -> Result<Action, ReconcileError> {
    plugin
        .reconcile(backend.clone(), Request::new("demo", what, Reason::Created))
        .await
}

fn forbidden(result: Result<Action, ReconcileError>, needle: &str) {
    match result {
        Err(ReconcileError::Plugin {
            error: ApiError::Forbidden(msg),
            ..
        }) => {
            assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}");
        }
        other => panic!("expected forbidden ({needle}), got {other:?}"),
    }
}

async fn setup() -> (
    Plugin,
    Arc<kubewasm::runtime::MemoryBackend>,
    Arc<dyn Backend>,
) {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("probe")).await;
    let backend = support::backend();
    backend
        .insert(
            &support::configmaps(),
            json!({"metadata": {"name": "cm", "namespace": "demo", "labels": {"owner": "me"}}}),
        )
        .unwrap();
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    (plugin, backend, dyn_backend)
}

#[tokio::test]
async fn declared_reads_are_served() {
    let (plugin, _, backend) = setup().await;
    assert_eq!(
        probe(&plugin, &backend, "get-configmap").await.unwrap(),
        Action::Done
    );
    assert_eq!(
        probe(&plugin, &backend, "list-by-declared-index")
            .await
            .unwrap(),
        Action::Done
    );
}

#[tokio::test]
async fn reading_an_undeclared_kind_is_forbidden() {
    let (plugin, _, backend) = setup().await;
    forbidden(probe(&plugin, &backend, "get-secret").await, "Secret");
    forbidden(probe(&plugin, &backend, "list-pods").await, "Pod");
}

#[tokio::test]
async fn writing_an_undeclared_kind_is_forbidden() {
    let (plugin, _, backend) = setup().await;
    forbidden(probe(&plugin, &backend, "create-pod").await, "Pod");
}

#[tokio::test]
async fn an_event_about_an_undeclared_kind_is_forbidden() {
    let (plugin, memory, backend) = setup().await;
    forbidden(probe(&plugin, &backend, "event-on-secret").await, "Secret");
    assert!(memory.events().is_empty());
}

#[tokio::test]
async fn undeclared_verbs_on_a_declared_kind_are_forbidden_and_change_nothing() {
    let (plugin, memory, backend) = setup().await;
    forbidden(probe(&plugin, &backend, "patch-configmap").await, "patch");
    forbidden(
        probe(&plugin, &backend, "replace-configmap").await,
        "update",
    );
    forbidden(probe(&plugin, &backend, "delete-configmap").await, "delete");
    forbidden(probe(&plugin, &backend, "create-configmap").await, "create");
    let cm = memory
        .object(&support::configmaps(), Some("demo"), "cm")
        .expect("still there");
    assert_eq!(cm["metadata"]["resourceVersion"], "1");
    assert!(
        memory
            .object(&support::configmaps(), Some("demo"), "new")
            .is_none()
    );
}

#[tokio::test]
async fn an_undeclared_index_is_invalid() {
    let (plugin, _, backend) = setup().await;
    match probe(&plugin, &backend, "list-by-undeclared-index").await {
        Err(ReconcileError::Plugin {
            error: ApiError::Invalid(msg),
            ..
        }) => assert!(msg.contains("by-node"), "{msg}"),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn wasi_grants_no_environment_arguments_filesystem_or_network() {
    let (plugin, _, backend) = setup().await;
    match probe(&plugin, &backend, "sandbox").await {
        Err(ReconcileError::Plugin {
            error: ApiError::Other(report),
            ..
        }) => {
            assert_eq!(report, "env=0 args=0 fs=false net=false");
        }
        other => panic!("expected the sandbox report, got {other:?}"),
    }
}
