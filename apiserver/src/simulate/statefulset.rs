//! The StatefulSet controller: ordinal Pods `{name}-0..n-1` (OrderedReady: each after the previous is
//! Running and Ready, removed from the highest ordinal down; Parallel: all at once), one
//! ControllerRevision per template, claims from `volumeClaimTemplates`, rolling updates from the
//! highest ordinal down to the partition, and the status (replicas, ready, current, updated, revisions).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::pods::{is_active, is_available, is_ready};
use super::{
    CONTROLLER_MANAGER, Ctx, by_controller, controller_ref, generation, int, pod_from_template,
    set_label, template_hash,
};
use crate::object::{is_deleting, meta_str};

const REVISION_LABEL: &str = "controller-revision-hash";
/// The component name on the StatefulSet controller's Events.
const STS_CONTROLLER: &str = "statefulset-controller";

/// Deletes one of a StatefulSet's Pods, with the controller's Event.
fn delete_pod(ctx: &Ctx, set: &Value, pod: &Value) {
    let Some(pods_ty) = ctx.ty("", "v1", "pods") else {
        return;
    };
    let (ns, pod_name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
    if ctx
        .delete(&pods_ty, ns, pod_name, meta_str(pod, "uid"))
        .is_ok()
    {
        let message = format!(
            "delete Pod {pod_name} in StatefulSet {} successful",
            meta_str(set, "name")
        );
        ctx.record(
            set,
            "Normal",
            "SuccessfulDelete",
            &message,
            STS_CONTROLLER,
            None,
        );
    }
}

/// The ControllerRevision of `owner`'s current template (created if missing) and its name; `hash_label`
/// is the label that carries the hash on the revision (`controller.kubernetes.io/hash` for StatefulSets,
/// `controller-revision-hash` for DaemonSets).
pub(super) fn ensure_revision(
    ctx: &Ctx,
    owner: &Value,
    kind: &str,
    hash_label: &str,
) -> Option<(String, String)> {
    let cr_ty = ctx.ty("apps", "v1", "controllerrevisions")?;
    let (ns, name, uid) = (
        meta_str(owner, "namespace"),
        meta_str(owner, "name"),
        meta_str(owner, "uid"),
    );
    let template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let hash = template_hash(&template, int(owner, "/status/collisionCount"));
    let cr_name = format!("{name}-{hash}");
    let revisions: Vec<Value> = ctx
        .list(&cr_ty, Some(ns))
        .into_iter()
        .filter(|r| super::controller_uid(r) == Some(uid))
        .collect();
    if !revisions.iter().any(|r| meta_str(r, "name") == cr_name) {
        let next = revisions
            .iter()
            .map(|r| int(r, "/revision"))
            .max()
            .unwrap_or(0)
            + 1;
        let mut data_template = template.clone();
        data_template["$patch"] = json!("replace");
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels[hash_label] = json!(hash);
        let mut meta = json!({
            "name": cr_name, "namespace": ns, "labels": labels,
            "ownerReferences": [controller_ref(owner, "apps/v1", kind)],
        });
        if let Some(a) = owner.pointer("/metadata/annotations") {
            meta["annotations"] = a.clone();
        }
        let cr = json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": {"spec": {"template": data_template}}, "revision": next,
        });
        ctx.create(&cr_ty, ns, cr, CONTROLLER_MANAGER)?;
    }
    Some((cr_name, hash))
}

/// The ordinal of a StatefulSet Pod name (`{set}-{n}`).
fn ordinal(set: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(ty), Some(pods_ty)) = (
        ctx.ty("apps", "v1", "statefulsets"),
        ctx.ty("", "v1", "pods"),
    ) else {
        return;
    };
    let sets = ctx.list(&ty, None);
    if sets.is_empty() {
        return;
    }
    let mut owned = by_controller(ctx.list(&pods_ty, None));
    for set in &sets {
        let pods = owned.remove(meta_str(set, "uid")).unwrap_or_default();
        if !is_deleting(set) {
            sync(ctx, set, &pods);
        }
    }
}

fn sync(ctx: &Ctx, set: &Value, pods: &[Value]) {
    let Some(ty) = ctx.ty("apps", "v1", "statefulsets") else {
        return;
    };
    let (ns, name) = (meta_str(set, "namespace"), meta_str(set, "name"));
    let Some((update_revision, _)) =
        ensure_revision(ctx, set, "StatefulSet", "controller.kubernetes.io/hash")
    else {
        return;
    };
    let replicas = int(set, "/spec/replicas").max(0);
    let parallel = set
        .pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        == Some("Parallel");
    let by_ordinal: HashMap<i64, &Value> = pods
        .iter()
        .filter_map(|p| ordinal(name, meta_str(p, "name")).map(|o| (o, p)))
        .collect();
    let healthy = |p: &Value| is_active(p) && is_ready(p);
    let mut acted = false;
    // Create missing Pods, in order.
    for i in 0..replicas {
        if by_ordinal.contains_key(&i) {
            continue;
        }
        if !parallel && (0..i).any(|j| by_ordinal.get(&j).is_none_or(|p| !healthy(p))) {
            break;
        }
        create_pod(ctx, set, i, &update_revision);
        acted = true;
        if !parallel {
            break;
        }
    }
    // Remove Pods beyond the replica count, highest ordinal first.
    let mut surplus: Vec<(i64, &Value)> = by_ordinal
        .iter()
        .filter(|(o, _)| **o >= replicas)
        .map(|(o, p)| (*o, *p))
        .collect();
    surplus.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
    if !acted {
        for (_, pod) in &surplus {
            if is_deleting(pod) {
                if !parallel {
                    break;
                }
                continue;
            }
            delete_pod(ctx, set, pod);
            acted = true;
            if !parallel {
                break;
            }
        }
    }
    // A rolling update: replace one outdated Pod at a time, highest ordinal first, while all are healthy.
    let rolling = set
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete");
    let partition = int(set, "/spec/updateStrategy/rollingUpdate/partition");
    let all_healthy = (0..replicas).all(|i| by_ordinal.get(&i).is_some_and(|p| healthy(p)));
    if !acted && rolling && all_healthy {
        let outdated = (partition..replicas)
            .rev()
            .filter_map(|i| by_ordinal.get(&i))
            .find(|p| {
                p.pointer(&format!("/metadata/labels/{REVISION_LABEL}"))
                    .and_then(Value::as_str)
                    != Some(&update_revision)
            });
        if let Some(pod) = outdated {
            delete_pod(ctx, set, pod);
        }
    }
    // Status.
    let in_range: Vec<&Value> = by_ordinal
        .values()
        .copied()
        .filter(|p| !is_deleting(p))
        .collect();
    let min_ready = int(set, "/spec/minReadySeconds");
    let ready = in_range
        .iter()
        .filter(|p| is_active(p) && is_ready(p))
        .count();
    let available = in_range
        .iter()
        .filter(|p| is_available(ctx, p, min_ready))
        .count();
    let current_revision = set
        .pointer("/status/currentRevision")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or(&update_revision)
        .to_string();
    let with_revision = |r: &str| {
        in_range
            .iter()
            .filter(|p| {
                p.pointer(&format!("/metadata/labels/{REVISION_LABEL}"))
                    .and_then(Value::as_str)
                    == Some(r)
            })
            .count()
    };
    let updated = with_revision(&update_revision);
    let done = i64::try_from(updated).unwrap_or(0) == replicas && ready == updated;
    let (current_revision, current) = if done {
        (update_revision.clone(), updated)
    } else {
        let c = with_revision(&current_revision);
        (current_revision, c)
    };
    let observed = generation(set);
    ctx.update_status(&ty, ns, name, CONTROLLER_MANAGER, |o| {
        let collisions = int(o, "/status/collisionCount");
        let mut status = json!({
            "observedGeneration": observed,
            "replicas": in_range.len(),
            "readyReplicas": ready,
            "availableReplicas": available,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": collisions,
        });
        if let Some(s) = status.as_object_mut() {
            for k in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
                if s.get(k) == Some(&json!(0)) {
                    s.remove(k);
                }
            }
        }
        o["status"] = status;
    });
}

/// Creates ordinal `i` of a StatefulSet (and its volume claims).
fn create_pod(ctx: &Ctx, set: &Value, i: i64, revision: &str) {
    let Some(pods_ty) = ctx.ty("", "v1", "pods") else {
        return;
    };
    let (ns, name) = (meta_str(set, "namespace"), meta_str(set, "name"));
    let pod_name = format!("{name}-{i}");
    let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut pod = pod_from_template(
        &template,
        ns,
        Some(&pod_name),
        &format!("{name}-"),
        controller_ref(set, "apps/v1", "StatefulSet"),
    );
    set_label(&mut pod, REVISION_LABEL, revision);
    set_label(&mut pod, "statefulset.kubernetes.io/pod-name", &pod_name);
    set_label(&mut pod, "apps.kubernetes.io/pod-index", &i.to_string());
    pod["spec"]["hostname"] = json!(pod_name);
    if let Some(service) = set
        .pointer("/spec/serviceName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        pod["spec"]["subdomain"] = json!(service);
    }
    for claim in set
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let claim_name = meta_str(claim, "name");
        let pvc_name = format!("{claim_name}-{pod_name}");
        ensure_claim(ctx, set, claim, &pvc_name);
        let volumes = &mut pod["spec"]["volumes"];
        if !volumes.is_array() {
            *volumes = json!([]);
        }
        if let Some(list) = volumes.as_array_mut() {
            list.retain(|v| v["name"] != claim_name);
            list.push(
                json!({"name": claim_name, "persistentVolumeClaim": {"claimName": pvc_name}}),
            );
        }
    }
    if ctx.create(&pods_ty, ns, pod, CONTROLLER_MANAGER).is_some() {
        let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
        ctx.record(
            set,
            "Normal",
            "SuccessfulCreate",
            &message,
            STS_CONTROLLER,
            None,
        );
    }
}

/// Creates a Pod's claim from a volumeClaimTemplate, if missing.
fn ensure_claim(ctx: &Ctx, set: &Value, claim: &Value, pvc_name: &str) {
    let Some(pvc_ty) = ctx.ty("", "v1", "persistentvolumeclaims") else {
        return;
    };
    let ns = meta_str(set, "namespace");
    if ctx.get(&pvc_ty, ns, pvc_name).is_some() {
        return;
    }
    let mut labels = set
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(l) = claim.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in l {
            labels[k] = v.clone();
        }
    }
    let mut meta = json!({"name": pvc_name, "namespace": ns, "labels": labels});
    if let Some(a) = claim.pointer("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    if set
        .pointer("/spec/persistentVolumeClaimRetentionPolicy/whenDeleted")
        .and_then(Value::as_str)
        == Some("Delete")
    {
        meta["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "StatefulSet", "name": meta_str(set, "name"),
            "uid": meta_str(set, "uid"), "controller": true, "blockOwnerDeletion": true,
        }]);
    }
    let pvc = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
        "spec": claim.get("spec").cloned().unwrap_or(json!({})),
    });
    ctx.create(&pvc_ty, ns, pvc, CONTROLLER_MANAGER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_the_pod_name_suffix() {
        assert_eq!(ordinal("db", "db-0"), Some(0));
        assert_eq!(ordinal("db", "db-12"), Some(12));
        assert_eq!(ordinal("db", "dbx-1"), None);
        assert_eq!(ordinal("db", "db-a"), None);
    }
}
