//! Fault injection and the request log: a handle for tests, never reachable over the network.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

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

#[derive(Default)]
struct State {
    failures: VecDeque<Failure>,
    latency: Duration,
    requests: VecDeque<RequestRecord>,
}

/// Fault injection and observation. Cheap to clone; all clones act on the same server.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
    drop_watches: Arc<watch::Sender<u64>>,
    store: Arc<Store>,
}

impl Faults {
    pub(crate) fn new(store: Arc<Store>) -> Faults {
        let (tx, _) = watch::channel(0);
        Faults {
            state: Arc::new(Mutex::new(State::default())),
            drop_watches: Arc::new(tx),
            store,
        }
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

    /// The next `n` requests (any verb, watches included) fail with this failure.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut s = self.state.lock();
        for _ in 0..n {
            s.failures.push_back(failure.clone());
        }
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

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.state.lock().requests.clear();
    }

    /// Records a request and returns the failure to inject (if any) and the latency to add.
    pub(crate) fn on_request(&self, record: RequestRecord) -> (Option<Failure>, Duration) {
        let mut s = self.state.lock();
        if s.requests.len() >= MAX_REQUEST_RECORDS {
            s.requests.pop_front();
        }
        s.requests.push_back(record);
        (s.failures.pop_front(), s.latency)
    }

    /// A receiver that changes whenever [`Faults::drop_watches`] is called.
    pub(crate) fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }
}
