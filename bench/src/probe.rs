//! [`Probe`]: sees every reconcile start and end, kubewasm's and the native peer's alike.
//!
//! kubewasm opens a `reconcile` span (fields `plugin`, `key`) around every reconcile; the
//! [`ReconcileLayer`] turns that span's creation and close into [`Probe::started`] and
//! [`Probe::finished`]. The native peer's reconcile function calls the same two methods itself.
//! Keys are `namespace/name` on both sides.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Counts reconciles and times events to reconcile start; shared by every scenario.
#[derive(Debug, Default)]
pub struct Probe {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    first_start: Option<Instant>,
    finished: u64,
    distinct: HashSet<String>,
    /// When the `distinct_target`-th distinct key finished.
    distinct_target: usize,
    distinct_done: Option<Instant>,
    /// Writes not yet seen by a reconcile: key -> when the first of them was sent.
    pending: HashMap<String, Instant>,
    latencies: Vec<Duration>,
}

/// What a run of reconciles looked like.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Reconciles finished.
    pub finished: u64,
    /// Distinct keys finished at least once.
    pub distinct: usize,
    /// From the first reconcile start to the target-th distinct key finishing, when reached.
    pub elapsed: Option<Duration>,
}

impl Probe {
    /// The process-wide probe the tracing layer reports to.
    pub fn global() -> Arc<Self> {
        static PROBE: OnceLock<Arc<Probe>> = OnceLock::new();
        Arc::clone(PROBE.get_or_init(Arc::default))
    }

    /// Forgets everything; the next run ends when `distinct_target` distinct keys finished.
    pub fn reset(&self, distinct_target: usize) {
        *self.state.lock() = State {
            distinct_target,
            ..State::default()
        };
    }

    /// A reconcile of `key` starts now.
    pub fn started(&self, key: &str) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.first_start.get_or_insert(now);
        if let Some(sent) = s.pending.remove(key) {
            s.latencies.push(now.saturating_duration_since(sent));
        }
    }

    /// A reconcile of `key` finished now (whatever its result).
    pub fn finished(&self, key: &str) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.finished += 1;
        if s.distinct_done.is_none() && !s.distinct.contains(key) {
            s.distinct.insert(key.to_owned());
            if s.distinct.len() >= s.distinct_target && s.distinct_target > 0 {
                s.distinct_done = Some(now);
            }
        }
    }

    /// A write to `key` is about to be sent: the next reconcile start of `key` measures from
    /// now (an earlier write not yet seen keeps its time: the reconcile answers both).
    pub fn sent(&self, key: &str, at: Instant) {
        self.state
            .lock()
            .pending
            .entry(key.to_owned())
            .or_insert(at);
    }

    /// The run so far.
    pub fn run(&self) -> Run {
        let s = self.state.lock();
        Run {
            finished: s.finished,
            distinct: s.distinct.len(),
            elapsed: match (s.first_start, s.distinct_done) {
                (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
                _ => None,
            },
        }
    }

    /// Keys written but not reconciled since.
    pub fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Takes the write-to-reconcile-start latencies collected so far.
    pub fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut self.state.lock().latencies)
    }
}

/// The tracing layer that reports kubewasm's `reconcile` spans to [`Probe::global`]; it
/// enables nothing else.
#[derive(Debug)]
pub struct ReconcileLayer {
    probe: Arc<Probe>,
}

impl ReconcileLayer {
    /// A layer reporting to `probe`.
    pub fn new(probe: Arc<Probe>) -> Self {
        Self { probe }
    }

    /// Installs a subscriber with only this layer as the process's default.
    ///
    /// # Errors
    /// When a default subscriber is already set.
    pub fn install(probe: Arc<Probe>) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(Self::new(probe));
        tracing::subscriber::set_global_default(subscriber)
    }
}

/// The key of a reconcile span, kept in its extensions until it closes.
struct SpanKey(String);

#[derive(Default)]
struct KeyVisitor(Option<String>);

impl Visit for KeyVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "key" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "key" {
            self.0 = Some(value.to_owned());
        }
    }
}

fn is_reconcile(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.name() == "reconcile"
        && metadata.target().starts_with("kubewasm")
}

impl<S> Layer<S> for ReconcileLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_reconcile(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        is_reconcile(metadata)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = KeyVisitor::default();
        attrs.record(&mut visitor);
        let Some(key) = visitor.0 else { return };
        self.probe.started(&key);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanKey(key));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(key) = span.extensions().get::<SpanKey>()
        {
            self.probe.finished(&key.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ends_when_the_target_number_of_distinct_keys_finished() {
        let probe = Probe::default();
        probe.reset(2);
        probe.started("ns/a");
        probe.finished("ns/a");
        probe.finished("ns/a");
        assert!(probe.run().elapsed.is_none(), "one distinct key so far");
        probe.started("ns/b");
        probe.finished("ns/b");
        let run = probe.run();
        assert_eq!((run.finished, run.distinct), (3, 2));
        assert!(run.elapsed.is_some());
    }

    #[test]
    fn a_latency_is_measured_from_the_first_unseen_write_to_the_next_start() {
        let probe = Probe::default();
        let early = Instant::now();
        probe.sent("ns/a", early);
        probe.sent("ns/a", Instant::now() + Duration::from_secs(5));
        probe.started("ns/b");
        assert!(probe.take_latencies().is_empty(), "another key");
        probe.started("ns/a");
        probe.started("ns/a");
        let l = probe.take_latencies();
        assert_eq!(l.len(), 1, "one write, one latency");
        assert!(
            l[0] < Duration::from_secs(5),
            "measured from the earlier write"
        );
    }

    #[test]
    fn the_layer_reports_kubewasm_reconcile_spans_and_nothing_else() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let probe = Arc::new(Probe::default());
        probe.reset(1);
        let subscriber = tracing_subscriber::registry().with(ReconcileLayer::new(probe.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let other = tracing::info_span!("other", key = "ns/x");
            drop(other);
            // The span as kubewasm's runtime opens it (target `kubewasm::...`).
            let span = tracing::info_span!(target: "kubewasm::runtime::plugin", "reconcile", plugin = "p", key = %"ns/a");
            drop(span);
        });
        let run = probe.run();
        assert_eq!((run.finished, run.distinct), (1, 1));
    }
}
