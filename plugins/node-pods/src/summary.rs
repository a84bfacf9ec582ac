//! The per-Node summary: Pods counted by phase, and the ConfigMap that carries it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kubewasm_sdk::Object;
use serde::{Deserialize, Serialize};

/// Namespace of the summaries. It must exist (every cluster has `kube-system`).
pub const NAMESPACE: &str = "kube-system";
/// Label on every summary, so the host watches only these ConfigMaps.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGER: &str = "kubewasm-node-pods";
/// Label naming the Node a summary describes.
pub const NODE_LABEL: &str = "node-pods.kubewasm.dev/node";
/// Pod phases, in the order Kubernetes documents them. A Pod without a phase counts as
/// `Pending` (the API server sets no phase; the kubelet has not reported yet).
pub const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// Just the fields of a Pod this operator reads: decoding a whole `Pod` costs ten times more.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct PodPhase {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodPhaseStatus>,
}

/// `status` of [`PodPhase`].
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct PodPhaseStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl Object for PodPhase {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Pod";
    const PLURAL: Option<&'static str> = Some("pods");
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// Name of the summary ConfigMap of `node`.
pub fn name(node: &str) -> String {
    format!("node-pods-{node}")
}

/// The summary's data: `total` and one count per phase (zeros included, so a phase that
/// empties shows `0` rather than a stale number).
pub fn counts<'a>(phases: impl IntoIterator<Item = Option<&'a str>>) -> BTreeMap<String, String> {
    let mut counts = [0usize; PHASES.len()];
    let mut total = 0usize;
    for phase in phases {
        let phase = phase.unwrap_or("Pending");
        let slot = PHASES.iter().position(|p| *p == phase).unwrap_or(4); // anything else: Unknown
        counts[slot] += 1;
        total += 1;
    }
    let mut data: BTreeMap<String, String> = PHASES
        .iter()
        .zip(counts)
        .map(|(p, c)| ((*p).to_owned(), c.to_string()))
        .collect();
    data.insert("total".to_owned(), total.to_string());
    data
}

/// The summary ConfigMap of `node` (with `uid`) holding `data`, owned by the Node so the
/// garbage collector removes it too.
pub fn config_map(node: &str, uid: &str, data: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name(node)),
            namespace: Some(NAMESPACE.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.to_owned(), MANAGER.to_owned()),
                (NODE_LABEL.to_owned(), node.to_owned()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "Node".to_owned(),
                name: node.to_owned(),
                uid: uid.to_owned(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// True when `cm` was written by this operator for the Node `node` (any uid).
pub fn is_summary_of(cm: &ConfigMap, node: &str) -> bool {
    cm.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(MANAGED_BY).map(String::as_str) == Some(MANAGER))
        && cm
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.kind == "Node" && r.name == node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_counted_by_phase_with_zeros_and_a_total() {
        let data = counts([Some("Running"), Some("Running"), None, Some("Weird")]);
        assert_eq!(data["Running"], "2");
        assert_eq!(data["Pending"], "1");
        assert_eq!(data["Unknown"], "1");
        assert_eq!(data["Succeeded"], "0");
        assert_eq!(data["Failed"], "0");
        assert_eq!(data["total"], "4");
    }
}
