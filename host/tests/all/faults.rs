//! Faulty plugins fail their own reconcile with an error naming the cause; the host and
//! other plugins carry on.

use std::sync::Arc;

use kubewasm::runtime::{Action, Backend, Reason, ReconcileError, Request, Runtime};
use serde_json::json;

use crate::support;

async fn run(runtime: &Runtime, name: &str) -> Result<Action, ReconcileError> {
    let plugin = support::load(runtime, &support::test_plugin(name)).await;
    let backend: Arc<dyn Backend> = support::backend();
    plugin
        .reconcile(backend, Request::new("demo", "victim", Reason::Created))
        .await
}

/// The example plugin still reconciles on the same runtime after a fault.
async fn host_still_works(runtime: &Runtime) {
    let hello = support::load(runtime, &support::example("hello")).await;
    let backend = support::backend();
    backend
        .insert(
            &support::configmaps(),
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
    let runtime = support::runtime();
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
    let runtime = support::runtime();
    let err = run(&runtime, "spin").await.unwrap_err();
    assert!(matches!(err, ReconcileError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
    host_still_works(&runtime).await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_cap() {
    let runtime = support::runtime();
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
    let runtime = support::runtime();
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
    let runtime = support::runtime();
    let spin = support::load(&runtime, &support::test_plugin("spin")).await;
    let backend: Arc<dyn Backend> = support::backend();
    let stuck = tokio::spawn(async move {
        spin.reconcile(backend, Request::new("demo", "x", Reason::Created))
            .await
    });
    // Count the times this task woke while the reconcile was still running: a guest that held
    // the thread would let it wake only once the reconcile had ended.
    let mut woke_while_running = 0;
    while !stuck.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if !stuck.is_finished() {
            woke_while_running += 1;
        }
    }
    assert!(
        woke_while_running > 0,
        "this task never woke while the spinning reconcile ran"
    );
    assert!(matches!(
        stuck.await.unwrap(),
        Err(ReconcileError::Deadline { .. })
    ));
}
