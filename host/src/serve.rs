//! [`serve`]: the HTTP endpoints a cluster asks a controller for — `/healthz` (liveness),
//! `/readyz` (readiness) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Manager;

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

#[derive(Debug, Default)]
struct HealthInner {
    loaded: AtomicBool,
    leading: AtomicBool,
    standby: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// The plugins have been loaded (ready from then on, once their caches have synced).
    pub fn set_loaded(&self) {
        self.inner.loaded.store(true, Ordering::SeqCst);
    }

    /// This replica leads (its plugins run) or not. A replica that is not leading but is a
    /// healthy standby is ready once its plugins have loaded.
    pub fn set_leading(&self, leading: bool) {
        self.inner.leading.store(leading, Ordering::SeqCst);
    }

    /// This replica waits for the lease (it is ready without caches: it runs no plugin).
    pub fn set_standby(&self, standby: bool) {
        self.inner.standby.store(standby, Ordering::SeqCst);
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
        if i.standby.load(Ordering::SeqCst) && !i.leading.load(Ordering::SeqCst) {
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
    let m = &state.manager;
    let text = m.metrics().render(m.status(), m.informers().stats());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The router with `/healthz`, `/readyz` and `/metrics`.
pub fn router(manager: Manager, health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AppState { manager, health })
}

/// Binds `addr` and serves [`router`] in a background task; returns the bound address (useful
/// with port 0).
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    manager: Manager,
    health: Health,
) -> Result<SocketAddr, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(manager, health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the health and metrics server stopped: {e}");
        }
    });
    tracing::info!(address = %bound, "serving /healthz, /readyz and /metrics");
    Ok(bound)
}
