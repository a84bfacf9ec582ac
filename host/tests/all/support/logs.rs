//! [`Logs`]: what the host logged in this test process, as the text `tracing_subscriber::fmt`
//! writes (level, the span with its fields — `reconcile{plugin=.. version=.. key=..}` —, target,
//! message and fields), for tests about log output. Tests about reconciles use the manager's
//! typed stream instead (`support::reconciles`).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// The captured log of this process (installed once, as the global subscriber, at INFO): one
/// entry per event (fmt writes each formatted event at once), even when its message or fields
/// span several lines (a plugin's stderr does).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Starts capturing (the first call in a process) and returns the capture.
    pub fn capture() -> Self {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test process");
            logs
        })
        .clone()
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.0.lock().concat()
    }

    /// The events whose text contains every needle.
    pub fn events_with(&self, needles: &[&str]) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter(|e| needles.iter().all(|n| e.contains(n)))
            .cloned()
            .collect()
    }
}
