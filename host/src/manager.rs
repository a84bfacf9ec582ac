//! [`Manager`]: runs loaded plugins against a cluster — for each plugin, the informers its manifest
//! needs (shared with every other plugin), its key mapping, its work queue and its workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kubewasm_controller::{
    GroupKind, InformerFactory, InformerHandle, InformerKey, InformerOptions, InitialList, MapBy,
    Mapper, Mapping, OwnedKind, QueueStats, RateLimit, WatchMapping as ControllerWatch, WorkQueue,
};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::cluster::{ClusterBackend, api_resource, store_index_name};
use crate::layer::ReconcileLayers;
pub use crate::plugin_loop::VersionStats;
use crate::plugin_loop::{PluginLoop, Switch, WorkerConfig, mapping_name};
use crate::reconciles::{ReconcileEvent, ReconcileHub};
use crate::runtime::{Backend, Kind, Manifest, Plugin, Verb, WatchMapping};

/// Why a plugin could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// A plugin of that name already runs.
    #[error("plugin {0} is already running")]
    AlreadyRunning(String),
    /// No plugin of that name runs (to update).
    #[error("plugin {0} is not running")]
    NotRunning(String),
    /// An informer the plugin needs could not be started.
    #[error("plugin {plugin}: failed to start the informer for {kind}: {source}")]
    Informer {
        /// The plugin.
        plugin: String,
        /// The kind.
        kind: String,
        /// Why.
        #[source]
        source: Box<kubewasm_controller::InformerError>,
    },
}

/// How the manager runs plugins. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// How informers make their first list.
    pub initial_list: InitialList,
    /// Keep `metadata.managedFields` in cached objects (dropped by default: 20-25% of the bytes).
    pub keep_managed_fields: bool,
    /// Per-key backoff and overall rate limit of every plugin's queue.
    pub rate_limit: RateLimit,
    /// Queue every primary again this often; `None` never.
    pub resync: Option<Duration>,
    /// `reportingInstance` of recorded Events (the pod or host name).
    pub reporting_instance: String,
    /// Hooks put around every reconcile (recording, perturbation); none by default.
    pub layers: ReconcileLayers,
    /// Workers take keys only while it is open (open by default). A warm standby starts its
    /// plugins behind a closed gate, so caches sync and queues fill, and opens it on the Lease.
    pub gate: crate::gate::ReconcileGate,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            initial_list: InitialList::default(),
            keep_managed_fields: false,
            rate_limit: RateLimit::default(),
            resync: None,
            reporting_instance: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| "kubewasm".to_owned()),
            layers: ReconcileLayers::default(),
            gate: crate::gate::ReconcileGate::default(),
        }
    }
}

/// What one running plugin looks like from outside.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Whether every informer it uses has synced (it reconciles only then).
    pub synced: bool,
    /// Its queue's counters.
    pub queue: QueueStats,
    /// The version new reconciles use ([`Plugin::version`]).
    pub version: String,
    /// Why the last attempt to reload it failed (the version above keeps serving), if it did.
    pub last_reload_error: Option<String>,
}

impl From<PluginStatus> for crate::metrics::PluginFigures {
    fn from(s: PluginStatus) -> Self {
        Self {
            name: s.name,
            synced: s.synced,
            queue: s.queue,
        }
    }
}

/// What [`Manager::update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// That version already serves; nothing changed.
    Unchanged,
    /// Same informers and mapping: only the version was swapped.
    Swapped,
    /// The manifest needs other informers, indexes or mapping: those were started and synced,
    /// the version swapped, the informers no longer needed released.
    Rewired {
        /// Whether every primary was queued once (what it reconciles or how it maps changed).
        requeued_all: bool,
    },
}

struct Running {
    plugin_loop: Arc<PluginLoop>,
    /// The informers the served version uses (each also held by its backend).
    informers: Vec<InformerHandle>,
    /// What the informers and mapping were planned from, to tell what a new manifest changes.
    plan_informers: Vec<(Kind, InformerKey, InformerOptions)>,
    mapping: Mapping,
    /// Says when the plugin's caches have synced; holds handles, so it is aborted on stop.
    sync_log: JoinHandle<()>,
    last_reload_error: Option<String>,
}

/// Runs plugins against one cluster. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    factory: InformerFactory,
    config: ManagerConfig,
    running: Mutex<HashMap<String, Running>>,
    metrics: crate::metrics::Metrics,
    reconciles: Arc<ReconcileHub>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field(
                "plugins",
                &self.inner.running.lock().keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The informers and mapping a manifest needs, worked out before anything starts.
struct Plan {
    /// One informer per readable kind; the reconciled kind first.
    informers: Vec<(Kind, InformerKey, InformerOptions)>,
    mapping: Mapping,
}

impl Plan {
    fn new(manifest: &Manifest, config: &ManagerConfig) -> Self {
        let primary = &manifest.reconciles.kind;
        let options = |kind: &Kind| InformerOptions {
            initial_list: config.initial_list,
            keep_managed_fields: config.keep_managed_fields,
            indexes: manifest
                .indexes
                .iter()
                .filter(|i| i.kind.is(&kind.group, &kind.kind))
                .map(|i| (store_index_name(i), i.field.clone()))
                .collect(),
        };
        let mut informers = vec![(
            primary.clone(),
            InformerKey {
                resource: api_resource(primary),
                namespace: manifest.reconciles.namespace.clone(),
                label_selector: manifest
                    .reconciles
                    .label_selector
                    .as_ref()
                    .map(ToString::to_string),
            },
            options(primary),
        )];
        // Every other kind the plugin may read (owned, watched, granted get/list) gets one
        // informer over all its objects, narrowed to the watch's selector when it is only watched.
        for (kind, verbs) in manifest.grants() {
            if kind.is(&primary.group, &primary.kind)
                || !(verbs.contains(Verb::Get)
                    || verbs.contains(Verb::List)
                    || verbs.contains(Verb::Watch))
            {
                continue;
            }
            let only_watched_with = {
                let owned = manifest.owns.iter().any(|o| o.is(&kind.group, &kind.kind));
                let mut selectors = manifest
                    .watches
                    .iter()
                    .filter(|w| w.kind.is(&kind.group, &kind.kind))
                    .map(|w| w.label_selector.as_ref().map(ToString::to_string));
                match (owned, selectors.next(), selectors.next()) {
                    (false, Some(Some(one)), None) => Some(one),
                    _ => None,
                }
            };
            let mut key = InformerKey::all(api_resource(kind));
            key.label_selector = only_watched_with;
            informers.push((kind.clone(), key, options(kind)));
        }
        let group_kind = |k: &Kind| GroupKind::new(k.group.clone(), k.kind.clone());
        let mapping = Mapping {
            reconciles: group_kind(primary),
            cluster_scoped: !primary.namespaced,
            owns: manifest
                .owns
                .iter()
                .map(|k| OwnedKind {
                    kind: group_kind(k),
                    controller_only: true,
                })
                .collect(),
            watches: manifest
                .watches
                .iter()
                .map(|w| ControllerWatch {
                    name: mapping_name(&w.kind).into(),
                    kind: group_kind(&w.kind),
                    map_by: match &w.mapping {
                        WatchMapping::OwnerReferences => MapBy::OwnerReferences,
                        WatchMapping::SameName => MapBy::SameName,
                        WatchMapping::Namespace => MapBy::Namespace,
                        WatchMapping::All => MapBy::All,
                        WatchMapping::IndexLookup { index, field } => MapBy::Index {
                            index: manifest
                                .index(primary, index)
                                .map_or_else(|| index.clone(), store_index_name),
                            value_from: field.clone(),
                        },
                    },
                })
                .collect(),
        };
        Self { informers, mapping }
    }
}

impl Manager {
    /// A manager that runs plugins against the cluster `client` talks to.
    pub fn new(client: kube::Client, config: ManagerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                factory: InformerFactory::new(client.clone()),
                client,
                config,
                running: Mutex::new(HashMap::new()),
                metrics: crate::metrics::Metrics::default(),
                reconciles: Arc::default(),
            }),
        }
    }

    /// Every metric as Prometheus text, with the queue and informer figures taken now.
    pub fn render_metrics(&self) -> String {
        let plugins = self.status().into_iter().map(Into::into).collect();
        self.metrics().render(plugins, self.informers().stats())
    }

    /// Every reconcile of every plugin from now on, as it starts and as it ends (see
    /// [`crate::reconciles`]). Keep reading the receiver, or drop it to unsubscribe.
    pub fn reconciles(&self) -> tokio::sync::mpsc::UnboundedReceiver<ReconcileEvent> {
        self.inner.reconciles.subscribe()
    }

    /// The host's metrics: reconcile outcomes are counted here (see [`crate::metrics`]).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// The shared informers (for metrics and tests).
    pub fn informers(&self) -> &InformerFactory {
        &self.inner.factory
    }

    /// Starts a plugin: acquires the informers its manifest needs (starting those no other plugin
    /// uses yet), and runs its queue and workers once they have all synced.
    ///
    /// # Errors
    /// [`ManagerError`] when a plugin of the same name runs, or an informer cannot start; nothing
    /// is left running then.
    pub fn start(&self, plugin: Plugin) -> Result<(), ManagerError> {
        let name = plugin.name().to_owned();
        let mut running = self.inner.running.lock();
        if running.contains_key(&name) {
            return Err(ManagerError::AlreadyRunning(name));
        }
        let manifest = Arc::clone(plugin.manifest());
        let plan = Plan::new(&manifest, &self.inner.config);
        let (handles, backend) = self.acquire(&name, &plan)?;
        let mapper = Mapper::new(plan.mapping.clone(), handles[0].store().clone());
        let queue = WorkQueue::new(self.inner.config.rate_limit.clone());
        let sync_log = sync_log(&name, &handles, &self.inner.config.gate);
        tracing::info!(
            plugin = %name,
            version = plugin.version(),
            "plugin started; reconciles begin once its caches have synced"
        );
        let plugin_loop = PluginLoop::start(
            plugin,
            backend,
            &handles,
            mapper,
            queue,
            WorkerConfig {
                concurrency: manifest.concurrency as usize,
                resync: self.inner.config.resync,
                metrics: self.inner.metrics.clone(),
                hub: Arc::clone(&self.inner.reconciles),
                layers: self.inner.config.layers.clone(),
                gate: self.inner.config.gate.clone(),
            },
        );
        running.insert(
            name,
            Running {
                plugin_loop: Arc::new(plugin_loop),
                informers: handles,
                plan_informers: plan.informers,
                mapping: plan.mapping,
                sync_log,
                last_reload_error: None,
            },
        );
        Ok(())
    }

    /// The informer handles and the cache-backed backend a plan needs.
    fn acquire(
        &self,
        name: &str,
        plan: &Plan,
    ) -> Result<(Vec<InformerHandle>, Arc<dyn Backend>), ManagerError> {
        let mut handles = Vec::with_capacity(plan.informers.len());
        let mut informers = Vec::new();
        for (kind, key, options) in &plan.informers {
            let handle = self
                .inner
                .factory
                .acquire(key.clone(), options.clone())
                .map_err(|source| ManagerError::Informer {
                    plugin: name.to_owned(),
                    kind: kind.to_string(),
                    source: Box::new(source),
                })?;
            informers.push((kind, handle.clone()));
            handles.push(handle);
        }
        let backend: Arc<dyn Backend> = Arc::new(ClusterBackend::new(
            self.inner.client.clone(),
            informers,
            self.inner.config.reporting_instance.clone(),
        ));
        Ok((handles, backend))
    }

    /// Hot reload: makes `plugin` the version of the running plugin of the same name that new
    /// reconciles use. Reconciles in flight finish on the old version; the queue (and every key
    /// in it), the caches and the workers keep running.
    ///
    /// When the manifest needs other informers, indexes or mapping, those are acquired first and
    /// this waits for them to sync before the new version serves (cancel it, e.g. with a
    /// timeout, to give up: the old version keeps serving and the new informers are released);
    /// informers no longer needed are released once reconciles in flight on the old version end;
    /// and when what the plugin reconciles or how it maps watched objects changed, every primary
    /// is queued once. A change of `concurrency` takes effect at the next start.
    ///
    /// # Errors
    /// [`ManagerError::NotRunning`] when no plugin of that name runs; [`ManagerError::Informer`]
    /// when a new informer cannot start (the old version keeps serving).
    pub async fn update(&self, plugin: Plugin) -> Result<Updated, ManagerError> {
        let name = plugin.name().to_owned();
        let (plugin_loop, old_informers, old_mapping) = {
            let running = self.inner.running.lock();
            let r = running
                .get(&name)
                .ok_or_else(|| ManagerError::NotRunning(name.clone()))?;
            (
                Arc::clone(&r.plugin_loop),
                r.plan_informers.clone(),
                r.mapping.clone(),
            )
        };
        let old = plugin_loop.plugin();
        if old.version() == plugin.version() {
            self.clear_reload_error(&name);
            return Ok(Updated::Unchanged);
        }
        let manifest = Arc::clone(plugin.manifest());
        if manifest.concurrency != old.manifest().concurrency {
            tracing::warn!(
                plugin = %name,
                "the new version asks for concurrency {} (was {}); it takes effect when the host restarts",
                manifest.concurrency,
                old.manifest().concurrency
            );
        }
        let plan = Plan::new(&manifest, &self.inner.config);
        let version = plugin.version().to_owned();
        if plan.informers == old_informers && plan.mapping == old_mapping {
            let backend = plugin_loop.backend();
            plugin_loop.swap(plugin, backend, None);
            self.clear_reload_error(&name);
            tracing::info!(plugin = %name, from = old.version(), to = %version, "plugin version swapped");
            return Ok(Updated::Swapped);
        }
        let (handles, backend) = self.acquire(&name, &plan)?;
        for h in &handles {
            if !h.has_synced() {
                tracing::info!(plugin = %name, informer = %h.key(), "new version: waiting for the cache to sync");
            }
            h.wait_synced().await;
        }
        let primaries = handles[0].store().clone();
        let switch = Switch {
            events: handles
                .iter()
                .map(InformerHandle::subscribe_changes)
                .collect(),
            mapper: Mapper::new(plan.mapping.clone(), primaries.clone()),
            caches: crate::freshness::Caches::of(&handles),
        };
        let requeue_all = plan.mapping != old_mapping;
        let mut running = self.inner.running.lock();
        let Some(r) = running
            .get_mut(&name)
            .filter(|r| Arc::ptr_eq(&r.plugin_loop, &plugin_loop))
        else {
            // Stopped (or restarted) while the new caches synced: nothing to swap into.
            return Err(ManagerError::NotRunning(name));
        };
        plugin_loop.swap(plugin, backend, Some(switch));
        let queued = if requeue_all {
            plugin_loop.queue_all(&primaries, "plugin reloaded")
        } else {
            0
        };
        r.sync_log.abort();
        r.sync_log = sync_log(&name, &handles, &self.inner.config.gate);
        // The old handles are released here; the old backend holds its own until reconciles
        // in flight on the old version end.
        r.informers = handles;
        r.plan_informers = plan.informers;
        r.mapping = plan.mapping;
        r.last_reload_error = None;
        drop(running);
        tracing::info!(
            plugin = %name,
            from = old.version(),
            to = %version,
            queued,
            "plugin version swapped with new informers and mapping"
        );
        Ok(Updated::Rewired {
            requeued_all: requeue_all,
        })
    }

    fn clear_reload_error(&self, name: &str) {
        if let Some(r) = self.inner.running.lock().get_mut(name) {
            r.last_reload_error = None;
        }
    }

    /// Records why reloading `name` failed (shown by [`Manager::status`]); the served version is
    /// unaffected. Cleared by the next successful [`Manager::update`].
    pub fn set_reload_error(&self, name: &str, error: String) {
        if let Some(r) = self.inner.running.lock().get_mut(name) {
            r.last_reload_error = Some(error);
        }
    }

    /// Every version of `name` served since it started, oldest first, with its reconcile
    /// outcomes; the last one serves. Empty when no such plugin runs.
    pub fn versions(&self, name: &str) -> Vec<VersionStats> {
        let plugin_loop = self
            .inner
            .running
            .lock()
            .get(name)
            .map(|r| Arc::clone(&r.plugin_loop));
        plugin_loop.map(|p| p.versions()).unwrap_or_default()
    }

    /// Stops a plugin: takes no new keys, lets reconciles in flight finish, releases its informers.
    /// Returns false when no such plugin runs.
    pub async fn stop(&self, name: &str) -> bool {
        let Some(mut running) = self.inner.running.lock().remove(name) else {
            return false;
        };
        running.sync_log.abort();
        // The aborted task holds clones of the informer handles until its future is dropped,
        // which tokio does later on a worker thread: wait for it, so the informers no other
        // plugin uses are released by the time `stop` returns.
        let _ = (&mut running.sync_log).await;
        running.plugin_loop.stop().await;
        drop(running);
        tracing::info!(plugin = %name, "plugin stopped");
        true
    }

    /// Stops every plugin (see [`Manager::stop`]).
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.inner.running.lock().keys().cloned().collect();
        for name in names {
            self.stop(&name).await;
        }
    }

    /// Every running plugin, by name.
    pub fn status(&self) -> Vec<PluginStatus> {
        let mut status: Vec<PluginStatus> = self
            .inner
            .running
            .lock()
            .iter()
            .map(|(name, r)| PluginStatus {
                name: name.clone(),
                synced: r.informers.iter().all(InformerHandle::has_synced),
                queue: r.plugin_loop.queue.stats(),
                version: r.plugin_loop.plugin().version().to_owned(),
                last_reload_error: r.last_reload_error.clone(),
            })
            .collect();
        status.sort_by(|a, b| a.name.cmp(&b.name));
        status
    }

    /// The version of `name` that new reconciles use.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.inner
            .running
            .lock()
            .get(name)
            .map(|r| r.plugin_loop.plugin())
    }

    /// Waits until every running plugin's informers have synced.
    pub async fn wait_synced(&self) {
        let handles: Vec<InformerHandle> = self
            .inner
            .running
            .lock()
            .values()
            .flat_map(|r| r.informers.iter().cloned())
            .collect();
        for h in &handles {
            h.wait_synced().await;
        }
    }
}

/// Logs once the plugin's caches have synced (and whether it reconciles or its workers wait for
/// the `gate`).
fn sync_log(
    name: &str,
    handles: &[InformerHandle],
    gate: &crate::gate::ReconcileGate,
) -> JoinHandle<()> {
    let handles = handles.to_vec();
    let name = name.to_owned();
    let gate = gate.clone();
    tokio::spawn(async move {
        for h in &handles {
            if !h.has_synced() {
                tracing::info!(plugin = %name, informer = %h.key(), "waiting for the cache to sync");
            }
            h.wait_synced().await;
        }
        if gate.is_open() {
            tracing::info!(plugin = %name, "caches synced; reconciling");
        } else {
            tracing::info!(
                plugin = %name,
                "caches synced; keys are queued and reconciled once this replica leads"
            );
        }
    })
}
