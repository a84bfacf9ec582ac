//! `kubewasm replay`: recorded reconciles re-run on a plugin build (see docs/recording.md).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use kubewasm::record::replay;
use kubewasm::runtime::Runtime;
use kubewasm_core::recording::Recording;

use super::common::{PluginSizeArgs, RuntimeArgs};

/// Re-run the reconciles of a recording (written by `--record`) on a build of the plugin.
///
/// Each reconcile's reads are served from the recording; its writes, Events and outcome are
/// compared with the recorded ones. Prints a line per reconcile and, under it, each divergence
/// with a diff; exits 1 when any reconcile diverged (or the file cannot be read), 0 otherwise.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording: a file written by `kubewasm dev|run --record DIR`.
    pub file: PathBuf,

    /// The plugin build to replay it on (.wasm).
    #[arg(long)]
    pub plugin: PathBuf,

    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub size: PluginSizeArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("failed to read recording {}", args.file.display()))?;
    let recording = Recording::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a recording kubewasm can replay: {e}",
            args.file.display()
        )
    })?;
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    let plugin = kubewasm::loader::load_file(&runtime, &args.plugin, args.size.max_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if plugin.name() != recording.header.plugin.name {
        eprintln!(
            "kubewasm: note: the recording is of plugin {}, replayed on {}",
            recording.header.plugin.name,
            plugin.name()
        );
    }
    let report = replay::replay(&plugin, &recording).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    let diverged = report.diverged();
    if diverged > 0 {
        bail!(
            "{diverged} of {} reconcile(s) diverged from the recording",
            report.reconciles.len()
        );
    }
    Ok(())
}
