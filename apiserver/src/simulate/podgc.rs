//! What kube-controller-manager does to Pods on nodes that turn bad: taint-based eviction (a Pod that
//! does not tolerate a node's NoExecute taint is deleted, at once or after its `tolerationSeconds`) and
//! pod garbage collection (a Pod bound to a node that no longer exists is deleted after 40 s).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Ctx;
use super::pods::{is_active, tolerates};
use crate::object::{is_deleting, meta_str};

/// How long a Pod on a missing node is left alone before it is collected (kube's quarantine).
const ORPHAN_QUARANTINE: Duration = Duration::from_secs(40);

/// When each Pod (uid) was first seen on a node that does not exist.
#[derive(Default)]
pub(super) struct PodGc {
    orphaned_since: HashMap<String, Instant>,
}

/// How long a Pod may stay on a node with this NoExecute taint: `None` forever, `Some(0)` not at all.
fn tolerated_for(pod: &Value, taint: &Value) -> Option<u64> {
    if !tolerates(pod, taint) {
        return Some(0);
    }
    // The shortest tolerationSeconds among the matching tolerations that have one (none: forever),
    // as the taint manager takes it.
    pod.pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| tolerates(&serde_json::json!({"spec": {"tolerations": [t]}}), taint))
        .filter_map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
        .map(|s| u64::try_from(s.max(0)).unwrap_or(0))
        .min()
}

impl PodGc {
    pub(super) fn sync_all(&mut self, ctx: &Ctx) {
        let (Some(pods_ty), Some(nodes_ty)) = (ctx.ty("", "v1", "pods"), ctx.ty("", "v1", "nodes"))
        else {
            return;
        };
        let nodes: HashMap<String, Value> = ctx
            .list(&nodes_ty, None)
            .into_iter()
            .map(|n| (meta_str(&n, "name").to_string(), n))
            .collect();
        let pods = ctx.list(&pods_ty, None);
        let live: HashSet<&str> = pods.iter().map(|p| meta_str(p, "uid")).collect();
        self.orphaned_since
            .retain(|uid, _| live.contains(uid.as_str()));
        let now = Instant::now();
        let unix_now = jiff::Timestamp::now().as_second();
        for pod in pods.iter().filter(|p| !is_deleting(p)) {
            let Some(node_name) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let (ns, name, uid) = (
                meta_str(pod, "namespace"),
                meta_str(pod, "name"),
                meta_str(pod, "uid"),
            );
            let Some(node) = nodes.get(node_name) else {
                let since = *self.orphaned_since.entry(uid.to_string()).or_insert(now);
                if now >= since + ORPHAN_QUARANTINE {
                    let _ = ctx.delete(&pods_ty, ns, name, uid);
                } else {
                    ctx.wake_at(since + ORPHAN_QUARANTINE);
                }
                continue;
            };
            if !is_active(pod) {
                continue;
            }
            let mut evict_in: Option<u64> = None;
            for taint in node
                .pointer("/spec/taints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|t| t["effect"] == "NoExecute")
            {
                let Some(allowed) = tolerated_for(pod, taint) else {
                    continue;
                };
                let added = taint
                    .get("timeAdded")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .map_or(unix_now, |t| t.as_second());
                let elapsed = u64::try_from((unix_now - added).max(0)).unwrap_or(0);
                let left = allowed.saturating_sub(elapsed);
                evict_in = Some(evict_in.map_or(left, |e| e.min(left)));
            }
            match evict_in {
                Some(0) if ctx.delete(&pods_ty, ns, name, uid).is_ok() => {
                    let message = format!("Marking for deletion Pod {ns}/{name}");
                    ctx.record(
                        pod,
                        "Normal",
                        "TaintManagerEviction",
                        &message,
                        "taint-eviction-controller",
                        None,
                    );
                }
                Some(secs) if secs > 0 => ctx.wake_at(now + Duration::from_secs(secs)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_noexecute_taint_evicts_at_once_unless_tolerated_and_then_after_the_toleration() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        assert_eq!(tolerated_for(&json!({"spec": {}}), &taint), Some(0));
        let forever = json!({"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}});
        assert_eq!(tolerated_for(&forever, &taint), None);
        let a_while = json!({"spec": {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}});
        assert_eq!(tolerated_for(&a_while, &taint), Some(30));
    }
}
