//! `reuse-instances`: a plugin that asks for it keeps its instance between reconciles (state in
//! its globals survives, across keys), and one that does not starts every reconcile fresh. A
//! kept instance is dropped after any fault (panic or exception, deadline, memory cap), never
//! serves another version of the plugin, and gets each reconcile's own backend, stderr and
//! deadline.
//!
//! The `kept-counter` (Rust, SDK) and `py-counter` (Python) test plugins count their
//! reconciles in a global and return the count as `requeue-after` nanoseconds; `py-faults`
//! counts the same way without the flag.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::runtime::{
    Action, ApiError, MemoryBackend, Plugin, Reason, ReconcileError, Request, Runtime,
    RuntimeConfig,
};
use serde_json::json;

use crate::support;

async fn kept_counter(runtime: &Runtime) -> Plugin {
    support::load(runtime, &support::test_plugin("kept-counter")).await
}

async fn reconcile(plugin: &Plugin, name: &str) -> Result<Action, ReconcileError> {
    reconcile_with(plugin, support::backend(), name).await
}

async fn reconcile_with(
    plugin: &Plugin,
    backend: Arc<MemoryBackend>,
    name: &str,
) -> Result<Action, ReconcileError> {
    plugin
        .reconcile(backend, Request::new("demo", name, Reason::Changed))
        .await
}

/// The count a counting plugin returned.
async fn count(plugin: &Plugin, name: &str) -> u128 {
    match reconcile(plugin, name).await {
        Ok(Action::RequeueAfter(n)) => n.as_nanos(),
        other => panic!("{name}: expected the count, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kept_instance_carries_its_globals_across_keys() {
    let plugin = kept_counter(&support::runtime()).await;
    assert!(plugin.reuses_instances());
    let counts = [
        count(&plugin, "a").await,
        count(&plugin, "b").await,
        count(&plugin, "c").await,
    ];
    assert_eq!(counts, [1, 2, 3], "one instance ran the three keys");
}

#[tokio::test]
async fn the_plugins_own_error_keeps_the_instance() {
    let plugin = kept_counter(&support::runtime()).await;
    assert_eq!(count(&plugin, "a").await, 1);
    match reconcile(&plugin, "err").await {
        Err(ReconcileError::Plugin {
            error: ApiError::Conflict(m),
            ..
        }) => assert_eq!(m, "count 2"),
        other => panic!("expected the plugin's conflict, got {other:?}"),
    }
    assert_eq!(count(&plugin, "b").await, 3, "an error is not a fault");
}

#[tokio::test]
async fn after_a_panic_the_next_reconcile_starts_from_a_fresh_instance() {
    let plugin = kept_counter(&support::runtime()).await;
    assert_eq!(count(&plugin, "a").await, 1);
    assert_eq!(count(&plugin, "b").await, 2);
    match reconcile(&plugin, "panic").await {
        Err(ReconcileError::Trap { stderr, .. }) => {
            assert!(
                stderr.contains("panicked on purpose at reconcile 3"),
                "{stderr}"
            );
            // Each reconcile's stderr is its own, even on a kept instance.
            assert!(stderr.contains("reconcile 3 of panic"), "{stderr}");
            assert!(!stderr.contains("reconcile 2 of b"), "{stderr}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(
        count(&plugin, "c").await,
        1,
        "the trapped instance was dropped"
    );
    assert_eq!(count(&plugin, "d").await, 2, "and the fresh one is kept");
}

#[tokio::test]
async fn after_the_deadline_the_next_reconcile_starts_from_a_fresh_instance() {
    let runtime = Runtime::new(RuntimeConfig {
        deadline: Duration::from_millis(300),
        ..support::config()
    })
    .expect("runtime");
    let plugin = kept_counter(&runtime).await;
    assert_eq!(count(&plugin, "a").await, 1);
    assert!(
        matches!(
            reconcile(&plugin, "spin").await,
            Err(ReconcileError::Deadline { .. })
        ),
        "a spinning reconcile is interrupted"
    );
    assert_eq!(count(&plugin, "b").await, 1);
}

#[tokio::test]
async fn a_kept_instance_gets_a_full_deadline_for_every_reconcile() {
    let deadline = Duration::from_millis(200);
    let runtime = Runtime::new(RuntimeConfig {
        deadline,
        ..support::config()
    })
    .expect("runtime");
    let plugin = kept_counter(&runtime).await;
    // Quick reconciles on one instance for well past one deadline: the deadline counts from
    // each reconcile's start, not from the instance's.
    let started = Instant::now();
    let mut expected = 0;
    while started.elapsed() < deadline * 3 {
        expected += 1;
        assert_eq!(count(&plugin, "a").await, expected);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(expected > 3, "{expected} reconciles");
}

#[tokio::test]
async fn a_kept_instance_whose_memory_grows_to_the_cap_is_dropped() {
    let plugin = kept_counter(&support::runtime()).await;
    // Every `grow` keeps 4 MiB more in the instance; the runtime's cap is 32 MiB.
    let mut grown = 0;
    let stderr = loop {
        match reconcile(&plugin, "grow").await {
            Ok(Action::RequeueAfter(n)) => {
                grown += 1;
                assert_eq!(n.as_nanos(), grown, "the same instance grows");
            }
            Err(ReconcileError::MemoryCap { stderr, .. }) => break stderr,
            other => panic!("expected growth or the memory cap, got {other:?}"),
        }
        assert!(
            grown < 16,
            "32 MiB never refused after {grown} x 4 MiB kept"
        );
    };
    assert!(grown >= 2, "the memory was kept across reconciles: {grown}");
    assert!(stderr.contains(&format!("reconcile {} of grow", grown + 1)));
    assert_eq!(
        count(&plugin, "a").await,
        1,
        "the capped instance was dropped"
    );
}

#[tokio::test]
async fn every_reconcile_on_a_kept_instance_reads_its_own_backend() {
    let plugin = kept_counter(&support::runtime()).await;
    let with = support::backend();
    with.insert(
        &support::configmaps(),
        json!({"metadata": {"name": "read", "namespace": "demo"}}),
    )
    .unwrap();
    let without = support::backend();
    let missing = reconcile_with(&plugin, Arc::clone(&without), "read").await;
    assert_eq!(missing.unwrap(), Action::Done);
    let found = reconcile_with(&plugin, with, "read").await.unwrap();
    assert_eq!(
        found,
        Action::RequeueAfter(Duration::from_nanos(2)),
        "the kept instance read the second reconcile's backend"
    );
    let missing = reconcile_with(&plugin, without, "read").await;
    assert_eq!(missing.unwrap(), Action::Done, "and the third's");
    assert_eq!(count(&plugin, "a").await, 4, "all on the same instance");
}

#[tokio::test]
async fn a_new_version_never_runs_on_an_old_versions_instance() {
    let runtime = support::runtime();
    let path = support::test_plugin("kept-counter");
    let old = kept_counter(&runtime).await;
    assert_eq!(count(&old, "a").await, 1);
    assert_eq!(count(&old, "b").await, 2);
    // What a reload loads: the new bytes, a new version with instances of its own.
    let bytes = std::fs::read(&path).unwrap();
    let new = runtime
        .load(&path, support::variant(&bytes, "v2"))
        .await
        .expect("the new version loads");
    assert_ne!(new.version(), old.version());
    assert_eq!(count(&new, "a").await, 1, "the new version starts fresh");
    assert_eq!(count(&new, "b").await, 2);
    assert_eq!(
        count(&old, "c").await,
        3,
        "reconciles in flight keep the old one"
    );
}

#[tokio::test]
async fn a_0_1_0_plugin_never_keeps_instances() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wit-0.1.0/hello.wasm");
    let plugin = support::load(&support::runtime(), &fixture).await;
    assert!(!plugin.reuses_instances());
}

/// The Python test plugins are ~18 MB each: loaded once per test (the compile cache shared
/// by the runtime tests makes later loads cheap).
async fn python(name: &str) -> Plugin {
    support::load(&support::runtime(), &support::test_plugin(name)).await
}

#[tokio::test]
async fn a_python_plugin_keeps_its_interpreter_and_gets_a_fresh_one_after_an_exception() {
    let plugin = python("py-counter").await;
    assert!(plugin.reuses_instances());
    assert_eq!(count(&plugin, "a").await, 1);
    assert_eq!(count(&plugin, "b").await, 2);
    match reconcile(&plugin, "raise").await {
        Err(ReconcileError::Trap { stderr, .. }) => {
            assert!(
                stderr.contains("raised on purpose at reconcile 3"),
                "{stderr}"
            );
            assert!(!stderr.contains("reconcile 2 of b"), "{stderr}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(
        count(&plugin, "c").await,
        1,
        "a fresh interpreter after the trap"
    );
}

#[tokio::test]
async fn without_the_flag_no_state_survives_a_reconcile() {
    let plugin = python("py-faults").await;
    assert!(!plugin.reuses_instances());
    for _ in 0..3 {
        assert_eq!(count(&plugin, "count").await, 1);
    }
}

#[tokio::test]
async fn the_python_example_keeps_its_instances() {
    let plugin = support::load(&support::runtime(), &support::example("labeler")).await;
    assert!(plugin.reuses_instances());
}

#[tokio::test]
async fn idle_kept_instances_give_their_pool_slots_to_a_reconcile_that_needs_one() {
    // One slot in the instance pool, held by an idle kept instance after its reconcile.
    let runtime = Runtime::new(RuntimeConfig {
        pool_slots: 1,
        ..support::config()
    })
    .expect("runtime");
    let kept = kept_counter(&runtime).await;
    let other = support::load(&runtime, &support::test_plugin("panic")).await;
    assert!(!other.reuses_instances());
    assert_eq!(count(&kept, "a").await, 1);
    match reconcile(&other, "x").await {
        Err(ReconcileError::Trap { stderr, .. }) => {
            assert!(stderr.contains("panicked on purpose"), "{stderr}");
        }
        other => panic!("the other plugin ran (and panicked as it does), not {other:?}"),
    }
    assert_eq!(
        count(&kept, "b").await,
        1,
        "the idle instance was released for the other plugin"
    );
}

#[tokio::test]
async fn reconciles_running_at_once_never_share_an_instance() {
    let plugin = kept_counter(&support::runtime()).await;
    assert_eq!(count(&plugin, "a").await, 1, "one instance kept");
    // `busy` takes the kept instance and computes for 200 ms, yielding at every epoch tick;
    // meanwhile `b` finds no idle instance and starts a fresh one.
    let (busy, b) = tokio::join!(count(&plugin, "busy"), count(&plugin, "b"));
    assert_eq!((busy, b), (2, 1));
    // Both were kept (concurrency 2): run at once again, each continues its own count
    // (`busy` takes the one returned last).
    let (busy, b) = tokio::join!(count(&plugin, "busy"), count(&plugin, "b"));
    assert_eq!((busy, b), (3, 2));
}
