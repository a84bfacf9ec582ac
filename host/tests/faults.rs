//! Faulty plugins fail their own reconcile with an error naming the cause; the host and
//! other plugins carry on.

mod common;

use std::sync::Arc;

use kubewasm::runtime::{Action, Backend, Reason, ReconcileError, Request, Runtime};
use serde_json::json;

async fn run(runtime: &Runtime, name: &str) -> Result<Action, ReconcileError> {
    let plugin = common::load(runtime, &common::test_plugin(name)).await;
    let backend: Arc<dyn Backend> = common::backend();
    plugin
        .reconcile(backend, Request::new("demo", "victim", Reason::Created))
        .await
}

/// The example plugin still reconciles on the same runtime after a fault.
async fn host_still_works(runtime: &Runtime) {
    let hello = common::load(runtime, &common::example("hello")).await;
    let backend = common::backend();
    backend
        .insert(
            &common::configmaps(),
            json!({"metadata": {"name": "a", "namespace": "demo"}}),
        )
        .unwrap();
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    let action = hello
        .reconcile(dyn_backend, Request::new("demo", "a", Reason::Created))
        .await;
    assert_eq!(action.unwrap(), Action::Done);
}

#[tokio::test]
async fn a_panicking_plugin_fails_with_its_panic_message() {
    let runtime = common::runtime();
    let err = run(&runtime, "panic").await.unwrap_err();
    match &err {
        ReconcileError::Trap {
            plugin,
            trap,
            stderr,
        } => {
            assert_eq!(plugin, "panic");
            assert!(trap.contains("unreachable"), "{trap}");
            assert!(
                stderr.contains("plugin panicked on purpose while reconciling victim"),
                "{stderr}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(err.to_string().contains("panicked on purpose"), "{err}");
    host_still_works(&runtime).await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_deadline() {
    let runtime = common::runtime();
    let err = run(&runtime, "spin").await.unwrap_err();
    assert!(matches!(err, ReconcileError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
    host_still_works(&runtime).await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_cap() {
    let runtime = common::runtime();
    let err = run(&runtime, "memory-bomb").await.unwrap_err();
    match &err {
        ReconcileError::MemoryCap { cap, .. } => assert_eq!(*cap, 32 << 20),
        other => panic!("expected the memory cap, got {other:?}"),
    }
    assert!(err.to_string().contains("memory cap"), "{err}");
    host_still_works(&runtime).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_with_a_stack_overflow() {
    let runtime = common::runtime();
    let err = run(&runtime, "recursion").await.unwrap_err();
    match &err {
        ReconcileError::Trap { trap, .. } => {
            assert!(
                trap.contains("stack overflow") || trap.contains("out of bounds"),
                "{trap}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    host_still_works(&runtime).await;
}

#[tokio::test]
async fn a_fault_in_one_store_does_not_disturb_a_concurrent_reconcile() {
    let runtime = common::runtime();
    let spin = common::load(&runtime, &common::test_plugin("spin")).await;
    let backend: Arc<dyn Backend> = common::backend();
    let stuck = tokio::spawn(async move {
        spin.reconcile(backend, Request::new("demo", "x", Reason::Created))
            .await
    });
    host_still_works(&runtime).await;
    assert!(matches!(
        stuck.await.unwrap(),
        Err(ReconcileError::Deadline { .. })
    ));
}

/// Serves reads from memory; every write waits forever (an API server that never answers).
struct HangingWrites(kubewasm::runtime::MemoryBackend);

mod hanging {
    use bytes::Bytes;
    use futures::future::{BoxFuture, pending};
    use kubewasm::runtime::{
        ApiError, Backend, EventRecord, Index, Kind, LabelSelector, PatchRequest, Subresource,
    };

    impl Backend for super::HangingWrites {
        fn get(
            &self,
            kind: &Kind,
            namespace: Option<&str>,
            name: &str,
        ) -> Result<Option<Bytes>, ApiError> {
            self.0.get(kind, namespace, name)
        }
        fn list(
            &self,
            kind: &Kind,
            namespace: Option<&str>,
            selector: Option<&LabelSelector>,
        ) -> Result<Vec<Bytes>, ApiError> {
            self.0.list(kind, namespace, selector)
        }
        fn list_by_index(
            &self,
            kind: &Kind,
            index: &Index,
            value: &str,
        ) -> Result<Vec<Bytes>, ApiError> {
            self.0.list_by_index(kind, index, value)
        }
        fn create<'a>(
            &'a self,
            _: &'a Kind,
            _: Option<&'a str>,
            _: Bytes,
        ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
            Box::pin(pending())
        }
        fn replace<'a>(
            &'a self,
            _: &'a Kind,
            _: Option<&'a str>,
            _: &'a str,
            _: Bytes,
            _: Subresource,
        ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
            Box::pin(pending())
        }
        fn patch<'a>(
            &'a self,
            _: &'a Kind,
            _: Option<&'a str>,
            _: &'a str,
            _: PatchRequest,
            _: Subresource,
        ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
            Box::pin(pending())
        }
        fn delete<'a>(
            &'a self,
            _: &'a Kind,
            _: Option<&'a str>,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), ApiError>> {
            Box::pin(pending())
        }
        fn record_event(&self, _: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
            Box::pin(pending())
        }
    }
}

#[tokio::test]
async fn a_write_that_never_answers_fails_the_reconcile_at_the_deadline() {
    let config = kubewasm::runtime::RuntimeConfig {
        deadline: std::time::Duration::from_millis(400),
        ..common::config()
    };
    let runtime = Runtime::new(config).unwrap();
    let hello = common::load(&runtime, &common::example("hello")).await;
    let memory = kubewasm::runtime::MemoryBackend::new();
    memory
        .insert(
            &common::configmaps(),
            json!({"metadata": {"name": "a", "namespace": "demo"}}),
        )
        .unwrap();
    let backend: Arc<dyn Backend> = Arc::new(HangingWrites(memory));
    let err = hello
        .reconcile(backend, Request::new("demo", "a", Reason::Created))
        .await
        .unwrap_err();
    assert!(matches!(err, ReconcileError::Deadline { .. }), "{err:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_plugin_yields_its_thread_to_other_tasks_until_its_deadline() {
    // One thread only: if the spinning guest held it, this task could not wake before the
    // reconcile ended at its 2 s deadline.
    let runtime = common::runtime();
    let spin = common::load(&runtime, &common::test_plugin("spin")).await;
    let backend: Arc<dyn Backend> = common::backend();
    let stuck = tokio::spawn(async move {
        spin.reconcile(backend, Request::new("demo", "x", Reason::Created))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !stuck.is_finished(),
        "this task woke while the spinning reconcile still ran"
    );
    assert!(matches!(
        stuck.await.unwrap(),
        Err(ReconcileError::Deadline { .. })
    ));
}
