//! Fault injection and the request log: a handle for tests, never reachable over the network.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::Store;

/// A failure to inject into the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 500 InternalError.
    ServerError,
    /// 429 TooManyRequests with a `Retry-After` header (whole seconds, at least 1).
    TooManyRequests {
        /// How long the client is told to wait.
        retry_after: Duration,
    },
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Kubernetes verb: "get", "list", "watch", "create", "update", "patch", "delete",
    /// "deletecollection", or "discovery"/"other" for non-resource paths.
    pub verb: String,
    /// HTTP method ("GET", ...).
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string ("" if none).
    pub query: String,
    /// Whether it was a watch.
    pub watch: bool,
    /// Resource plural ("pods"); None for non-resource paths.
    pub resource: Option<String>,
    /// Namespace of the request, if any.
    pub namespace: Option<String>,
}

/// The request log keeps at most this many records (the oldest are dropped), so a long-running
/// development cluster does not grow without bound.
pub const MAX_REQUEST_RECORDS: usize = 100_000;

/// Which requests a targeted failure hits (see [`Faults::fail_next_matching`]).
pub type RequestFilter = Arc<dyn Fn(&RequestRecord) -> bool + Send + Sync>;

/// What a watch stream does to some of the events it sends (see [`Faults::perturb_watch_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFault {
    /// The event is not sent; the stream goes on (its resourceVersion still counts as seen, so a
    /// watch resumed from there does not send it either: only a re-list brings the truth).
    Drop,
    /// The event is sent twice in a row.
    Duplicate,
    /// The event is held back and sent after the stream's next event about another object (or
    /// after a short pause when none comes), so two objects' events arrive swapped. Events about
    /// one object keep their order, as in any Kubernetes watch.
    Reorder,
}

/// The watch event perturbation in force.
#[derive(Debug, Clone, Copy)]
struct EventPerturbation {
    fault: EventFault,
    every: u64,
    limit: u64,
    seen: u64,
    hit: u64,
}

/// Failures waiting for a request that matches their filter.
struct Targeted {
    filter: RequestFilter,
    failure: Failure,
    remaining: usize,
}

#[derive(Default)]
struct State {
    failures: VecDeque<Failure>,
    targeted: Vec<Targeted>,
    latency: Duration,
    requests: VecDeque<RequestRecord>,
    /// How many responses were sent with each status code.
    statuses: BTreeMap<u16, u64>,
    events: Option<EventPerturbation>,
}

/// A restart asked for by [`Faults::restart`], taken by the serving loop in `server.rs`.
pub(crate) struct RestartRequest {
    /// How long new connections are refused.
    pub down_for: Duration,
    /// Answered once the listener and every connection are closed.
    pub down: oneshot::Sender<()>,
}

/// Whether the server is listening, as the serving loop reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serving {
    /// Accepting connections.
    Up,
    /// Inside a restart's outage.
    Down,
    /// Shut down for good.
    Stopped,
}

/// The link between the fault handle and the serving loop.
struct Lifecycle {
    restarts: mpsc::UnboundedSender<RestartRequest>,
    /// The receiving end, until the serving loop takes it.
    pending: Mutex<Option<mpsc::UnboundedReceiver<RestartRequest>>>,
    serving: watch::Sender<Serving>,
}

/// Fault injection and observation. Cheap to clone; all clones act on the same server.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
    drop_watches: Arc<watch::Sender<u64>>,
    store: Arc<Store>,
    lifecycle: Arc<Lifecycle>,
}

impl Faults {
    pub(crate) fn new(store: Arc<Store>) -> Faults {
        let (tx, _) = watch::channel(0);
        let (restarts, pending) = mpsc::unbounded_channel();
        Faults {
            state: Arc::new(Mutex::new(State::default())),
            drop_watches: Arc::new(tx),
            store,
            lifecycle: Arc::new(Lifecycle {
                restarts,
                pending: Mutex::new(Some(pending)),
                serving: watch::channel(Serving::Up).0,
            }),
        }
    }

    /// Restarts the server as a kube-apiserver restarts in front of etcd: the listener and every open
    /// connection are closed at once (watches end, in-flight requests fail, pooled client connections
    /// break), new connections are refused for `down_for`, then the server listens again on the same
    /// address with the same objects, and resourceVersions continue where they were (watch history is
    /// kept, so a client may resume its watches from its last resourceVersion).
    ///
    /// Returns once the server is down, so a request sent right after fails to connect; it comes back by
    /// itself after `down_for` ([`Faults::wait_serving`] waits for that). Returns at once when the server
    /// was shut down.
    pub async fn restart(&self, down_for: Duration) {
        let (down, is_down) = oneshot::channel();
        if self
            .lifecycle
            .restarts
            .send(RestartRequest { down_for, down })
            .is_ok()
        {
            // An error means the serving loop has ended: there is nothing left to restart.
            let _ = is_down.await;
        }
    }

    /// Waits until the server accepts connections (at once unless inside a [`Faults::restart`]'s
    /// outage); also returns when the server was shut down.
    pub async fn wait_serving(&self) {
        let mut rx = self.lifecycle.serving.subscribe();
        let _ = rx.wait_for(|s| *s != Serving::Down).await;
    }

    /// Whether the server accepts connections now (false inside a restart's outage and after shutdown).
    pub fn is_serving(&self) -> bool {
        *self.lifecycle.serving.borrow() == Serving::Up
    }

    /// How many responses were sent with HTTP status `code` since start (or since
    /// [`Faults::clear_requests`]), e.g. `responses_with_status(409)` counts conflicts.
    pub fn responses_with_status(&self, code: u16) -> u64 {
        self.state.lock().statuses.get(&code).copied().unwrap_or(0)
    }

    /// Ends every open watch stream now (clients see EOF and must re-watch).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forgets the whole event history: a watch from any resourceVersion older than the current one gets an
    /// ERROR event with a 410 Expired Status ("too old resource version"); continue tokens expire too.
    pub fn compact_history(&self) {
        self.store.compact();
    }

    /// Forces every open watch to meet 410 Expired: the history is compacted past the current
    /// resourceVersion and every watch stream ends ([`Faults::drop_watches`]) in one step, before any
    /// later write is sent to it, so each watcher resumes from a resourceVersion older than the
    /// compaction and must list again. Unlike [`Faults::compact_history`] followed by
    /// [`Faults::drop_watches`], no event can slip in between and let a watcher catch up.
    pub fn expire_watches(&self) {
        self.store.compact_past_now(|| self.drop_watches());
    }

    /// The next `n` requests (any verb, watches included) fail with this failure.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut s = self.state.lock();
        for _ in 0..n {
            s.failures.push_back(failure.clone());
        }
    }

    /// The next `n` requests for which `filter` returns true fail with this failure; other
    /// requests pass (or meet [`Faults::fail_next`]'s failures). Lets a test aim at one client,
    /// e.g. a controller's writes in its namespace, when other clients share the server.
    pub fn fail_next_matching(
        &self,
        n: usize,
        failure: Failure,
        filter: impl Fn(&RequestRecord) -> bool + Send + Sync + 'static,
    ) {
        if n == 0 {
            return;
        }
        self.state.lock().targeted.push(Targeted {
            filter: Arc::new(filter),
            failure,
            remaining: n,
        });
    }

    /// Added before every response (`Duration::ZERO` turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Every request received since start (or since [`Faults::clear_requests`]), oldest first; at most
    /// the last [`MAX_REQUEST_RECORDS`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// Forgets the request log and the response counts.
    pub fn clear_requests(&self) {
        let mut s = self.state.lock();
        s.requests.clear();
        s.statuses.clear();
    }

    /// Counts a response's status code.
    pub(crate) fn on_response(&self, code: u16) {
        *self.state.lock().statuses.entry(code).or_default() += 1;
    }

    /// The restart requests, for the serving loop (`None` once taken).
    pub(crate) fn take_restart_requests(&self) -> Option<mpsc::UnboundedReceiver<RestartRequest>> {
        self.lifecycle.pending.lock().take()
    }

    /// The serving loop reports whether it listens.
    pub(crate) fn set_serving(&self, serving: Serving) {
        self.lifecycle.serving.send_replace(serving);
    }

    /// Records a request and returns the failure to inject (if any) and the latency to add.
    pub(crate) fn on_request(&self, record: RequestRecord) -> (Option<Failure>, Duration) {
        let mut s = self.state.lock();
        if s.requests.len() >= MAX_REQUEST_RECORDS {
            s.requests.pop_front();
        }
        let targeted = s.targeted.iter().position(|t| (t.filter)(&record));
        s.requests.push_back(record);
        let failure = match targeted {
            Some(i) => {
                let t = &mut s.targeted[i];
                t.remaining -= 1;
                let failure = t.failure.clone();
                if t.remaining == 0 {
                    s.targeted.remove(i);
                }
                Some(failure)
            }
            None => s.failures.pop_front(),
        };
        (failure, s.latency)
    }

    /// From now on, every `every`-th event that a watch stream would send (counted over all
    /// streams, from 1) meets `fault`, until `limit` events have met it; then streams behave
    /// again. Replaces the perturbation in force. Initial events and events replayed from
    /// history when a watch resumes are never touched, only the live ones.
    pub fn perturb_watch_events(&self, fault: EventFault, every: u64, limit: u64) {
        self.state.lock().events = Some(EventPerturbation {
            fault,
            every: every.max(1),
            limit,
            seen: 0,
            hit: 0,
        });
    }

    /// Stops [`Faults::perturb_watch_events`] (no later event is touched); returns how many
    /// events it touched, which [`Faults::perturbed_watch_events`] keeps saying.
    pub fn stop_perturbing_watch_events(&self) -> u64 {
        let mut s = self.state.lock();
        s.events.as_mut().map_or(0, |p| {
            p.limit = p.hit;
            p.hit
        })
    }

    /// How many events [`Faults::perturb_watch_events`] has touched so far.
    pub fn perturbed_watch_events(&self) -> u64 {
        self.state.lock().events.map_or(0, |p| p.hit)
    }

    /// What happens to the next live event a watch stream sends (`None`: it is sent as is).
    pub(crate) fn watch_event_fault(&self) -> Option<EventFault> {
        let mut s = self.state.lock();
        let p = s.events.as_mut()?;
        if p.hit >= p.limit {
            return None;
        }
        p.seen += 1;
        if !p.seen.is_multiple_of(p.every) {
            return None;
        }
        p.hit += 1;
        Some(p.fault)
    }

    /// A receiver that changes whenever [`Faults::drop_watches`] is called.
    pub(crate) fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verb: &str, namespace: &str) -> RequestRecord {
        RequestRecord {
            verb: verb.into(),
            method: "PATCH".into(),
            path: format!("/api/v1/namespaces/{namespace}/configmaps/x"),
            query: String::new(),
            watch: false,
            resource: Some("configmaps".into()),
            namespace: Some(namespace.into()),
        }
    }

    #[test]
    fn targeted_failures_hit_only_matching_requests_and_run_out() {
        let faults = Faults::new(Arc::new(Store::new(100)));
        faults.fail_next_matching(2, Failure::ServerError, |r| {
            r.verb == "patch" && r.namespace.as_deref() == Some("mirror")
        });
        faults.fail_next(1, Failure::ServerError);
        // Another client's request takes the untargeted failure, not a targeted one.
        assert_eq!(
            faults.on_request(request("patch", "src")).0,
            Some(Failure::ServerError)
        );
        assert_eq!(faults.on_request(request("patch", "src")).0, None);
        assert_eq!(faults.on_request(request("get", "mirror")).0, None);
        assert_eq!(
            faults.on_request(request("patch", "mirror")).0,
            Some(Failure::ServerError)
        );
        assert_eq!(
            faults.on_request(request("patch", "mirror")).0,
            Some(Failure::ServerError)
        );
        assert_eq!(faults.on_request(request("patch", "mirror")).0, None);
    }

    #[test]
    fn every_nth_live_event_meets_the_fault_until_the_limit() {
        let faults = Faults::new(Arc::new(Store::new(100)));
        assert_eq!(faults.watch_event_fault(), None);
        faults.perturb_watch_events(EventFault::Drop, 2, 2);
        let fates: Vec<_> = (0..6).map(|_| faults.watch_event_fault()).collect();
        assert_eq!(
            fates,
            [
                None,
                Some(EventFault::Drop),
                None,
                Some(EventFault::Drop),
                None,
                None
            ]
        );
        assert_eq!(faults.perturbed_watch_events(), 2);
        assert_eq!(faults.stop_perturbing_watch_events(), 2);
        assert_eq!(faults.watch_event_fault(), None);
        assert_eq!(faults.perturbed_watch_events(), 2);
        faults.perturb_watch_events(EventFault::Duplicate, 1, 5);
        assert_eq!(faults.watch_event_fault(), Some(EventFault::Duplicate));
        faults.stop_perturbing_watch_events();
        assert_eq!(faults.watch_event_fault(), None);
    }
}
