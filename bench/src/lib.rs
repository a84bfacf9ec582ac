//! kubewasm's benchmark suite: every figure measured side by side with a native kube-rs peer
//! against the same embedded API server, printed as a table and written as JSON.
//!
//! The binary `kubewasm-bench` runs it (`cargo xtask bench` builds everything in release and
//! runs it); see `bench/README.md` for what each figure means.

pub mod cpu;
pub mod fixture;
pub mod gopeer;
pub mod mode;
pub mod peer;
pub mod pod;
pub mod probe;
pub mod report;
pub mod scenario;
pub mod stats;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::gopeer::GoPeer;
use crate::mode::Mode;
use crate::probe::{Probe, ReconcileLayer};
use crate::report::{Machine, Report};
use crate::scenario::Ctx;

/// The scenario groups, in issue order, by the name `--only` takes.
pub const GROUPS: &[&str] = &[
    "cache",
    "throughput",
    "latency",
    "reload",
    "memory",
    "watches",
    "binary",
];

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// quick (default, about 3 min on 2 cores with the Go peer), full (bigger sizes) or smoke (tiny, for CI).
    #[arg(long, value_enum, default_value = "quick")]
    pub mode: Mode,
    /// Shorthand for --mode full.
    #[arg(long, conflicts_with = "mode")]
    pub full: bool,
    /// Where to write the JSON report [default: target/bench/results.json].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run only these groups (comma-separated): cache, throughput, latency, reload, memory,
    /// watches, binary.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The folder of test plugins [default: target/test-plugins].
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// The kubewasm binary for the process figures [default: next to this binary].
    #[arg(long)]
    pub kubewasm_bin: Option<PathBuf>,
    /// The Go peer (tools/bench-go-peer) [default: target/bench-go-peer/bench-go-peer]; when it
    /// is missing, the Go columns say so.
    #[arg(long)]
    pub go_peer_bin: Option<PathBuf>,
}

/// The workspace's `target` folder.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// `kubewasm` next to this binary (`target/<profile>/`), or one folder up for a bench or test
/// harness in `target/<profile>/deps/`.
fn sibling_kubewasm(self_bin: &std::path::Path) -> PathBuf {
    let dir = self_bin.parent().map(PathBuf::from).unwrap_or_default();
    let here = dir.join("kubewasm");
    if here.is_file() || !dir.ends_with("deps") {
        return here;
    }
    dir.parent().map_or(here, |p| p.join("kubewasm"))
}

/// Runs the suite: every group asked for, then prints the table and writes the JSON.
///
/// # Errors
/// When a scenario fails (a missing plugin or binary says how to build it) or the report cannot
/// be written.
pub async fn run(args: RunArgs, self_bin: PathBuf) -> anyhow::Result<Report> {
    let mode = if args.full { Mode::Full } else { args.mode };
    for group in &args.only {
        if !GROUPS.contains(&group.as_str()) {
            bail!("unknown group {group:?} (groups: {})", GROUPS.join(", "));
        }
    }
    let probe = Probe::global();
    // A second run in one process keeps the first subscriber (which reports to the same probe).
    let _ = ReconcileLayer::install(std::sync::Arc::clone(&probe));
    let compile_cache = tempfile::tempdir().context("a temporary compile cache")?;
    let ctx = Ctx {
        mode,
        sizes: mode.sizes(),
        test_plugins: args
            .plugins
            .unwrap_or_else(|| target_dir().join("test-plugins")),
        kubewasm_bin: args
            .kubewasm_bin
            .unwrap_or_else(|| sibling_kubewasm(&self_bin)),
        go_peer: {
            let bin = args
                .go_peer_bin
                .unwrap_or_else(|| target_dir().join("bench-go-peer/bench-go-peer"));
            GoPeer::at(bin.clone())
                .ok_or_else(|| format!("{} is missing; {}", bin.display(), gopeer::NOT_BUILT))
        },
        self_bin,
        compile_cache: compile_cache.path().to_owned(),
        probe,
    };
    let timestamp = jiff::Timestamp::now().to_string();
    let started = Instant::now();
    let mut figures = Vec::new();
    for &group in GROUPS {
        if !args.only.is_empty() && !args.only.iter().any(|g| g == group) {
            continue;
        }
        let t = Instant::now();
        eprintln!("==> {group}");
        let result = match group {
            "cache" => scenario::cache::run(&ctx).await,
            "throughput" => scenario::reconcile::throughput(&ctx).await,
            "latency" => scenario::reconcile::latency(&ctx).await,
            "reload" => scenario::reload::run(&ctx).await,
            "memory" => scenario::memory::run(&ctx).await,
            "binary" => scenario::binary::run(&ctx),
            _ => scenario::watches::run(&ctx).await,
        };
        figures.extend(result.with_context(|| format!("benchmark group {group}"))?);
        eprintln!("    {group} took {:.1?}", t.elapsed());
    }
    let report = Report {
        mode: format!("{mode:?}").to_lowercase(),
        timestamp,
        machine: Machine::this(),
        duration_secs: started.elapsed().as_secs_f64(),
        figures,
    };
    println!("{}", report.table());
    let json = args
        .json
        .unwrap_or_else(|| target_dir().join("bench/results.json"));
    report.write_json(&json)?;
    eprintln!("figures written to {}", json.display());
    Ok(report)
}
