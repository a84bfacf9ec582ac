//! [`KeptInstances`]: the idle instances of a plugin whose manifest sets `reuse-instances`,
//! each with its store, kept between reconciles so that a reconcile skips instantiation.
//!
//! A reconcile takes one (or instantiates a fresh one when none is idle), runs on it, and puts
//! it back only when it ended without a fault; a trap, the deadline or the memory cap drops it
//! with its store. The pool belongs to one loaded [`Plugin`](super::Plugin): a new version (a
//! reload) has its own, empty, so it never runs on an old version's instance. At most
//! `concurrency` (the manifest's) are kept: as many as can run at once. With the pooling
//! allocator an idle kept store still holds its slot, so when an instantiation fails every
//! plugin's idle instances are released and it is tried once more
//! ([`Runtime::release_kept`](super::Runtime::release_kept)).

use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::Store;

use super::backend::Backend;
use super::bindings::{v1, v2};
use super::memory::MemoryBackend;
use super::state::HostState;

/// An instance of the plugin's component, typed by its WIT version.
pub(crate) enum Instance {
    V1(v1::Plugin),
    V2(v2::Plugin),
}

/// A store and the instance living in it.
pub(crate) struct Kept {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: Instance,
}

/// The idle kept instances of one plugin version.
pub(crate) struct KeptInstances {
    idle: Mutex<Vec<Kept>>,
    cap: usize,
    /// What an idle store's backend is: empty, so the last reconcile's is not held.
    detached: Arc<dyn Backend>,
}

impl KeptInstances {
    /// A pool keeping at most `cap` idle instances (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            cap: cap.max(1),
            detached: Arc::new(MemoryBackend::new()),
        }
    }

    /// An idle instance readied for a reconcile with `backend` (see [`HostState::begin`]), or
    /// `None` when every kept instance is busy (or none was kept yet).
    pub(crate) fn take(&self, backend: Arc<dyn Backend>) -> Option<Kept> {
        let mut kept = self.idle.lock().pop()?;
        kept.store.data_mut().begin(backend);
        Some(kept)
    }

    /// Drops every idle instance (their stores give their pool slots back); returns how many.
    pub(crate) fn clear(&self) -> usize {
        let idle = std::mem::take(&mut *self.idle.lock());
        idle.len()
    }

    /// Keeps `kept` for a later reconcile, unless `cap` are already idle (then it is dropped).
    /// Only for an instance whose reconcile ended without a fault.
    pub(crate) fn put(&self, mut kept: Kept) {
        kept.store.data_mut().end(Arc::clone(&self.detached));
        let mut idle = self.idle.lock();
        if idle.len() < self.cap {
            idle.push(kept);
        }
    }
}
