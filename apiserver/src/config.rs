//! The server's settings ([`Config`]): where it listens, its bearer token, the limits it enforces, and
//! the workload simulator's ([`Simulation`]).

use std::net::SocketAddr;
use std::time::Duration;

/// Server settings.
#[derive(Clone)]
pub struct Config {
    /// Address to bind; port 0 picks an ephemeral port.
    pub listen: SocketAddr,
    /// Required (and written into the kubeconfig) when listening on a non-loopback address.
    pub token: Option<String>,
    /// Must be true to bind a non-loopback address (then `token` is required; start() errors otherwise).
    pub allow_non_loopback: bool,
    /// How many watch events are kept for resuming watches; older resourceVersions get 410 Expired.
    pub history_limit: usize,
    /// Largest accepted request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK (default 10 s; kube-apiserver
    /// sends about one a minute). Must not be zero. Tests set it very long so that no bookmark can
    /// move a watcher's resourceVersion at an inconvenient moment, or very short to see one at once.
    pub bookmark_interval: Duration,
    /// Run the workload simulator (fake nodes, scheduler, kubelets and the workload controllers, see
    /// [`Simulation`]); `None` (the default) serves the API only: nothing acts on stored objects.
    pub simulate: Option<Simulation>,
}

impl std::fmt::Debug for Config {
    /// Redacts the token, so logging a config never leaks it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("history_limit", &self.history_limit)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("bookmark_interval", &self.bookmark_interval)
            .field("simulate", &self.simulate)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            allow_non_loopback: false,
            history_limit: 10_000,
            max_body_bytes: 3 * 1024 * 1024,
            bookmark_interval: Duration::from_secs(10),
            simulate: None,
        }
    }
}

/// Settings of the workload simulator ([`Config::simulate`](crate::Config::simulate)).
#[derive(Debug, Clone)]
pub struct Simulation {
    /// How many fake Nodes to register (`kwok-node-0`, `kwok-node-1`, ...); at least one is made.
    pub nodes: usize,
    /// How long a scheduled Pod stays `Pending` before it is `Running` and Ready (default 1 s).
    pub pod_start_delay: Duration,
    /// How long a Job's Pod runs before it `Succeeded` (default 1 s).
    pub job_pod_duration: Duration,
    /// How often each node's Lease in `kube-node-lease` is renewed (default 10 s, as the kubelet).
    pub lease_renew_interval: Duration,
}

impl Default for Simulation {
    fn default() -> Simulation {
        Simulation {
            nodes: 2,
            pod_start_delay: Duration::from_secs(1),
            job_pod_duration: Duration::from_secs(1),
            lease_renew_interval: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let c = Config {
            token: Some("hunter2".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }
}
