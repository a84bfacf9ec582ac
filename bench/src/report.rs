//! The benchmark report: every figure with its kubewasm and native sides, printed as a table and
//! written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::stats::Summary;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder or file could not be written.
    #[error("failed to write the report to {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serialization failed (it cannot for these types, but the error is not thrown away).
    #[error("failed to encode the report as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The unit of a figure's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Microseconds.
    #[serde(rename = "µs")]
    Micros,
    /// Milliseconds.
    #[serde(rename = "ms")]
    Millis,
    /// Keys reconciled per second.
    #[serde(rename = "keys/s")]
    KeysPerSec,
    /// Mebibytes.
    #[serde(rename = "MiB")]
    MiB,
    /// Bytes.
    #[serde(rename = "bytes")]
    Bytes,
    /// A count.
    #[serde(rename = "count")]
    Count,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Self::Micros => "µs",
            Self::Millis => "ms",
            Self::KeysPerSec => "keys/s",
            Self::MiB => "MiB",
            Self::Bytes => "bytes",
            Self::Count => "count",
        }
    }

    /// Whether a bigger number is better (throughput) rather than worse (time, memory).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Self::KeysPerSec)
    }
}

/// What a figure must reach to meet its goal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Goal {
    /// kubewasm's p95 at most this (in the figure's unit).
    P95AtMost {
        /// The bound.
        value: f64,
    },
    /// kubewasm's median at least this many times the native median (throughput).
    RatioAtLeast {
        /// The bound.
        value: f64,
    },
    /// kubewasm's value exactly this (a count).
    Exactly {
        /// The value.
        value: f64,
    },
}

impl Goal {
    fn describe(self, unit: Unit) -> String {
        match self {
            Self::P95AtMost { value } => format!("p95 ≤ {} {}", num(value), unit.label()),
            Self::RatioAtLeast { value } => format!("≥ {value}x native"),
            Self::Exactly { value } => format!("= {}", num(value)),
        }
    }

    fn met(self, kubewasm: &Summary, ratio: Option<f64>) -> bool {
        match self {
            Self::P95AtMost { value } => kubewasm.p95 <= value,
            Self::RatioAtLeast { value } => ratio.is_some_and(|r| r >= value),
            Self::Exactly { value } => (kubewasm.p50 - value).abs() < f64::EPSILON,
        }
    }
}

/// One side of a figure: what was measured, or why nothing was.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// What this side ran (e.g. "kube-runtime Controller, concurrency 2").
    pub label: String,
    /// The figures, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Why nothing was measured (an operation a plugin lacks, a full-mode-only size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
}

impl Side {
    /// A measured side.
    pub fn measured(label: impl Into<String>, summary: Summary) -> Self {
        Self {
            label: label.into(),
            summary: Some(summary),
            not_measured: None,
        }
    }

    /// A side measured from samples; not measured (saying so) when there are none.
    pub fn from_samples(label: impl Into<String>, samples: &[f64]) -> Self {
        match Summary::of(samples) {
            Some(s) => Self::measured(label, s),
            None => Self::missing(label, "no samples were collected"),
        }
    }

    /// A side that could not be measured, and why.
    pub fn missing(label: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            summary: None,
            not_measured: Some(why.into()),
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable identifier, e.g. `cache.get.raw`.
    pub id: String,
    /// Which issue figure it belongs to (1-8; 9 is the binary's size).
    pub group: u8,
    /// What it measures, for a reader.
    pub title: String,
    /// The unit of every number.
    pub unit: Unit,
    /// The kubewasm side.
    pub kubewasm: Side,
    /// The native peer.
    pub native: Side,
    /// The Go peer (client-go / controller-runtime, `tools/bench-go-peer`), for the figures it
    /// has an equivalent of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<Side>,
    /// kubewasm median / native median, when both were measured.
    pub ratio: Option<f64>,
    /// kubewasm median / Go median, when both were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_go: Option<f64>,
    /// The goal, if the issue sets one.
    pub goal: Option<Goal>,
    /// Whether the goal is met (`None` without a goal or numbers).
    pub met: Option<bool>,
    /// Anything a reader must know to read the numbers.
    pub note: String,
}

impl Figure {
    /// A figure without a goal or note; the ratio is worked out here.
    pub fn new(id: &str, group: u8, title: &str, unit: Unit, kubewasm: Side, native: Side) -> Self {
        let ratio = median_ratio(&kubewasm, &native);
        Self {
            id: id.to_owned(),
            group,
            title: title.to_owned(),
            unit,
            kubewasm,
            native,
            go: None,
            ratio,
            ratio_go: None,
            goal: None,
            met: None,
            note: String::new(),
        }
    }

    /// Sets the Go peer's side (and the kubewasm / Go ratio).
    #[must_use]
    pub fn go(mut self, go: Side) -> Self {
        self.ratio_go = median_ratio(&self.kubewasm, &go);
        self.go = Some(go);
        self
    }

    /// Sets the goal and whether kubewasm meets it.
    #[must_use]
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self.met = self
            .kubewasm
            .summary
            .as_ref()
            .map(|k| goal.met(k, self.ratio));
        self
    }

    /// Sets the note a reader needs to read the numbers.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// `a` median / `b` median, when both were measured and `b`'s is positive.
fn median_ratio(a: &Side, b: &Side) -> Option<f64> {
    match (&a.summary, &b.summary) {
        (Some(a), Some(b)) if b.p50 > 0.0 => Some(a.p50 / b.p50),
        _ => None,
    }
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// `uname`-like OS and architecture.
    pub os: String,
    /// Whether the bench binary was built with optimizations.
    pub release_build: bool,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            release_build: !cfg!(debug_assertions),
        }
    }
}

/// Every figure of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick`, `full` or `smoke`.
    pub mode: String,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: String,
    /// Where it ran.
    pub machine: Machine,
    /// How long the whole run took, in seconds.
    pub duration_secs: f64,
    /// The figures, in issue order.
    pub figures: Vec<Figure>,
}

impl Report {
    /// Writes the report as pretty JSON to `path`, creating its folder.
    ///
    /// # Errors
    /// [`ReportError`] when the file cannot be written.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let write_err = |source| ReportError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(write_err)
    }

    /// The report as a Markdown table (one row per figure), then the notes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kubewasm benchmark: {} mode, {} cores, {} build, {:.0} s\n",
            self.mode,
            self.machine.cores,
            if self.machine.release_build {
                "release"
            } else {
                "debug"
            },
            self.duration_secs
        );
        let _ = writeln!(
            out,
            "| # | figure | unit | kubewasm p50 / p95 / p99 | native (kube-rs) p50 / p95 / p99 | Go (client-go) p50 / p95 / p99 | wasm/native | wasm/Go | goal | met |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        let ratio = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}x"));
        for f in &self.figures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.group,
                f.title,
                f.unit.label(),
                side(&f.kubewasm),
                side(&f.native),
                f.go.as_ref().map_or_else(|| "–".to_owned(), side),
                ratio(f.ratio),
                ratio(f.ratio_go),
                f.goal
                    .map_or_else(|| "–".to_owned(), |g| g.describe(f.unit)),
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "–",
                }
            );
        }
        let _ = writeln!(out, "\nnotes:");
        for f in &self.figures {
            let go =
                f.go.as_ref()
                    .map(|g| format!("; Go = {}", g.label))
                    .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {}: kubewasm = {}; native = {}{go}.{}{}",
                f.id,
                f.kubewasm.label,
                f.native.label,
                if f.note.is_empty() { "" } else { " " },
                f.note
            );
        }
        out
    }
}

fn side(s: &Side) -> String {
    match (&s.summary, &s.not_measured) {
        (Some(x), _) if x.n == 1 => num(x.p50),
        (Some(x), _) => format!("{} / {} / {}", num(x.p50), num(x.p95), num(x.p99)),
        (None, Some(why)) => format!("not measured: {why}"),
        (None, None) => "not measured".to_owned(),
    }
}

/// A number with about three significant digits.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(unit: Unit, kubewasm: f64, native: f64, goal: Goal) -> Figure {
        Figure::new(
            "x",
            1,
            "x",
            unit,
            Side::measured("k", Summary::single(kubewasm)),
            Side::measured("n", Summary::single(native)),
        )
        .goal(goal)
    }

    #[test]
    fn the_ratio_is_kubewasm_over_native_and_the_goal_is_checked_on_kubewasm() {
        let f = figure(Unit::Micros, 8.0, 2.0, Goal::P95AtMost { value: 10.0 });
        assert_eq!((f.ratio, f.met), (Some(4.0), Some(true)));
        let f = figure(Unit::Micros, 12.0, 2.0, Goal::P95AtMost { value: 10.0 });
        assert_eq!(f.met, Some(false));
    }

    #[test]
    fn a_throughput_goal_is_a_ratio_to_native() {
        let f = figure(
            Unit::KeysPerSec,
            400.0,
            1000.0,
            Goal::RatioAtLeast { value: 0.5 },
        );
        assert_eq!(f.met, Some(false));
        let f = figure(
            Unit::KeysPerSec,
            600.0,
            1000.0,
            Goal::RatioAtLeast { value: 0.5 },
        );
        assert_eq!(f.met, Some(true));
    }

    #[test]
    fn a_side_without_numbers_says_why_and_has_no_ratio() {
        let f = Figure::new(
            "x",
            2,
            "x",
            Unit::Millis,
            Side::missing("k", "the plugin lacks op list-index"),
            Side::measured("n", Summary::single(1.0)),
        )
        .goal(Goal::P95AtMost { value: 0.5 });
        assert_eq!((f.ratio, f.met), (None, None));
        let report = Report {
            mode: "quick".into(),
            timestamp: "t".into(),
            machine: Machine::this(),
            duration_secs: 1.0,
            figures: vec![f],
        };
        assert!(
            report
                .table()
                .contains("not measured: the plugin lacks op list-index")
        );
    }

    #[test]
    fn a_go_side_gets_its_own_column_and_ratio_and_is_left_out_where_there_is_none() {
        let with_go = figure(Unit::Micros, 8.0, 2.0, Goal::P95AtMost { value: 10.0 })
            .go(Side::measured("client-go lister", Summary::single(32.0)));
        assert_eq!(with_go.ratio_go, Some(0.25));
        let without = figure(Unit::Micros, 8.0, 2.0, Goal::P95AtMost { value: 10.0 });
        let missing = figure(Unit::Micros, 8.0, 2.0, Goal::P95AtMost { value: 10.0 })
            .go(Side::missing("Go peer", "the Go peer is not built"));
        assert_eq!(missing.ratio_go, None);
        let report = Report {
            mode: "quick".into(),
            timestamp: "t".into(),
            machine: Machine::this(),
            duration_secs: 1.0,
            figures: vec![with_go, without, missing],
        };
        let table = report.table();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 1 |")).collect();
        assert!(rows[0].contains("| 32.0 | 4.00x | 0.25x |"), "{}", rows[0]);
        assert!(rows[1].contains("| – | 4.00x | – |"), "{}", rows[1]);
        assert!(rows[2].contains("not measured: the Go peer is not built"));
        assert!(table.contains("Go = client-go lister"));
        let json = serde_json::to_value(&report).expect("encodes");
        assert_eq!(json["figures"][0]["go"]["summary"]["p50"], 32.0);
        assert_eq!(json["figures"][0]["ratio_go"], 0.25);
        assert!(json["figures"][1].get("go").is_none());
        assert!(json["figures"][1].get("ratio_go").is_none());
    }

    #[test]
    fn the_json_names_both_sides_of_every_figure() {
        let report = Report {
            mode: "quick".into(),
            timestamp: "t".into(),
            machine: Machine::this(),
            duration_secs: 1.0,
            figures: vec![figure(Unit::Count, 1.0, 50.0, Goal::Exactly { value: 1.0 })],
        };
        let json = serde_json::to_value(&report).expect("encodes");
        let f = &json["figures"][0];
        assert_eq!(f["kubewasm"]["summary"]["p50"], 1.0);
        assert_eq!(f["native"]["summary"]["p99"], 50.0);
        assert_eq!(f["met"], true);
        assert_eq!(f["unit"], "count");
    }
}
