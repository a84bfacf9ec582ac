//! [`ReconcileGate`]: whether a replica's workers may reconcile, and which keys — a warm
//! standby's closed gate (see [`crate::leader`]) or a sharded replica's ring ([`crate::shard`]).

use std::sync::Arc;

use tokio::sync::watch;

use crate::shard::Shards;

/// Whether a replica's workers may reconcile. Plugins started behind a closed gate run their
/// informers and fill their queues, but their workers take no key until the gate opens (once
/// open, it stays open: a leader that loses its Lease exits). Cheap to clone; clones share the
/// gate. [`Default`] is open.
///
/// A sharded replica's gate ([`ReconcileGate::sharded`]) also answers per key: the workers ask
/// its [`Shards`] before each reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileGate {
    open: Arc<watch::Sender<bool>>,
    shards: Option<Shards>,
}

impl Default for ReconcileGate {
    fn default() -> Self {
        Self::new(true)
    }
}

impl ReconcileGate {
    /// A gate, open or closed.
    pub fn new(open: bool) -> Self {
        Self {
            open: Arc::new(watch::Sender::new(open)),
            shards: None,
        }
    }

    /// An open gate that lets each key through only on the replica that owns it.
    pub fn sharded(shards: Shards) -> Self {
        Self {
            shards: Some(shards),
            ..Self::new(true)
        }
    }

    /// The ring keys are sharded on, when sharded.
    pub fn shards(&self) -> Option<&Shards> {
        self.shards.as_ref()
    }

    /// Lets the workers reconcile from now on.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Whether the workers may reconcile.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Resolves once the gate is open (at once if it is).
    pub async fn opened(&self) {
        let mut open = self.open.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = open.wait_for(|o| *o).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_gate_holds_its_waiters_until_it_opens() {
        let gate = ReconcileGate::new(false);
        assert!(!gate.is_open());
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.opened().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a closed gate holds its waiter");
        gate.open();
        waiter.await.expect("the waiter ends once the gate opens");
        assert!(gate.is_open());
        // An open gate lets a new waiter through at once.
        ReconcileGate::default().opened().await;
    }
}
