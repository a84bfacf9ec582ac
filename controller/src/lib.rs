//! Shared informers, indexed stores and rate-limited work queues: the native half of the kubewasm host,
//! modelled on client-go's SharedInformer / Indexer / workqueue.
//!
//! Where to start:
//! * [`WorkQueue`] (`queue.rs`) and [`run_workers`] (`worker.rs`): per-plugin queues with dedup,
//!   no concurrent key, backoff + token bucket, requeue-after and priorities.
//! * [`Store`] (`store.rs`): the cache of one informer, objects as ready-to-send JSON [`Entry`]s with
//!   namespace, label, owner and declared field indexes.
//! * [`LabelSelector`] (`selector.rs`) and [`FieldPath`] (`field_path.rs`): the query languages.
//! * [`InformerFactory`] (`informer.rs`): one list+watch per (kind, namespace, label selector), shared
//!   and reference counted, with a `HasSynced` gate and event subscriptions.
//! * [`Mapper`] (`mapping.rs`): turns [`ObjectEvent`]s into the keys a plugin reconciles.

mod entry;
mod event;
mod field_path;
mod informer;
mod key;
mod mapping;
mod queue;
mod selector;
pub mod stats;
mod store;
mod worker;

pub use entry::{Entry, Error as EntryError, OwnerRef};
pub use event::{EventType, ObjectEvent};
pub use field_path::{Error as FieldPathError, FieldPath};
pub use informer::{
    Error as InformerError, EventReceiver, InformerFactory, InformerHandle, InformerKey,
    InformerOptions, InformerStats, InitialList, wait_for_sync,
};
pub use key::ObjectKey;
pub use mapping::{GroupKind, MapBy, MappedKey, Mapper, Mapping, OwnedKind, WatchMapping, resync};
pub use queue::{Item, Priority, QueueStats, RateLimit, Reason, Via, WorkQueue};
pub use selector::{Error as SelectorError, LabelSelector};
pub use store::{Change, Error as StoreError, Store, StoreStats};
pub use worker::{Action, run_workers};
