//! Plugin log calls and guest stdout/stderr reach `tracing`, tagged with plugin and key.

use std::sync::Arc;

use kubewasm::runtime::{Backend, Reason, Request};
use serde_json::json;

use crate::support;
use crate::support::logs::Logs;

#[tokio::test]
async fn plugin_log_calls_are_logged_on_a_span_naming_plugin_and_key() {
    let capture = Logs::capture();
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("hello")).await;
    let backend = support::backend();
    backend
        .insert(
            &support::configmaps(),
            json!({"metadata": {"name": "a", "namespace": "demo"}}),
        )
        .unwrap();
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    plugin
        .reconcile(dyn_backend, Request::new("demo", "a", Reason::Created))
        .await
        .unwrap();
    let text = capture.text();
    let line = text
        .lines()
        .find(|l| l.contains("stamped demo/a"))
        .unwrap_or_else(|| panic!("no log line in {text}"));
    // The version (content hash) says which code handled the reconcile, e.g. across reloads.
    let span = format!(
        "reconcile{{plugin=hello version={} key=demo/a}}",
        plugin.version()
    );
    assert!(line.contains(&span), "{line}");
    assert!(line.contains("INFO"), "{line}");
}

#[tokio::test]
async fn guest_stderr_is_logged_with_plugin_and_key() {
    let capture = Logs::capture();
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("panic")).await;
    let backend: Arc<dyn Backend> = support::backend();
    plugin
        .reconcile(backend, Request::new("demo", "victim", Reason::Created))
        .await
        .unwrap_err();
    let text = capture.text();
    let line = text
        .lines()
        .find(|l| l.contains("plugin panicked on purpose"))
        .unwrap_or_else(|| panic!("no stderr line in {text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("plugin=\"panic\"") || line.contains("plugin=panic"),
        "{line}"
    );
    assert!(line.contains("demo/victim"), "{line}");
    assert!(line.contains("stderr"), "{line}");
}

/// Records the `fault` field of `reconcile` spans.
#[derive(Clone, Default)]
struct FaultField(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FaultField {
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visit<'a>(&'a mut Vec<String>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if field.name() == "fault" {
                    self.0.push(format!("{v:?}"));
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, v: &str) {
                if field.name() == "fault" {
                    self.0.push(v.to_owned());
                }
            }
        }
        values.record(&mut Visit(&mut self.0.lock()));
    }
}

#[tokio::test]
async fn a_failed_reconcile_records_on_its_span_that_the_plugin_was_at_fault() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let faults = FaultField::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(faults.clone()));
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("panic")).await;
    let backend: Arc<dyn Backend> = support::backend();
    plugin
        .reconcile(backend, Request::new("demo", "victim", Reason::Created))
        .await
        .unwrap_err();
    assert_eq!(*faults.0.lock(), ["plugin"]);
}
