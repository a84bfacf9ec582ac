//! `kubewasm run`: plugins against a real cluster.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubewasm::Manager;
use kubewasm::runtime::Runtime;

use super::common::{CacheArgs, RuntimeArgs, shutdown_signal, start_plugins};

/// Load every plugin in a folder and run it against a Kubernetes cluster.
///
/// The cluster is found as kubectl finds it: --kubeconfig, else $KUBECONFIG, else
/// ~/.kube/config, else the in-cluster service account.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of plugin components (*.wasm).
    #[arg(long, env = "KUBEWASM_PLUGINS")]
    pub plugins: PathBuf,

    /// The kubeconfig file to use.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub cache: CacheArgs,
}

/// A client for the cluster the arguments name.
pub async fn client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("reading the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("finding a cluster (no kubeconfig and not in a cluster)")?,
    };
    tracing::info!(cluster = %config.cluster_url, "using cluster");
    kube::Client::try_from(config).context("creating the Kubernetes client")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    let manager = Manager::new(client, args.cache.config());
    let started = start_plugins(&runtime, &manager, &args.plugins).await?;
    if started == 0 {
        bail!("no plugin could be started from {}", args.plugins.display());
    }
    tracing::info!("{started} plugin(s) started; each reconciles once its caches have synced");
    shutdown_signal().await;
    manager.shutdown().await;
    Ok(())
}
