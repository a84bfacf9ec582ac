//! `run_controller`: one plugin's pipeline — informer events, mapped to keys, into its queue, worked
//! by its workers only once every informer it uses has synced.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures::stream::SelectAll;

use crate::informer::{InformerHandle, wait_for_sync};
use crate::key::ObjectKey;
use crate::mapping::{Mapper, resync};
use crate::queue::{Item, WorkQueue};
use crate::worker::{Action, run_workers};

/// How a plugin's keys are worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Reconciles of this plugin running at once (at least 1).
    pub concurrency: usize,
    /// Re-queue every primary at low priority this often (client-go's resync period); `None`: never.
    pub resync: Option<Duration>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            resync: None,
        }
    }
}

/// Runs one plugin until `queue` is shut down, then waits for its reconciles in flight and returns.
///
/// `informers` are the plugin's handles (the reconciled kind, owned kinds, watched kinds); `mapper`
/// maps their events to keys. Subscriptions are made first, so keys from the initial lists are queued
/// (at low priority) while the lists arrive; workers start only once every informer has synced (the
/// `HasSynced` gate), so no reconcile reads a partial cache. Shut the queue down to stop; the handles
/// are released when this returns (stopping informers no other plugin uses).
pub async fn run_controller<F, Fut, E>(
    informers: Vec<InformerHandle>,
    mapper: Mapper,
    queue: WorkQueue<ObjectKey>,
    config: ControllerConfig,
    reconcile: F,
) where
    F: Fn(Item<ObjectKey>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let events: SelectAll<_> = informers.iter().map(InformerHandle::subscribe).collect();
    let primaries = mapper.primaries().clone();
    let pump = tokio::spawn(mapper.run(events, queue.clone()));
    let resync = config
        .resync
        .map(|every| tokio::spawn(resync(primaries, queue.clone(), every)));
    let gate: Vec<&InformerHandle> = informers.iter().collect();
    tokio::select! {
        () = wait_for_sync(&gate) => {
            run_workers(queue.clone(), config.concurrency, reconcile).await;
        }
        () = queue.closed() => {}
    }
    drop(gate);
    pump.abort();
    if let Some(r) = resync {
        r.abort();
    }
    drop(informers);
}
