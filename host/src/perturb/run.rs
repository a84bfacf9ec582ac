//! One perturbation run: a fresh embedded API server, a manager with the run's layers, the
//! scenario applied, the end state waited for and judged.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kubewasm_apiserver::{ApiServer, Config, EventFault, Faults, Simulation};
use kubewasm_controller::RateLimit;

use super::layers::{CrashAfterWrite, StaleView, WriteCount};
use super::scenario::{self, Expect, Scenario};
use super::{Options, Perturbation, PerturbationKind, RunReport, ScenarioReport, Verdict};
use crate::layer::{ReconcileLayer, ReconcileLayers};
use crate::runtime::{Plugin, Runtime};
use crate::{Manager, ManagerConfig};

/// Runs `scenario` on the plugin at `path`: the clean run, then (when it converged) one run per
/// perturbation in `options` — a crash after write 1, 2, ... up to the most writes one reconcile
/// made in the clean run (at most [`Options::max_crash_points`]), a stale view, missed,
/// duplicate and reordered events. Each run has an API server of its own.
///
/// # Errors
/// A message when the plugin cannot be loaded (the runs' own failures are
/// [`Verdict::Failed`]).
pub async fn test_plugin(
    runtime: &Runtime,
    path: &Path,
    scenario: &Scenario,
    options: &Options,
) -> Result<ScenarioReport, String> {
    let load = || async {
        crate::loader::load_file(runtime, path, crate::loader::DEFAULT_MAX_PLUGIN_SIZE)
            .await
            .map_err(|e| e.to_string())
    };
    let plugin = load().await?;
    let mut report = ScenarioReport {
        plugin: plugin.name().to_owned(),
        scenario: scenario.name.clone(),
        runs: Vec::new(),
    };
    let (clean, most_writes) = run_once(plugin, scenario, Perturbation::None, options).await;
    let clean_converged = clean.verdict.converged();
    report.runs.push(clean);
    if !clean_converged {
        return Ok(report);
    }
    let mut perturbations = Vec::new();
    for kind in &options.perturbations {
        match kind {
            PerturbationKind::Crash => perturbations.extend(
                (1..=most_writes.min(options.max_crash_points)).map(Perturbation::CrashAfterWrite),
            ),
            PerturbationKind::Stale => perturbations.push(Perturbation::StaleView),
            PerturbationKind::Missed => perturbations.push(Perturbation::MissedEvents),
            PerturbationKind::Duplicate => perturbations.push(Perturbation::DuplicateEvents),
            PerturbationKind::Reordered => perturbations.push(Perturbation::ReorderedEvents),
        }
    }
    for perturbation in perturbations {
        // Every run loads the plugin afresh (from the compile cache), so no kept instance
        // carries guest state from one run into the next.
        let plugin = load().await?;
        report
            .runs
            .push(run_once(plugin, scenario, perturbation, options).await.0);
    }
    Ok(report)
}

/// What a run's perturbation is made of, to say how much it did.
enum Applied {
    Nothing,
    Crash(Arc<CrashAfterWrite>),
    Stale(Arc<StaleView>),
    Events(Faults, EventFault),
}

impl Applied {
    /// Whether the perturbation has stopped acting: only then may a quiet plugin be judged
    /// (resyncs bring the plugin back to a view that is fresh again).
    fn is_over(&self) -> bool {
        match self {
            Self::Stale(s) => s.is_over(),
            _ => true,
        }
    }

    fn note(&self, relisted: bool) -> String {
        match self {
            Self::Nothing => String::new(),
            Self::Crash(c) => match c.crashes() {
                0 => "no reconcile made that many writes this time".to_owned(),
                1 => "1 reconcile crashed".to_owned(),
                n => format!("{n} reconciles crashed"),
            },
            Self::Stale(s) => format!("{} stale reads", s.stale_answers()),
            Self::Events(f, fault) => {
                let what = match fault {
                    EventFault::Drop => "dropped",
                    EventFault::Duplicate => "duplicated",
                    EventFault::Reorder => "reordered",
                };
                let relist = if relisted { ", then a re-list" } else { "" };
                let n = f.perturbed_watch_events();
                let events = if n == 1 { "event" } else { "events" };
                format!("{n} {events} {what}{relist}")
            }
        }
    }
}

/// One run; also returns the most writes one reconcile made.
async fn run_once(
    plugin: Plugin,
    scenario: &Scenario,
    perturbation: Perturbation,
    options: &Options,
) -> (RunReport, u64) {
    let server = match ApiServer::start(Config {
        simulate: Some(Simulation::default()),
        ..Config::default()
    })
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return (
                report(
                    perturbation,
                    Verdict::Failed(format!("API server: {e}")),
                    "",
                ),
                0,
            );
        }
    };
    let faults = server.faults();
    let writes = Arc::new(WriteCount::default());
    let mut layers: Vec<Arc<dyn ReconcileLayer>> = vec![Arc::new(Arc::clone(&writes))];
    let applied = match perturbation {
        Perturbation::None => Applied::Nothing,
        Perturbation::CrashAfterWrite(n) => {
            let crash = Arc::new(CrashAfterWrite::new(n));
            layers.push(Arc::new(Arc::clone(&crash)));
            Applied::Crash(crash)
        }
        Perturbation::StaleView => {
            let stale = Arc::new(StaleView::new(4, 3));
            layers.push(Arc::new(Arc::clone(&stale)));
            Applied::Stale(stale)
        }
        Perturbation::MissedEvents => Applied::Events(faults.clone(), EventFault::Drop),
        Perturbation::DuplicateEvents => Applied::Events(faults.clone(), EventFault::Duplicate),
        Perturbation::ReorderedEvents => Applied::Events(faults.clone(), EventFault::Reorder),
    };
    let mut run = Run {
        client: None,
        manager: None,
        name: plugin.name().to_owned(),
        writes: Arc::clone(&writes),
        faults: faults.clone(),
        relist_pending: perturbation == Perturbation::MissedEvents,
        relisted: false,
        options,
    };
    let verdict = run
        .go(&server, plugin, scenario, layers, &applied)
        .await
        .unwrap_or_else(Verdict::Failed);
    if let Some(manager) = run.manager.take() {
        manager.shutdown().await;
    }
    server.shutdown().await;
    let note = applied.note(run.relisted);
    (
        report(perturbation, verdict, &note),
        writes.most_in_one_reconcile(),
    )
}

fn report(perturbation: Perturbation, verdict: Verdict, note: &str) -> RunReport {
    RunReport {
        perturbation,
        verdict,
        note: note.to_owned(),
    }
}

struct Run<'a> {
    client: Option<kube::Client>,
    manager: Option<Manager>,
    name: String,
    writes: Arc<WriteCount>,
    faults: Faults,
    /// A missed-events run re-lists once, when the plugin has gone quiet.
    relist_pending: bool,
    relisted: bool,
    options: &'a Options,
}

impl Run<'_> {
    async fn go(
        &mut self,
        server: &ApiServer,
        plugin: Plugin,
        scenario: &Scenario,
        layers: Vec<Arc<dyn ReconcileLayer>>,
        applied: &Applied,
    ) -> Result<Verdict, String> {
        let config = kube::Config::new(
            server
                .url()
                .parse()
                .map_err(|e| format!("the API server's URL: {e}"))?,
        );
        let client = crate::kube_client::client(config).map_err(|e| e.to_string())?;
        self.client = Some(client.clone());
        for crd in plugin.custom_resources() {
            install_crd(&client, crd).await?;
        }
        let manager = Manager::new(
            client.clone(),
            ManagerConfig {
                rate_limit: RateLimit {
                    base_delay: std::time::Duration::from_millis(5),
                    max_delay: std::time::Duration::from_millis(500),
                    qps: 1000.0,
                    burst: 1000,
                },
                resync: Some(self.options.resync),
                layers: ReconcileLayers::new(layers),
                ..ManagerConfig::default()
            },
        );
        manager.start(plugin).map_err(|e| e.to_string())?;
        self.manager = Some(manager.clone());
        tokio::time::timeout(self.options.bound, manager.wait_synced())
            .await
            .map_err(|_| "the plugin's caches did not sync".to_owned())?;
        if let Applied::Events(faults, fault) = applied {
            let (every, limit) = match fault {
                EventFault::Drop => (3, 30),
                EventFault::Duplicate | EventFault::Reorder => (2, 100),
            };
            faults.perturb_watch_events(*fault, every, limit);
        }
        for object in &scenario.apply {
            scenario::apply(&client, object).await?;
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            for object in &step.apply {
                scenario::apply(&client, object).await?;
            }
            for target in &step.delete {
                scenario::delete(&client, target).await?;
            }
            if let Some(expect) = &step.expect {
                let verdict = self.settle(&client, expect, applied).await?;
                if !verdict.converged() {
                    return Ok(at_step(verdict, i + 1));
                }
            }
        }
        self.settle(&client, &scenario.expect, applied).await
    }

    /// Waits until the plugin has converged on `expect`, gone quiet without it, or the bound.
    async fn settle(
        &mut self,
        client: &kube::Client,
        expect: &Expect,
        applied: &Applied,
    ) -> Result<Verdict, String> {
        let start = Instant::now();
        let writes_at_start = self.writes.total();
        let mut last_writes = writes_at_start;
        let mut last_change = Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let differences = expect.differences(client).await?;
            let writes = self.writes.total();
            if writes != last_writes {
                last_writes = writes;
                last_change = Instant::now();
            }
            let idle = self.idle();
            let quiet_for = last_change.elapsed();
            if differences.is_empty() && idle && quiet_for >= self.options.settle {
                return Ok(Verdict::Converged);
            }
            // Missed events: the truth comes back with a re-list (every watch meets 410
            // Expired) once the plugin has gone quiet, or has kept busy for a while (a plugin
            // that keeps writing against a cache that missed an event never goes quiet).
            if self.relist_pending
                && ((idle && quiet_for >= self.options.quiet)
                    || start.elapsed() >= self.options.quiet * 3)
            {
                self.relist_pending = false;
                self.relisted = true;
                self.faults.stop_perturbing_watch_events();
                self.faults.expire_watches();
                last_change = Instant::now();
                continue;
            }
            if !differences.is_empty()
                && idle
                && quiet_for >= self.options.quiet
                && applied.is_over()
            {
                return Ok(Verdict::EndStateDiffers(differences));
            }
            if start.elapsed() >= self.options.bound {
                if differences.is_empty() {
                    return Ok(Verdict::NeverConverged(vec![format!(
                        "the state holds but the plugin never went quiet ({} writes in {} s, \
                         or keys always queued)",
                        writes - writes_at_start,
                        self.options.bound.as_secs()
                    )]));
                }
                return Ok(Verdict::NeverConverged(differences));
            }
        }
    }

    /// Nothing queued to run now and nothing running.
    fn idle(&self) -> bool {
        self.manager.as_ref().is_some_and(|m| {
            m.status()
                .iter()
                .find(|s| s.name == self.name)
                .is_some_and(|s| s.queue.depth == 0 && s.queue.in_flight == 0)
        })
    }
}

fn at_step(verdict: Verdict, step: usize) -> Verdict {
    let mark = |d: Vec<String>| {
        d.into_iter()
            .map(|line| format!("(step {step}) {line}"))
            .collect()
    };
    match verdict {
        Verdict::EndStateDiffers(d) => Verdict::EndStateDiffers(mark(d)),
        Verdict::NeverConverged(d) => Verdict::NeverConverged(mark(d)),
        other => other,
    }
}

/// Creates a CRD the plugin ships.
async fn install_crd(client: &kube::Client, crd: &serde_json::Value) -> Result<(), String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<CustomResourceDefinition>(&()),
    );
    let object: DynamicObject = serde_json::from_value(crd.clone())
        .map_err(|e| format!("the plugin ships a CRD that is not one: {e}"))?;
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| ())
        .map_err(|e| format!("installing the plugin's CRD: {e}"))
}
