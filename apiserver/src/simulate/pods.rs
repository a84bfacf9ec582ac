//! Pods: what the scheduler does (binds each unscheduled Pod to a fitting node, as `pods/binding`
//! does) and what a kwok-style kubelet does on the fake nodes (after a short delay the Pod is
//! `Running` with ready containers, an IP and the kubelet's conditions; a Job's Pod then `Succeeded`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::{Ctx, KUBELET, condition};
use crate::error::{ApiError, ApiResult};
use crate::object::{is_deleting, meta_str, metadata_mut, now_rfc3339};
use crate::state::AppState;
use crate::store::WriteOp;

/// The annotation that marks a node whose Pods the simulated kubelet runs (as kwok marks its nodes).
pub(super) const FAKE_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The Pod's phase.
pub(super) fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Not being deleted and not finished: what the workload controllers count as a replica.
pub(super) fn is_active(pod: &Value) -> bool {
    !is_deleting(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// The Pod's Ready condition is True.
pub(super) fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Ready for at least `min_ready_seconds`; when it will be, the pass is asked to run again then.
pub(super) fn is_available(ctx: &Ctx, pod: &Value, min_ready_seconds: i64) -> bool {
    if !is_active(pod) || !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = condition(pod, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let Some(since) = since else {
        return false;
    };
    let ready_for = jiff::Timestamp::now().as_second() - since.as_second();
    if ready_for >= min_ready_seconds {
        return true;
    }
    let left = u64::try_from(min_ready_seconds - ready_for).unwrap_or(1);
    ctx.wake_at(Instant::now() + std::time::Duration::from_secs(left));
    false
}

/// Binds a Pod to a node as `POST pods/{name}/binding` does: sets `spec.nodeName` and the
/// `PodScheduled` condition in one write (no managedFields entry, as kube-apiserver records none).
///
/// # Errors
/// 404 if the Pod is gone, 409 if it is already bound or being deleted.
pub(crate) fn bind(state: &AppState, ns: &str, name: &str, node: &str) -> ApiResult<()> {
    state.store.write("pods", ns, name, |current, rv| {
        let current = current.ok_or_else(|| ApiError::not_found("", "pods", name))?;
        let mut pod = current.value()?;
        if is_deleting(&pod) {
            return Err(ApiError::conflict(
                "",
                "pods",
                name,
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        let bound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound.is_empty() {
            return Err(ApiError::conflict(
                "",
                "pods",
                name,
                &format!("pod {name} is already assigned to node {bound:?}"),
            ));
        }
        pod["spec"]["nodeName"] = json!(node);
        let status = pod
            .as_object_mut()
            .map(|o| o.entry("status").or_insert_with(|| json!({})));
        if let Some(status) = status.and_then(Value::as_object_mut) {
            let conditions = status.entry("conditions").or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.retain(|c| c["type"] != "PodScheduled");
                list.push(json!({
                    "type": "PodScheduled", "status": "True",
                    "lastProbeTime": null, "lastTransitionTime": now_rfc3339(),
                }));
            }
        }
        metadata_mut(&mut pod)?.insert("resourceVersion".into(), json!(rv.to_string()));
        Ok(WriteOp::Put(pod))
    })?;
    Ok(())
}

/// Whether a node takes the Pod: Ready, and not cordoned unless the Pod tolerates that (daemons do).
fn schedulable(pod: &Value, node: &Value) -> bool {
    let cordoned = node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
    let unschedulable_taint =
        json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
    condition(node, "Ready").is_some_and(|c| c["status"] == "True")
        && (!cordoned || tolerates(pod, &unschedulable_taint))
}

/// Whether a node's labels (and name) satisfy one node selector term's requirements.
fn term_matches(term: &Value, node: &Value) -> bool {
    let labels = node.pointer("/metadata/labels");
    let label = |k: &str| -> Option<String> {
        labels
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let field = |k: &str| -> Option<String> {
        (k == "metadata.name").then(|| meta_str(node, "name").to_string())
    };
    let check = |req: &Value, value: Option<String>| {
        let value = value.as_deref();
        let values: Vec<&str> = req
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match req.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" | "Lt" => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if req["operator"] == "Gt" {
                    v > bound
                } else {
                    v < bound
                }
            }
            _ => false,
        }
    };
    let all = |key: &str, lookup: &dyn Fn(&str) -> Option<String>| {
        term.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|req| {
                check(
                    req,
                    lookup(req.get("key").and_then(Value::as_str).unwrap_or("")),
                )
            })
    };
    all("matchExpressions", &label) && all("matchFields", &field)
}

/// Whether one of the Pod's tolerations tolerates the taint.
pub(super) fn tolerates(pod: &Value, taint: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    pod.pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            let effect = field(t, "effect");
            if !effect.is_empty() && effect != field(taint, "effect") {
                return false;
            }
            let key = field(t, "key");
            if field(t, "operator") == "Exists" {
                return key.is_empty() || key == field(taint, "key");
            }
            key == field(taint, "key") && field(t, "value") == field(taint, "value")
        })
}

/// Whether a Pod's `nodeSelector`, required node affinity and tolerations (of the node's
/// NoSchedule and NoExecute taints) allow `node`.
pub(super) fn fits(pod: &Value, node: &Value) -> bool {
    fits_despite(pod, node, &["NoSchedule", "NoExecute"])
}

/// [`fits`], counting only the taints with one of `effects` (a running daemon stays on a node
/// whose NoSchedule taint it does not tolerate; only NoExecute evicts it).
pub(super) fn fits_despite(pod: &Value, node: &Value, effects: &[&str]) -> bool {
    let untolerated = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            t.get("effect")
                .and_then(Value::as_str)
                .is_some_and(|e| effects.contains(&e))
        })
        .any(|t| !tolerates(pod, t));
    if untolerated {
        return false;
    }
    if let Some(sel) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object) {
        let labels = node.pointer("/metadata/labels");
        let ok = sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !ok {
            return false;
        }
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    match terms {
        Some(terms) if !terms.is_empty() => terms.iter().any(|t| term_matches(t, node)),
        _ => true,
    }
}

/// The scheduler: every Pod without a node (and for the default scheduler) is bound to the fitting
/// schedulable node with the fewest Pods; one that fits none gets `PodScheduled=False`.
pub(super) fn schedule_all(ctx: &Ctx) {
    let (Some(pods_ty), Some(nodes_ty)) = (ctx.ty("", "v1", "pods"), ctx.ty("", "v1", "nodes"))
    else {
        return;
    };
    let pods = ctx.list(&pods_ty, None);
    let pending: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            !is_deleting(p)
                && phase(p) == "Pending"
                && p.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                && p.pointer("/spec/schedulerName")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s == "default-scheduler")
        })
        .collect();
    if pending.is_empty() {
        return;
    }
    let nodes = ctx.list(&nodes_ty, None);
    let mut load: HashMap<String, usize> = HashMap::new();
    for p in &pods {
        if let Some(n) = p.pointer("/spec/nodeName").and_then(Value::as_str)
            && super::pods::is_active(p)
        {
            *load.entry(n.to_string()).or_default() += 1;
        }
    }
    for pod in pending {
        let (ns, name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
        let best = nodes
            .iter()
            .filter(|n| schedulable(pod, n) && fits(pod, n))
            .min_by_key(|n| {
                (
                    load.get(meta_str(n, "name")).copied().unwrap_or(0),
                    meta_str(n, "name"),
                )
            });
        match best {
            Some(node) => {
                let node = meta_str(node, "name");
                match bind(&ctx.state, ns, name, node) {
                    Ok(()) => {
                        *load.entry(node.to_string()).or_default() += 1;
                        let message = format!("Successfully assigned {ns}/{name} to {node}");
                        ctx.record_action(pod, "Normal", "Scheduled", "Binding", &message);
                    }
                    Err(e) => tracing::debug!(error = %e, namespace = ns, name, "binding failed"),
                }
            }
            None => {
                let message = format!(
                    "0/{} nodes are available: {} node(s) didn't match Pod's node affinity/selector, had untolerated taints or were unschedulable.",
                    nodes.len(),
                    nodes.len()
                );
                let reported = condition(pod, "PodScheduled")
                    .is_some_and(|c| c["status"] == "False" && c["message"] == message.as_str());
                if !reported {
                    ctx.record_action(pod, "Warning", "FailedScheduling", "Scheduling", &message);
                }
                ctx.update_status(&pods_ty, ns, name, "kube-scheduler", |p| {
                    let cond = json!({
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": message, "lastProbeTime": null,
                        "lastTransitionTime": now_rfc3339(),
                    });
                    let list = &mut p["status"]["conditions"];
                    if !list.is_array() {
                        *list = json!([]);
                    }
                    if let Some(list) = list.as_array_mut() {
                        if list
                            .iter()
                            .any(|c| c["type"] == "PodScheduled" && c["message"] == cond["message"])
                        {
                            return;
                        }
                        list.retain(|c| c["type"] != "PodScheduled");
                        list.push(cond);
                    }
                });
            }
        }
    }
}

/// The fake kubelets: what each has seen of its Pods, and the IPs it handed out.
#[derive(Default)]
pub(super) struct Kubelet {
    /// When the kubelet first saw each Pod (uid) on its node.
    seen: HashMap<String, Instant>,
    /// When each Job Pod (uid) started running.
    running: HashMap<String, Instant>,
    /// The next host number to try for a Pod IP, per node.
    next_ip: HashMap<String, u32>,
}

impl Kubelet {
    /// Starts the Pods bound to fake nodes once their delay has passed, and completes Job Pods.
    pub(super) fn sync_all(&mut self, ctx: &Ctx) {
        let (Some(pods_ty), Some(nodes_ty)) = (ctx.ty("", "v1", "pods"), ctx.ty("", "v1", "nodes"))
        else {
            return;
        };
        let nodes: HashMap<String, Value> = ctx
            .list(&nodes_ty, None)
            .into_iter()
            .filter(|n| {
                n.pointer(&format!(
                    "/metadata/annotations/{}",
                    FAKE_NODE_ANNOTATION.replace('/', "~1")
                ))
                .is_some()
            })
            .map(|n| (meta_str(&n, "name").to_string(), n))
            .collect();
        let pods = ctx.list(&pods_ty, None);
        let live: HashSet<&str> = pods.iter().map(|p| meta_str(p, "uid")).collect();
        self.seen.retain(|uid, _| live.contains(uid.as_str()));
        self.running.retain(|uid, _| live.contains(uid.as_str()));
        let used_ips: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.pointer("/status/podIP").and_then(Value::as_str))
            .collect();
        let mut assigned: Vec<(String, String)> = Vec::new();
        let now = Instant::now();
        for pod in &pods {
            let node_name = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(node) = nodes.get(node_name) else {
                continue;
            };
            if is_deleting(pod) {
                continue;
            }
            let uid = meta_str(pod, "uid").to_string();
            let (ns, name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
            match phase(pod) {
                "Pending" => {
                    let seen = *self.seen.entry(uid.clone()).or_insert(now);
                    let due = seen + ctx.settings.pod_start_delay;
                    if now < due {
                        ctx.wake_at(due);
                        continue;
                    }
                    let pod_ip = self.allocate_ip(node, &used_ips, &assigned);
                    assigned.push((node_name.to_string(), pod_ip.clone()));
                    let host_ip = node_ip(node);
                    ctx.update_status(&pods_ty, ns, name, KUBELET, |p| start(p, &host_ip, &pod_ip));
                    for c in pod
                        .pointer("/spec/initContainers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .chain(
                            pod.pointer("/spec/containers")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten(),
                        )
                    {
                        let (cname, image) = (
                            c["name"].as_str().unwrap_or(""),
                            c["image"].as_str().unwrap_or(""),
                        );
                        for (reason, message) in [
                            (
                                "Pulled",
                                format!("Container image {image:?} already present on machine"),
                            ),
                            ("Created", format!("Created container: {cname}")),
                            ("Started", format!("Started container {cname}")),
                        ] {
                            ctx.record(pod, "Normal", reason, &message, KUBELET, Some(node_name));
                        }
                    }
                    self.running.insert(uid.clone(), now);
                    if owned_by_job(pod) {
                        ctx.wake_at(now + ctx.settings.job_pod_duration);
                    }
                }
                "Running" if owned_by_job(pod) => {
                    let started = *self.running.entry(uid).or_insert(now);
                    let due = started + ctx.settings.job_pod_duration;
                    if now < due {
                        ctx.wake_at(due);
                        continue;
                    }
                    ctx.update_status(&pods_ty, ns, name, KUBELET, complete);
                }
                _ => {}
            }
        }
    }

    /// A Pod IP on the node's Pod network (`10.0.{2+i}.x` for the i-th fake node), not in use.
    fn allocate_ip(
        &mut self,
        node: &Value,
        used: &HashSet<&str>,
        assigned: &[(String, String)],
    ) -> String {
        let node_name = meta_str(node, "name");
        let index: u32 = node_name
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let subnet = 2 + index.min(250);
        let next = self.next_ip.entry(node_name.to_string()).or_insert(1);
        for _ in 0..254 {
            let host = *next;
            *next = if *next >= 254 { 1 } else { *next + 1 };
            let ip = format!("10.0.{subnet}.{host}");
            if !used.contains(ip.as_str()) && !assigned.iter().any(|(_, a)| *a == ip) {
                return ip;
            }
        }
        format!("10.0.{subnet}.{}", *next)
    }
}

/// The node's InternalIP.
fn node_ip(node: &Value) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap_or("10.0.1.1")
        .to_string()
}

/// Whether a Pod's controller is a Job (its containers run to completion).
fn owned_by_job(pod: &Value) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| r["kind"] == "Job" && r["controller"] == true)
}

fn pod_condition(kind: &str, status: &str, reason: Option<&str>, at: &str) -> Value {
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// Keeps the `PodScheduled` condition the binding set, with its time.
fn scheduled_condition(pod: &Value, at: &str) -> Value {
    condition(pod, "PodScheduled")
        .cloned()
        .unwrap_or_else(|| pod_condition("PodScheduled", "True", None, at))
}

/// The status a kubelet reports once a Pod's containers run.
fn start(pod: &mut Value, host_ip: &str, pod_ip: &str) {
    let now = now_rfc3339();
    let statuses = |key: &str, running: bool| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let state = if running {
                    json!({"running": {"startedAt": now}})
                } else {
                    json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
                };
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "",
                    "containerID": format!("kwok://{}", uuid::Uuid::new_v4().simple()),
                    "lastState": {}, "ready": running, "restartCount": 0, "started": running,
                    "state": state,
                })
            })
            .collect()
    };
    let containers = statuses("containers", true);
    let init = statuses("initContainers", false);
    let scheduled = scheduled_condition(pod, &now);
    let mut status = pod.get("status").cloned().unwrap_or(json!({}));
    status["phase"] = json!("Running");
    status["conditions"] = json!([
        pod_condition("PodReadyToStartContainers", "True", None, &now),
        pod_condition("Initialized", "True", None, &now),
        pod_condition("Ready", "True", None, &now),
        pod_condition("ContainersReady", "True", None, &now),
        scheduled,
    ]);
    status["containerStatuses"] = json!(containers);
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    status["hostIP"] = json!(host_ip);
    status["hostIPs"] = json!([{"ip": host_ip}]);
    status["podIP"] = json!(pod_ip);
    status["podIPs"] = json!([{"ip": pod_ip}]);
    status["startTime"] = json!(now);
    pod["status"] = status;
}

/// The status a kubelet reports once every container exited 0.
fn complete(pod: &mut Value) {
    let now = now_rfc3339();
    let scheduled = scheduled_condition(pod, &now);
    let status = &mut pod["status"];
    status["phase"] = json!("Succeeded");
    status["conditions"] = json!([
        pod_condition("PodReadyToStartContainers", "False", None, &now),
        pod_condition("Initialized", "True", Some("PodCompleted"), &now),
        pod_condition("Ready", "False", Some("PodCompleted"), &now),
        pod_condition("ContainersReady", "False", Some("PodCompleted"), &now),
        scheduled,
    ]);
    if let Some(list) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in list {
            let started = c
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or(json!(now));
            c["state"] = json!({"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now,
                "containerID": c.get("containerID").cloned().unwrap_or(Value::Null),
            }});
            c["ready"] = json!(false);
            c["started"] = json!(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}})
    }

    #[test]
    fn node_selectors_and_required_affinity_restrict_where_a_pod_fits() {
        let a = node("a", json!({"disk": "ssd"}));
        let b = node("b", json!({}));
        let by_selector = json!({"spec": {"nodeSelector": {"disk": "ssd"}}});
        assert!(fits(&by_selector, &a) && !fits(&by_selector, &b));
        let by_name = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]
        }}}}});
        assert!(!fits(&by_name, &a) && fits(&by_name, &b));
        assert!(fits(&json!({"spec": {}}), &a));
    }

    #[test]
    fn a_tainted_node_takes_only_pods_that_tolerate_the_taint() {
        let tainted = json!({"metadata": {"name": "t"}, "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}});
        assert!(!fits(&json!({"spec": {}}), &tainted));
        let equal = json!({"spec": {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]}});
        assert!(fits(&equal, &tainted));
        let exists = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        assert!(fits(&exists, &tainted));
        let other =
            json!({"spec": {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "no"}]}});
        assert!(!fits(&other, &tainted));
        let soft = json!({"metadata": {"name": "s"}, "spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}});
        assert!(fits(&json!({"spec": {}}), &soft));
    }

    #[test]
    fn a_started_pod_is_running_and_ready_and_a_completed_one_succeeded() {
        let mut pod = json!({
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t"}]},
        });
        start(&mut pod, "10.0.1.1", "10.0.2.1");
        assert_eq!(pod["status"]["phase"], "Running");
        assert!(is_ready(&pod));
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
        assert_eq!(
            condition(&pod, "PodScheduled").map(|c| c["lastTransitionTime"].clone()),
            Some(json!("t"))
        );
        complete(&mut pod);
        assert_eq!(pod["status"]["phase"], "Succeeded");
        assert!(!is_ready(&pod));
        assert_eq!(
            pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
    }
}
