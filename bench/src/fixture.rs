//! The objects the scenarios work on and the embedded API server they run against.

use std::collections::HashSet;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::json;

use crate::pod::{PodSpec, owner_name, pod};

/// How many creates are in flight at once while filling the server.
const CREATE_CONCURRENCY: usize = 16;

/// Why a fixture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The embedded API server did not start.
    #[error("failed to start the embedded API server: {0}")]
    Server(#[source] kubewasm_apiserver::Error),
    /// No client could be built for it.
    #[error("failed to build a client for the embedded API server: {0}")]
    Client(#[source] kube::Error),
    /// Its URL did not parse.
    #[error("the embedded API server's URL {0} does not parse")]
    Url(String),
    /// A fixture object does not decode (a bug in this file).
    #[error("fixture object {name} does not decode: {source}")]
    Decode {
        /// Which.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Creating an object failed.
    #[error("failed to create {kind} {name}: {source}")]
    Create {
        /// The kind.
        kind: &'static str,
        /// The object.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// The embedded API server on an ephemeral loopback port and a client for it.
pub struct Cluster {
    /// The server (its request log counts watches).
    pub server: ApiServer,
    /// A client for it.
    pub client: kube::Client,
    /// Namespaces created so far.
    namespaces: parking_lot::Mutex<HashSet<String>>,
}

impl Cluster {
    /// Starts a server on 127.0.0.1 with an ephemeral port.
    ///
    /// # Errors
    /// [`FixtureError`] when the server does not start.
    pub async fn start() -> Result<Self, FixtureError> {
        let server = ApiServer::start(Config::default())
            .await
            .map_err(FixtureError::Server)?;
        let client = client_for(&server)?;
        Ok(Self {
            server,
            client,
            namespaces: parking_lot::Mutex::default(),
        })
    }

    /// Creates the namespaces among `names` not created yet (the server needs them first).
    ///
    /// # Errors
    /// [`FixtureError::Create`] when one cannot be created.
    pub async fn ensure_namespaces<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), FixtureError> {
        let new: Vec<String> = {
            let mut known = self.namespaces.lock();
            names
                .into_iter()
                .filter(|n| known.insert((*n).to_owned()))
                .map(str::to_owned)
                .collect()
        };
        let api = Api::<Namespace>::all(self.client.clone());
        for name in new {
            let ns: Namespace = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
            }))
            .map_err(|source| FixtureError::Decode {
                name: name.clone(),
                source,
            })?;
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(source) => {
                    return Err(FixtureError::Create {
                        kind: "Namespace",
                        name,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// Creates `pods` (index, namespace, node, app label) and returns the total JSON size of
    /// what was sent and how long it took.
    ///
    /// # Errors
    /// [`FixtureError::Create`] on the first create that fails.
    pub async fn create_pods(
        &self,
        pods: impl Iterator<Item = PodSpec> + Send,
    ) -> Result<usize, FixtureError> {
        let pods: Vec<PodSpec> = pods.collect();
        self.ensure_namespaces(pods.iter().map(|p| p.namespace.as_str()))
            .await?;
        let owners = std::sync::Arc::new(self.create_owners(&pods).await?);
        let client = self.client.clone();
        let sizes: Vec<usize> = futures::stream::iter(pods.into_iter().map(|spec| {
            let client = client.clone();
            let owners = owners.clone();
            async move {
                let mut value = pod(&spec);
                // Owned by a ReplicaSet that exists: the garbage collector deletes a Pod whose
                // owner does not.
                if let Some(uid) = owners.get(&(spec.namespace.clone(), spec.app.clone())) {
                    value["metadata"]["ownerReferences"][0]["uid"] = json!(uid);
                }
                let size = serde_json::to_vec(&value).map_or(0, |v| v.len());
                let object: Pod =
                    serde_json::from_value(value).map_err(|source| FixtureError::Decode {
                        name: spec.name.clone(),
                        source,
                    })?;
                Api::<Pod>::namespaced(client, &spec.namespace)
                    .create(&PostParams::default(), &object)
                    .await
                    .map_err(|source| FixtureError::Create {
                        kind: "Pod",
                        name: spec.name.clone(),
                        source,
                    })?;
                Ok::<usize, FixtureError>(size)
            }
        }))
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await?;
        Ok(sizes.iter().sum())
    }

    /// Creates the ReplicaSet each (namespace, app) of `pods` names as its owner; their uids.
    async fn create_owners(
        &self,
        pods: &[PodSpec],
    ) -> Result<std::collections::HashMap<(String, String), String>, FixtureError> {
        let mut uids = std::collections::HashMap::new();
        for spec in pods {
            let key = (spec.namespace.clone(), spec.app.clone());
            if uids.contains_key(&key) {
                continue;
            }
            let name = owner_name(&spec.app);
            let value = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": spec.namespace},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": spec.app}},
                    "template": {
                        "metadata": {"labels": {"app": spec.app}},
                        "spec": {"containers": [{"name": "web", "image": "registry.example.com/team/web:1.2.3"}]},
                    },
                },
            });
            let object: ReplicaSet =
                serde_json::from_value(value).map_err(|source| FixtureError::Decode {
                    name: name.clone(),
                    source,
                })?;
            let created = Api::<ReplicaSet>::namespaced(self.client.clone(), &spec.namespace)
                .create(&PostParams::default(), &object)
                .await
                .map_err(|source| FixtureError::Create {
                    kind: "ReplicaSet",
                    name: name.clone(),
                    source,
                })?;
            uids.insert(key, created.metadata.uid.unwrap_or_default());
        }
        Ok(uids)
    }

    /// Creates ConfigMaps named `names` in `namespace`.
    ///
    /// # Errors
    /// [`FixtureError::Create`] on the first create that fails.
    pub async fn create_config_maps(
        &self,
        namespace: &str,
        names: impl Iterator<Item = String> + Send,
    ) -> Result<(), FixtureError> {
        self.ensure_namespaces([namespace]).await?;
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), namespace);
        futures::stream::iter(names.map(|name| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": namespace},
                    "data": {"n": "0"}
                }))
                .map_err(|source| FixtureError::Decode {
                    name: name.clone(),
                    source,
                })?;
                api.create(&PostParams::default(), &cm)
                    .await
                    .map_err(|source| FixtureError::Create {
                        kind: "ConfigMap",
                        name,
                        source,
                    })?;
                Ok::<(), FixtureError>(())
            }
        }))
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }
}

/// A client for `server` (default namespace "default").
///
/// # Errors
/// [`FixtureError`] when the URL or client is invalid.
pub fn client_for(server: &ApiServer) -> Result<kube::Client, FixtureError> {
    let url = server.url();
    let mut config = kube::Config::new(url.parse().map_err(|_| FixtureError::Url(url.clone()))?);
    config.default_namespace = "default".into();
    kube::Client::try_from(config).map_err(FixtureError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pod_is_about_four_kilobytes_and_decodes_as_a_pod() {
        let value = pod(&PodSpec::new(7, "bench", "node-0", "web"));
        let size = serde_json::to_vec(&value).expect("encodes").len();
        assert!((3500..5000).contains(&size), "pod is {size} bytes");
        let pod: Pod = serde_json::from_value(value).expect("a Pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("pod-7"));
        assert_eq!(
            pod.spec.and_then(|s| s.node_name).as_deref(),
            Some("node-0")
        );
    }
}
