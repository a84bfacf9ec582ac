//! The DaemonSet controller: one Pod per eligible node (pinned there by node affinity on
//! `metadata.name`, with the daemon tolerations), replaced one at a time on a template change, and the
//! status (desired, current, ready, available, updated, misscheduled).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::pods::{is_active, is_available, is_ready};
use super::{
    CONTROLLER_MANAGER, Ctx, by_controller, condition, controller_ref, generation, int,
    pod_from_template, set_label,
};
use crate::object::{is_deleting, meta_str};

const HASH_LABEL: &str = "controller-revision-hash";
/// The component name on the DaemonSet controller's Events.
const DS_CONTROLLER: &str = "daemonset-controller";

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(ty), Some(pods_ty), Some(nodes_ty)) = (
        ctx.ty("apps", "v1", "daemonsets"),
        ctx.ty("", "v1", "pods"),
        ctx.ty("", "v1", "nodes"),
    ) else {
        return;
    };
    let sets = ctx.list(&ty, None);
    if sets.is_empty() {
        return;
    }
    let nodes = ctx.list(&nodes_ty, None);
    let mut owned = by_controller(ctx.list(&pods_ty, None));
    for set in &sets {
        let pods = owned.remove(meta_str(set, "uid")).unwrap_or_default();
        if !is_deleting(set) {
            sync(ctx, set, &pods, &nodes);
        }
    }
}

/// The node a daemon Pod is pinned to (its nodeName, else its node affinity's `metadata.name`).
fn pinned_node(pod: &Value) -> Option<String> {
    if let Some(n) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Some(n.to_string());
    }
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Whether the DaemonSet's Pod (`candidate`: its template with the daemon tolerations) belongs on
/// `node`: Ready, and allowed by its node selector, affinity and tolerations.
fn eligible(candidate: &Value, node: &Value) -> bool {
    condition(node, "Ready").is_some_and(|c| c["status"] == "True")
        && super::pods::fits(candidate, node)
}

fn sync(ctx: &Ctx, set: &Value, pods: &[Value], nodes: &[Value]) {
    let (Some(ty), Some(pods_ty)) = (ctx.ty("apps", "v1", "daemonsets"), ctx.ty("", "v1", "pods"))
    else {
        return;
    };
    let (ns, name) = (meta_str(set, "namespace"), meta_str(set, "name"));
    let Some((_, hash)) = super::statefulset::ensure_revision(ctx, set, "DaemonSet", HASH_LABEL)
    else {
        return;
    };
    let mut candidate =
        json!({"spec": set.pointer("/spec/template/spec").cloned().unwrap_or(json!({}))});
    add_daemon_tolerations(&mut candidate);
    let wanted: Vec<&str> = nodes
        .iter()
        .filter(|n| eligible(&candidate, n))
        .map(|n| meta_str(n, "name"))
        .collect();
    let mut on_node: HashMap<String, Vec<&Value>> = HashMap::new();
    for p in pods.iter().filter(|p| is_active(p)) {
        if let Some(n) = pinned_node(p) {
            on_node.entry(n).or_default().push(p);
        }
    }
    let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let template_generation = generation(set).to_string();
    for node in &wanted {
        if on_node.contains_key(*node) {
            continue;
        }
        let mut pod = pod_from_template(
            &template,
            ns,
            None,
            &format!("{name}-"),
            controller_ref(set, "apps/v1", "DaemonSet"),
        );
        set_label(&mut pod, HASH_LABEL, &hash);
        set_label(&mut pod, "pod-template-generation", &template_generation);
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}],
        });
        add_daemon_tolerations(&mut pod);
        if let Some(created) = ctx.create(&pods_ty, ns, pod, CONTROLLER_MANAGER) {
            let message = format!("Created pod: {}", meta_str(&created, "name"));
            ctx.record(
                set,
                "Normal",
                "SuccessfulCreate",
                &message,
                DS_CONTROLLER,
                None,
            );
        }
    }
    // Pods on nodes that are gone or where they may no longer run (selector, affinity, an untolerated
    // NoExecute taint), and extra Pods on one node, go; a NoSchedule taint only stops new ones.
    let may_stay = |node: &str| {
        nodes.iter().any(|n| {
            meta_str(n, "name") == node && super::pods::fits_despite(&candidate, n, &["NoExecute"])
        })
    };
    for (node, list) in &on_node {
        let keep = usize::from(wanted.contains(&node.as_str()) || may_stay(node));
        for pod in list.iter().skip(keep) {
            let pod_name = meta_str(pod, "name");
            if ctx
                .delete(&pods_ty, ns, pod_name, meta_str(pod, "uid"))
                .is_ok()
            {
                let message = format!("Deleted pod: {pod_name}");
                ctx.record(
                    set,
                    "Normal",
                    "SuccessfulDelete",
                    &message,
                    DS_CONTROLLER,
                    None,
                );
            }
        }
    }
    // A rolling update: replace one outdated Pod at a time while the others are ready.
    let rolling = set
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete");
    let outdated: Vec<&&Value> = on_node
        .values()
        .flatten()
        .filter(|p| {
            p.pointer(&format!("/metadata/labels/{HASH_LABEL}"))
                .and_then(Value::as_str)
                != Some(&hash)
        })
        .collect();
    let all_ready = on_node.values().flatten().all(|p| is_ready(p));
    if rolling
        && all_ready
        && let Some(pod) = outdated.first()
    {
        let _ = ctx.delete(&pods_ty, ns, meta_str(pod, "name"), meta_str(pod, "uid"));
    }
    let min_ready = int(set, "/spec/minReadySeconds");
    let scheduled: Vec<&Value> = wanted
        .iter()
        .filter_map(|n| on_node.get(*n).and_then(|l| l.first().copied()))
        .collect();
    let desired = wanted.len();
    let current = scheduled.len();
    let ready = scheduled.iter().filter(|p| is_ready(p)).count();
    let available = scheduled
        .iter()
        .filter(|p| is_available(ctx, p, min_ready))
        .count();
    let updated = scheduled
        .iter()
        .filter(|p| {
            p.pointer(&format!("/metadata/labels/{HASH_LABEL}"))
                .and_then(Value::as_str)
                == Some(&hash)
        })
        .count();
    let misscheduled = on_node
        .keys()
        .filter(|n| !wanted.contains(&n.as_str()))
        .count();
    let observed = generation(set);
    ctx.update_status(&ty, ns, name, CONTROLLER_MANAGER, |o| {
        let mut status = json!({
            "currentNumberScheduled": current,
            "desiredNumberScheduled": desired,
            "numberAvailable": available,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "observedGeneration": observed,
            "updatedNumberScheduled": updated,
        });
        if desired > available {
            status["numberUnavailable"] = json!(desired - available);
        }
        if let Some(s) = status.as_object_mut() {
            for k in ["numberAvailable", "updatedNumberScheduled"] {
                if s.get(k) == Some(&json!(0)) {
                    s.remove(k);
                }
            }
        }
        let collisions = int(o, "/status/collisionCount");
        if collisions > 0 {
            status["collisionCount"] = json!(collisions);
        }
        o["status"] = status;
    });
}

/// The tolerations the DaemonSet controller adds so daemons run on nodes that are not ready or under
/// pressure.
fn add_daemon_tolerations(pod: &mut Value) {
    let wanted = [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    let list = &mut pod["spec"]["tolerations"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut() {
        for (key, effect) in wanted {
            if !list
                .iter()
                .any(|t| t["key"] == key && t["effect"] == effect)
            {
                list.push(json!({"key": key, "operator": "Exists", "effect": effect}));
            }
        }
    }
}
