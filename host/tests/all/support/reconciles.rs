//! [`Reconciles`]: every reconcile a [`Manager`] runs, collected from its typed stream
//! ([`Manager::reconciles`]) as it happens, for tests that check which version ran which key,
//! when, and whether two reconciles of one key ever overlapped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kubewasm::Manager;
use kubewasm::reconciles::{ReconcileEvent, ReconcileStarted, Reconciled};
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Default)]
struct Seen {
    /// Every reconcile that started, in order.
    started: Vec<Arc<ReconcileStarted>>,
    /// Every reconcile that ended, in order.
    finished: Vec<Arc<Reconciled>>,
    /// Reconciles in flight per (plugin, key).
    open: HashMap<(String, String), usize>,
    /// (plugin, key) of every reconcile that started while another of the same key ran.
    overlaps: Vec<(String, String)>,
}

impl Seen {
    fn record(&mut self, event: ReconcileEvent) {
        match event {
            ReconcileEvent::Started(s) => {
                let id = (s.plugin.to_string(), s.key.to_string());
                let open = self.open.entry(id.clone()).or_default();
                *open += 1;
                if *open > 1 {
                    self.overlaps.push(id);
                }
                self.started.push(s);
            }
            ReconcileEvent::Finished(r) => {
                let id = (r.started.plugin.to_string(), r.started.key.to_string());
                if let Some(open) = self.open.get_mut(&id) {
                    *open -= 1;
                }
                self.finished.push(r);
            }
        }
    }
}

/// What a manager has reconciled since [`Reconciles::watch`]. Every query first takes in what
/// the stream holds, so anything published before the query is seen: a reconcile is published
/// as started before the plugin runs, so once a test sees a plugin's write, it sees its start.
pub struct Reconciles {
    events: Mutex<UnboundedReceiver<ReconcileEvent>>,
    seen: Mutex<Seen>,
}

impl Reconciles {
    /// Starts collecting `manager`'s reconciles.
    pub fn watch(manager: &Manager) -> Self {
        Self {
            events: Mutex::new(manager.reconciles()),
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> parking_lot::MutexGuard<'_, Seen> {
        let mut events = self.events.lock();
        let mut seen = self.seen.lock();
        while let Ok(event) = events.try_recv() {
            seen.record(event);
        }
        seen
    }

    /// Start times of the reconciles of `plugin` on `key` (`namespace/name`).
    pub fn attempts(&self, plugin: &str, key: &str) -> Vec<Instant> {
        self.seen()
            .started
            .iter()
            .filter(|s| &*s.plugin == plugin && s.key.to_string() == key)
            .map(|s| s.at)
            .collect()
    }

    /// The finished reconciles of `plugin`, in order.
    pub fn finished(&self, plugin: &str) -> Vec<Arc<Reconciled>> {
        self.seen()
            .finished
            .iter()
            .filter(|r| &*r.started.plugin == plugin)
            .cloned()
            .collect()
    }

    /// The versions that started `plugin`'s reconciles of `key`, in order.
    pub fn versions(&self, plugin: &str, key: &str) -> Vec<String> {
        self.seen()
            .started
            .iter()
            .filter(|s| &*s.plugin == plugin && s.key.to_string() == key)
            .map(|s| s.version.to_string())
            .collect()
    }

    /// Reconciles of `plugin` in flight now.
    pub fn in_flight(&self, plugin: &str) -> usize {
        self.seen()
            .open
            .iter()
            .filter(|((p, _), _)| p == plugin)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Keys of `plugin` that were ever reconciled twice at once.
    pub fn overlaps(&self, plugin: &str) -> Vec<String> {
        self.seen()
            .overlaps
            .iter()
            .filter(|(p, _)| p == plugin)
            .map(|(_, k)| k.clone())
            .collect()
    }
}
