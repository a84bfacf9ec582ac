//! The typed stream of reconciles: every reconcile the manager runs is published as it starts and
//! as it ends — plugin, version, key, why it fired, when, how long it took and how it ended.
//!
//! `kubewasm dev` prints it, and tests observe the host through it rather
//! than through log output. Subscribe with [`Manager::reconciles`](crate::Manager::reconciles).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kubewasm_controller::ObjectKey;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::runtime::{Action, Reason, ReconcileError};

/// A reconcile that has started.
#[derive(Debug)]
pub struct ReconcileStarted {
    /// The reconcile's number in this manager, from 1: the same [`ReconcileScope::id`](crate::layer::ReconcileScope::id)
    /// layers are given (a recording names the reconcile by it).
    pub id: u64,
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The version that runs it ([`Plugin::version`](crate::runtime::Plugin::version)).
    pub version: Arc<str>,
    /// The key reconciled.
    pub key: ObjectKey,
    /// Why it fired, as the plugin is told.
    pub reason: Reason,
    /// When it started.
    pub at: Instant,
}

/// A reconcile that has ended.
#[derive(Debug)]
pub struct Reconciled {
    /// What started.
    pub started: Arc<ReconcileStarted>,
    /// How long it ran (instantiation included).
    pub took: Duration,
    /// What the plugin asked for, or why it failed.
    pub result: Result<Action, ReconcileError>,
}

/// One item of the stream.
#[derive(Debug, Clone)]
pub enum ReconcileEvent {
    /// A reconcile started.
    Started(Arc<ReconcileStarted>),
    /// A reconcile ended.
    Finished(Arc<Reconciled>),
}

/// Where reconciles are published. Each subscriber gets every event, in order, on its own
/// unbounded channel: a subscriber must keep reading (or drop its receiver, which unsubscribes it).
#[derive(Debug, Default)]
pub(crate) struct ReconcileHub {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ReconcileEvent>>>,
    any: AtomicBool,
    /// The last reconcile number given.
    last_id: AtomicU64,
}

impl ReconcileHub {
    /// The next reconcile's number (from 1).
    pub(crate) fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A new subscriber: every event published from now on.
    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<ReconcileEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().push(tx);
        self.any.store(true, Ordering::Release);
        rx
    }

    /// Whether anyone listens (events are not built otherwise).
    pub(crate) fn has_subscribers(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Sends `event` to every subscriber; forgets those that went away.
    pub(crate) fn publish(&self, event: &ReconcileEvent) {
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|s| s.send(event.clone()).is_ok());
        self.any.store(!subscribers.is_empty(), Ordering::Release);
    }
}
