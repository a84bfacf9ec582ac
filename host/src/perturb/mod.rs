//! Perturbation tests (after Sieve, OSDI'22): a plugin runs against a fresh embedded API server
//! until a [`Scenario`]'s end state holds, then again under each [`Perturbation`] — a reconcile
//! crashed right after its Nth write, reads served from an older view, watch events dropped,
//! duplicated or reordered — and each run is judged: converged, end state differs, or never
//! converged. `kubewasm test-plugin` prints the [`ScenarioReport`]; the format of scenarios is
//! in `docs/testing-plugins.md`.
//!
//! Start with [`test_plugin`]. Nothing here changes the plugin: the crash and the stale view are
//! [reconcile layers](crate::layer) around every reconcile, and the watch perturbations are the
//! embedded API server's [`Faults`](kubewasm_apiserver::Faults).

mod layers;
mod run;
mod scenario;

use std::fmt;
use std::time::Duration;

pub use run::test_plugin;
pub use scenario::{Expect, ObjectRef, Present, Scenario, ScenarioError, Step};

/// What a run does to the plugin's view or its reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perturbation {
    /// Nothing: the clean run every other run is compared with.
    None,
    /// Each key's first reconcile that makes its Nth write dies right after that write reached
    /// the server (the import traps the plugin); the key is retried as after any trap.
    CrashAfterWrite(u64),
    /// For a while, reads are answered from an older view of the caches (the plugin's own
    /// writes excepted); then the view is fresh again.
    StaleView,
    /// Some watch events never reach the host's informers; once the plugin has gone quiet, a
    /// re-list brings the truth.
    MissedEvents,
    /// Some watch events arrive twice.
    DuplicateEvents,
    /// Some watch events arrive after the next event about another object.
    ReorderedEvents,
}

impl fmt::Display for Perturbation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none (clean run)"),
            Self::CrashAfterWrite(n) => write!(f, "crash after write {n}"),
            Self::StaleView => f.write_str("stale view"),
            Self::MissedEvents => f.write_str("missed events"),
            Self::DuplicateEvents => f.write_str("duplicate events"),
            Self::ReorderedEvents => f.write_str("reordered events"),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The end state held and the plugin went quiet (wrote nothing for a while).
    Converged,
    /// The plugin went quiet with the end state not holding; the differences.
    EndStateDiffers(Vec<String>),
    /// The bound passed with the end state not holding; the differences at that point.
    NeverConverged(Vec<String>),
    /// The run itself failed (an object the scenario applies was refused, the plugin did not
    /// start): no verdict on the plugin.
    Failed(String),
}

impl Verdict {
    /// Whether the plugin reached the end state.
    pub fn converged(&self) -> bool {
        *self == Self::Converged
    }

    /// The short name used in tables.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Converged => "converged",
            Self::EndStateDiffers(_) => "end state differs",
            Self::NeverConverged(_) => "never converged",
            Self::Failed(_) => "run failed",
        }
    }

    /// The differences (or the failure), one per line.
    pub fn details(&self) -> Vec<String> {
        match self {
            Self::Converged => Vec::new(),
            Self::EndStateDiffers(d) | Self::NeverConverged(d) => d.clone(),
            Self::Failed(e) => vec![e.clone()],
        }
    }
}

/// One run of a scenario.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// What was done to the plugin.
    pub perturbation: Perturbation,
    /// How it ended.
    pub verdict: Verdict,
    /// How much the perturbation did ("2 reconciles crashed", "9 events dropped").
    pub note: String,
}

/// Every run of one scenario on one plugin.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// The plugin's name.
    pub plugin: String,
    /// The scenario's name.
    pub scenario: String,
    /// The clean run first, then one per perturbation.
    pub runs: Vec<RunReport>,
}

impl ScenarioReport {
    /// Whether every run converged.
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|r| r.verdict.converged())
    }

    /// The runs as a Markdown table: perturbation, result, what it did, the differences.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} / {}\n\n| perturbation | result | perturbed | differences |\n|---|---|---|---|\n",
            self.plugin, self.scenario
        );
        for r in &self.runs {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.perturbation,
                r.verdict.label(),
                r.note,
                r.verdict.details().join("; ").replace('|', "\\|")
            ));
        }
        out
    }
}

/// The suite's table: one row per plugin and scenario, one column per perturbation (every
/// crash point folded into one column: the worst result, and at which write).
pub fn suite_table(reports: &[ScenarioReport]) -> String {
    const COLUMNS: [&str; 6] = [
        "clean",
        "crash after each write",
        "stale view",
        "missed events",
        "duplicate events",
        "reordered events",
    ];
    let mut out = format!(
        "| plugin / scenario | {} |\n|---|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for report in reports {
        let cell = |pick: &dyn Fn(&Perturbation) -> bool| {
            let runs: Vec<&RunReport> = report
                .runs
                .iter()
                .filter(|r| pick(&r.perturbation))
                .collect();
            if runs.is_empty() {
                return "-".to_owned();
            }
            match runs.iter().find(|r| !r.verdict.converged()) {
                None if runs.len() > 1 => format!("converged ({} runs)", runs.len()),
                None => "converged".to_owned(),
                Some(r) => format!("**{}** ({})", r.verdict.label(), r.perturbation),
            }
        };
        let cells = [
            cell(&|p| *p == Perturbation::None),
            cell(&|p| matches!(p, Perturbation::CrashAfterWrite(_))),
            cell(&|p| *p == Perturbation::StaleView),
            cell(&|p| *p == Perturbation::MissedEvents),
            cell(&|p| *p == Perturbation::DuplicateEvents),
            cell(&|p| *p == Perturbation::ReorderedEvents),
        ];
        out.push_str(&format!(
            "| {} / {} | {} |\n",
            report.plugin,
            report.scenario,
            cells.join(" | ")
        ));
    }
    out
}

/// The bounds of a perturbation test. Timings only bound waits: a slow machine makes a run
/// longer, never a verdict different, unless a bound is reached.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest wait for one expected state (per step and for the end state).
    pub bound: Duration,
    /// How long the plugin must write nothing, with the end state holding, to have converged.
    pub settle: Duration,
    /// How long the plugin must write nothing, with nothing queued and the end state not
    /// holding, for the end state to differ (longer than `resync`, so a resync gets its turn).
    pub quiet: Duration,
    /// Every primary is queued again this often in every run (a controller's resync).
    pub resync: Duration,
    /// Crash points tried: write 1 up to this many (or the most writes one reconcile made in
    /// the clean run, when fewer).
    pub max_crash_points: u64,
    /// Which perturbations run (the clean run always does).
    pub perturbations: Vec<PerturbationKind>,
}

/// A family of perturbations, as `--only` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerturbationKind {
    /// [`Perturbation::CrashAfterWrite`], one run per write.
    Crash,
    /// [`Perturbation::StaleView`].
    Stale,
    /// [`Perturbation::MissedEvents`].
    Missed,
    /// [`Perturbation::DuplicateEvents`].
    Duplicate,
    /// [`Perturbation::ReorderedEvents`].
    Reordered,
}

impl PerturbationKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Crash,
        Self::Stale,
        Self::Missed,
        Self::Duplicate,
        Self::Reordered,
    ];
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bound: Duration::from_secs(90),
            settle: Duration::from_secs(1),
            quiet: Duration::from_secs(8),
            resync: Duration::from_secs(2),
            max_crash_points: 5,
            perturbations: PerturbationKind::ALL.to_vec(),
        }
    }
}
