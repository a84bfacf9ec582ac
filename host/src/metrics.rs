//! [`Metrics`]: the host's Prometheus metrics, named as controller-runtime names them where a user
//! would look for them, plus kubewasm's own (plugin loads, traps, deadline and memory-cap hits).
//!
//! Reconcile outcomes and plugin loads are counted as they happen; queue and informer figures are
//! read from the controller crate's snapshots at scrape time (no double bookkeeping).

use std::sync::Arc;
use std::time::Duration;

use kubewasm_controller::stats::{BUCKET_BOUNDS_SECONDS, HistogramSnapshot};
use kubewasm_controller::{InformerKey, InformerStats, QueueStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::runtime::ReconcileError;

/// One plugin's figures at scrape time, as plain data (taken from the manager's status).
#[derive(Debug, Clone)]
pub struct PluginFigures {
    /// The plugin's name.
    pub name: String,
    /// Whether every informer it uses has synced.
    pub synced: bool,
    /// Its queue's counters.
    pub queue: QueueStats,
}

type Labels = Vec<(&'static str, String)>;

/// The outcome of one reconcile, as controller-runtime labels it (`result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, nothing more to do.
    Success,
    /// Done, run again after a delay.
    RequeueAfter,
    /// Failed: retried with backoff.
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RequeueAfter => "requeue_after",
            Self::Error => "error",
        }
    }
}

/// One plugin's reconcile metrics: see [`Metrics::for_plugin`].
#[derive(Debug)]
pub struct PluginMetrics {
    plugin: Arc<str>,
    time: Histogram,
    success: Counter,
    requeue_after: Counter,
    caught_up: Counter,
    gave_up: Counter,
    all: Metrics,
}

impl PluginMetrics {
    /// Counts one reconcile (at `version`) that took `took`, as [`Metrics::reconciled`] does.
    pub fn reconciled(
        &self,
        version: &str,
        took: Duration,
        result: Result<Outcome, &ReconcileError>,
    ) {
        match result {
            Ok(Outcome::Success) => {
                self.time.observe(took.as_secs_f64());
                self.success.inc();
            }
            Ok(Outcome::RequeueAfter) => {
                self.time.observe(took.as_secs_f64());
                self.requeue_after.inc();
            }
            // Errors are rare, and some of their metrics are per version: the families do it.
            Ok(Outcome::Error) | Err(_) => self.all.reconciled(&self.plugin, version, took, result),
        }
    }

    /// Counts one wait, before a reconcile, for the caches to hold the key's last writes
    /// (read-your-writes): `gave_up` when the wait's bound passed first.
    pub fn waited_for_caches(&self, gave_up: bool) {
        if gave_up {
            self.gave_up.inc();
        } else {
            self.caught_up.inc();
        }
    }

    /// Counts `keys` parked keys queued because a settled ring gave them to this replica.
    pub fn shard_keys_gained(&self, keys: usize) {
        self.all
            .shard_keys_gained
            .get_or_create(&vec![("plugin", self.plugin.to_string())])
            .inc_by(u64::try_from(keys).unwrap_or(u64::MAX));
    }
}

/// Counters the host updates as things happen. Cheap to clone; clones share the counters.
#[derive(Debug, Clone)]
pub struct Metrics {
    reconcile_total: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    reconcile_time: Family<Labels, Histogram>,
    plugin_loads: Family<Labels, Counter>,
    traps: Family<Labels, Counter>,
    deadlines: Family<Labels, Counter>,
    memory_caps: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    leader: Family<Labels, Gauge>,
    leader_state: Family<Labels, Gauge>,
    cache_waits: Family<Labels, Counter>,
    shard_members: Family<Labels, Gauge>,
    shard_settled: Family<Labels, Counter>,
    shard_keys_gained: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_5, 2.0, 18))
            }),
            plugin_loads: Family::default(),
            traps: Family::default(),
            deadlines: Family::default(),
            memory_caps: Family::default(),
            failures: Family::default(),
            leader: Family::default(),
            leader_state: Family::default(),
            cache_waits: Family::default(),
            shard_members: Family::default(),
            shard_settled: Family::default(),
            shard_keys_gained: Family::default(),
        }
    }
}

impl Metrics {
    /// Counts one reconcile of `plugin` (at `version`) that took `took`.
    pub fn reconciled(
        &self,
        plugin: &str,
        version: &str,
        took: Duration,
        result: Result<Outcome, &ReconcileError>,
    ) {
        let controller = vec![("controller", plugin.to_owned())];
        self.reconcile_time
            .get_or_create(&controller)
            .observe(took.as_secs_f64());
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                self.reconcile_errors.get_or_create(&controller).inc();
                let labels = || {
                    vec![
                        ("plugin", plugin.to_owned()),
                        ("version", version.to_owned()),
                    ]
                };
                match e {
                    ReconcileError::Trap { .. } => {
                        self.traps.get_or_create(&labels()).inc();
                    }
                    ReconcileError::Deadline { .. } => {
                        self.deadlines.get_or_create(&labels()).inc();
                    }
                    ReconcileError::MemoryCap { .. } => {
                        self.memory_caps.get_or_create(&labels()).inc();
                    }
                    ReconcileError::Plugin { .. } | ReconcileError::Instantiate { .. } => {}
                }
                let mut fault = labels();
                fault.push(("fault", e.blame().as_str().to_owned()));
                self.failures.get_or_create(&fault).inc();
                Outcome::Error
            }
        };
        self.reconcile_total
            .get_or_create(&vec![
                ("controller", plugin.to_owned()),
                ("result", outcome.as_str().to_owned()),
            ])
            .inc();
    }

    /// The reconcile metrics of `plugin`, with the handles every successful reconcile updates
    /// looked up once: [`PluginMetrics::reconciled`] then costs a few atomic operations instead
    /// of building label sets and hashing them on every reconcile.
    pub fn for_plugin(&self, plugin: &str) -> Arc<PluginMetrics> {
        let controller = vec![("controller", plugin.to_owned())];
        let total = |outcome: Outcome| {
            self.reconcile_total
                .get_or_create(&vec![
                    ("controller", plugin.to_owned()),
                    ("result", outcome.as_str().to_owned()),
                ])
                .clone()
        };
        let waits = |result: &str| {
            self.cache_waits
                .get_or_create(&vec![
                    ("plugin", plugin.to_owned()),
                    ("result", result.to_owned()),
                ])
                .clone()
        };
        Arc::new(PluginMetrics {
            plugin: plugin.into(),
            time: self.reconcile_time.get_or_create(&controller).clone(),
            success: total(Outcome::Success),
            requeue_after: total(Outcome::RequeueAfter),
            caught_up: waits("caught_up"),
            gave_up: waits("timeout"),
            all: self.clone(),
        })
    }

    /// Counts one load (or hot reload) of `plugin`: `version` is its content hash (empty when the
    /// file could not be read), `ok` whether it loaded.
    pub fn plugin_loaded(&self, plugin: &str, version: &str, ok: bool) {
        self.plugin_loads
            .get_or_create(&vec![
                ("plugin", plugin.to_owned()),
                ("version", version.to_owned()),
                ("result", if ok { "success" } else { "error" }.to_owned()),
            ])
            .inc();
    }

    /// Sets `kubewasm_leader{identity}` to 1 while this replica leads, 0 otherwise.
    pub fn set_leader(&self, identity: &str, leading: bool) {
        self.leader
            .get_or_create(&vec![("identity", identity.to_owned())])
            .set(i64::from(leading));
    }

    /// Sets `kubewasm_leader_state{state}` to 1 for `state` and 0 for the others
    /// (`leading`, `warm_standby`, `cold_standby`).
    pub fn set_replica_state(&self, state: crate::leader::ReplicaState) {
        for s in crate::leader::ReplicaState::ALL {
            self.leader_state
                .get_or_create(&vec![("state", s.as_str().to_owned())])
                .set(i64::from(s == state));
        }
    }

    /// A generation of the shard ring `ring` with `members` members settled: sets
    /// `kubewasm_shard_ring_members{ring}` and counts `kubewasm_shard_generations_settled{ring}`.
    pub fn shard_settled(&self, ring: &str, members: usize) {
        let labels = vec![("ring", ring.to_owned())];
        self.shard_members
            .get_or_create(&labels)
            .set(i64::try_from(members).unwrap_or(i64::MAX));
        self.shard_settled.get_or_create(&labels).inc();
    }

    /// Renders every metric as Prometheus text (OpenMetrics 1.0), with the queue and informer
    /// figures taken from `plugins` and `informers` now.
    pub fn render(
        &self,
        plugins: Vec<PluginFigures>,
        informers: Vec<(InformerKey, InformerStats)>,
    ) -> String {
        let mut registry = Registry::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            self.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            self.reconcile_time.clone(),
        );
        registry.register(
            "kubewasm_plugin_loads",
            "Plugin loads and hot reloads per plugin, version and result",
            self.plugin_loads.clone(),
        );
        registry.register(
            "kubewasm_plugin_traps",
            "Reconciles that ended in a trap (panic, out-of-bounds access, ...)",
            self.traps.clone(),
        );
        registry.register(
            "kubewasm_plugin_deadline_exceeded",
            "Reconciles interrupted at their deadline",
            self.deadlines.clone(),
        );
        registry.register(
            "kubewasm_plugin_memory_cap",
            "Reconciles stopped at their memory cap",
            self.memory_caps.clone(),
        );
        registry.register(
            "kubewasm_reconcile_failures",
            "Failed reconciles per plugin, version and whose fault it was (plugin: an error it \
             returned, a trap, the deadline or the memory cap; host: it could not be instantiated)",
            self.failures.clone(),
        );
        registry.register(
            "kubewasm_cache_waits",
            "Reconciles that first waited for the caches to hold the key's last writes \
             (read-your-writes), per plugin and result (caught_up, or timeout: reconciled anyway)",
            self.cache_waits.clone(),
        );
        registry.register(
            "kubewasm_leader",
            "1 while this replica is the leader, 0 otherwise",
            self.leader.clone(),
        );
        registry.register(
            "kubewasm_leader_state",
            "1 for the part this replica plays (leading, warm_standby: caches synced and queues \
             filled, workers waiting for the Lease; cold_standby: plugins compiled, nothing \
             started), 0 for the others; only with leader election",
            self.leader_state.clone(),
        );
        registry.register(
            "kubewasm_shard_ring_members",
            "Live members of the shard ring this replica settled on last (only with --shards)",
            self.shard_members.clone(),
        );
        registry.register(
            "kubewasm_shard_generations_settled",
            "Ring generations every member acknowledged, the first one included: each later one \
             is a handoff (only with --shards)",
            self.shard_settled.clone(),
        );
        registry.register(
            "kubewasm_shard_keys_gained",
            "Keys queued per plugin because a settled ring gave them to this replica (only with \
             --shards)",
            self.shard_keys_gained.clone(),
        );
        registry.register_collector(Box::new(Snapshots {
            plugins: Arc::new(plugins),
            informers: Arc::new(informers),
        }));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Queue and informer figures at scrape time.
#[derive(Debug)]
struct Snapshots {
    plugins: Arc<Vec<PluginFigures>>,
    informers: Arc<Vec<(InformerKey, InformerStats)>>,
}

/// What every informer of one kind counts, summed.
#[derive(Default)]
struct KindTotals {
    objects: usize,
    initial_items: u64,
    added: u64,
    modified: u64,
    deleted: u64,
    lists: u64,
}

fn kind_of(key: &InformerKey) -> String {
    let r = &key.resource;
    if r.group.is_empty() {
        r.kind.clone()
    } else {
        format!("{}.{}", r.kind, r.group)
    }
}

fn histogram_buckets(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    BUCKET_BOUNDS_SECONDS
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(h.buckets.iter().copied())
        .collect()
}

impl Snapshots {
    /// The informers' figures summed per kind, in kind order.
    fn informers_per_kind(&self) -> std::collections::BTreeMap<String, KindTotals> {
        let mut per_kind = std::collections::BTreeMap::<String, KindTotals>::new();
        for (key, s) in self.informers.iter() {
            let t = per_kind.entry(kind_of(key)).or_default();
            t.objects += s.objects;
            t.initial_items += s.initial_items;
            t.added += s.added;
            t.modified += s.modified;
            t.deleted += s.deleted;
            t.lists += s.lists;
        }
        per_kind
    }

    fn per_queue(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        (label, counter): (&str, bool),
        value: impl Fn(&QueueStats) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let ty = if counter {
            MetricType::Counter
        } else {
            MetricType::Gauge
        };
        let mut metric = encoder.encode_descriptor(name, help, None, ty)?;
        for p in self.plugins.iter() {
            let labels = [(label, p.name.as_str())];
            let mut family = metric.encode_family(&labels)?;
            let v = value(&p.queue);
            if counter {
                family
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&v, None)?;
            } else {
                family.encode_gauge(&i64::try_from(v).unwrap_or(i64::MAX))?;
            }
        }
        Ok(())
    }

    fn queue_histogram(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        which: impl Fn(&QueueStats) -> &HistogramSnapshot,
    ) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for p in self.plugins.iter() {
            let labels = [("name", p.name.as_str())];
            let h = which(&p.queue);
            metric
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    h.sum.as_secs_f64(),
                    h.count,
                    &histogram_buckets(h),
                    None,
                )?;
        }
        Ok(())
    }
}

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.per_queue(
            &mut encoder,
            "workqueue_depth",
            "Current depth of workqueue",
            ("name", false),
            |q| q.depth as u64,
        )?;
        self.per_queue(
            &mut encoder,
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            ("name", true),
            |q| q.adds,
        )?;
        self.per_queue(
            &mut encoder,
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            ("name", true),
            |q| q.retries,
        )?;
        self.per_queue(
            &mut encoder,
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ("controller", false),
            |q| q.in_flight as u64,
        )?;
        self.per_queue(
            &mut encoder,
            "workqueue_unfinished_work",
            "Keys being worked on now",
            ("name", false),
            |q| q.in_flight as u64,
        )?;
        self.queue_histogram(
            &mut encoder,
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            |q| &q.queue_duration,
        )?;
        self.queue_histogram(
            &mut encoder,
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            |q| &q.work_duration,
        )?;
        // Informers of one kind (another namespace or label selector) are summed into the kind's
        // series: one series per label set, as the exposition format requires.
        let per_kind = self.informers_per_kind();
        {
            let mut metric = encoder.encode_descriptor(
                "kubewasm_informer_events",
                "Events applied to the informer caches, per kind and type",
                None,
                MetricType::Counter,
            )?;
            for (kind, s) in &per_kind {
                for (ty, v) in [
                    ("initial", s.initial_items),
                    ("added", s.added),
                    ("modified", s.modified),
                    ("deleted", s.deleted),
                ] {
                    let labels = [("kind", kind.as_str()), ("type", ty)];
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(
                            &v, None,
                        )?;
                }
            }
        }
        {
            // A warm standby that takes over shows no new list here: its caches were current.
            let mut metric = encoder.encode_descriptor(
                "kubewasm_informer_lists",
                "Completed lists per informer kind: the first one and every re-list",
                None,
                MetricType::Counter,
            )?;
            for (kind, s) in &per_kind {
                let labels = [("kind", kind.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(
                        &s.lists, None,
                    )?;
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "kubewasm_cached_objects",
                "Objects in the informer caches, per kind",
                None,
                MetricType::Gauge,
            )?;
            for (kind, s) in &per_kind {
                let labels = [("kind", kind.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_gauge(&i64::try_from(s.objects).unwrap_or(i64::MAX))?;
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "kubewasm_plugin_synced",
                "1 when every informer of the plugin has synced",
                None,
                MetricType::Gauge,
            )?;
            for p in self.plugins.iter() {
                let labels = [("plugin", p.name.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_gauge(&i64::from(p.synced))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn informers_of_one_kind_are_one_series_per_metric_with_their_sum() {
        let configmaps = kube::discovery::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        let narrowed = |ns: &str| InformerKey {
            namespace: Some(ns.into()),
            ..InformerKey::all(configmaps.clone())
        };
        let stats = |objects, lists| InformerStats {
            objects,
            lists,
            added: 1,
            ..InformerStats::default()
        };
        let text = Metrics::default().render(
            Vec::new(),
            vec![(narrowed("a"), stats(2, 1)), (narrowed("b"), stats(3, 2))],
        );
        let lines = |prefix: &str| {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines("kubewasm_cached_objects{"),
            ["kubewasm_cached_objects{kind=\"ConfigMap\"} 5"],
            "{text}"
        );
        assert_eq!(
            lines("kubewasm_informer_lists_total{"),
            ["kubewasm_informer_lists_total{kind=\"ConfigMap\"} 3"],
            "{text}"
        );
        assert_eq!(
            lines("kubewasm_informer_events_total{kind=\"ConfigMap\",type=\"added\"}"),
            ["kubewasm_informer_events_total{kind=\"ConfigMap\",type=\"added\"} 2"],
            "{text}"
        );
    }

    #[test]
    fn reconcile_outcomes_are_counted_per_controller_and_result() {
        let m = Metrics::default();
        m.reconciled(
            "hello",
            "abc",
            Duration::from_millis(3),
            Ok(Outcome::Success),
        );
        m.reconciled(
            "hello",
            "abc",
            Duration::from_millis(3),
            Ok(Outcome::Success),
        );
        let trap = ReconcileError::Trap {
            plugin: "hello".into(),
            trap: "unreachable".into(),
            stderr: String::new(),
        };
        m.reconciled("hello", "abc", Duration::from_millis(1), Err(&trap));
        m.plugin_loaded("hello", "abc", true);
        // The per-plugin handles count into the same series.
        let p = m.for_plugin("hello");
        p.reconciled("abc", Duration::from_millis(2), Ok(Outcome::Success));
        p.reconciled("abc", Duration::from_millis(2), Ok(Outcome::RequeueAfter));
        p.reconciled("abc", Duration::from_millis(2), Err(&trap));
        let busy = ReconcileError::Instantiate {
            plugin: "hello".into(),
            reason: "the instance pool is full".into(),
        };
        p.reconciled("abc", Duration::from_millis(2), Err(&busy));
        m.set_leader("me", true);
        m.set_replica_state(crate::leader::ReplicaState::WarmStandby);
        let text = m.render(Vec::new(), Vec::new());
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"hello\",result=\"success\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"hello\",result=\"error\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("controller_runtime_reconcile_errors_total{controller=\"hello\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("kubewasm_plugin_traps_total{plugin=\"hello\",version=\"abc\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_time_seconds_count{controller=\"hello\"} 7"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"hello\",result=\"requeue_after\"} 1"
            ),
            "{text}"
        );
        // Whose fault each failure was: two traps (the plugin's), one failed instantiation (the host's).
        assert!(
            text.contains(
                "kubewasm_reconcile_failures_total{plugin=\"hello\",version=\"abc\",fault=\"plugin\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "kubewasm_reconcile_failures_total{plugin=\"hello\",version=\"abc\",fault=\"host\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("kubewasm_leader{identity=\"me\"} 1"),
            "{text}"
        );
        for (state, value) in [("leading", 0), ("warm_standby", 1), ("cold_standby", 0)] {
            assert!(
                text.contains(&format!(
                    "kubewasm_leader_state{{state=\"{state}\"}} {value}"
                )),
                "{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
