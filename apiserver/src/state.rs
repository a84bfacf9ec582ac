//! The state every request handler shares ([`AppState`]): the object store, the registry of served
//! types (swapped whole when CRDs change), the fault injector, the configuration and the shutdown signal.

use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::config::Config;
use crate::faults::Faults;
use crate::registry::Registry;
use crate::store::Store;

/// Shared server state.
pub(crate) struct AppState {
    pub store: Arc<Store>,
    registry: RwLock<Arc<Registry>>,
    /// Bumped on every registry change, so watches of a removed type can end.
    registry_changes: watch::Sender<u64>,
    pub faults: Faults,
    pub config: Config,
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// An empty store serving the built-in types; the server then creates the initial namespaces
    /// (`commit::create_initial_objects`).
    pub(crate) fn new(config: Config, shutdown: watch::Receiver<bool>) -> AppState {
        let store = Arc::new(Store::new(config.history_limit));
        let faults = Faults::new(store.clone());
        AppState {
            store,
            registry: RwLock::new(Arc::new(Registry::builtin())),
            registry_changes: watch::channel(0).0,
            faults,
            config,
            shutdown,
        }
    }

    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().clone()
    }

    /// Replaces the registry (CRD changes).
    pub fn update_registry(&self, f: impl FnOnce(&mut Registry)) {
        let mut guard = self.registry.write();
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
        drop(guard);
        self.registry_changes.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever the registry does.
    pub fn registry_changes(&self) -> watch::Receiver<u64> {
        self.registry_changes.subscribe()
    }
}
