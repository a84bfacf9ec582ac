//! `kubewasm apiserver`: the embedded API server on its own.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use kubewasm_apiserver::{ApiServer, Config, Simulation};

use super::common::shutdown_signal;

/// Serve an in-memory Kubernetes API server (for development and tests).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Where to write a kubeconfig for kubectl and kube clients.
    #[arg(long, default_value = "kubewasm.kubeconfig")]
    pub kubeconfig_out: PathBuf,

    /// Allow a non-loopback --listen address (then a bearer token is required).
    #[arg(long)]
    pub allow_non_loopback: bool,

    /// Bearer token clients must send (written into the kubeconfig).
    #[arg(long, env = "KUBEWASM_APISERVER_TOKEN")]
    pub token: Option<String>,

    /// Simulate a cluster's workloads: fake nodes, a scheduler, kubelets that run Pods (none really
    /// runs) and the Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and disruption controllers.
    #[arg(long)]
    pub simulate: bool,
}

/// Starts the server from `args`, writes the kubeconfig and prints where it listens.
pub async fn start(args: &Args) -> anyhow::Result<ApiServer> {
    let server = ApiServer::start(Config {
        listen: args.listen,
        token: args.token.clone(),
        allow_non_loopback: args.allow_non_loopback,
        simulate: args.simulate.then(Simulation::default),
        ..Config::default()
    })
    .await
    .context("starting the embedded API server")?;
    server
        .write_kubeconfig(&args.kubeconfig_out)
        .with_context(|| format!("writing {}", args.kubeconfig_out.display()))?;
    Ok(server)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = start(&args).await?;
    println!("kubewasm apiserver listening on {}", server.url());
    println!("kubeconfig written to {}", args.kubeconfig_out.display());
    println!(
        "try: kubectl --kubeconfig {} get namespaces",
        args.kubeconfig_out.display()
    );
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}
