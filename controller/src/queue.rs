//! `WorkQueue`: a deduplicating, rate-limited, prioritised work queue with client-go semantics.
//!
//! * A key is queued once however many times it is added before a worker takes it.
//! * A key is never handed to two workers at once: a key added while in flight is remembered ("dirty")
//!   and queued again when [`WorkQueue::done`] is called.
//! * [`WorkQueue::add_rate_limited`] delays a key by the larger of a per-key exponential backoff
//!   (reset by [`WorkQueue::forget`]) and an overall token bucket, like client-go's
//!   `DefaultControllerRateLimiter`.
//! * Keys come at two priorities: live events ([`Priority::High`]) are handed out before keys from
//!   initial lists and resyncs ([`Priority::Low`]), as in controller-runtime's priority queue.
//! * Each queued key keeps the [`Reason`] it was first added for since a worker last took it.
//!
//! Time is `tokio::time`, so tests control it with `tokio::time::pause()`.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::event::EventType;
use crate::stats::{Histogram, HistogramSnapshot};
use kubewasm_core::ObjectKey;

/// How urgent a queued key is. Higher priorities are handed out first; within a priority, first in,
/// first out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Keys from initial lists, re-lists and periodic resyncs: they must not starve live events.
    Low,
    /// Keys from live watch events, retries and requeue-after.
    High,
}

/// How a key came to be queued from an object event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The object is of the reconciled kind; the key is the object's own.
    Own,
    /// The object is owned (ownerReferences) by the key.
    Owner,
    /// A declared mapping of a watched kind (named by the mapping) produced the key.
    Mapping(Arc<str>),
}

/// Why a key was queued. Kept with the key until a worker takes it, so reconciles can be logged and
/// measured by cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An informer event on an object.
    Event {
        /// The kind of the object that changed (e.g. `Pod`).
        kind: Arc<str>,
        /// What happened to it.
        event: EventType,
        /// Which object changed.
        object: ObjectKey,
        /// How that object led to this key.
        via: Via,
    },
    /// The previous reconcile of this key failed and it is being retried with backoff.
    Retry,
    /// The previous reconcile asked to run again after a delay.
    RequeueAfter,
    /// A periodic resync of every key.
    Resync,
    /// Anything else, described by the caller.
    Other(Arc<str>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Event {
                kind,
                event,
                object,
                via,
            } => {
                write!(f, "{event:?} {kind} {object}")?;
                match via {
                    Via::Own => Ok(()),
                    Via::Owner => f.write_str(" (owned)"),
                    Via::Mapping(m) => write!(f, " (mapping {m})"),
                }
            }
            Reason::Retry => f.write_str("retry after error"),
            Reason::RequeueAfter => f.write_str("requeue after"),
            Reason::Resync => f.write_str("periodic resync"),
            Reason::Other(s) => f.write_str(s),
        }
    }
}

/// Per-key exponential backoff combined with an overall token bucket.
///
/// The delay for a failing key is `max(base_delay * 2^failures (capped at max_delay), bucket delay)`,
/// client-go's `DefaultControllerRateLimiter`. The bucket holds `burst` tokens refilled at `qps`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Delay after the first failure. Default 5 ms.
    pub base_delay: Duration,
    /// Ceiling of the per-key backoff. Default 1000 s.
    pub max_delay: Duration,
    /// Token refill rate of the overall bucket, tokens per second. Default 10.
    pub qps: f64,
    /// Size of the overall bucket. Default 100.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1000),
            qps: 10.0,
            burst: 100,
        }
    }
}

/// A key handed to a worker by [`WorkQueue::get`]. The worker must call [`WorkQueue::done`] with the
/// key when it has finished, whatever the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item<K> {
    /// The key to reconcile.
    pub key: K,
    /// Why it was queued (the first reason since it was last handed out).
    pub reason: Reason,
    /// The priority it was handed out at.
    pub priority: Priority,
    /// How many consecutive failures the key has had (0 after a success / [`WorkQueue::forget`]).
    pub retries: u32,
    /// How many adds were coalesced into this one hand-out.
    pub adds: u32,
}

/// A point-in-time copy of a queue's counters, for the metrics layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// Keys waiting to be handed out now (not counting delayed keys).
    pub depth: usize,
    /// Keys waiting for a delay (requeue-after or backoff) to pass.
    pub delayed: usize,
    /// Keys currently held by workers.
    pub in_flight: usize,
    /// Total calls that added a key (including ones coalesced with an already queued key).
    pub adds: u64,
    /// Total [`WorkQueue::add_rate_limited`] calls.
    pub retries: u64,
    /// Total keys handed to workers.
    pub handed_out: u64,
    /// Time from being queued to being handed out.
    pub queue_duration: HistogramSnapshot,
    /// Time from being handed out to [`WorkQueue::done`].
    pub work_duration: HistogramSnapshot,
}

#[derive(Debug)]
struct Pending {
    reason: Reason,
    priority: Priority,
    since: Instant,
    seq: u64,
    /// False while the key is in flight: it is queued again by `done`.
    in_deque: bool,
    adds: u32,
}

#[derive(Debug)]
struct Waiting {
    ready_at: Instant,
    seq: u64,
    reason: Reason,
    priority: Priority,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct Inner<K> {
    high: VecDeque<(K, u64)>,
    low: VecDeque<(K, u64)>,
    queued: HashMap<K, Pending>,
    processing: HashMap<K, Instant>,
    waiting: HashMap<K, Waiting>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_keys: HashMap<u64, K>,
    failures: HashMap<K, u32>,
    bucket: Bucket,
    seq: u64,
    shutting_down: bool,
}

#[derive(Debug, Default)]
struct Counters {
    adds: AtomicU64,
    retries: AtomicU64,
    handed_out: AtomicU64,
    queue_duration: Histogram,
    work_duration: Histogram,
}

struct Shared<K> {
    inner: Mutex<Inner<K>>,
    rate_limit: RateLimit,
    /// Wakes `get` callers when a key becomes ready or the queue shuts down.
    ready: Notify,
    /// Wakes `drain` callers when the last in-flight key is done.
    idle: Notify,
    /// Wakes `closed` callers on shutdown.
    closed: Notify,
    counters: Counters,
}

/// A work queue of keys `K` (usually [`ObjectKey`]). Cheap to clone; clones share the queue.
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("rate_limit", &self.shared.rate_limit)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new(RateLimit::default())
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// A new, empty queue with the given retry rate limits.
    pub fn new(rate_limit: RateLimit) -> Self {
        let burst = f64::from(rate_limit.burst);
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    high: VecDeque::new(),
                    low: VecDeque::new(),
                    queued: HashMap::new(),
                    processing: HashMap::new(),
                    waiting: HashMap::new(),
                    timers: BinaryHeap::new(),
                    timer_keys: HashMap::new(),
                    failures: HashMap::new(),
                    bucket: Bucket {
                        tokens: burst,
                        last: Instant::now(),
                    },
                    seq: 0,
                    shutting_down: false,
                }),
                rate_limit,
                ready: Notify::new(),
                idle: Notify::new(),
                closed: Notify::new(),
                counters: Counters::default(),
            }),
        }
    }

    /// Queues `key` at high priority. If it is already queued, the adds coalesce (the first reason is
    /// kept; the priority is raised if needed). If it is in flight, it is queued again when done.
    /// Ignored after [`WorkQueue::shutdown`].
    pub fn add(&self, key: K, reason: Reason) {
        self.add_with_priority(key, reason, Priority::High);
    }

    /// Queues `key` at the given priority; see [`WorkQueue::add`].
    pub fn add_with_priority(&self, key: K, reason: Reason, priority: Priority) {
        let woke = {
            let mut inner = self.shared.inner.lock();
            inner.enqueue(key, reason, priority, Instant::now(), &self.shared.counters)
        };
        if woke {
            self.shared.ready.notify_one();
        }
    }

    /// Queues `key` at high priority after `delay`. A zero delay is [`WorkQueue::add`]. If the key is
    /// already waiting, the earlier of the two deadlines wins.
    pub fn add_after(&self, key: K, reason: Reason, delay: Duration) {
        self.add_after_with_priority(key, reason, Priority::High, delay);
    }

    /// [`WorkQueue::add_after`] at the given priority.
    pub fn add_after_with_priority(
        &self,
        key: K,
        reason: Reason,
        priority: Priority,
        delay: Duration,
    ) {
        if delay.is_zero() {
            self.add_with_priority(key, reason, priority);
            return;
        }
        {
            let mut inner = self.shared.inner.lock();
            if inner.shutting_down {
                return;
            }
            inner.delay(key, reason, priority, Instant::now() + delay);
        }
        // A waiting `get` may need to shorten its sleep.
        self.shared.ready.notify_waiters();
    }

    /// Queues `key` after its rate-limited delay (see [`RateLimit`]) and counts one more failure for it.
    pub fn add_rate_limited(&self, key: K, reason: Reason) {
        self.add_rate_limited_at_least(key, reason, Duration::ZERO);
    }

    /// [`WorkQueue::add_rate_limited`], but no sooner than `at_least` (e.g. how long the failed
    /// attempt took, so a key that fails only after a long attempt cannot keep a worker busy).
    pub fn add_rate_limited_at_least(&self, key: K, reason: Reason, at_least: Duration) {
        self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        let delay = {
            let mut inner = self.shared.inner.lock();
            inner.next_delay(&key, &self.shared.rate_limit, Instant::now())
        };
        self.add_after(key, reason, delay.max(at_least));
    }

    /// Resets the per-key backoff of `key` (call it after a successful reconcile).
    pub fn forget(&self, key: &K) {
        self.shared.inner.lock().failures.remove(key);
    }

    /// How many consecutive failures `key` has had since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.shared
            .inner
            .lock()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Waits for the next key that is ready and not in flight, high priority first, and marks it in
    /// flight. Returns `None` once the queue is shut down (queued keys are then dropped; keys in
    /// flight may still finish and call [`WorkQueue::done`]).
    pub async fn get(&self) -> Option<Item<K>> {
        loop {
            let notified = self.shared.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let mut inner = self.shared.inner.lock();
                if inner.shutting_down {
                    return None;
                }
                let now = Instant::now();
                inner.promote_due(now, &self.shared.counters);
                if let Some(item) = inner.pop(now, &self.shared.counters) {
                    return Some(item);
                }
                inner.timers.peek().map(|Reverse((at, _))| *at)
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` as no longer in flight. If it was added while in flight, it is queued again now.
    pub fn done(&self, key: &K) {
        let (requeued, idle) = {
            let mut inner = self.shared.inner.lock();
            if let Some(started) = inner.processing.remove(key) {
                self.shared
                    .counters
                    .work_duration
                    .observe(started.elapsed());
            }
            let requeued = inner.requeue_dirty(key);
            (requeued, inner.processing.is_empty())
        };
        if requeued {
            self.shared.ready.notify_one();
        }
        if idle {
            self.shared.idle.notify_waiters();
        }
    }

    /// Stops handing out keys: pending and future [`WorkQueue::get`] calls return `None` and adds are
    /// ignored. Keys in flight may finish; see [`WorkQueue::drain`].
    pub fn shutdown(&self) {
        self.shared.inner.lock().shutting_down = true;
        self.shared.ready.notify_waiters();
        self.shared.closed.notify_waiters();
    }

    /// Waits until [`WorkQueue::shutdown`] has been called.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            notified.await;
        }
    }

    /// Whether [`WorkQueue::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.inner.lock().shutting_down
    }

    /// Waits until no key is in flight.
    pub async fn drain(&self) {
        loop {
            let notified = self.shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.inner.lock().processing.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Counters and timings for the metrics layer.
    pub fn stats(&self) -> QueueStats {
        let (depth, delayed, in_flight) = {
            let inner = self.shared.inner.lock();
            let depth = inner.queued.values().filter(|p| p.in_deque).count();
            (depth, inner.waiting.len(), inner.processing.len())
        };
        let c = &self.shared.counters;
        QueueStats {
            depth,
            delayed,
            in_flight,
            adds: c.adds.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            handed_out: c.handed_out.load(Ordering::Relaxed),
            queue_duration: c.queue_duration.snapshot(),
            work_duration: c.work_duration.snapshot(),
        }
    }

    /// Number of keys ready to be handed out now.
    pub fn len(&self) -> usize {
        self.shared
            .inner
            .lock()
            .queued
            .values()
            .filter(|p| p.in_deque)
            .count()
    }

    /// Whether no key is ready to be handed out now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Clone + Eq + Hash> Inner<K> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Returns whether a waiter should be woken.
    fn enqueue(
        &mut self,
        key: K,
        reason: Reason,
        priority: Priority,
        now: Instant,
        counters: &Counters,
    ) -> bool {
        if self.shutting_down {
            return false;
        }
        counters.adds.fetch_add(1, Ordering::Relaxed);
        let in_flight = self.processing.contains_key(&key);
        match self.queued.entry(key) {
            MapEntry::Occupied(mut o) => {
                let p = o.get_mut();
                p.adds = p.adds.saturating_add(1);
                if priority > p.priority {
                    p.priority = priority;
                    if p.in_deque {
                        // The entry in the low deque becomes stale (its priority no longer matches).
                        let seq = p.seq;
                        let key = o.key().clone();
                        self.high.push_back((key, seq));
                        return true;
                    }
                }
                false
            }
            MapEntry::Vacant(v) => {
                self.seq += 1;
                let seq = self.seq;
                let key = v.key().clone();
                v.insert(Pending {
                    reason,
                    priority,
                    since: now,
                    seq,
                    in_deque: !in_flight,
                    adds: 1,
                });
                if in_flight {
                    false
                } else {
                    self.deque(priority).push_back((key, seq));
                    true
                }
            }
        }
    }

    fn deque(&mut self, priority: Priority) -> &mut VecDeque<(K, u64)> {
        match priority {
            Priority::High => &mut self.high,
            Priority::Low => &mut self.low,
        }
    }

    fn delay(&mut self, key: K, reason: Reason, priority: Priority, ready_at: Instant) {
        if let Some(w) = self.waiting.get(&key)
            && w.ready_at <= ready_at
        {
            return;
        }
        let seq = self.next_seq();
        if let Some(old) = self.waiting.insert(
            key.clone(),
            Waiting {
                ready_at,
                seq,
                reason,
                priority,
            },
        ) {
            self.timer_keys.remove(&old.seq);
        }
        self.timers.push(Reverse((ready_at, seq)));
        self.timer_keys.insert(seq, key);
    }

    fn promote_due(&mut self, now: Instant, counters: &Counters) {
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(key) = self.timer_keys.remove(&seq) else {
                continue;
            };
            if let Some(w) = self.waiting.remove(&key) {
                self.enqueue(key, w.reason, w.priority, now, counters);
            }
        }
    }

    fn pop(&mut self, now: Instant, counters: &Counters) -> Option<Item<K>> {
        for priority in [Priority::High, Priority::Low] {
            while let Some((key, seq)) = self.deque(priority).pop_front() {
                let valid = self
                    .queued
                    .get(&key)
                    .is_some_and(|p| p.seq == seq && p.in_deque && p.priority == priority);
                if !valid {
                    continue;
                }
                let Some(p) = self.queued.remove(&key) else {
                    continue;
                };
                counters
                    .queue_duration
                    .observe(now.saturating_duration_since(p.since));
                counters.handed_out.fetch_add(1, Ordering::Relaxed);
                self.processing.insert(key.clone(), now);
                let retries = self.failures.get(&key).copied().unwrap_or(0);
                return Some(Item {
                    key,
                    reason: p.reason,
                    priority: p.priority,
                    retries,
                    adds: p.adds,
                });
            }
        }
        None
    }

    fn requeue_dirty(&mut self, key: &K) -> bool {
        let Some(p) = self.queued.get_mut(key) else {
            return false;
        };
        if p.in_deque || self.shutting_down {
            return false;
        }
        p.in_deque = true;
        let (priority, seq) = (p.priority, p.seq);
        self.deque(priority).push_back((key.clone(), seq));
        true
    }

    fn next_delay(&mut self, key: &K, limit: &RateLimit, now: Instant) -> Duration {
        let failures = self.failures.entry(key.clone()).or_insert(0);
        let backoff = 1u32
            .checked_shl(*failures)
            .and_then(|factor| limit.base_delay.checked_mul(factor))
            .map_or(limit.max_delay, |d| d.min(limit.max_delay));
        *failures = failures.saturating_add(1);

        // Token bucket reservation (client-go's BucketRateLimiter): tokens may go negative; the
        // delay is the time until the reserved token exists.
        let bucket = &mut self.bucket;
        let burst = f64::from(limit.burst);
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.qps).min(burst);
        bucket.last = now;
        bucket.tokens -= 1.0;
        let bucket_delay = if bucket.tokens >= 0.0 || limit.qps <= 0.0 {
            Duration::ZERO
        } else {
            // Multiply before dividing so whole-token waits are exact (1 token at 10 qps = 100 ms).
            Duration::from_nanos((-bucket.tokens * 1e9 / limit.qps).ceil() as u64)
        };
        backoff.max(bucket_delay)
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> WorkQueue<&'static str> {
        WorkQueue::default()
    }

    fn why(s: &str) -> Reason {
        Reason::Other(s.into())
    }

    /// Gets the next item if one is ready right now (without advancing paused time).
    async fn ready_now(q: &WorkQueue<&'static str>) -> Option<Item<&'static str>> {
        tokio::select! {
            biased;
            item = q.get() => item,
            () = tokio::task::yield_now() => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queue_hands_out_a_key_once_however_many_times_it_was_added() {
        let q = q();
        q.add("a", why("first"));
        q.add("b", why("b"));
        q.add("a", why("second"));
        q.add("a", why("third"));
        let a = q.get().await.expect("a");
        assert_eq!(a.key, "a");
        assert_eq!(a.reason, why("first"), "the first reason is kept");
        assert_eq!(a.adds, 3);
        assert_eq!(q.get().await.expect("b").key, "b");
        assert!(
            ready_now(&q).await.is_none(),
            "a was coalesced, nothing else is queued"
        );
        assert_eq!(q.stats().adds, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn queue_never_hands_out_a_key_that_is_in_flight() {
        let q = q();
        q.add("a", why("1"));
        let first = q.get().await.expect("a");
        q.add("a", why("changed while in flight"));
        assert!(
            ready_now(&q).await.is_none(),
            "a must not go to a second worker"
        );
        assert_eq!(q.stats().in_flight, 1);
        q.done(&first.key);
        let again = ready_now(&q).await.expect("a runs again after done");
        assert_eq!(again.key, "a");
        assert_eq!(again.reason, why("changed while in flight"));
        q.done(&again.key);
        assert!(ready_now(&q).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_is_woken_by_an_add() {
        let q = q();
        let q2 = q.clone();
        let getter = tokio::spawn(async move { q2.get().await.map(|i| i.key) });
        tokio::task::yield_now().await;
        q.add("x", why("x"));
        assert_eq!(getter.await.expect("join"), Some("x"));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_from_5ms_per_failure_and_resets_on_forget() {
        let q = q();
        let start = Instant::now();
        let mut observed = Vec::new();
        for _ in 0..6 {
            let t0 = Instant::now();
            q.add_rate_limited("k", Reason::Retry);
            let item = q.get().await.expect("k");
            observed.push(t0.elapsed());
            assert_eq!(item.reason, Reason::Retry);
            q.done(&item.key);
        }
        let expected: Vec<_> = [5, 10, 20, 40, 80, 160]
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        assert_eq!(observed, expected);
        assert_eq!(q.num_requeues(&"k"), 6);
        q.forget(&"k");
        assert_eq!(q.num_requeues(&"k"), 0);
        let t0 = Instant::now();
        q.add_rate_limited("k", Reason::Retry);
        let item = q.get().await.expect("k");
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(5),
            "backoff restarts at the base delay"
        );
        assert_eq!(item.retries, 1);
        assert!(start.elapsed() > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_capped_at_the_max_delay() {
        let q: WorkQueue<&str> = WorkQueue::new(RateLimit {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(30),
            ..RateLimit::default()
        });
        let mut inner = q.shared.inner.lock();
        let now = Instant::now();
        let delays: Vec<_> = (0..6)
            .map(|_| inner.next_delay(&"k", &q.shared.rate_limit, now))
            .collect();
        let ms: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![5, 10, 20, 30, 30, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_bucket_limits_retries_across_keys_once_the_burst_is_spent() {
        let keys: Vec<&'static str> = (0..120)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        let q: WorkQueue<&'static str> = WorkQueue::default();
        let start = Instant::now();
        for k in &keys {
            q.add_rate_limited(k, Reason::Retry);
        }
        // Each key failed once: its own backoff is 5 ms. The first 100 fit the burst; the next 20 wait
        // for tokens at 10 qps: the 101st at 100 ms, the 120th at 2 s.
        let mut last = Duration::ZERO;
        let mut handed = 0;
        while handed < keys.len() {
            let item = q.get().await.expect("item");
            q.done(&item.key);
            handed += 1;
            if handed == 100 {
                assert_eq!(start.elapsed(), Duration::from_millis(5));
            }
            if handed == 101 {
                assert_eq!(start.elapsed(), Duration::from_millis(100));
            }
            last = start.elapsed();
        }
        assert_eq!(last, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_hands_the_key_out_when_the_delay_has_passed_and_earliest_wins() {
        let q = q();
        let start = Instant::now();
        q.add_after("a", Reason::RequeueAfter, Duration::from_secs(30));
        q.add_after("a", Reason::RequeueAfter, Duration::from_secs(10));
        q.add_after("a", Reason::RequeueAfter, Duration::from_secs(20));
        assert_eq!(q.stats().delayed, 1);
        let item = q.get().await.expect("a");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(item.reason, Reason::RequeueAfter);
        q.done(&item.key);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            ready_now(&q).await.is_none(),
            "the later deadlines were merged into the earliest"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn live_events_are_handed_out_before_initial_list_keys() {
        let q = q();
        for k in ["l1", "l2", "l3"] {
            q.add_with_priority(k, why("initial list"), Priority::Low);
        }
        q.add("live1", why("live"));
        assert_eq!(q.get().await.expect("live").key, "live1");
        assert_eq!(q.get().await.expect("l1").key, "l1");
        q.add("live2", why("live"));
        assert_eq!(q.get().await.expect("live").key, "live2");
        // A queued low key that gets a live event is promoted, and handed out once.
        q.add("l3", why("live on l3"));
        let l3 = q.get().await.expect("l3");
        assert_eq!((l3.key, l3.priority), ("l3", Priority::High));
        assert_eq!(q.get().await.expect("l2").key, "l2");
        assert!(
            ready_now(&q).await.is_none(),
            "the stale low entry of l3 is skipped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_handing_out_keys_but_lets_in_flight_ones_finish() {
        let q = q();
        q.add("a", why("a"));
        q.add("b", why("b"));
        let a = q.get().await.expect("a");
        q.shutdown();
        assert!(q.get().await.is_none());
        q.add("c", why("ignored"));
        assert_eq!(q.stats().in_flight, 1);
        let q2 = q.clone();
        let drained = tokio::spawn(async move { q2.drain().await });
        tokio::task::yield_now().await;
        assert!(!drained.is_finished());
        q.done(&a.key);
        drained
            .await
            .expect("drain finishes after the in-flight key is done");
    }

    #[tokio::test(start_paused = true)]
    async fn closed_resolves_once_the_queue_shuts_down() {
        let q = q();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.closed().await });
        tokio::task::yield_now().await;
        q.add("a", why("adds do not end the wait"));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.shutdown();
        waiter.await.expect("closed resolves");
        q.closed().await;
    }

    #[tokio::test(start_paused = true)]
    async fn stats_report_depth_and_time_in_queue() {
        let q = q();
        q.add("a", why("a"));
        q.add("b", why("b"));
        assert_eq!(q.stats().depth, 2);
        tokio::time::advance(Duration::from_millis(7)).await;
        let a = q.get().await.expect("a");
        tokio::time::advance(Duration::from_millis(3)).await;
        q.done(&a.key);
        let s = q.stats();
        assert_eq!((s.depth, s.in_flight, s.handed_out), (1, 0, 1));
        assert_eq!(s.queue_duration.sum, Duration::from_millis(7));
        assert_eq!(s.work_duration.sum, Duration::from_millis(3));
    }
}
