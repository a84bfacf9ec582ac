//! The Kubernetes client the host talks through: kube's, with a bounded retry of 429/503/504.
//!
//! kube's default client retries those answers up to 15 times with an exponential backoff that
//! grows to 1000 s (and takes `Retry-After` only when it is longer): a request that meets a run of
//! 429s waits minutes inside the client, holding its reconcile and its worker (the fault suite saw
//! one write blocked for 5.5 minutes by 60 injected 429s). Like client-go, the host instead waits
//! what the server asks (`Retry-After`, else a backoff capped at [`MAX_RETRY_DELAY`]) at most
//! [`MAX_RETRIES`] times, then hands the error back so that the caller's own backoff takes over
//! (a reconcile is requeued; an informer retries its watch).

use std::time::Duration;

use kube::client::ClientBuilder;
use kube::client::retry::RetryPolicy;
use tower::ServiceBuilder;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;

/// Retries of one request answered 429, 503 or 504 (client-go's limit).
pub const MAX_RETRIES: u32 = 10;
/// The longest wait between retries when the server sends no longer `Retry-After`.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The first wait between retries.
const MIN_RETRY_DELAY: Duration = Duration::from_millis(10);
/// Requests waiting for the client's dispatcher at once (the retry layer needs a cloneable service, and
/// kube's stack is boxed, so it is shared through a buffer; a request holds a slot only until it is
/// sent, never while its response or watch stream is read).
const DISPATCH_QUEUE: usize = 1024;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// kube could not build its client from the configuration (TLS, auth, proxy...).
    #[error("failed to create the Kubernetes client: {0}")]
    Build(#[source] kube::Error),
    /// The retry limits are not valid (e.g. a maximum below the minimum delay).
    #[error("invalid retry limits for the Kubernetes client: {0}")]
    Retry(#[source] kube::client::retry::InvalidBackoff),
    /// Called outside a tokio runtime (the client's dispatcher is a task).
    #[error("cannot create the Kubernetes client outside a tokio runtime")]
    NoRuntime,
}

/// The host's client for `config`, retrying 429/503/504 at most [`MAX_RETRIES`] times with waits of
/// `Retry-After` or at most [`MAX_RETRY_DELAY`]. Use it instead of `kube::Client::try_from`.
///
/// # Errors
/// [`ClientError::Build`] when kube cannot build a client from `config`, [`ClientError::NoRuntime`]
/// outside a tokio runtime.
pub fn client(config: kube::Config) -> Result<kube::Client, ClientError> {
    client_with_retries(config, MAX_RETRIES, MAX_RETRY_DELAY)
}

/// As [`client`], with other limits: `max_retries` retries, waits of at most `max_delay` unless the
/// server's `Retry-After` is longer.
///
/// # Errors
/// [`ClientError::Build`] when kube cannot build a client from `config`, [`ClientError::Retry`] when
/// `max_delay` is shorter than 10 ms, [`ClientError::NoRuntime`] outside a tokio runtime.
pub fn client_with_retries(
    mut config: kube::Config,
    max_retries: u32,
    max_delay: Duration,
) -> Result<kube::Client, ClientError> {
    let policy = RetryPolicy::new(MIN_RETRY_DELAY, max_delay, max_retries, true)
        .map_err(ClientError::Retry)?;
    tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?;
    // kube's own retry layer (unbounded in practice) is replaced, not stacked.
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(ClientError::Build)?;
    let layers = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .layer(BufferLayer::new(DISPATCH_QUEUE));
    Ok(builder.with_layer(&layers).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewasm_apiserver::{ApiServer, Config, Failure};

    fn too_many() -> Failure {
        Failure::TooManyRequests {
            retry_after: Duration::from_secs(1),
        }
    }

    async fn server_and_client(max_retries: u32) -> (ApiServer, kube::Client) {
        let server = ApiServer::start(Config::default())
            .await
            .expect("the embedded API server starts");
        let config = kube::Config::new(server.url().parse().expect("the URL parses"));
        let client = client_with_retries(config, max_retries, MAX_RETRY_DELAY).expect("a client");
        (server, client)
    }

    fn namespace_gets(server: &ApiServer) -> usize {
        server
            .faults()
            .requests()
            .iter()
            .filter(|r| r.verb == "get" && r.resource.as_deref() == Some("namespaces"))
            .count()
    }

    #[tokio::test]
    async fn a_short_run_of_429s_is_retried_after_the_servers_retry_after() {
        let (server, client) = server_and_client(3).await;
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        server.faults().fail_next(2, too_many());
        let ns = api
            .get("default")
            .await
            .expect("the third attempt succeeds");
        assert_eq!(ns.metadata.name.as_deref(), Some("default"));
        assert_eq!(namespace_gets(&server), 3);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_long_run_of_429s_ends_in_an_error_after_the_retry_limit_instead_of_waiting_on() {
        let (server, client) = server_and_client(2).await;
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        server.faults().fail_next(50, too_many());
        let err = api
            .get("default")
            .await
            .expect_err("every attempt gets 429");
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 429),
            "the 429 is handed back: {err}"
        );
        assert_eq!(namespace_gets(&server), 3, "one attempt and two retries");
        server.shutdown().await;
    }

    #[test]
    fn outside_a_tokio_runtime_the_client_is_refused_not_a_panic() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("a URL"));
        let Err(err) = client(config) else {
            panic!("no runtime, no client");
        };
        assert!(matches!(err, ClientError::NoRuntime), "{err}");
    }

    #[test]
    fn a_max_delay_below_the_first_delay_is_a_clear_error() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("a URL"));
        let Err(err) = client_with_retries(config, 1, Duration::from_millis(1)) else {
            panic!("a max delay of 1 ms is below the first delay and must be refused");
        };
        assert!(err.to_string().contains("invalid retry limits"), "{err}");
    }
}
