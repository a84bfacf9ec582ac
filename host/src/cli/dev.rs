//! `kubewasm dev`: the embedded API server and the host in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::Manager;
use kubewasm::runtime::Runtime;

use super::apiserver;
use super::common::{
    CacheArgs, LogArgs, PolicyArgs, RuntimeArgs, WatchArgs, shutdown_signal, start_plugins,
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

    /// Address of the live status page (plugins, reloads, reconciles; its URL is in the banner);
    /// port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub status_addr: SocketAddr,

    /// Do not serve the status page.
    #[arg(long)]
    pub no_status: bool,

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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A bad policy file stops the start before the API server starts.
    let mut runtime_config = args.policy.apply(args.runtime.config())?;
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
    // WIT 0.2 plugins get their kinds' plurals and scope from the cluster's discovery.
    runtime_config.resolver = Some(std::sync::Arc::new(kubewasm::DiscoveryResolver::new(
        client.clone(),
    )));
    let runtime = Runtime::new(runtime_config).context("starting the plugin runtime")?;
    let (manager_config, recorder) = args.record.apply(args.cache.config())?;
    let manager = Manager::new(client.clone(), manager_config);
    // Subscribed before the plugins start: with their CRDs installed as they load, they may
    // reconcile before the banner, and those lines are not lost.
    let reconciles = tokio::spawn(print_reconciles(manager.reconciles()));
    // The status page subscribes now too, for the same reason.
    let status_page = (!args.no_status).then(|| {
        kubewasm::status::StatusPage::new(
            manager.clone(),
            kubewasm::status::DEFAULT_RECENT,
            recorder.map(|r| r as std::sync::Arc<dyn kubewasm::layer::RecordLookup>),
        )
    });
    let status_url = match &status_page {
        Some(page) => Some(format!(
            "http://{}/",
            kubewasm::status::serve(args.status_addr, page.clone()).await?
        )),
        None => None,
    };
    // The CRDs each plugin ships are served before it starts (and a new version's before it
    // serves), so its informers find its kinds: no `kubectl apply` of a CRD first.
    let (started, watcher) = start_plugins(
        &runtime,
        &manager,
        &args.plugins,
        &args.watch,
        Some(install_crds(client.clone())),
    )
    .await?;
    if let Some(page) = &status_page {
        page.show_loads(watcher.history());
    }
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
    if let Some(url) = &status_url {
        println!("  status page: {url}   (plugins, reloads, reconciles; live)");
    }
    println!();
    let loaded: Vec<(String, String)> = status
        .iter()
        .map(|s| {
            let kind = manager
                .plugin(&s.name)
                .map(|p| p.manifest().reconciles.kind.kind.clone())
                .unwrap_or_default();
            (s.name.clone(), kind)
        })
        .collect();
    print!(
        "{}",
        try_it(&loaded, &kubeconfig.to_string(), !args.no_simulate)
    );
    println!("Press Ctrl-C to stop.");
    shutdown_signal().await;
    watcher.stop().await;
    printer.abort();
    reconciles.abort();
    manager.shutdown().await;
    server.shutdown().await;
    Ok(())
}

/// How long installing one plugin's CRDs may take before dev gives up on them (the plugin starts
/// anyway).
const CRD_INSTALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The hook that installs the CRDs a plugin ships into dev's API server before the plugin (or
/// its new version) serves, saying what it did on stdout. A CRD the server refuses is a line
/// that says why; the plugin starts regardless (its kinds cannot be listed until they are served).
fn install_crds(client: kube::Client) -> kubewasm::reload::BeforeServe {
    std::sync::Arc::new(move |plugin: &kubewasm::runtime::Plugin| {
        let client = client.clone();
        let name = plugin.name().to_owned();
        let crds = plugin.custom_resources().to_vec();
        Box::pin(async move {
            for crd in &crds {
                let installed =
                    tokio::time::timeout(CRD_INSTALL_TIMEOUT, install_crd(&client, crd)).await;
                let line = crd_line(
                    &name,
                    crd,
                    installed.unwrap_or_else(|_| {
                        Err(format!(
                            "the API server did not answer within {CRD_INSTALL_TIMEOUT:?}"
                        ))
                    }),
                );
                if let Some(line) = line {
                    println!("{line}");
                }
            }
        })
    })
}

/// What installing one CRD did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installed {
    Created,
    Updated,
    /// Served already with the same spec.
    Unchanged,
}

/// Dev's line for one CRD of plugin `plugin` (none when nothing changed).
fn crd_line(
    plugin: &str,
    crd: &serde_json::Value,
    result: Result<Installed, String>,
) -> Option<String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("(unnamed)");
    match result {
        Ok(Installed::Created) => Some(format!("installed CRD {name} from plugin {plugin}")),
        Ok(Installed::Updated) => Some(format!("updated CRD {name} from plugin {plugin}")),
        Ok(Installed::Unchanged) => None,
        Err(why) => Some(format!(
            "CRD {name} from plugin {plugin} not installed: {why} (the plugin runs; its kinds \
             cannot be listed until they are served)"
        )),
    }
}

/// Creates `crd`, or replaces the served one when its spec differs (a server-side dry run tells,
/// so the server's defaults do not count as a difference); the served object's resourceVersion,
/// labels and annotations are kept.
async fn install_crd(client: &kube::Client, crd: &serde_json::Value) -> Result<Installed, String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, ApiResource, DynamicObject, PostParams};
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<CustomResourceDefinition>(&()),
    );
    let mut object: DynamicObject =
        serde_json::from_value(crd.clone()).map_err(|e| format!("not a CRD object: {e}"))?;
    let name = object.metadata.name.clone().unwrap_or_default();
    let Some(served) = api.get_opt(&name).await.map_err(api_error)? else {
        api.create(&PostParams::default(), &object)
            .await
            .map_err(api_error)?;
        return Ok(Installed::Created);
    };
    let meta = &mut object.metadata;
    meta.resource_version
        .clone_from(&served.metadata.resource_version);
    for (mine, theirs) in [
        (&mut meta.labels, &served.metadata.labels),
        (&mut meta.annotations, &served.metadata.annotations),
    ] {
        if let Some(theirs) = theirs {
            let mut merged = theirs.clone();
            merged.extend(mine.take().unwrap_or_default());
            *mine = Some(merged);
        }
    }
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let would_be = api
        .replace(&name, &dry_run, &object)
        .await
        .map_err(api_error)?;
    if would_be.data.get("spec") == served.data.get("spec") {
        return Ok(Installed::Unchanged);
    }
    api.replace(&name, &PostParams::default(), &object)
        .await
        .map_err(api_error)?;
    Ok(Installed::Updated)
}

/// The API server's own message for a refused request, else the client's error.
fn api_error(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message,
        e => e.to_string(),
    }
}

/// kubectl commands that show the example plugins at work, by plugin name (the file stem);
/// with simulation on, the last tuple holds those that need the simulated workloads.
type Example = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const EXAMPLES: &[Example] = &[
    (
        "rediscluster",
        &[
            "kubectl apply -f examples/rediscluster/redis.yaml  # its CRD came with the plugin",
            "kubectl get redisclusters,statefulsets,services   # the plugin creates both for the RedisCluster",
        ],
        &[
            "kubectl rollout status statefulset cache          # the simulated Pods become Ready",
            "kubectl get rediscluster cache                    # Running, 3 ready",
        ],
    ),
    (
        "scale-schedule",
        &[
            "kubectl apply -f examples/scale-schedule/web.yaml",
            "kubectl apply -f examples/scale-schedule/nightly.yaml  # its CRD came with the plugin",
            "kubectl get scaleschedules,deployments             # nightly Scaled, web at 5 replicas",
        ],
        &["kubectl rollout status deployment web              # the simulated Pods become Ready"],
    ),
    (
        "hello",
        &[
            "kubectl create configmap demo --from-literal=a=1",
            "kubectl get configmap demo -o jsonpath='{.metadata.annotations}'; echo   # stamped by hello",
        ],
        &[],
    ),
    (
        "node-pods",
        &[
            "kubectl apply -f examples/node-pods/cluster.yaml",
            "kubectl get configmap -n kube-system -l app.kubernetes.io/managed-by=kubewasm-node-pods",
        ],
        &[],
    ),
    (
        "configmap-mirror",
        &[
            "kubectl apply -f examples/configmap-mirror/namespaces.yaml",
            "kubectl apply -f examples/configmap-mirror/source.yaml",
            "kubectl get configmap -A -l app.kubernetes.io/managed-by=kubewasm-configmap-mirror",
        ],
        &[],
    ),
    (
        "labeler",
        &[
            "kubectl apply -f plugins/python/labeler/demo.yaml",
            "kubectl -n demo get configmaps --show-labels   # labels copied by the Python plugin",
        ],
        &[],
    ),
];

/// The banner's "Try it" section: kubectl commands for the plugins that run (`(name, reconciled
/// kind)`), the examples' own for the example plugins, a `kubectl get` of the reconciled kind for
/// any other; nothing when no plugin runs.
fn try_it(loaded: &[(String, String)], kubeconfig: &str, simulate: bool) -> String {
    use std::fmt::Write as _;
    if loaded.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(out, "Try it (see examples/README.md for every example):");
    let _ = writeln!(out, "  export KUBECONFIG={kubeconfig}");
    for (name, kind) in loaded {
        match EXAMPLES.iter().find(|(example, _, _)| example == name) {
            Some((_, commands, simulated)) => {
                let simulated = if simulate { *simulated } else { &[] };
                for command in commands.iter().chain(simulated) {
                    let _ = writeln!(out, "  {command}");
                }
            }
            None if !kind.is_empty() => {
                let _ = writeln!(
                    out,
                    "  kubectl get {}   # what plugin {name} reconciles",
                    kind.to_lowercase()
                );
            }
            None => {}
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(names: &[(&str, &str)]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
            .collect()
    }

    #[test]
    fn the_banner_suggests_only_the_plugins_that_run() {
        let text = try_it(&loaded(&[("hello", "ConfigMap")]), "k", true);
        assert!(text.contains("kubectl create configmap demo"), "{text}");
        assert!(!text.contains("rediscluster"), "{text}");
        let text = try_it(
            &loaded(&[("rediscluster", "RedisCluster"), ("mine", "Secret")]),
            "k",
            false,
        );
        assert!(text.contains("examples/rediscluster/redis.yaml"), "{text}");
        assert!(
            !text.contains("rollout status"),
            "no simulated Pods to wait for: {text}"
        );
        assert!(
            text.contains("kubectl get secret   # what plugin mine reconciles"),
            "{text}"
        );
        assert!(!text.contains("hello"), "{text}");
        assert_eq!(
            try_it(&[], "k", true),
            "",
            "nothing to try without a plugin"
        );
        let text = try_it(&loaded(&[("scale-schedule", "ScaleSchedule")]), "k", true);
        assert!(
            text.contains("kubectl apply -f examples/scale-schedule/nightly.yaml"),
            "{text}"
        );
        assert!(text.contains("rollout status deployment web"), "{text}");
    }

    #[test]
    fn each_crd_is_one_line_naming_it_and_its_plugin_and_an_unchanged_one_is_silent() {
        let crd = serde_json::json!({"metadata": {"name": "scaleschedules.demo.kubewasm.dev"}});
        let line = |result| crd_line("scale-schedule", &crd, result);
        assert_eq!(
            line(Ok(Installed::Created)).as_deref(),
            Some("installed CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule")
        );
        assert_eq!(
            line(Ok(Installed::Updated)).as_deref(),
            Some("updated CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule")
        );
        assert_eq!(line(Ok(Installed::Unchanged)), None);
        let refused = line(Err("spec.scope: Required value".into())).expect("a line");
        assert!(
            refused.starts_with(
                "CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule not installed: \
                 spec.scope: Required value"
            ),
            "{refused}"
        );
    }
}
