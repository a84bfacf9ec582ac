//! The native peer: the bench-peer-ops plugin's logic as an ordinary kube-rs controller
//! (kube-runtime `Controller` + reflector `Store`), and the `kubewasm-bench peer` process that
//! runs such controllers for the memory and startup figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::probe::Probe;

/// The annotation the realistic reconcile sets (the plugin sets the same one).
pub const ANNOTATION: &str = "bench.kubewasm.io/reconciled";

/// What the peer's reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The object has no name (the API server always sets one).
    #[error("the ConfigMap has no name")]
    NoName,
    /// The patch failed.
    #[error("failed to patch ConfigMap {key}: {source}")]
    Patch {
        /// `namespace/name`.
        key: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The peer process could not start.
    #[error("the native peer failed to start: {0}")]
    Start(String),
}

struct Context {
    client: kube::Client,
    store: Store<ConfigMap>,
    probe: Arc<Probe>,
}

/// A native controller of ConfigMaps running in this process, with its own watch.
pub struct NativeController {
    task: JoinHandle<()>,
    store: Store<ConfigMap>,
}

impl NativeController {
    /// Starts a controller over every ConfigMap, reconciling up to `concurrency` keys at once,
    /// reporting each reconcile to `probe`.
    pub fn spawn(client: kube::Client, probe: Arc<Probe>, concurrency: u16) -> Self {
        let api: Api<ConfigMap> = Api::all(client.clone());
        let controller = Controller::new(api, watcher::Config::default())
            .with_config(ControllerConfig::default().concurrency(concurrency));
        let store = controller.store();
        let context = Arc::new(Context {
            client,
            store: store.clone(),
            probe,
        });
        let task = tokio::spawn(
            controller
                .run(reconcile, error_policy, context)
                .for_each(|_| async {}),
        );
        Self { task, store }
    }

    /// Waits until the controller's cache holds at least `objects` ConfigMaps (polled: the
    /// reflector's own readiness signal did not fire for Controller stores in our runs).
    ///
    /// # Errors
    /// [`PeerError::Start`] after 5 minutes.
    pub async fn ready(&self, objects: usize) -> Result<(), PeerError> {
        wait_for_len(|| self.store.len(), objects, "ConfigMap").await
    }

    /// Stops the controller (drops its watch).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The plugin's logic: `patch-*` ConfigMaps get the annotation once; anything else is a no-op.
async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, PeerError> {
    let name = cm.metadata.name.as_deref().ok_or(PeerError::NoName)?;
    let namespace = cm.metadata.namespace.as_deref().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    ctx.probe.started(&key);
    let result = realistic(&ctx, namespace, name, &key).await;
    ctx.probe.finished(&key);
    result.map(|()| Action::await_change())
}

async fn realistic(ctx: &Context, namespace: &str, name: &str, key: &str) -> Result<(), PeerError> {
    if !name.starts_with("patch-") {
        return Ok(());
    }
    // As the plugin does: read the object from the cache (here already decoded).
    let Some(cm) = ctx.store.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(());
    };
    let done = cm
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION));
    if !done {
        let patch = Patch::Merge(json!({"metadata": {"annotations": {ANNOTATION: "true"}}}));
        Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
            .patch(name, &PatchParams::default(), &patch)
            .await
            .map_err(|source| PeerError::Patch {
                key: key.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// Retries soon, as kubewasm's queue does (5 ms backoff).
fn error_policy(_: Arc<ConfigMap>, _: &PeerError, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(5))
}

/// Polls `len` until it reaches `objects`.
async fn wait_for_len(
    len: impl Fn() -> usize,
    objects: usize,
    kind: &str,
) -> Result<(), PeerError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while len() < objects {
        if std::time::Instant::now() > deadline {
            return Err(PeerError::Start(format!(
                "the {kind} cache holds {} of {objects} objects after 5 minutes",
                len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// A reflector caching every Pod, as a native controller that reads Pods keeps one.
pub fn pod_reflector(client: kube::Client) -> (Store<Pod>, JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client), watcher::Config::default()),
    )
    .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    (reader, task)
}

/// `kubewasm-bench peer`: the native peer as its own process, so its memory can be read.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The kubeconfig of the cluster to watch.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// How many ConfigMap controllers to run (each with its own watch, as kube-rs does).
    #[arg(long, default_value_t = 1)]
    pub controllers: usize,
    /// Ready once the Pod cache holds this many Pods.
    #[arg(long, default_value_t = 0)]
    pub pods: usize,
    /// Ready once every controller's cache holds this many ConfigMaps.
    #[arg(long, default_value_t = 0)]
    pub config_maps: usize,
}

/// Runs the peer process: a reflector over every Pod and `controllers` no-op ConfigMap
/// controllers; prints `ready` on stdout once every cache has its initial list, then runs until
/// killed.
///
/// # Errors
/// [`PeerError::Start`] when the kubeconfig cannot be used.
pub async fn run_process(args: PeerArgs) -> Result<(), PeerError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .map_err(|e| PeerError::Start(format!("reading {}: {e}", args.kubeconfig.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| PeerError::Start(e.to_string()))?;
    let client = kube::Client::try_from(config).map_err(|e| PeerError::Start(e.to_string()))?;
    let probe = Arc::new(Probe::default());
    let (pods, _pod_task) = pod_reflector(client.clone());
    let controllers: Vec<NativeController> = (0..args.controllers)
        .map(|_| NativeController::spawn(client.clone(), Arc::clone(&probe), 2))
        .collect();
    wait_for_len(|| pods.len(), args.pods, "Pod").await?;
    for c in &controllers {
        c.ready(args.config_maps).await?;
    }
    println!("ready {}", pods.len());
    std::future::pending::<()>().await;
    Ok(())
}
