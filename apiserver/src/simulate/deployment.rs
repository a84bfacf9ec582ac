//! The Deployment controller: one ReplicaSet per template (`{name}-{pod-template-hash}`, with the
//! revision annotations), rolling updates within maxSurge/maxUnavailable (or Recreate), scaling, old
//! ReplicaSets pruned to revisionHistoryLimit, and the status `kubectl rollout status` reads
//! (replicas, updated, ready, available, unavailable, Available and Progressing conditions).

use serde_json::{Value, json};

use super::{
    CONTROLLER_MANAGER, Ctx, by_controller, controller_ref, generation, int, set_condition,
    template_hash,
};
use crate::object::{is_deleting, meta_str};

const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH: &str = "pod-template-hash";
/// The component name on the Deployment controller's Events.
const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";

/// An int-or-percent (`"25%"` or `1`) of `total`, rounded up or down.
pub(super) fn scaled(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// A template without the `pod-template-hash` label (and null metadata fields, which typed objects
/// cannot tell from absent ones), for comparing a ReplicaSet's with a Deployment's.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|_, v| !v.is_null());
    }
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH);
        if labels.is_empty()
            && let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    t
}

fn revision(rs: &Value) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    int(rs, "/spec/replicas")
}

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(d_ty), Some(rs_ty)) = (
        ctx.ty("apps", "v1", "deployments"),
        ctx.ty("apps", "v1", "replicasets"),
    ) else {
        return;
    };
    let deployments = ctx.list(&d_ty, None);
    if deployments.is_empty() {
        return;
    }
    let mut owned = by_controller(ctx.list(&rs_ty, None));
    for d in &deployments {
        let sets = owned.remove(meta_str(d, "uid")).unwrap_or_default();
        if !is_deleting(d) {
            sync(ctx, d, sets);
        }
    }
}

/// The rollout parameters of a Deployment.
struct Plan {
    replicas: i64,
    surge: i64,
    unavailable: i64,
    recreate: bool,
}

impl Plan {
    fn of(d: &Value) -> Plan {
        let replicas = int(d, "/spec/replicas").max(0);
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let ru = d.pointer("/spec/strategy/rollingUpdate");
        let (mut surge, mut unavailable) = if recreate {
            (0, 0)
        } else {
            (
                scaled(ru.and_then(|r| r.get("maxSurge")), replicas, true, 1),
                scaled(ru.and_then(|r| r.get("maxUnavailable")), replicas, false, 0),
            )
        };
        if !recreate && surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        surge = surge.max(0);
        unavailable = unavailable.clamp(0, replicas);
        Plan {
            replicas,
            surge,
            unavailable,
            recreate,
        }
    }
}

fn sync(ctx: &Ctx, d: &Value, sets: Vec<Value>) {
    let Some(rs_ty) = ctx.ty("apps", "v1", "replicasets") else {
        return;
    };
    let (ns, name) = (meta_str(d, "namespace"), meta_str(d, "name"));
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let plan = Plan::of(d);
    let (new, mut old): (Vec<Value>, Vec<Value>) = sets.into_iter().partition(|rs| {
        rs.pointer("/spec/template").map(without_hash) == Some(without_hash(&template))
    });
    let mut new = new.into_iter().next();
    old.sort_by_key(|rs| (revision(rs), meta_str(rs, "creationTimestamp").to_string()));
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let max_old_revision = old.iter().map(revision).max().unwrap_or(0);
    let mut created_new = None;
    if new.is_none() && !paused {
        let collisions = int(d, "/status/collisionCount");
        let hash = template_hash(&without_hash(&template), collisions);
        let initial = if plan.recreate {
            if old
                .iter()
                .any(|rs| int(rs, "/status/replicas") > 0 || spec_replicas(rs) > 0)
            {
                0
            } else {
                plan.replicas
            }
        } else {
            let current: i64 = old.iter().map(spec_replicas).sum();
            if current == 0 {
                plan.replicas
            } else {
                (plan.replicas + plan.surge - current).clamp(0, plan.replicas)
            }
        };
        let mut rs_template = template.clone();
        super::set_label(&mut rs_template, HASH, &hash);
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        selector["matchLabels"][HASH] = json!(hash);
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels[HASH] = json!(hash);
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{name}-{hash}"),
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    DESIRED: plan.replicas.to_string(),
                    MAX_REPLICAS: (plan.replicas + plan.surge).to_string(),
                    REVISION: (max_old_revision + 1).to_string(),
                },
                "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": int(d, "/spec/minReadySeconds"),
                "selector": selector,
                "template": rs_template,
            },
        });
        match ctx.create(&rs_ty, ns, rs, CONTROLLER_MANAGER) {
            Some(rs) => {
                let owner_gone = ctx
                    .ty("apps", "v1", "deployments")
                    .is_some_and(|t| !ctx.exists(&t, ns, name, meta_str(d, "uid")));
                if owner_gone {
                    let _ = ctx.delete(&rs_ty, ns, meta_str(&rs, "name"), meta_str(&rs, "uid"));
                    return;
                }
                if initial > 0 {
                    let message = format!(
                        "Scaled up replica set {} from 0 to {initial}",
                        meta_str(&rs, "name")
                    );
                    ctx.record(
                        d,
                        "Normal",
                        "ScalingReplicaSet",
                        &message,
                        DEPLOYMENT_CONTROLLER,
                        None,
                    );
                }
                created_new = Some(meta_str(&rs, "name").to_string());
                new = Some(rs);
            }
            None => {
                // A ReplicaSet of that name exists with another template: a hash collision.
                if ctx.get(&rs_ty, ns, &format!("{name}-{hash}")).is_some()
                    && let Some(d_ty) = ctx.ty("apps", "v1", "deployments")
                {
                    ctx.update_status(&d_ty, ns, name, CONTROLLER_MANAGER, |o| {
                        o["status"]["collisionCount"] = json!(collisions + 1);
                    });
                }
                return;
            }
        }
    }
    if !paused && let Some(new_rs) = &new {
        roll(ctx, d, &plan, new_rs, &old, max_old_revision);
    }
    prune_history(ctx, d, &old);
    // Re-read what the rollout changed, then report.
    let owned: Vec<Value> = ctx
        .list(&rs_ty, Some(ns))
        .into_iter()
        .filter(|rs| super::controller_uid(rs) == Some(meta_str(d, "uid")))
        .collect();
    let new_name = new.as_ref().map(|rs| meta_str(rs, "name").to_string());
    report(
        ctx,
        d,
        &plan,
        &owned,
        new_name.as_deref(),
        created_new.as_deref(),
    );
}

/// One step of the rollout: the new ReplicaSet scaled up and the old ones down, as far as
/// maxSurge and maxUnavailable allow now (Recreate: old ones to zero first).
fn roll(ctx: &Ctx, d: &Value, plan: &Plan, new_rs: &Value, old: &[Value], max_old_revision: i64) {
    let Some(rs_ty) = ctx.ty("apps", "v1", "replicasets") else {
        return;
    };
    let ns = meta_str(d, "namespace");
    let scale = |rs: &Value, to: i64| {
        let annotations = [
            (DESIRED, plan.replicas.to_string()),
            (MAX_REPLICAS, (plan.replicas + plan.surge).to_string()),
        ];
        let is_new = meta_str(rs, "uid") == meta_str(new_rs, "uid");
        let min_ready = int(d, "/spec/minReadySeconds");
        let from = spec_replicas(rs);
        if from != to {
            let way = if to > from { "up" } else { "down" };
            let message = format!(
                "Scaled {way} replica set {} from {from} to {to}",
                meta_str(rs, "name")
            );
            ctx.record(
                d,
                "Normal",
                "ScalingReplicaSet",
                &message,
                DEPLOYMENT_CONTROLLER,
                None,
            );
        }
        ctx.update(
            &rs_ty,
            ns,
            meta_str(rs, "name"),
            CONTROLLER_MANAGER,
            None,
            |o| {
                let stale_revision = is_new && revision(o) <= max_old_revision;
                o["spec"]["replicas"] = json!(to);
                o["spec"]["minReadySeconds"] = json!(min_ready);
                let a = &mut o["metadata"]["annotations"];
                if !a.is_object() {
                    *a = json!({});
                }
                for (k, v) in &annotations {
                    a[*k] = json!(v);
                }
                if stale_revision {
                    a[REVISION] = json!((max_old_revision + 1).to_string());
                }
            },
        );
    };
    let new_spec = spec_replicas(new_rs);
    let old_total: i64 = old.iter().map(spec_replicas).sum();
    if plan.recreate {
        for rs in old.iter().filter(|rs| spec_replicas(rs) > 0) {
            scale(rs, 0);
        }
        let old_pods: i64 = old.iter().map(|rs| int(rs, "/status/replicas")).sum();
        if old_pods == 0 && old_total == 0 {
            scale(new_rs, plan.replicas);
        } else {
            scale(new_rs, new_spec);
        }
        return;
    }
    if old_total == 0 {
        scale(new_rs, plan.replicas);
        return;
    }
    // Scale up the new ReplicaSet within maxSurge.
    let all = new_spec + old_total;
    let mut target = new_spec;
    if new_spec > plan.replicas {
        target = plan.replicas;
    } else if all < plan.replicas + plan.surge {
        target = (new_spec + plan.replicas + plan.surge - all).min(plan.replicas);
    }
    scale(new_rs, target);
    // Scale down old ReplicaSets within maxUnavailable: unhealthy replicas first, then available ones.
    let min_available = plan.replicas - plan.unavailable;
    let new_unavailable = target - int(new_rs, "/status/availableReplicas");
    let mut all = target + old_total;
    let mut budget = all - min_available - new_unavailable.max(0);
    let mut remaining: Vec<(Value, i64)> = old
        .iter()
        .map(|rs| (rs.clone(), spec_replicas(rs)))
        .collect();
    for (rs, spec) in &mut remaining {
        if budget <= 0 {
            break;
        }
        let unhealthy = (*spec - int(rs, "/status/availableReplicas"))
            .max(0)
            .min(budget);
        if unhealthy > 0 {
            *spec -= unhealthy;
            budget -= unhealthy;
            all -= unhealthy;
        }
    }
    let available: i64 = int(new_rs, "/status/availableReplicas")
        + remaining
            .iter()
            .map(|(rs, spec)| int(rs, "/status/availableReplicas").min(*spec))
            .sum::<i64>();
    let mut down = (available - min_available).max(0);
    for (_, spec) in &mut remaining {
        if down <= 0 {
            break;
        }
        let cut = (*spec).min(down);
        *spec -= cut;
        down -= cut;
    }
    let _ = all;
    for (rs, spec) in &remaining {
        if *spec != spec_replicas(rs) {
            scale(rs, *spec);
        }
    }
}

/// Deletes old ReplicaSets with no replicas beyond `revisionHistoryLimit` (oldest first).
fn prune_history(ctx: &Ctx, d: &Value, old: &[Value]) {
    let Some(rs_ty) = ctx.ty("apps", "v1", "replicasets") else {
        return;
    };
    let limit = d
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0);
    let idle: Vec<&Value> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && int(rs, "/status/replicas") == 0)
        .collect();
    let surplus = idle
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    for rs in idle.into_iter().take(surplus) {
        let _ = ctx.delete(
            &rs_ty,
            meta_str(rs, "namespace"),
            meta_str(rs, "name"),
            meta_str(rs, "uid"),
        );
    }
}

/// The Deployment's revision annotation and status, from its ReplicaSets.
fn report(
    ctx: &Ctx,
    d: &Value,
    plan: &Plan,
    sets: &[Value],
    new: Option<&str>,
    created: Option<&str>,
) {
    let Some(d_ty) = ctx.ty("apps", "v1", "deployments") else {
        return;
    };
    let (ns, name) = (meta_str(d, "namespace"), meta_str(d, "name"));
    let new_rs = new.and_then(|n| sets.iter().find(|rs| meta_str(rs, "name") == n));
    if let Some(rs) = new_rs {
        let rev = revision(rs).to_string();
        let current = d
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str);
        if current != Some(rev.as_str()) {
            ctx.update(&d_ty, ns, name, CONTROLLER_MANAGER, None, |o| {
                let a = &mut o["metadata"]["annotations"];
                if !a.is_object() {
                    *a = json!({});
                }
                a[REVISION] = json!(rev);
            });
        }
    }
    let sum = |p: &str| sets.iter().map(|rs| int(rs, p)).sum::<i64>();
    let replicas = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let terminating = sum("/status/terminatingReplicas");
    let updated = new_rs.map_or(0, |rs| int(rs, "/status/replicas"));
    let total_spec: i64 = sets.iter().map(spec_replicas).sum();
    let unavailable = (total_spec - available).max(0);
    let observed = generation(d);
    let new_name = new.unwrap_or_default().to_string();
    let complete = updated == plan.replicas
        && replicas == plan.replicas
        && available == plan.replicas
        && new_rs.is_some_and(|rs| int(rs, "/status/observedGeneration") >= generation(rs));
    // Progress, as the controller judges it: more updated, ready or available replicas, or fewer old ones.
    let before = |p: &str| int(d, &format!("/status/{p}"));
    let old_now = replicas - updated;
    let old_before = before("replicas") - before("updatedReplicas");
    let progressed = updated > before("updatedReplicas")
        || ready > before("readyReplicas")
        || available > before("availableReplicas")
        || old_now < old_before;
    let deadline = d
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)
        .filter(|_| d.pointer("/spec/paused").and_then(Value::as_bool) != Some(true));
    let last_progress = super::condition(d, "Progressing")
        .and_then(|c| c.get("lastUpdateTime"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    let timed_out = match (deadline, last_progress) {
        (Some(limit), Some(since)) if !complete && !progressed && created.is_none() => {
            let left = since + limit - jiff::Timestamp::now().as_second();
            if left > 0 {
                ctx.wake_at(
                    std::time::Instant::now()
                        + std::time::Duration::from_secs(u64::try_from(left).unwrap_or(1)),
                );
            }
            left <= 0
        }
        _ => false,
    };
    ctx.update_status(&d_ty, ns, name, CONTROLLER_MANAGER, |o| {
        let mut status = o.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = json!(observed);
        status["replicas"] = json!(replicas);
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        status["terminatingReplicas"] = json!(terminating);
        if let Some(s) = status.as_object_mut() {
            if unavailable > 0 {
                s.insert("unavailableReplicas".into(), json!(unavailable));
            } else {
                s.remove("unavailableReplicas");
            }
            for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
                if s.get(k) == Some(&json!(0)) {
                    s.remove(k);
                }
            }
        }
        let stamps = ["lastUpdateTime", "lastTransitionTime"];
        let available_cond = if available >= plan.replicas - plan.unavailable {
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
        } else {
            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
        };
        let progressing = if let Some(c) = created {
            Some(json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated", "message": format!("Created new replica set \"{c}\"")}))
        } else if complete {
            Some(json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{new_name}\" has successfully progressed.")}))
        } else if timed_out {
            Some(json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": format!("ReplicaSet \"{new_name}\" has timed out progressing.")}))
        } else if new_rs.is_some()
            && (progressed
                || super::condition(o, "Progressing")
                    .is_none_or(|c| c["reason"] != "ProgressDeadlineExceeded"))
        {
            Some(json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": format!("ReplicaSet \"{new_name}\" is progressing.")}))
        } else {
            None
        };
        // Set in the order the controller sets them: an updated condition moves last.
        if created.is_some() {
            if let Some(p) = progressing {
                set_condition(&mut status, p, &stamps);
            }
            set_condition(&mut status, available_cond, &stamps);
        } else {
            set_condition(&mut status, available_cond, &stamps);
            if let Some(p) = progressing {
                set_condition(&mut status, p, &stamps);
            }
        }
        // Progress refreshes the Progressing condition's lastUpdateTime, which the deadline counts from.
        if progressed
            && let Some(list) = status["conditions"].as_array_mut()
            && let Some(c) = list
                .iter_mut()
                .find(|c| c["type"] == "Progressing" && c["reason"] == "ReplicaSetUpdated")
        {
            c["lastUpdateTime"] = json!(crate::object::now_rfc3339());
        }
        o["status"] = status;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_scale_like_kubernetes_int_or_string() {
        assert_eq!(scaled(Some(&json!("25%")), 3, true, 0), 1);
        assert_eq!(scaled(Some(&json!("25%")), 3, false, 0), 0);
        assert_eq!(scaled(Some(&json!(2)), 3, true, 0), 2);
        assert_eq!(scaled(None, 3, true, 7), 7);
    }

    #[test]
    fn rolling_update_defaults_allow_progress_even_for_one_replica() {
        let d = json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        let p = Plan::of(&d);
        assert_eq!((p.surge, p.unavailable), (1, 0));
        let d = json!({"spec": {"replicas": 4, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}});
        assert_eq!(Plan::of(&d).unavailable, 1);
    }
}
