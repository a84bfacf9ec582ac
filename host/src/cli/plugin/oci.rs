//! `kubewasm plugin push|pull`: a component to and from an OCI registry ([`kubewasm::oci`]).

use std::path::PathBuf;

use anyhow::Context as _;
use kubewasm::oci;
use kubewasm::runtime::Runtime;

use super::UsageError;
use crate::cli::common::{PluginSizeArgs, RuntimeArgs};

/// `kubewasm plugin push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component to publish (a .wasm file); checked to be a kubewasm component first.
    file: PathBuf,

    /// Where: `REGISTRY/REPOSITORY:TAG`, e.g. `registry.example.com/team/hello:1.2.0`.
    reference: String,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    size: PluginSizeArgs,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// `kubewasm plugin pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What: `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@sha256:DIGEST`.
    reference: String,

    /// The file to write the component to (replaced whole, only once every digest verified).
    #[arg(short, long)]
    output: PathBuf,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    size: PluginSizeArgs,
}

/// How the registry is reached.
#[derive(Debug, clap::Args)]
struct RegistryArgs {
    /// Talk plain HTTP to the registry instead of HTTPS (a local registry only: nothing is
    /// encrypted, credentials included).
    #[arg(long)]
    plain_http: bool,
}

impl RegistryArgs {
    fn options(&self, reference: &str, max_size: u64) -> anyhow::Result<oci::Options> {
        let registry = reference
            .parse::<oci_client::Reference>()
            .map_err(|e| UsageError(format!("invalid OCI reference {reference:?}: {e}")))?
            .resolve_registry()
            .to_owned();
        Ok(oci::Options {
            plain_http: self.plain_http,
            credentials: oci::credentials_for(&registry)?,
            max_size,
        })
    }
}

/// Checks `args.file` is a kubewasm component, pushes it, prints `REPOSITORY@sha256:...`.
pub async fn push(args: &PushArgs) -> anyhow::Result<()> {
    let options = args
        .registry
        .options(&args.reference, args.size.max_bytes())?;
    let bytes = kubewasm::loader::read_plugin_file_async(&args.file, args.size.max_bytes()).await?;
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    let plugin = runtime
        .load(&args.file, bytes.clone())
        .await
        .with_context(|| format!("refusing to push {}", args.file.display()))?;
    let pushed = oci::push(&args.reference, &bytes, &options).await?;
    eprintln!(
        "pushed plugin {} ({} bytes, layer {}) to {}",
        plugin.name(),
        bytes.len(),
        pushed.layer_digest,
        args.reference
    );
    println!("{}", pushed.pinned);
    Ok(())
}

/// Pulls `args.reference` (digests verified) into `args.output`; prints `REPOSITORY@sha256:...`.
pub async fn pull(args: &PullArgs) -> anyhow::Result<()> {
    let options = args
        .registry
        .options(&args.reference, args.size.max_bytes())?;
    let pulled = oci::pull(&args.reference, &options).await?;
    // Written beside the target and renamed over it: a reader never sees half a component.
    let name = args
        .output
        .file_name()
        .with_context(|| format!("{} names no file", args.output.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = args.output.with_file_name(tmp_name);
    let written =
        std::fs::write(&tmp, &pulled.bytes).and_then(|()| std::fs::rename(&tmp, &args.output));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("failed to write {}", args.output.display()));
    }
    let reference = args.reference.parse::<oci_client::Reference>()?;
    eprintln!(
        "pulled {} ({} bytes, layer {}) into {}",
        args.reference,
        pulled.bytes.len(),
        pulled.layer_digest,
        args.output.display()
    );
    println!(
        "{}/{}@{}",
        reference.registry(),
        reference.repository(),
        pulled.digest
    );
    Ok(())
}
