//! A real cluster for end-to-end tests: the embedded API server over HTTP on 127.0.0.1 and the
//! real kubewasm manager (informers, queues, workers, cache-backed reads, kube::Client writes).

use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm::runtime::Runtime;
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};

use super::reconciles::Reconciles;

/// The embedded API server, a client for it, a plugin runtime and a manager running plugins.
pub struct TestCluster {
    pub server: ApiServer,
    pub client: kube::Client,
    pub runtime: Runtime,
    pub manager: Manager,
    /// Every reconcile the manager ran (its typed stream, collected).
    pub reconciles: Reconciles,
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
        Self::from_parts(server, client, runtime, manager)
    }

    /// A cluster of parts a test configured itself (its own runtime limits or host client).
    pub fn from_parts(
        server: ApiServer,
        client: kube::Client,
        runtime: Runtime,
        manager: Manager,
    ) -> Self {
        let reconciles = Reconciles::watch(&manager);
        Self {
            server,
            client,
            runtime,
            manager,
            reconciles,
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
