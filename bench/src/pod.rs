//! [`pod`]: a realistic running Pod of about 4 KB of JSON, the object the cache and memory
//! figures read and store.
//!
//! The one Pod fixture of the benchmarks: `kubewasm-bench` uses it as a module, and the host's
//! in-process micro-benchmark (`host/benches/runtime.rs`) includes this file by path, so it
//! holds only the fixture (its test is in `fixture.rs`).

use serde_json::{Value, json};

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
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner_name(&spec.app),
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

/// The ReplicaSet a Pod of `app` is owned by (named as a Deployment's would be).
pub fn owner_name(app: &str) -> String {
    format!("{app}-5d8f7c9b6d")
}
