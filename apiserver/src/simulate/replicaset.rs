//! The ReplicaSet controller: keeps `spec.replicas` Pods from the template (named from the
//! ReplicaSet, owned by it), deletes the surplus (unscheduled, unready and newest first), and reports
//! replicas, fullyLabeledReplicas, readyReplicas, availableReplicas and observedGeneration.

use serde_json::{Value, json};

use super::pods::{is_active, is_available, is_ready};
use super::{
    CONTROLLER_MANAGER, Ctx, by_controller, controller_ref, generation, int, pod_from_template,
    selects,
};
use crate::object::{is_deleting, meta_str};

/// The component name on the ReplicaSet controller's Events.
const RS_CONTROLLER: &str = "replicaset-controller";

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(rs_ty), Some(pods_ty)) = (
        ctx.ty("apps", "v1", "replicasets"),
        ctx.ty("", "v1", "pods"),
    ) else {
        return;
    };
    let sets = ctx.list(&rs_ty, None);
    if sets.is_empty() {
        return;
    }
    let mut owned = by_controller(ctx.list(&pods_ty, None));
    for rs in &sets {
        let (ns, name, uid) = (
            meta_str(rs, "namespace"),
            meta_str(rs, "name"),
            meta_str(rs, "uid"),
        );
        let pods = owned.remove(uid).unwrap_or_default();
        let mut active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
        if !is_deleting(rs) {
            let want = usize::try_from(int(rs, "/spec/replicas").max(0)).unwrap_or(0);
            if active.len() < want {
                let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in active.len()..want {
                    let pod = pod_from_template(
                        &template,
                        ns,
                        None,
                        &format!("{name}-"),
                        controller_ref(rs, "apps/v1", "ReplicaSet"),
                    );
                    let Some(created) = ctx.create(&pods_ty, ns, pod, CONTROLLER_MANAGER) else {
                        continue;
                    };
                    let message = format!("Created pod: {}", meta_str(&created, "name"));
                    ctx.record(
                        rs,
                        "Normal",
                        "SuccessfulCreate",
                        &message,
                        RS_CONTROLLER,
                        None,
                    );
                    if !ctx.exists(&rs_ty, ns, name, uid) {
                        // The owner went while this Pod was made: collect it, as the garbage collector would.
                        let _ = ctx.delete(
                            &pods_ty,
                            ns,
                            meta_str(&created, "name"),
                            meta_str(&created, "uid"),
                        );
                    }
                }
                // The new Pods are counted on the next pass, from the store.
                continue;
            }
            if active.len() > want {
                active.sort_by_key(|p| deletion_rank(p));
                for pod in active.drain(..active.len() - want) {
                    let pod_name = meta_str(pod, "name");
                    if ctx
                        .delete(&pods_ty, ns, pod_name, meta_str(pod, "uid"))
                        .is_ok()
                    {
                        let message = format!("Deleted pod: {pod_name}");
                        ctx.record(
                            rs,
                            "Normal",
                            "SuccessfulDelete",
                            &message,
                            RS_CONTROLLER,
                            None,
                        );
                    }
                }
            }
        }
        let min_ready = int(rs, "/spec/minReadySeconds");
        let template = rs.pointer("/spec/template");
        let labeled = active
            .iter()
            .filter(|p| selects(template.and_then(|t| t.pointer("/metadata")).map(|m| json!({"matchLabels": m.get("labels").cloned().unwrap_or(json!({}))})).as_ref(), p))
            .count();
        let ready = active.iter().filter(|p| is_ready(p)).count();
        let available = active
            .iter()
            .filter(|p| is_available(ctx, p, min_ready))
            .count();
        let terminating = pods.iter().filter(|p| is_deleting(p)).count();
        let observed = generation(rs);
        ctx.update_status(&rs_ty, ns, name, CONTROLLER_MANAGER, |o| {
            let mut status = json!({
                "replicas": active.len(),
                "fullyLabeledReplicas": labeled,
                "readyReplicas": ready,
                "availableReplicas": available,
                "terminatingReplicas": terminating,
                "observedGeneration": observed,
            });
            if let Some(c) = o.pointer("/status/conditions") {
                status["conditions"] = c.clone();
            }
            o["status"] = status;
        });
    }
}

/// The order in which surplus Pods go: unscheduled before scheduled, pending before running, unready
/// before ready, newer before older (as the ReplicaSet controller ranks them).
fn deletion_rank(pod: &Value) -> (bool, bool, bool, std::cmp::Reverse<String>) {
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let running = super::pods::phase(pod) == "Running";
    (
        scheduled,
        running,
        is_ready(pod),
        std::cmp::Reverse(meta_str(pod, "creationTimestamp").to_string() + meta_str(pod, "name")),
    )
}
