//! The fake nodes: registered Ready at start with capacity, addresses and node info like kwok's, and
//! kept alive by a Lease in `kube-node-lease` that each node's kubelet renews.

use serde_json::{Value, json};

use super::pods::FAKE_NODE_ANNOTATION;
use super::{Ctx, KUBELET};
use crate::object::{meta_str, now_rfc3339};

/// The names of the fake nodes.
#[derive(Default)]
pub(super) struct Nodes {
    names: Vec<String>,
}

/// A node as kwok registers it.
fn node(name: &str, index: usize) -> Value {
    let now = now_rfc3339();
    let cond = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let resources =
        json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": format!("10.0.{}.0/24", 2 + index), "podCIDRs": [format!("10.0.{}.0/24", 2 + index)]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": format!("10.0.1.{}", 1 + index)},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": resources,
            "capacity": resources,
            "conditions": [
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "kwok-0.8.0",
                "kernelVersion": "kwok-0.8.0",
                "kubeProxyVersion": "fake",
                "kubeletVersion": "fake",
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "",
                "systemUUID": "",
            },
            "phase": "Running",
        },
    })
}

impl Nodes {
    /// Registers the fake nodes (those missing) and their Leases.
    pub(super) fn register(&mut self, ctx: &Ctx) {
        let Some(ty) = ctx.ty("", "v1", "nodes") else {
            return;
        };
        self.names = (0..ctx.settings.nodes.max(1))
            .map(|i| format!("kwok-node-{i}"))
            .collect();
        for (i, name) in self.names.iter().enumerate() {
            if ctx.get(&ty, "", name).is_none() {
                ctx.create(&ty, "", node(name, i), KUBELET);
            }
        }
        self.heartbeat(ctx);
    }

    /// Renews each fake node's Lease (creating it if missing), as the kubelet does every 10 s.
    pub(super) fn heartbeat(&self, ctx: &Ctx) {
        let (Some(nodes_ty), Some(lease_ty)) = (
            ctx.ty("", "v1", "nodes"),
            ctx.ty("coordination.k8s.io", "v1", "leases"),
        ) else {
            return;
        };
        let renew = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        for name in &self.names {
            let Some(node) = ctx.get(&nodes_ty, "", name) else {
                continue;
            };
            if ctx.get(&lease_ty, "kube-node-lease", name).is_none() {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": "kube-node-lease",
                        "ownerReferences": [{
                            "apiVersion": "v1", "kind": "Node",
                            "name": name, "uid": meta_str(&node, "uid"),
                        }],
                    },
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
                });
                ctx.create(&lease_ty, "kube-node-lease", lease, KUBELET);
                continue;
            }
            ctx.update(&lease_ty, "kube-node-lease", name, KUBELET, None, |l| {
                l["spec"]["renewTime"] = json!(renew);
            });
        }
    }
}
