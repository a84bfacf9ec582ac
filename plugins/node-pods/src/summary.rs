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
/// Annotation naming the Node a summary describes (an annotation, not a label: Node names
/// may be longer than a label value's 63 characters).
pub const NODE_ANNOTATION: &str = "node-pods.kubewasm.dev/node";
/// Longest object name Kubernetes accepts.
const MAX_NAME: usize = 253;
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
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// Name of the summary ConfigMap of `node`: `node-pods-<node>`, or, when that would be longer
/// than a name may be, the start of it plus a hash of the whole Node name.
pub fn name(node: &str) -> String {
    let full = format!("node-pods-{node}");
    if full.len() <= MAX_NAME {
        return full;
    }
    // FNV-1a: stable across builds and Rust versions, unlike std's hasher.
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let keep = MAX_NAME - 17; // '-' and 16 hex digits
    // Node names are ASCII (DNS subdomains), so any byte index is a char boundary; trim a
    // trailing '.' or '-' so the name stays a valid DNS subdomain.
    let head = full
        .get(..keep)
        .unwrap_or(&full)
        .trim_end_matches(['.', '-']);
    format!("{head}-{hash:016x}")
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
            labels: Some(BTreeMap::from([(
                MANAGED_BY.to_owned(),
                MANAGER.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                NODE_ANNOTATION.to_owned(),
                node.to_owned(),
            )])),
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
    fn summary_names_stay_valid_for_the_longest_node_names() {
        assert_eq!(name("worker-1"), "node-pods-worker-1");
        let long = format!("{}.example.com", "a".repeat(240));
        let n = name(&long);
        assert_eq!(n.len(), MAX_NAME);
        assert_ne!(n, name(&format!("{}.example.org", "a".repeat(240))));
        assert_eq!(n, name(&long), "stable");
    }

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
