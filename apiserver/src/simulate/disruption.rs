//! The disruption controller: each PodDisruptionBudget's status (expectedPods, currentHealthy,
//! desiredHealthy, disruptionsAllowed, the DisruptionAllowed condition) from the Pods it selects, and
//! the budget check `pods/eviction` makes against it.

use serde_json::{Value, json};

use super::deployment::scaled;
use super::pods::{is_active, is_ready};
use super::{CONTROLLER_MANAGER, Ctx, generation, int, selects};
use crate::error::{ApiError, ApiResult, Cause};
use crate::object::{is_deleting, meta_str, now_rfc3339};
use crate::state::AppState;

/// How long an eviction's entry in `disruptedPods` is trusted before the Pod counts again (as
/// kube-controller-manager's 2 minutes).
const DISRUPTED_POD_TIMEOUT_SECS: i64 = 120;

/// Healthy, expected and desired counts of a budget over the Pods it selects.
fn counts(pdb: &Value, pods: &[&Value]) -> (i64, i64, i64) {
    let now = jiff::Timestamp::now().as_second();
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object);
    let recently_evicted = |p: &Value| {
        disrupted
            .and_then(|d| d.get(meta_str(p, "name")))
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| now - t.as_second() < DISRUPTED_POD_TIMEOUT_SECS)
    };
    let expected = pods.len() as i64;
    let healthy = pods
        .iter()
        .filter(|p| is_active(p) && is_ready(p) && !recently_evicted(p))
        .count() as i64;
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(Some(min), expected, true, 0)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(Some(max), expected, true, 0)).max(0)
    } else {
        0
    };
    (healthy, expected, desired)
}

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(ty), Some(pods_ty)) = (
        ctx.ty("policy", "v1", "poddisruptionbudgets"),
        ctx.ty("", "v1", "pods"),
    ) else {
        return;
    };
    let budgets = ctx.list(&ty, None);
    if budgets.is_empty() {
        return;
    }
    let pods = ctx.list(&pods_ty, None);
    for pdb in &budgets {
        let ns = meta_str(pdb, "namespace");
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|p| meta_str(p, "namespace") == ns && !is_deleting(p) && is_active(p))
            .filter(|p| selects(pdb.pointer("/spec/selector"), p))
            .collect();
        let (healthy, expected, desired) = counts(pdb, &selected);
        let allowed = (healthy - desired).max(0);
        let observed = generation(pdb);
        let live: Vec<&str> = selected.iter().map(|p| meta_str(p, "name")).collect();
        let now = jiff::Timestamp::now().as_second();
        ctx.update_status(&ty, ns, meta_str(pdb, "name"), CONTROLLER_MANAGER, |o| {
            let mut status = o.get("status").cloned().filter(Value::is_object).unwrap_or(json!({}));
            status["currentHealthy"] = json!(healthy);
            status["desiredHealthy"] = json!(desired);
            status["expectedPods"] = json!(expected);
            status["disruptionsAllowed"] = json!(allowed);
            status["observedGeneration"] = json!(observed);
            if let Some(d) = status.get_mut("disruptedPods").and_then(Value::as_object_mut) {
                d.retain(|name, t| {
                    live.contains(&name.as_str())
                        && t.as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                            .is_some_and(|t| now - t.as_second() < DISRUPTED_POD_TIMEOUT_SECS)
                });
                if d.is_empty()
                    && let Some(s) = status.as_object_mut()
                {
                    s.remove("disruptedPods");
                }
            }
            let cond = if allowed > 0 {
                json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "observedGeneration": observed})
            } else {
                json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "", "observedGeneration": observed})
            };
            super::set_condition(&mut status, cond, &["lastTransitionTime"]);
            o["status"] = status;
        });
    }
}

/// The eviction's budget check, as kube-apiserver's eviction storage makes it: with no budget
/// selecting the Pod (or a Pod that is not running) the eviction may go ahead; a budget that has not
/// seen its latest generation or allows no disruption refuses with 429; otherwise the budget's
/// `disruptionsAllowed` is decremented and the Pod recorded in `disruptedPods`.
///
/// # Errors
/// 429 TooManyRequests naming the budget, 500 when more than one budget selects the Pod.
pub(crate) fn check_and_decrement(state: &AppState, pod: &Value, dry_run: bool) -> ApiResult<()> {
    if is_deleting(pod) || matches!(super::pods::phase(pod), "Succeeded" | "Failed" | "Pending") {
        return Ok(());
    }
    let registry = state.registry();
    let Some(ty) = registry.get("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let ns = meta_str(pod, "namespace");
    let (_, items) = state.store.list(&ty.storage_key(), Some(ns));
    let budgets: Vec<Value> = items
        .into_iter()
        .filter_map(|(_, _, o)| o.value().ok())
        .filter(|b| selects(b.pointer("/spec/selector"), pod))
        .collect();
    let pdb = match budgets.as_slice() {
        [] => return Ok(()),
        [one] => one,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let pdb_name = meta_str(pdb, "name");
    let too_many = |retry: u64, message: String| {
        let mut e = ApiError::too_many_requests(retry);
        e.message = "Cannot evict pod as it would violate the pod's disruption budget.".into();
        e.details.retry_after = (retry > 0).then_some(retry);
        e.details.causes = vec![Cause {
            reason: "DisruptionBudget".into(),
            message,
            field: String::new(),
        }];
        e
    };
    if int(pdb, "/status/observedGeneration") < generation(pdb) {
        return Err(too_many(
            10,
            format!("The disruption budget {pdb_name} is still being processed by the server."),
        ));
    }
    let allowed = int(pdb, "/status/disruptionsAllowed");
    if allowed <= 0 {
        let healthy = int(pdb, "/status/currentHealthy");
        let desired = int(pdb, "/status/desiredHealthy");
        let message = if healthy <= desired {
            format!(
                "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
            )
        } else {
            format!("The disruption budget {pdb_name} does not allow evicting pods currently")
        };
        return Err(too_many(0, message));
    }
    if dry_run {
        return Ok(());
    }
    let pod_name = meta_str(pod, "name").to_string();
    let now = now_rfc3339();
    crate::commit::update_object(
        state,
        &ty,
        ns,
        pdb_name,
        Some("status"),
        crate::commit::Track::Update {
            manager: "kube-apiserver",
            subresource: Some("status"),
        },
        crate::commit::WriteOpts::default(),
        |old| {
            let mut new = old.clone();
            new["status"]["disruptionsAllowed"] = json!(int(old, "/status/disruptionsAllowed") - 1);
            if !new["status"]["disruptedPods"].is_object() {
                new["status"]["disruptedPods"] = json!({});
            }
            new["status"]["disruptedPods"][&pod_name] = json!(now);
            Ok(new)
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_count_ready_pods_against_min_available_or_max_unavailable() {
        let ready = json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let pending = json!({"metadata": {"name": "b"}, "status": {"phase": "Pending"}});
        let pods = [&ready, &ready, &pending];
        let min = json!({"spec": {"minAvailable": 2}});
        assert_eq!(counts(&min, &pods), (2, 3, 2));
        let max = json!({"spec": {"maxUnavailable": "50%"}});
        assert_eq!(counts(&max, &pods), (2, 3, 1));
    }
}
