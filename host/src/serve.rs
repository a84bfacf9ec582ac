//! [`serve`]: the HTTP endpoints a cluster asks a controller for — `/healthz` (liveness),
//! `/readyz` (readiness) and `/metrics` (Prometheus text).
//!
//! Readiness by [`ReplicaState`]: a leader (or a replica without leader election) and a warm
//! standby are ready once their plugins have loaded and every plugin's caches have synced — a warm
//! standby is as ready to reconcile as the leader, only its workers wait for the Lease (as
//! controller-runtime's warm replicas report ready). A cold standby runs no cache: it is ready
//! once its plugins have loaded (compiled and validated). Nobody is ready while shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;

use crate::Manager;
use crate::leader::ReplicaState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the endpoints report on. Cheap to clone; clones share the flags.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    loaded: AtomicBool,
    state: Mutex<ReplicaState>,
    stopping: AtomicBool,
}

impl Default for HealthInner {
    fn default() -> Self {
        Self {
            loaded: AtomicBool::new(false),
            state: Mutex::new(ReplicaState::Leading),
            stopping: AtomicBool::new(false),
        }
    }
}

impl Health {
    /// The plugins have been loaded (ready from then on, once their caches have synced).
    pub fn set_loaded(&self) {
        self.inner.loaded.store(true, Ordering::SeqCst);
    }

    /// Which part this replica plays ([`ReplicaState::Leading`] until told otherwise). A cold
    /// standby is ready without caches (it runs no plugin); a warm standby, like the leader, once
    /// its caches have synced.
    pub fn set_state(&self, state: ReplicaState) {
        *self.inner.state.lock() = state;
    }

    /// Which part this replica plays.
    pub fn state(&self) -> ReplicaState {
        *self.inner.state.lock()
    }

    /// The host is shutting down: no longer ready.
    pub fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Why the host is not ready, or `None` when it is.
    pub fn not_ready(&self, manager: &Manager) -> Option<String> {
        let i = &self.inner;
        if i.stopping.load(Ordering::SeqCst) {
            return Some("shutting down".into());
        }
        if !i.loaded.load(Ordering::SeqCst) {
            return Some("plugins are loading".into());
        }
        if self.state() == ReplicaState::ColdStandby {
            return None;
        }
        let unsynced: Vec<String> = manager
            .status()
            .into_iter()
            .filter(|s| !s.synced)
            .map(|s| s.name)
            .collect();
        if unsynced.is_empty() {
            None
        } else {
            Some(format!("caches not synced for {}", unsynced.join(", ")))
        }
    }
}

#[derive(Clone)]
struct AppState {
    manager: Manager,
    health: Health,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.health.not_ready(&state.manager) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.manager.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Which endpoints a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// `/healthz` (also `/livez`) and `/readyz`.
    pub probes: bool,
    /// `/metrics`.
    pub metrics: bool,
}

impl Routes {
    /// The paths served, for logs.
    pub fn paths(self) -> &'static str {
        match (self.probes, self.metrics) {
            (true, true) => "/healthz /readyz /metrics",
            (true, false) => "/healthz /readyz",
            (false, true) => "/metrics",
            (false, false) => "",
        }
    }
}

/// The router with the `routes` asked for.
pub fn router(manager: Manager, health: Health, routes: Routes) -> Router {
    let mut router = Router::new();
    if routes.probes {
        router = router
            .route("/healthz", get(healthz))
            .route("/livez", get(healthz))
            .route("/readyz", get(readyz));
    }
    if routes.metrics {
        router = router.route("/metrics", get(metrics));
    }
    router.with_state(AppState { manager, health })
}

/// Binds `addr` and serves [`router`] with `routes` in a background task; returns the bound address (useful
/// with port 0).
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    manager: Manager,
    health: Health,
    routes: Routes,
) -> Result<SocketAddr, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(manager, health, routes);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the health and metrics server stopped: {e}");
        }
    });
    tracing::info!(address = %bound, paths = routes.paths(), "serving HTTP endpoints");
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn manager() -> Manager {
        // Never contacted: no plugin runs.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        Manager::new(client, crate::ManagerConfig::default())
    }

    async fn status(addr: SocketAddr, path: &str) -> u16 {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            write!(s, "GET {path} HTTP/1.0\r\n\r\n").expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            out.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .expect("status code")
        })
        .await
        .expect("request")
    }

    #[tokio::test]
    async fn each_server_answers_only_the_routes_it_was_given() {
        let any = "127.0.0.1:0".parse().expect("addr");
        let health = Health::default();
        let probes = Routes {
            probes: true,
            metrics: false,
        };
        let metrics = Routes {
            probes: false,
            metrics: true,
        };
        let p = serve(any, manager(), health.clone(), probes)
            .await
            .expect("serve");
        let m = serve(any, manager(), health.clone(), metrics)
            .await
            .expect("serve");
        assert_eq!(status(p, "/healthz").await, 200);
        assert_eq!(status(p, "/readyz").await, 503, "plugins not loaded yet");
        assert_eq!(status(p, "/metrics").await, 404);
        assert_eq!(status(m, "/metrics").await, 200);
        assert_eq!(status(m, "/healthz").await, 404);
        health.set_loaded();
        assert_eq!(status(p, "/readyz").await, 200, "loaded, nothing to sync");
        health.set_stopping();
        assert_eq!(status(p, "/readyz").await, 503, "shutting down");
    }
}
