//! `kubewasm-bench`: runs the benchmark suite (see `bench/README.md`); `kubewasm-bench peer` is
//! the native peer process the memory figures spawn.

use clap::{Parser, Subcommand};
use kubewasm_bench::RunArgs;
use kubewasm_bench::peer::{PeerArgs, run_process};

/// kubewasm's benchmark suite, side by side with a native kube-rs peer.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The native peer process (spawned by the memory figures).
    #[command(hide = true)]
    Peer(PeerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Peer(args)) => Ok(run_process(args).await?),
        None => {
            let self_bin = std::env::current_exe()?;
            kubewasm_bench::run(cli.run, self_bin).await.map(|_| ())
        }
    }
}
