//! `kubewasm run`: plugins against a real cluster.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubewasm::Manager;
use kubewasm::gate::ReconcileGate;
use kubewasm::leader::ReplicaState;
use kubewasm::reload::PluginWatcher;
use kubewasm::runtime::Runtime;

use super::common::{
    CacheArgs, LogArgs, PolicyArgs, RuntimeArgs, WatchArgs, shutdown_signal, start_plugins,
};
use super::leader::{self, Ended, LeaderArgs, ServeArgs};

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
    pub log: LogArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub watch: WatchArgs,

    #[command(flatten)]
    pub record: super::common::RecordArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Serve the live status page (plugins, reloads, reconciles) at this address, e.g.
    /// 127.0.0.1:8082 (off by default; the page has no authentication: keep it on loopback or
    /// behind something that has).
    #[arg(long, value_name = "ADDR")]
    pub status_addr: Option<std::net::SocketAddr>,
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
    // Bounded retries of 429s (kube's default waits minutes in a storm): see kubewasm::client.
    kubewasm::kube_client::client(config).context("creating the Kubernetes client")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Listen for SIGTERM/Ctrl-C from the start, so a signal while waiting for the Lease or
    // loading plugins is a clean exit too.
    let mut signal = tokio::spawn(shutdown_signal());
    // A bad policy file stops the start before anything connects.
    let mut runtime_config = args.policy.apply(args.runtime.config())?;
    let client = client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    // WIT 0.2 plugins get their kinds' plurals and scope from the cluster's discovery.
    runtime_config.resolver = Some(std::sync::Arc::new(kubewasm::DiscoveryResolver::new(
        client.clone(),
    )));
    let runtime = Runtime::new(runtime_config).context("starting the plugin runtime")?;
    let (mut manager_config, recorder) = args.record.apply(args.cache.config())?;
    // Sharded: no leader; this replica joins the ring and reconciles the keys it owns.
    let mut leader_args = args.leader.clone();
    let mut membership = None;
    let sharded = match args.leader.shard_config() {
        Some(config) => {
            leader_args.leader_elect = false;
            let (shards, member) = kubewasm::shard::join(client.clone(), config)
                .await
                .context("joining the shard ring")?;
            membership = Some(member);
            Some(shards)
        }
        None => None,
    };
    let standby = match (leader_args.leader_elect, leader_args.warm_standby) {
        (false, _) => None,
        (true, true) => Some(ReplicaState::WarmStandby),
        (true, false) => Some(ReplicaState::ColdStandby),
    };
    // A warm standby's workers wait behind a closed gate until it leads.
    let gate = match sharded {
        Some(shards) => ReconcileGate::sharded(shards),
        None => ReconcileGate::new(standby != Some(ReplicaState::WarmStandby)),
    };
    manager_config.gate = gate.clone();
    let manager = Manager::new(client.clone(), manager_config);
    if let Some(shards) = gate.shards().cloned() {
        // The ring's metrics follow every settled generation.
        let metrics = manager.metrics().clone();
        let ring = args.leader.shards.clone().unwrap_or_default();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                seen = shards.settled_after(seen).await;
                metrics.shard_settled(&ring, shards.view().members.len());
            }
        });
    }
    let health = kubewasm::serve::Health::default();
    if let Some(state) = standby {
        leader::set_state(&manager, &health, state);
    }
    leader::serve_endpoints(&args.serve, &manager, &health).await?;
    let status_page = args.status_addr.map(|_| {
        kubewasm::status::StatusPage::new(
            manager.clone(),
            kubewasm::status::DEFAULT_RECENT,
            recorder.map(|r| r as std::sync::Arc<dyn kubewasm::layer::RecordLookup>),
        )
    });
    if let (Some(addr), Some(page)) = (args.status_addr, &status_page) {
        kubewasm::status::serve(addr, page.clone()).await?;
    }
    let mut running = None;
    match standby {
        Some(ReplicaState::WarmStandby) => {
            // A warm standby starts its plugins now: caches sync and queues fill while it waits,
            // so on winning the Lease its workers start at once, with no list request. Plugins
            // hot-reload as on the leader.
            let started = tokio::select! {
                started = start_plugins(&runtime, &manager, &args.plugins, &args.watch, None) => started?,
                _ = &mut signal => {
                    tracing::info!("stopped while starting the plugins");
                    return Ok(());
                }
            };
            running = Some(started_plugins(
                started,
                &args.plugins,
                &health,
                status_page.as_ref(),
                &gate,
            )?);
        }
        Some(_) => {
            // A cold standby compiles and validates its plugins now (filling the compile cache),
            // so it is ready and takes over fast; it starts them (informers, workers) once
            // elected.
            let (plugins, errors) =
                kubewasm::loader::load_dir(&runtime, &args.plugins, args.watch.size.max_bytes())
                    .await
                    .with_context(|| format!("loading plugins from {}", args.plugins.display()))?;
            if plugins.is_empty() {
                bail!(
                    "no plugin could be loaded from {} ({} failed)",
                    args.plugins.display(),
                    errors.len()
                );
            }
            health.set_loaded();
        }
        None => {}
    }
    let elected = tokio::select! {
        elected = leader::elect(&leader_args, client, &manager, &health) => elected?,
        _ = &mut signal => {
            tracing::info!("stopped while waiting to become the leader");
            if let Some(watcher) = running {
                // Nothing reconciles yet: stopping the informers and the queues is quick.
                watcher.stop().await;
                leader::shut_down(&manager, &health, None, args.serve.graceful_shutdown_timeout)
                    .await;
            }
            return Ok(());
        }
    };
    let mut leadership = elected;
    if leadership.is_some() {
        leader::set_state(&manager, &health, ReplicaState::Leading);
    }
    gate.open();
    let watcher = match running {
        Some(watcher) => {
            tracing::info!(
                "workers start on the queued keys (warm standby: caches already synced)"
            );
            watcher
        }
        None => {
            let started = tokio::select! {
                started = start_plugins(&runtime, &manager, &args.plugins, &args.watch, None) => started?,
                () = async {
                    match leadership.as_mut() {
                        Some(l) => l.lost().await,
                        None => std::future::pending().await,
                    }
                } => leader::exit_on_lost_leadership(),
            };
            started_plugins(started, &args.plugins, &health, status_page.as_ref(), &gate)?
        }
    };
    let ended = tokio::select! {
        ended = leader::wait_for_end(&mut signal, leadership.as_mut()) => ended,
        () = async {
            match membership.as_mut() {
                Some(m) => m.lost().await,
                None => std::future::pending().await,
            }
        } => {
            // Like a lost leadership: exit before the others can take this replica's keys.
            tracing::error!("ring membership lost; exiting so that only the keys' new owners reconcile them");
            std::process::exit(1)
        }
    };
    match ended {
        Ended::Signal => {}
        Ended::LostLeadership => leader::exit_on_lost_leadership(),
    }
    // No plugin starts or reloads while shutting down.
    watcher.stop().await;
    leader::shut_down(
        &manager,
        &health,
        leadership,
        args.serve.graceful_shutdown_timeout,
    )
    .await;
    // No reconcile runs any more: leaving the ring hands this replica's keys over at once.
    if let Some(m) = membership
        && let Err(e) = m.leave().await
    {
        tracing::warn!("{e}; the membership Lease will expire on its own");
    }
    Ok(())
}

/// After [`start_plugins`]: shows the loads on the status page, fails when no plugin started,
/// and marks the plugins loaded (ready once their caches sync).
fn started_plugins(
    (started, watcher): (usize, PluginWatcher),
    dir: &std::path::Path,
    health: &kubewasm::serve::Health,
    status_page: Option<&kubewasm::status::StatusPage>,
    gate: &ReconcileGate,
) -> anyhow::Result<PluginWatcher> {
    if let Some(page) = status_page {
        page.show_loads(watcher.history());
    }
    if started == 0 {
        bail!("no plugin could be started from {}", dir.display());
    }
    health.set_loaded();
    if gate.is_open() {
        tracing::info!("{started} plugin(s) started; each reconciles once its caches have synced");
    } else {
        tracing::info!(
            "{started} plugin(s) started as a warm standby; their queues fill, and they reconcile once this replica leads"
        );
    }
    Ok(watcher)
}
