//! Shared informers, indexed stores and rate-limited work queues: the native half of the kubewasm host,
//! modelled on client-go's SharedInformer / Indexer / workqueue.
//!
//! Where to start:
//! * [`WorkQueue`] (`queue.rs`) and [`run_workers`] (`worker.rs`): per-plugin queues with dedup,
//!   no concurrent key, backoff + token bucket, requeue-after and priorities.
//! * [`Store`] (`store.rs`): the cache of one informer, objects as ready-to-send JSON [`Entry`]s with
//!   namespace, label, owner and declared field indexes.
//! * [`LabelSelector`] and [`FieldPath`]: the query languages, from `kubewasm-core` (shared with
//!   the host's runtime, the embedded API server and the SDK's fake host).
//! * [`InformerFactory`] (`informer.rs`): one list+watch per (kind, namespace, label selector), shared
//!   and reference counted, with a `HasSynced` gate and event subscriptions.
//! * [`Mapper`] (`mapping.rs`): turns [`ObjectEvent`]s into the keys a plugin reconciles.
//!
//! Wiring one plugin (the host does this per plugin from its manifest):
//!
//! ```no_run
//! # async fn wire(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use kube::api::ApiResource;
//! use kube::core::GroupVersionKind;
//! use kubewasm_controller::*;
//!
//! let factory = InformerFactory::new(client); // one per API client, shared by every plugin
//! let deployments = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", "Deployment"), "deployments");
//! let replicasets = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", "ReplicaSet"), "replicasets");
//! let primary = factory.acquire(InformerKey::all(deployments), InformerOptions::default())?;
//! let owned = factory.acquire(InformerKey::all(replicasets), InformerOptions::default())?;
//! let mapper = Mapper::new(
//!     Mapping {
//!         reconciles: GroupKind::new("apps", "Deployment"),
//!         cluster_scoped: false,
//!         owns: vec![OwnedKind { kind: GroupKind::new("apps", "ReplicaSet"), controller_only: true }],
//!         watches: vec![],
//!     },
//!     primary.store().clone(),
//! );
//! let store = primary.store().clone();
//! let queue = WorkQueue::new(RateLimit::default());
//! // Subscribe first, so the initial lists' keys are queued (at low priority) while they arrive;
//! // work only once every informer has synced (the HasSynced gate): no reconcile reads a
//! // partial cache. (The host's per-plugin run loop does this, plus hot swaps and metrics.)
//! let events: futures::stream::SelectAll<_> = [&primary, &owned].iter().map(|h| h.subscribe()).collect();
//! tokio::spawn(mapper.run(events, queue.clone()));
//! wait_for_sync(&[&primary, &owned]).await;
//! run_workers(queue, 2, move |item| {
//!     // Reads come from the cache as ready-to-send JSON bytes.
//!     let json = store.get(item.key.namespace(), &item.key.name).map(|e| e.json().clone());
//!     async move {
//!         let _ = json; // hand to the plugin...
//!         Ok::<_, String>(Action::done())
//!     }
//! })
//! .await;
//! # Ok(())
//! # }
//! ```

mod entry;
mod event;
mod informer;
mod mapping;
mod queue;
mod raw;
pub mod stats;
mod store;
#[cfg(test)]
mod testing;
mod worker;

pub use entry::{Entry, Error as EntryError, OwnerRef};
pub use event::{EventType, ObjectEvent};
pub use informer::{
    Error as InformerError, EventReceiver, InformerFactory, InformerHandle, InformerKey,
    InformerOptions, InformerStats, InitialList, Progress, parse_resource_version, wait_for_sync,
};
pub use kubewasm_core::{
    FieldPath, FieldPathError, LabelSelector, LabelSource, Labels, ObjectKey, Requirement,
    SelectorError,
};
pub use mapping::{GroupKind, MapBy, MappedKey, Mapper, Mapping, OwnedKind, WatchMapping, resync};
pub use queue::{Item, Priority, QueueStats, RateLimit, Reason, Via, WorkQueue};
pub use raw::RawObject;
pub use store::{Cacheable, Change, Error as StoreError, Prepared, Store, StoreStats};
pub use worker::{Action, run_workers};
