//! `run_workers`: the worker loop that takes keys from a [`WorkQueue`], reconciles them with a
//! concurrency limit, and applies each outcome (ok: forget; requeue-after: add after; error: backoff).

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;

use crate::queue::{Item, Reason, WorkQueue};

/// What a successful reconcile asks for next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    /// Reconcile the key again after this delay (even if nothing changes); `None`: only on events.
    pub requeue_after: Option<Duration>,
}

impl Action {
    /// Nothing more to do until the next event.
    pub fn done() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// Run again after `delay`.
    pub fn requeue_after(delay: Duration) -> Self {
        Self {
            requeue_after: Some(delay),
        }
    }
}

/// Runs `concurrency` workers (at least one) over `queue` until it is shut down, then waits for the
/// reconciles in flight to finish and returns.
///
/// Each key is handed to `reconcile` with its [`Item`] (reason, priority, retries). The result is
/// applied to the queue, then the key is marked done:
/// * `Ok(action)`: the key's backoff is reset; with `requeue_after`, it is queued again after that
///   delay ([`Reason::RequeueAfter`]);
/// * `Err(e)`: the key is queued again with per-key backoff and the global rate limit
///   ([`Reason::Retry`]), and no sooner than the failed attempt took (a key that fails only at its
///   deadline would otherwise keep a worker, and a core, busy through its first retries: its
///   share is capped at half); the error is logged;
/// * a panic in `reconcile` is caught and handled like an error, so one bad key cannot stop a worker
///   or leave its key in flight for ever.
///
/// A key is never reconciled by two workers at once (the queue guarantees it).
pub async fn run_workers<K, F, Fut, E>(queue: WorkQueue<K>, concurrency: usize, reconcile: F)
where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(Item<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let queue = queue.clone();
        let reconcile = Arc::clone(&reconcile);
        workers.spawn(async move {
            while let Some(item) = queue.get().await {
                let key = item.key.clone();
                let started = tokio::time::Instant::now();
                let outcome = AssertUnwindSafe(reconcile(item)).catch_unwind().await;
                let took = started.elapsed();
                match outcome {
                    Ok(Ok(action)) => {
                        queue.forget(&key);
                        if let Some(delay) = action.requeue_after {
                            queue.add_after(key.clone(), Reason::RequeueAfter, delay);
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(key = ?key, %error, "reconcile failed; retrying with backoff");
                        queue.add_rate_limited_at_least(key.clone(), Reason::Retry, took);
                    }
                    Err(_panic) => {
                        tracing::error!(key = ?key, "reconcile panicked; retrying with backoff");
                        queue.add_rate_limited_at_least(key.clone(), Reason::Retry, took);
                    }
                }
                queue.done(&key);
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::time::Instant;

    use super::*;

    fn why() -> Reason {
        Reason::Other("test".into())
    }

    /// key, reason, retries, time since start: one reconcile as the test saw it.
    type LogLine = (&'static str, Reason, u32, Duration);

    #[tokio::test(start_paused = true)]
    async fn workers_never_exceed_the_concurrency_limit_and_never_share_a_key() {
        let queue: WorkQueue<u32> = WorkQueue::default();
        for k in 0..20 {
            queue.add(k, why());
        }
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
        let done = Arc::new(AtomicUsize::new(0));
        let (r, p, f, d, q) = (
            running.clone(),
            peak.clone(),
            in_flight.clone(),
            done.clone(),
            queue.clone(),
        );
        let workers = tokio::spawn(run_workers(queue.clone(), 3, move |item: Item<u32>| {
            let (r, p, f, d, q) = (r.clone(), p.clone(), f.clone(), d.clone(), q.clone());
            async move {
                assert!(
                    f.lock().insert(item.key),
                    "key {} handed to two workers",
                    item.key
                );
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                if item.key < 5 && item.reason == why() {
                    // Changes arriving while in flight must not start a second reconcile.
                    let again = Reason::Other("again".into());
                    q.add(item.key + 100, again.clone());
                    q.add(item.key, again);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                f.lock().remove(&item.key);
                d.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(Action::done())
            }
        }));
        while done.load(Ordering::SeqCst) < 30 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        queue.shutdown();
        workers.await.expect("workers");
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_are_applied_error_backs_off_success_forgets_requeue_after_requeues() {
        let queue: WorkQueue<&'static str> = WorkQueue::default();
        let log: Arc<parking_lot::Mutex<Vec<LogLine>>> =
            Arc::new(parking_lot::Mutex::new(Vec::new()));
        let start = Instant::now();
        let l = log.clone();
        let workers = tokio::spawn(run_workers(
            queue.clone(),
            2,
            move |item: Item<&'static str>| {
                let l = l.clone();
                async move {
                    let n = l.lock().iter().filter(|(k, ..)| *k == item.key).count();
                    l.lock()
                        .push((item.key, item.reason.clone(), item.retries, start.elapsed()));
                    match (item.key, n) {
                        ("flaky", 0 | 1) => Err("boom".to_owned()),
                        ("flaky", _) => Ok(Action::done()),
                        ("periodic", 0) => Ok(Action::requeue_after(Duration::from_secs(30))),
                        ("panics", 0) => panic!("plugin bug"),
                        _ => Ok(Action::done()),
                    }
                }
            },
        ));
        queue.add("flaky", why());
        queue.add("periodic", why());
        queue.add("panics", why());
        tokio::time::sleep(Duration::from_secs(60)).await;
        queue.shutdown();
        workers.await.expect("workers");
        let log = log.lock().clone();
        let of = |k: &str| -> Vec<(Reason, u32, Duration)> {
            log.iter()
                .filter(|e| e.0 == k)
                .map(|e| (e.1.clone(), e.2, e.3))
                .collect()
        };
        assert_eq!(
            of("flaky"),
            vec![
                (why(), 0, Duration::ZERO),
                (Reason::Retry, 1, Duration::from_millis(5)),
                (Reason::Retry, 2, Duration::from_millis(15)),
            ]
        );
        assert_eq!(
            queue.num_requeues(&"flaky"),
            0,
            "success forgets the backoff"
        );
        assert_eq!(
            of("periodic"),
            vec![
                (why(), 0, Duration::ZERO),
                (Reason::RequeueAfter, 0, Duration::from_secs(30)),
            ]
        );
        assert_eq!(
            of("panics"),
            vec![
                (why(), 0, Duration::ZERO),
                (Reason::Retry, 1, Duration::from_millis(5))
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_reconciles_in_flight() {
        let queue: WorkQueue<u8> = WorkQueue::default();
        queue.add(1, why());
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let workers = tokio::spawn(run_workers(queue.clone(), 1, move |_item: Item<u8>| {
            let f = f.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(Action::done())
            }
        }));
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.shutdown();
        workers.await.expect("workers");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the in-flight reconcile finished before run_workers returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_failure_is_retried_no_sooner_than_it_took() {
        let queue: WorkQueue<&'static str> = WorkQueue::default();
        let starts: Arc<parking_lot::Mutex<Vec<Duration>>> = Arc::default();
        let start = Instant::now();
        let s = starts.clone();
        let workers = tokio::spawn(run_workers(
            queue.clone(),
            1,
            move |_: Item<&'static str>| {
                let s = s.clone();
                async move {
                    s.lock().push(start.elapsed());
                    // Fails only after a long attempt, like a plugin stopped at its deadline.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Err::<Action, _>("deadline".to_owned())
                }
            },
        ));
        queue.add("slow", why());
        tokio::time::sleep(Duration::from_millis(2600)).await;
        queue.shutdown();
        workers.await.expect("workers");
        // Backoff alone (5, 10, 20 ms) would start attempts at 0, 505, 1015, 1535, 2075 ms.
        let ms: Vec<u128> = starts.lock().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 1000, 2000]);
    }
}
