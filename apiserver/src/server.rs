//! Starting and stopping the server ([`ApiServer`]), the connection loop with its restarts, and the
//! kubeconfig it writes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::commit::create_initial_objects;
use crate::config::Config;
use crate::faults::{Faults, Serving};
use crate::router;
use crate::state::AppState;

/// Errors starting the server or writing its kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A non-loopback address was asked for without `allow_non_loopback`.
    #[error(
        "refusing to listen on non-loopback address {0}: set allow_non_loopback (and a token) to expose the API server"
    )]
    NonLoopback(SocketAddr),
    /// A non-loopback address was asked for without a bearer token.
    #[error("listening on non-loopback address {0} requires a bearer token")]
    TokenRequired(SocketAddr),
    /// Binding failed.
    #[error("failed to bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `bookmark_interval` was zero.
    #[error("invalid config: bookmark_interval must be longer than zero")]
    ZeroBookmarkInterval,
    /// Writing the kubeconfig failed.
    #[error("failed to write kubeconfig {path}: {source}")]
    WriteKubeconfig {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running embedded API server.
pub struct ApiServer {
    addr: SocketAddr,
    token: Option<String>,
    faults: Faults,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds and serves in the background on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::NonLoopback`] / [`Error::TokenRequired`] for an exposed address without the flag or token,
    /// [`Error::Bind`] if the address cannot be bound, [`Error::ZeroBookmarkInterval`] for a zero
    /// bookmark interval.
    pub async fn start(config: Config) -> Result<ApiServer, Error> {
        if config.bookmark_interval.is_zero() {
            return Err(Error::ZeroBookmarkInterval);
        }
        if !config.listen.ip().is_loopback() {
            if !config.allow_non_loopback {
                return Err(Error::NonLoopback(config.listen));
            }
            if config.token.as_deref().is_none_or(str::is_empty) {
                return Err(Error::TokenRequired(config.listen));
            }
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let token = config.token.clone();
        let state = Arc::new(AppState::new(config, shutdown_rx.clone()));
        create_initial_objects(&state, addr.port());
        if let Some(settings) = state.config.simulate.clone() {
            crate::simulate::spawn(state.clone(), settings);
        }
        let faults = state.faults.clone();
        let app = router::router(state);
        let task = tokio::spawn(serve_loop(listener, addr, app, shutdown_rx, faults.clone()));
        tracing::info!(url = %format!("http://{addr}"), "embedded API server listening");
        Ok(ApiServer {
            addr,
            token,
            faults,
            shutdown,
            task: Some(task),
        })
    }

    /// The base URL, e.g. "http://127.0.0.1:40123".
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) with cluster/context/user all named "kubewasm", namespace "default",
    /// server = [`ApiServer::url`], and the bearer token if any.
    pub fn kubeconfig(&self) -> String {
        let user = match &self.token {
            Some(t) => format!("    token: {}\n", serde_json::Value::String(t.clone())),
            None => "    {}\n".to_string(),
        };
        let user = if self.token.is_some() {
            format!("  user:\n{user}")
        } else {
            "  user: {}\n".to_string()
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubewasm\n  cluster:\n    server: {url}\ncontexts:\n- name: kubewasm\n  context:\n    cluster: kubewasm\n    user: kubewasm\n    namespace: default\ncurrent-context: kubewasm\npreferences: {{}}\nusers:\n- name: kubewasm\n{user}",
            url = self.url(),
        )
    }

    /// Writes [`ApiServer::kubeconfig`] to `path` (mode 0600 on Unix: it may hold a token).
    ///
    /// # Errors
    /// [`Error::WriteKubeconfig`] if the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        let err = |source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(path, self.kubeconfig()).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
        Ok(())
    }

    /// Fault injection and observation; not reachable over the network. Cheap to clone.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// Stops accepting, ends open watches and connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.faults.drop_watches();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for ApiServer {
    /// Dropping the server without [`ApiServer::shutdown`] still stops it (without waiting).
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.faults.drop_watches();
    }
}

/// How long shutdown waits for in-flight requests before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Accepts connections and serves each on its own task until shutdown; carries out
/// [`Faults::restart`]: closes the listener and every connection, waits out the outage, listens again.
async fn serve_loop(
    listener: TcpListener,
    addr: SocketAddr,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
    faults: Faults,
) {
    let mut restarts = faults.take_restart_requests();
    // Bumped by a restart: every connection task sees it and drops its connection at once.
    let (sever, _) = watch::channel(0u64);
    let mut conns = JoinSet::new();
    let mut listener = Some(listener);
    while let Some(accepting) = listener.as_ref() {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(req) = async { restarts.as_mut()?.recv().await } => {
                drop(listener.take());
                sever.send_modify(|n| *n += 1);
                faults.drop_watches();
                while conns.join_next().await.is_some() {}
                faults.set_serving(Serving::Down);
                tracing::info!(down_for = ?req.down_for, "embedded API server restarting");
                let _ = req.down.send(());
                tokio::select! {
                    () = stopped(&mut shutdown) => break,
                    () = tokio::time::sleep(req.down_for) => {}
                }
                listener = rebind(addr, &mut shutdown).await;
                if listener.is_some() {
                    faults.set_serving(Serving::Up);
                    tracing::info!(%addr, "embedded API server listening again");
                }
            }
            accepted = accepting.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(app.clone());
                    let mut severed = sever.subscribe();
                    let mut stop = shutdown.clone();
                    conns.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            // A restart: drop the connection (and its in-flight request) at once.
                            _ = severed.changed() => {}
                            () = stopped(&mut stop) => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                // Like axum::serve: a failed accept (e.g. out of file descriptors) must not end the server.
                Err(e) => {
                    tracing::warn!(error = %e, "embedded API server failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    faults.set_serving(Serving::Stopped);
    // In-flight requests finish (watches were ended by shutdown); what does not is dropped with the set.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Resolves once shutdown was asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Binds `addr` again after a restart's outage, retrying while the port is briefly unavailable;
/// `None` when the server is shut down meanwhile.
async fn rebind(addr: SocketAddr, shutdown: &mut watch::Receiver<bool>) -> Option<TcpListener> {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "embedded API server cannot listen again yet");
                tokio::select! {
                    () = stopped(shutdown) => return None,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn non_loopback_needs_the_flag_and_a_token() {
        let listen: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        let r = ApiServer::start(Config {
            listen,
            ..Config::default()
        })
        .await;
        assert!(matches!(r, Err(Error::NonLoopback(_))));
        let r = ApiServer::start(Config {
            listen,
            allow_non_loopback: true,
            ..Config::default()
        })
        .await;
        assert!(matches!(r, Err(Error::TokenRequired(_))));
    }

    #[tokio::test]
    async fn kubeconfig_points_at_the_server_with_a_default_namespace() {
        let s = ApiServer::start(Config::default()).await.expect("start");
        let kc = s.kubeconfig();
        assert!(kc.contains(&format!("server: {}", s.url())));
        assert!(kc.contains("namespace: default"));
        s.shutdown().await;
    }
}
