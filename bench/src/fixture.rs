//! The objects the scenarios work on and the embedded API server they run against.

use std::collections::HashSet;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::{Value, json};

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
        let client = self.client.clone();
        let sizes: Vec<usize> = futures::stream::iter(pods.into_iter().map(|spec| {
            let client = client.clone();
            async move {
                let value = pod(&spec);
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

/// Where a generated Pod goes and how it is labelled.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `spec.nodeName`.
    pub node: String,
    /// The `app` label.
    pub app: String,
}

impl PodSpec {
    /// Pod `pod-{i}` in `namespace` on `node`, labelled `app`.
    pub fn new(i: usize, namespace: &str, node: &str, app: &str) -> Self {
        Self {
            name: format!("pod-{i}"),
            namespace: namespace.to_owned(),
            node: node.to_owned(),
            app: app.to_owned(),
        }
    }
}

/// A realistic running Pod of about 4 KB of JSON (two containers, probes, statuses).
pub fn pod(spec: &PodSpec) -> Value {
    let conditions: Vec<Value> = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"}))
        .collect();
    let statuses: Vec<Value> = ["web", "sidecar"]
        .iter()
        .map(|n| {
            json!({"name": n, "ready": true, "restartCount": 0, "started": true,
                "image": format!("registry.example.com/team/{n}:1.2.3"),
                "imageID": format!("registry.example.com/team/{n}@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                "containerID": "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}})
        })
        .collect();
    let env: Vec<Value> = (0..8)
        .map(|e| json!({"name": format!("ENV_VAR_{e}"), "value": format!("value-{e}-for-the-web-container")}))
        .collect();
    let notes: serde_json::Map<String, Value> = (0..22)
        .map(|n| {
            (
                format!("example.com/note-{n}"),
                json!("padding so the pod is about four kilobytes"),
            )
        })
        .chain([(
            "kubectl.kubernetes.io/restartedAt".to_owned(),
            json!("2026-01-01T00:00:00Z"),
        )])
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app": spec.app, "tier": "frontend", "pod-template-hash": "5d8f7c9b6d"},
            "annotations": notes,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{}-5d8f7c9b6d", spec.app),
                                 "uid": "0a1b2c3d-4e5f-6789-abcd-ef0123456789", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": spec.node,
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "containers": [{
                "name": "web",
                "image": "registry.example.com/team/web:1.2.3",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 10, "failureThreshold": 3},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
            }, {
                "name": "sidecar",
                "image": "registry.example.com/team/proxy:4.5.6",
                "args": ["--listen=:9090", "--upstream=127.0.0.1:8080", "--log-level=info"],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}
            }],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.10",
            "podIP": "10.244.0.10",
            "startTime": "2026-01-01T00:00:01Z",
            "qosClass": "Burstable",
            "conditions": conditions,
            "containerStatuses": statuses
        }
    })
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
