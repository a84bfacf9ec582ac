//! `kubewasm test-plugin`: a plugin's perturbation tests ([`kubewasm::perturb`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::ValueEnum;
use kubewasm::perturb::{self, Options, PerturbationKind, Scenario};
use kubewasm::runtime::Runtime;

use super::common::RuntimeArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,

    /// A scenario file (YAML: objects to apply, later steps, the expected end state; see
    /// docs/testing-plugins.md). Repeat for several.
    #[arg(long, required = true)]
    pub scenario: Vec<PathBuf>,

    /// Only these perturbations (the clean run always runs). Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Kind>,

    /// The longest wait, in seconds, for one expected state before a run counts as never
    /// converged.
    #[arg(long, default_value_t = 90)]
    pub bound_secs: u64,

    /// Crash points tried: a crash after write 1 up to this write (fewer when no reconcile of
    /// the clean run wrote that often).
    #[arg(long, default_value_t = 5)]
    pub max_crash_points: u64,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// A perturbation family, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A reconcile crashed right after its 1st, 2nd, ... write.
    Crash,
    /// Reads answered from an older view for a while.
    Stale,
    /// Watch events dropped, then a re-list.
    Missed,
    /// Watch events sent twice.
    Duplicate,
    /// Watch events swapped with the next one.
    Reordered,
}

impl From<Kind> for PerturbationKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Crash => Self::Crash,
            Kind::Stale => Self::Stale,
            Kind::Missed => Self::Missed,
            Kind::Duplicate => Self::Duplicate,
            Kind::Reordered => Self::Reordered,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Every scenario is read (and refused with its reason) before any run starts.
    let scenarios = args
        .scenario
        .iter()
        .map(|p| Scenario::from_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    let options = Options {
        bound: Duration::from_secs(args.bound_secs.max(1)),
        max_crash_points: args.max_crash_points,
        perturbations: if args.only.is_empty() {
            PerturbationKind::ALL.to_vec()
        } else {
            args.only.iter().copied().map(Into::into).collect()
        },
        ..Options::default()
    };
    let mut failed = 0;
    let mut runs = 0;
    for scenario in &scenarios {
        let report = perturb::test_plugin(&runtime, &args.plugin, scenario, &options)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("{}", report.table());
        runs += report.runs.len();
        failed += report
            .runs
            .iter()
            .filter(|r| !r.verdict.converged())
            .count();
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {runs} runs did not reach the expected end state");
    }
    println!("every run reached the expected end state ({runs} runs)");
    Ok(())
}
