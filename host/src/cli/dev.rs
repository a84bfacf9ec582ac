//! `kubewasm dev`: the embedded API server and the host in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::Manager;
use kubewasm::runtime::Runtime;

use super::apiserver;
use super::common::{
    CacheArgs, PolicyArgs, RuntimeArgs, WatchArgs, shutdown_signal, start_plugins,
};

/// Start an in-memory Kubernetes API server, write a kubeconfig for kubectl, and run the
/// plugins in --plugins against it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of plugin components (*.wasm); `cargo xtask dev` builds the examples there.
    #[arg(long, default_value = "target/plugins", env = "KUBEWASM_PLUGINS")]
    pub plugins: PathBuf,

    /// Address of the embedded API server; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Where to write the kubeconfig for kubectl.
    #[arg(long, default_value = "kubewasm-dev.kubeconfig")]
    pub kubeconfig_out: PathBuf,

    /// Serve the API only: no fake nodes, scheduler, kubelets or workload controllers, so Pods stay
    /// Pending and Deployments make no ReplicaSets (by default the dev cluster simulates them).
    #[arg(long)]
    pub no_simulate: bool,

    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub watch: WatchArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A bad policy file stops the start before the API server starts.
    let runtime_config = args.policy.apply(args.runtime.config())?;
    if !args.plugins.is_dir() {
        anyhow::bail!(
            "the plugins folder {} does not exist; build the example plugins with `cargo xtask plugins` \
             (or run `cargo xtask dev`, which does both)",
            args.plugins.display()
        );
    }
    let server = apiserver::start(&apiserver::Args {
        listen: args.listen,
        kubeconfig_out: args.kubeconfig_out.clone(),
        allow_non_loopback: false,
        token: None,
        simulate: !args.no_simulate,
    })
    .await?;
    let config = kube::Config::new(
        server
            .url()
            .parse()
            .context("parsing the embedded API server's URL")?,
    );
    let client = kubewasm::kube_client::client(config).context("creating the Kubernetes client")?;
    let runtime = Runtime::new(runtime_config).context("starting the plugin runtime")?;
    let manager = Manager::new(client, args.cache.config());
    let (started, watcher) = start_plugins(&runtime, &manager, &args.plugins, &args.watch).await?;
    // Hot reload in dev: say what happened to each plugin file as a plain line.
    let mut reloads = watcher.subscribe();
    let printer = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match reloads.recv().await {
                Ok(event) => println!("{event}"),
                Err(RecvError::Lagged(n)) => println!("({n} plugin reload messages skipped)"),
                Err(RecvError::Closed) => return,
            }
        }
    });
    let reconciles = tokio::spawn(print_reconciles(manager.reconciles()));
    if started == 0 {
        tracing::warn!(
            "no plugin is running: put plugin components in {}",
            args.plugins.display()
        );
    }
    let kubeconfig = args.kubeconfig_out.display();
    let status = manager.status();
    println!();
    println!("kubewasm dev is running.");
    println!("  API server:  {}", server.url());
    println!("  kubeconfig:  {kubeconfig}   (export KUBECONFIG={kubeconfig})");
    println!(
        "  plugins:     {}",
        if status.is_empty() {
            "none".to_owned()
        } else {
            status
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for (path, file) in watcher.files() {
        if let Some(error) = file.error {
            println!("  not loaded:  {}: {error}", path.display());
        }
    }
    if !args.watch.no_watch {
        println!(
            "  hot reload:  on (add, replace or remove files in {})",
            args.plugins.display()
        );
    }
    println!();
    println!("Try it (see examples/README.md for every example):");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl apply -f examples/rediscluster/crd.yaml");
    println!("  kubectl apply -f examples/rediscluster/redis.yaml");
    println!(
        "  kubectl get redisclusters,statefulsets,services   # the plugin creates both for the RedisCluster"
    );
    if !args.no_simulate {
        println!(
            "  kubectl rollout status statefulset cache          # the simulated Pods become Ready"
        );
        println!("  kubectl get rediscluster cache                    # Running, 3 ready");
    }
    println!("Press Ctrl-C to stop.");
    shutdown_signal().await;
    watcher.stop().await;
    printer.abort();
    reconciles.abort();
    manager.shutdown().await;
    server.shutdown().await;
    Ok(())
}

/// At most this many reconcile lines a second; the rest are counted in one summary line.
const RECONCILE_LINES_PER_SECOND: usize = 20;

/// Prints every finished reconcile as one line (`reconciled rediscluster default/cache (created)
/// in 2.1 ms: done`), so a newcomer sees what their plugin did without setting `RUST_LOG`. A
/// burst (an initial list, a resync) prints the first lines of each second and a count of the rest.
async fn print_reconciles(
    mut reconciles: tokio::sync::mpsc::UnboundedReceiver<kubewasm::reconciles::ReconcileEvent>,
) {
    use kubewasm::reconciles::ReconcileEvent;
    use kubewasm::runtime::Action;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let (mut printed, mut ok, mut failed) = (0, 0, 0);
    loop {
        let event = tokio::select! {
            event = reconciles.recv() => event,
            _ = second.tick() => {
                if ok + failed > 0 {
                    println!("({} more reconciles: {ok} ok, {failed} failed)", ok + failed);
                }
                (printed, ok, failed) = (0, 0, 0);
                continue;
            }
        };
        let Some(ReconcileEvent::Finished(r)) = event else {
            if event.is_none() {
                return;
            }
            continue;
        };
        if printed == RECONCILE_LINES_PER_SECOND {
            if r.result.is_ok() {
                ok += 1;
            } else {
                failed += 1;
            }
            continue;
        }
        printed += 1;
        let s = &r.started;
        let outcome = match &r.result {
            Ok(Action::Done) => "done".to_owned(),
            Ok(Action::RequeueAfter(after)) => format!("requeue after {after:?}"),
            Err(e) => format!("FAILED ({}'s fault): {e}", e.blame().as_str()),
        };
        println!(
            "reconciled {} {} ({}) in {:.1} ms: {outcome}",
            s.plugin,
            s.key,
            s.reason,
            r.took.as_secs_f64() * 1e3
        );
    }
}
