//! Plugin log calls and guest stdout/stderr reach `tracing`, tagged with plugin and key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kubewasm::runtime::{Backend, Reason, Request};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn plugin_log_calls_are_logged_on_a_span_naming_plugin_and_key() {
    let (capture, _guard) = capture();
    let runtime = common::runtime();
    let plugin = common::load(&runtime, &common::example("hello")).await;
    let backend = common::backend();
    backend
        .insert(
            &common::configmaps(),
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
    let (capture, _guard) = capture();
    let runtime = common::runtime();
    let plugin = common::load(&runtime, &common::test_plugin("panic")).await;
    let backend: Arc<dyn Backend> = common::backend();
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
