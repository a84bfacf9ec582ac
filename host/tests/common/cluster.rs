//! A real cluster for end-to-end tests: the embedded API server over HTTP on 127.0.0.1 and the
//! real kubewasm manager (informers, queues, workers, cache-backed reads, kube::Client writes).

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm::runtime::Runtime;
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};

/// The embedded API server, a client for it, a plugin runtime and a manager running plugins.
pub struct TestCluster {
    pub server: ApiServer,
    pub client: kube::Client,
    pub runtime: Runtime,
    pub manager: Manager,
}

impl TestCluster {
    /// Starts the API server on an ephemeral loopback port and a manager with no plugins.
    pub async fn start() -> Self {
        let server = ApiServer::start(Config::default())
            .await
            .expect("the embedded API server starts");
        let client = client_for(&server);
        let runtime = super::runtime();
        let manager = Manager::new(client.clone(), ManagerConfig::default());
        Self {
            server,
            client,
            runtime,
            manager,
        }
    }

    /// Loads the plugin at `path`, starts it and waits until its caches have synced.
    pub async fn start_plugin(&self, path: &Path) {
        let plugin = super::load(&self.runtime, path).await;
        self.manager.start(plugin).expect("the plugin starts");
        self.manager.wait_synced().await;
    }

    /// An API for objects of `api_version`/`kind` (plural `plural`) in `namespace`, or
    /// cluster-wide when `None`.
    pub fn dynamic(
        &self,
        api_version: &str,
        kind: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Creates `object` (a JSON value with apiVersion, kind and metadata).
    pub async fn create(&self, plural: &str, object: serde_json::Value) -> DynamicObject {
        let api_version = object["apiVersion"]
            .as_str()
            .expect("apiVersion")
            .to_owned();
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let object: DynamicObject = serde_json::from_value(object).expect("a Kubernetes object");
        self.dynamic(&api_version, &kind, plural, namespace.as_deref())
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("creating {kind}: {e}"))
    }

    /// Stops every plugin and the server.
    pub async fn stop(self) {
        self.manager.shutdown().await;
        self.server.shutdown().await;
    }
}

/// A kube client for `server`.
pub fn client_for(server: &ApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("the server URL parses"));
    config.default_namespace = "default".into();
    kube::Client::try_from(config).expect("a client")
}

/// Polls `check` until it returns `Some`, and returns that; fails the test with `what` after
/// 60 seconds (generous: machines are shared and slow; a passing test returns as soon as it
/// converges).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after 60 s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
