//! [`Manager`]: runs loaded plugins against a cluster — for each plugin, the informers its manifest
//! needs (shared with every other plugin), its key mapping, its work queue and its workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kubewasm_controller::{
    ControllerConfig, EventType, GroupKind, InformerFactory, InformerHandle, InformerKey,
    InformerOptions, InitialList, Item, MapBy, Mapper, Mapping, ObjectKey, OwnedKind, QueueStats,
    RateLimit, Via, WatchMapping as ControllerWatch, WorkQueue, run_controller,
};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::cluster::{ClusterBackend, KindCache, api_resource, kind_key, store_index_name};
use crate::runtime::{
    self, Backend, Kind, Manifest, ObjectRef, Plugin, Reason, Request, Verb, WatchMapping,
};

/// Why a plugin could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// A plugin of that name already runs.
    #[error("plugin {0} is already running")]
    AlreadyRunning(String),
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
}

struct Running {
    /// The version that new reconciles use (swapped by hot reload).
    plugin: Arc<ArcSwap<Plugin>>,
    queue: WorkQueue<ObjectKey>,
    informers: Vec<InformerHandle>,
    task: JoinHandle<()>,
    /// Says when the plugin's caches have synced; holds handles, so it is aborted on stop.
    sync_log: JoinHandle<()>,
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

/// The name of a watch mapping in queue reasons: the watched kind.
fn mapping_name(kind: &Kind) -> String {
    if kind.group.is_empty() {
        kind.kind.clone()
    } else {
        format!("{}.{}", kind.kind, kind.group)
    }
}

/// Turns a queued item into the plugin's request.
fn request(manifest: &Manifest, item: &Item<ObjectKey>) -> Request {
    use kubewasm_controller::Reason as Q;
    fn find_kind<'a>(name: &str, mut candidates: impl Iterator<Item = &'a Kind>) -> Option<Kind> {
        candidates
            .find(|k| k.kind == name || mapping_name(k) == name)
            .cloned()
    }
    let reason = match &item.reason {
        Q::Event {
            kind,
            event,
            object,
            via,
        } => match via {
            Via::Own => match event {
                EventType::InitialListItem | EventType::Added => Reason::Created,
                EventType::Modified => Reason::Changed,
                EventType::Deleted => Reason::Deleted,
            },
            Via::Owner => match find_kind(kind, manifest.owns.iter()) {
                Some(k) => Reason::OwnedChanged(object_ref(k, object)),
                None => Reason::Changed,
            },
            Via::Mapping(name) => match find_kind(name, manifest.watches.iter().map(|w| &w.kind)) {
                Some(k) => Reason::WatchedChanged(object_ref(k, object)),
                None => Reason::Changed,
            },
        },
        Q::Retry => Reason::Retry(item.retries),
        Q::RequeueAfter => Reason::Requeue,
        Q::Resync => Reason::Resync,
        Q::Other(_) => Reason::Changed,
    };
    Request {
        namespace: item.key.namespace().map(str::to_owned),
        name: item.key.name.clone(),
        reason,
    }
}

fn object_ref(kind: Kind, key: &ObjectKey) -> ObjectRef {
    ObjectRef {
        kind,
        namespace: key.namespace().map(str::to_owned),
        name: key.name.clone(),
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
            }),
        }
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
        let mut handles = Vec::with_capacity(plan.informers.len());
        let mut caches = HashMap::new();
        for (kind, key, options) in plan.informers {
            let handle = self.inner.factory.acquire(key, options).map_err(|source| {
                ManagerError::Informer {
                    plugin: name.clone(),
                    kind: kind.to_string(),
                    source: Box::new(source),
                }
            })?;
            caches.insert(
                kind_key(&kind),
                KindCache {
                    informer: handle.clone(),
                },
            );
            handles.push(handle);
        }
        let backend: Arc<dyn Backend> = Arc::new(ClusterBackend::new(
            self.inner.client.clone(),
            caches,
            self.inner.config.reporting_instance.clone(),
        ));
        let mapper = Mapper::new(plan.mapping, handles[0].store().clone());
        let queue = WorkQueue::new(self.inner.config.rate_limit.clone());
        let slot = Arc::new(ArcSwap::from_pointee(plugin));
        let controller = ControllerConfig {
            concurrency: manifest.concurrency as usize,
            resync: self.inner.config.resync,
        };
        let reconcile = {
            let slot = Arc::clone(&slot);
            move |item: Item<ObjectKey>| {
                let plugin = slot.load_full();
                let request = request(plugin.manifest(), &item);
                let backend = Arc::clone(&backend);
                async move {
                    match plugin.reconcile(backend, request).await {
                        Ok(runtime::Action::Done) => Ok(kubewasm_controller::Action::done()),
                        Ok(runtime::Action::RequeueAfter(after)) => {
                            Ok(kubewasm_controller::Action::requeue_after(after))
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        };
        let sync_log = {
            let handles = handles.clone();
            let name = name.clone();
            tokio::spawn(async move {
                for h in &handles {
                    if !h.has_synced() {
                        tracing::info!(plugin = %name, informer = %h.key(), "waiting for the cache to sync");
                    }
                    h.wait_synced().await;
                }
                tracing::info!(plugin = %name, "caches synced; reconciling");
            })
        };
        let task = tokio::spawn(run_controller(
            handles.clone(),
            mapper,
            queue.clone(),
            controller,
            reconcile,
        ));
        tracing::info!(plugin = %name, "plugin started; reconciles begin once its caches have synced");
        running.insert(
            name,
            Running {
                plugin: slot,
                queue,
                informers: handles,
                task,
                sync_log,
            },
        );
        Ok(())
    }

    /// Stops a plugin: takes no new keys, lets reconciles in flight finish, releases its informers.
    /// Returns false when no such plugin runs.
    pub async fn stop(&self, name: &str) -> bool {
        let Some(running) = self.inner.running.lock().remove(name) else {
            return false;
        };
        running.sync_log.abort();
        running.queue.shutdown();
        let _ = running.task.await;
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
                queue: r.queue.stats(),
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
            .map(|r| r.plugin.load_full())
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
