//! Waiting for something to become true: [`eventually`] (async) and [`wait`] (blocking). Both
//! poll, never sleep a fixed time, and give up after [`PATIENCE`] (generous: machines are shared
//! and slow; a passing test returns as soon as the condition holds).

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Some`, and returns that; fails the test with `what` after
/// [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` (blocking the thread) until it returns `Some`; `None` after [`PATIENCE`], so
/// the caller can fail with what it knows (a process's log, say).
pub fn wait<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            eprintln!("timed out after {PATIENCE:?} waiting for {what}");
            return None;
        }
        std::thread::sleep(POLL);
    }
}
