//! `kubewasm rbac`: the least-privilege RBAC for a set of plugins, as YAML on stdout.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use kubewasm::rbac::{Rbac, RbacTarget};
use kubewasm::runtime::Runtime;

use super::common::{PolicyArgs, RuntimeArgs};

/// Print a ClusterRole (what the plugins' manifests need, plus Events), a Role (the
/// leader-election Lease) and their bindings to the host's ServiceAccount.
///
/// Plugins are loaded (compiled, using the compile cache) to read their manifests; progress goes
/// to stderr, the YAML to stdout: `kubewasm rbac plugins/ | kubectl apply -f -`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plugin components (*.wasm) or folders of them.
    #[arg(required = true)]
    pub plugins: Vec<PathBuf>,

    /// Name of the roles and bindings.
    #[arg(long, default_value = "kubewasm")]
    pub name: String,

    /// Namespace of the ServiceAccount (and of the leader-election Lease).
    #[arg(long, default_value = "kubewasm-system")]
    pub namespace: String,

    /// The host's ServiceAccount.
    #[arg(long, default_value = "kubewasm")]
    pub service_account: String,

    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let runtime_config = args.policy.apply(args.runtime.config())?;
    let runtime = Runtime::new(runtime_config).context("starting the plugin runtime")?;
    let mut files = Vec::new();
    for path in &args.plugins {
        if path.is_dir() {
            files.extend(
                kubewasm::loader::plugin_files(path)
                    .with_context(|| format!("listing plugins in {}", path.display()))?,
            );
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} is neither a plugin file nor a folder", path.display());
        }
    }
    if files.is_empty() {
        bail!("no plugin components (*.wasm) found");
    }
    let mut manifests = Vec::with_capacity(files.len());
    for file in &files {
        eprintln!("loading {}", file.display());
        let bytes = kubewasm::loader::read_plugin_file_async(
            file,
            kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
        )
        .await?;
        let plugin = runtime.load(file, bytes).await?;
        manifests.push(plugin.manifest().clone());
    }
    let target = RbacTarget {
        name: args.name,
        namespace: args.namespace,
        service_account: args.service_account,
    };
    let yaml = Rbac::new(manifests.iter().map(AsRef::as_ref), &target).to_yaml()?;
    print!("{yaml}");
    Ok(())
}
