//! The live status page: what the host runs and how it fares, in a browser — plugins with their
//! versions and load history (failed loads and why), queue depth, reconciles in the last minute,
//! error and fault counts per version, informers with object counts and sync state, and the
//! last reconciles of each plugin (key, why it fired, duration, result, and a link to its record
//! when recording is on).
//!
//! [`StatusPage`] collects what the page shows; [`router`] serves it:
//!
//! | path | what |
//! |---|---|
//! | `/` | the page: server-rendered HTML whose script fetches `/body` every second |
//! | `/body` | the page's live part, as an HTML fragment |
//! | `/api/status` | the same figures as JSON (for scripts and tests; see `docs/operating.md`) |
//! | `/reconciles/{id}/record` | the record of reconcile `id` (JSON), when recording is on |
//!
//! Nothing is loaded from elsewhere (no CDN): the page's style and script are part of the binary.
//! `kubewasm dev` serves it on a loopback port and prints its URL; `kubewasm run --status-addr
//! ADDR` serves it there.

mod html;
mod view;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::Manager;
use crate::layer::RecordLookup;
use crate::reconciles::ReconcileEvent;
use crate::reload::LoadHistory;
use crate::runtime::{Action, ReconcileError};
use crate::serve::ServeError;

pub use view::{
    InformerView, LoadView, PluginView, QueueView, ReconcileView, Snapshot, VersionView,
};

/// How many reconciles the page keeps per plugin by default.
pub const DEFAULT_RECENT: usize = 20;

/// Over what time the page counts reconciles ("in the last minute").
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What the status page shows, collected from a [`Manager`] (its status, version counts,
/// informers and reconcile stream), a watcher's [`LoadHistory`] and, when recording is on, a
/// [`RecordLookup`]. Cheap to clone; the reconcile stream is read until the last clone is
/// dropped.
#[derive(Clone)]
pub struct StatusPage {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Manager,
    loads: Mutex<Option<LoadHistory>>,
    records: Option<Arc<dyn RecordLookup>>,
    recent: Arc<Mutex<Recent>>,
    collector: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.collector.abort();
    }
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage")
            .field("recording", &self.inner.records.is_some())
            .finish_non_exhaustive()
    }
}

impl StatusPage {
    /// A page over `manager` that keeps the last `recent` reconciles of each plugin, linking
    /// each to its record in `records` when given. Subscribes to the reconcile stream now:
    /// create it before plugins start to see their first reconciles. Must be called inside a
    /// tokio runtime.
    pub fn new(manager: Manager, recent: usize, records: Option<Arc<dyn RecordLookup>>) -> Self {
        let stream = manager.reconciles();
        let kept = Arc::new(Mutex::new(Recent {
            keep: recent.max(1),
            plugins: HashMap::new(),
        }));
        let collector = tokio::spawn(collect(stream, Arc::downgrade(&kept)));
        Self {
            inner: Arc::new(Inner {
                manager,
                loads: Mutex::new(None),
                records,
                recent: kept,
                collector,
            }),
        }
    }

    /// Shows `history` (a [`PluginWatcher`](crate::reload::PluginWatcher)'s) as the plugins'
    /// load history from now on.
    pub fn show_loads(&self, history: LoadHistory) {
        *self.inner.loads.lock() = Some(history);
    }

    /// Everything the page shows, now.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &self.inner;
        let loads = inner.loads.lock().clone();
        let recent = inner.recent.lock().views(Instant::now());
        view::snapshot(&view::Sources {
            manager: &inner.manager,
            loads: loads.as_ref(),
            recording: inner.records.is_some(),
            recent,
            now: SystemTime::now(),
        })
    }

    fn record(&self, id: u64) -> Option<String> {
        self.inner.records.as_ref().and_then(|r| r.record(id))
    }
}

/// The router of the page's paths (see the module docs).
pub fn router(page: StatusPage) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/body", get(body))
        .route("/api/status", get(json))
        .route("/reconciles/{id}/record", get(record))
        .with_state(page)
}

/// Binds `addr` and serves [`router`] in a background task; returns the bound address (useful
/// with port 0).
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound.
pub async fn serve(addr: SocketAddr, page: StatusPage) -> Result<SocketAddr, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(page);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the status page server stopped: {e}");
        }
    });
    tracing::info!(address = %bound, "serving the status page");
    Ok(bound)
}

const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

async fn index(State(page): State<StatusPage>) -> Response {
    ([NO_STORE], Html(html::page(&page.snapshot()))).into_response()
}

async fn body(State(page): State<StatusPage>) -> Response {
    ([NO_STORE], Html(html::body(&page.snapshot()))).into_response()
}

async fn json(State(page): State<StatusPage>) -> Response {
    ([NO_STORE], axum::Json(page.snapshot())).into_response()
}

async fn record(State(page): State<StatusPage>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a reconcile number\n"),
        )
            .into_response();
    };
    if page.inner.records.is_none() {
        return (
            StatusCode::NOT_FOUND,
            "recording is off: start the host with --record DIR to record reconciles\n",
        )
            .into_response();
    }
    match page.record(id) {
        Some(text) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("reconcile {id} was not recorded, or its record is no longer kept\n"),
        )
            .into_response(),
    }
}

/// Reads the reconcile stream into `recent` until the page is dropped.
async fn collect(
    mut stream: tokio::sync::mpsc::UnboundedReceiver<ReconcileEvent>,
    recent: Weak<Mutex<Recent>>,
) {
    while let Some(event) = stream.recv().await {
        let Some(recent) = recent.upgrade() else {
            return;
        };
        recent
            .lock()
            .apply(&event, Instant::now(), SystemTime::now());
    }
}

/// How a reconcile ended, as the page groups it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Still running.
    Running,
    /// The plugin returned an action.
    Ok,
    /// The plugin returned an error.
    Error,
    /// A trap, the deadline, the memory cap, or a failed instantiation.
    Fault,
}

/// One reconcile as the page keeps it.
#[derive(Debug, Clone)]
struct Row {
    id: u64,
    key: String,
    reason: String,
    version: Arc<str>,
    at: SystemTime,
    took: Option<Duration>,
    outcome: Outcome,
    result: String,
}

/// The last reconciles of one plugin, newest first, and when its reconciles of the last minute
/// ended.
#[derive(Debug, Default)]
struct PluginRecent {
    rows: VecDeque<Row>,
    ended: VecDeque<Instant>,
}

#[derive(Debug)]
struct Recent {
    keep: usize,
    plugins: HashMap<Arc<str>, PluginRecent>,
}

impl Recent {
    fn apply(&mut self, event: &ReconcileEvent, now: Instant, wall: SystemTime) {
        match event {
            ReconcileEvent::Started(s) => {
                let p = self.plugins.entry(Arc::clone(&s.plugin)).or_default();
                p.rows.push_front(Row {
                    id: s.id,
                    key: s.key.to_string(),
                    reason: s.reason.to_string(),
                    version: Arc::clone(&s.version),
                    at: wall,
                    took: None,
                    outcome: Outcome::Running,
                    result: "running".into(),
                });
                p.rows.truncate(self.keep);
            }
            ReconcileEvent::Finished(r) => {
                let p = self
                    .plugins
                    .entry(Arc::clone(&r.started.plugin))
                    .or_default();
                p.ended.push_back(now);
                prune(&mut p.ended, now);
                if let Some(row) = p.rows.iter_mut().find(|row| row.id == r.started.id) {
                    row.took = Some(r.took);
                    (row.outcome, row.result) = describe(&r.result);
                }
            }
        }
    }

    /// Each plugin's kept reconciles and how many ended in the last minute.
    fn views(&mut self, now: Instant) -> HashMap<String, (Vec<Row>, usize)> {
        self.plugins
            .iter_mut()
            .map(|(name, p)| {
                prune(&mut p.ended, now);
                (
                    name.to_string(),
                    (p.rows.iter().cloned().collect(), p.ended.len()),
                )
            })
            .collect()
    }
}

/// Forgets the ends older than the rate window.
fn prune(ended: &mut VecDeque<Instant>, now: Instant) {
    while ended
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > RATE_WINDOW)
    {
        ended.pop_front();
    }
}

/// The page's words for a reconcile's result.
fn describe(result: &Result<Action, ReconcileError>) -> (Outcome, String) {
    match result {
        Ok(Action::Done) => (Outcome::Ok, "done".into()),
        Ok(Action::RequeueAfter(after)) => (Outcome::Ok, format!("requeue after {after:?}")),
        Err(e @ ReconcileError::Plugin { .. }) => (Outcome::Error, e.to_string()),
        Err(e) => (Outcome::Fault, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kubewasm_controller::ObjectKey;

    use super::*;
    use crate::reconciles::{ReconcileStarted, Reconciled};
    use crate::runtime::Reason;

    fn started(id: u64, name: &str) -> Arc<ReconcileStarted> {
        Arc::new(ReconcileStarted {
            id,
            plugin: "hello".into(),
            version: "v1".into(),
            key: ObjectKey::namespaced("default", name),
            reason: Reason::Created,
            at: Instant::now(),
        })
    }

    #[test]
    fn the_page_keeps_the_last_reconciles_newest_first_and_counts_a_minute_of_them() {
        let mut recent = Recent {
            keep: 2,
            plugins: HashMap::new(),
        };
        let t0 = Instant::now();
        let wall = SystemTime::now();
        for id in 1..=3 {
            let s = started(id, &format!("cm-{id}"));
            recent.apply(&ReconcileEvent::Started(Arc::clone(&s)), t0, wall);
            recent.apply(
                &ReconcileEvent::Finished(Arc::new(Reconciled {
                    started: s,
                    took: Duration::from_millis(3),
                    result: Ok(Action::RequeueAfter(Duration::from_secs(5))),
                })),
                t0,
                wall,
            );
        }
        let views = recent.views(t0);
        let (rows, last_minute) = &views["hello"];
        assert_eq!(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            [3, 2],
            "newest first, two kept"
        );
        assert_eq!(rows[0].key, "default/cm-3");
        assert_eq!(rows[0].result, "requeue after 5s");
        assert_eq!(rows[0].outcome, Outcome::Ok);
        assert_eq!(*last_minute, 3);
        let views = recent.views(t0 + RATE_WINDOW + Duration::from_secs(1));
        assert_eq!(views["hello"].1, 0, "older than a minute: not counted");

        // A reconcile that has not ended shows as running.
        recent.apply(&ReconcileEvent::Started(started(4, "late")), t0, wall);
        let views = recent.views(t0);
        assert_eq!(views["hello"].0[0].outcome, Outcome::Running);
    }

    #[test]
    fn a_plugin_error_and_a_trap_are_told_apart() {
        let trap = ReconcileError::Trap {
            plugin: "hello".into(),
            trap: "unreachable".into(),
            stderr: String::new(),
        };
        let (outcome, text) = describe(&Err(trap));
        assert_eq!(outcome, Outcome::Fault);
        assert!(text.contains("trapped: unreachable"), "{text}");
        assert_eq!(describe(&Ok(Action::Done)), (Outcome::Ok, "done".into()));
    }
}
