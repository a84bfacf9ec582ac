//! The bench test plugin's operations (the contract the benchmark suites call by request
//! name) all work against the documented fixture, and fail loudly against a wrong one.

use std::sync::Arc;

use kubewasm::runtime::{Action, Backend, Reason, ReconcileError, Request};
use serde_json::json;

use crate::support;

const OPS: [&str; 20] = [
    "noop",
    "get-raw",
    "get-decoded",
    "get-fields",
    "list-raw",
    "list-decoded",
    "list-fields",
    "list-index-raw",
    "list-index-decoded",
    "list-index-fields",
    "list-label-raw",
    "list-label-decoded",
    "list-label-fields",
    "list-keys",
    "list-count",
    "list-index-keys",
    "list-index-count",
    "list-label-keys",
    "list-label-count",
    "list-index-summary",
];

#[tokio::test]
async fn every_bench_operation_succeeds_on_the_documented_fixture() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("bench")).await;
    let memory = support::backend();
    let pods = support::pods();
    for i in 0..3 {
        memory
            .insert(
                &pods,
                json!({"metadata": {"name": format!("pod-{i}"), "namespace": "bench",
                                    "labels": {"app": "bench"}},
                       "spec": {"nodeName": "node-0", "containers": [{"name": "c"}]},
                       "status": {"phase": "Running"}}),
            )
            .expect("inserts");
    }
    memory
        .insert(
            &pods,
            json!({"metadata": {"name": "realistic.3", "namespace": "mine"}}),
        )
        .expect("inserts");
    let backend: Arc<dyn Backend> = memory.clone();
    for op in OPS {
        for key in [op.to_owned(), format!("{op}.17")] {
            let result = plugin
                .reconcile(backend.clone(), Request::new("", &key, Reason::Resync))
                .await;
            assert_eq!(result.ok(), Some(Action::Done), "{key}");
        }
    }
    plugin
        .reconcile(
            backend.clone(),
            Request::new("mine", "realistic.3", Reason::Resync),
        )
        .await
        .expect("realistic succeeds");
    let pod = memory
        .object(&pods, Some("mine"), "realistic.3")
        .expect("the Pod is still there");
    let seen = pod["metadata"]["annotations"]["bench/seen"]
        .as_str()
        .expect("annotated");
    assert!(!seen.is_empty());
    assert_ne!(
        pod["metadata"]["resourceVersion"].as_str(),
        Some(seen),
        "patched after the read"
    );
}

#[tokio::test]
async fn bench_operations_fail_loudly_without_the_fixture_or_with_an_unknown_op() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("bench")).await;
    let backend: Arc<dyn Backend> = support::backend();
    for key in [
        "get-raw",
        "list-index-fields",
        "list-label-decoded",
        "list-index-keys",
        "list-label-count",
        "frobnicate.1",
    ] {
        let result = plugin
            .reconcile(backend.clone(), Request::new("", key, Reason::Resync))
            .await;
        assert!(
            matches!(result, Err(ReconcileError::Plugin { .. })),
            "{key}: {result:?}"
        );
    }
}

#[tokio::test]
async fn every_reconcile_starts_from_fresh_guest_memory_even_with_pooled_resident_pages() {
    let runtime = support::runtime();
    assert!(
        runtime.config().pooling && runtime.config().pool_keep_resident > 0,
        "the test runtime should pool and keep pages resident, as production does"
    );
    let plugin = support::load(&runtime, &support::test_plugin("bench")).await;
    let backend: Arc<dyn Backend> = support::backend();
    for i in 0..20 {
        let result = plugin
            .reconcile(
                backend.clone(),
                Request::new("", &format!("fresh.{i}"), Reason::Resync),
            )
            .await;
        assert_eq!(result.ok(), Some(Action::Done), "reconcile {i}");
    }
}
