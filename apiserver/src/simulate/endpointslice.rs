//! The EndpointSlice controller: for each Service with a selector, one EndpointSlice (owned by the
//! Service, labelled `kubernetes.io/service-name`) listing the selected Pods that have an IP, with their
//! readiness, node and the Service's ports resolved to the Pods' target ports.

use serde_json::{Value, json};

use super::pods::{is_ready, phase};
use super::{CONTROLLER_MANAGER, Ctx, controller_ref, controller_uid};
use crate::object::{is_deleting, meta_str, now_rfc3339};

const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
const SERVICE_NAME: &str = "kubernetes.io/service-name";
const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Whether `labels` (a selector map) all hold on the Pod.
fn selected(selector: &serde_json::Map<String, Value>, pod: &Value) -> bool {
    let labels = pod.pointer("/metadata/labels");
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// A Service port's target on a Pod: a number, or a named container port.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("ports").and_then(Value::as_array))
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort"))
            .and_then(Value::as_i64)
            .or_else(|| name.parse().ok()),
        _ => port.get("port").and_then(Value::as_i64),
    }
}

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(svc_ty), Some(pods_ty), Some(slice_ty)) = (
        ctx.ty("", "v1", "services"),
        ctx.ty("", "v1", "pods"),
        ctx.ty("discovery.k8s.io", "v1", "endpointslices"),
    ) else {
        return;
    };
    let services = ctx.list(&svc_ty, None);
    let with_selector: Vec<&Value> = services
        .iter()
        .filter(|s| {
            !is_deleting(s)
                && s.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
                && s.pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
        })
        .collect();
    if with_selector.is_empty() {
        return;
    }
    let pods = ctx.list(&pods_ty, None);
    let slices = ctx.list(&slice_ty, None);
    for svc in with_selector {
        let (ns, name, uid) = (
            meta_str(svc, "namespace"),
            meta_str(svc, "name"),
            meta_str(svc, "uid"),
        );
        let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        let publish_not_ready = svc
            .pointer("/spec/publishNotReadyAddresses")
            .and_then(Value::as_bool)
            == Some(true);
        let members: Vec<&Value> = pods
            .iter()
            .filter(|p| meta_str(p, "namespace") == ns && selected(selector, p))
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .filter(|p| {
                p.pointer("/status/podIP")
                    .and_then(Value::as_str)
                    .is_some_and(|ip| !ip.is_empty())
            })
            .collect();
        let endpoints: Vec<Value> = members
            .iter()
            .map(|p| {
                let terminating = is_deleting(p);
                let ready = (is_ready(p) || publish_not_ready) && !terminating;
                let mut e = json!({
                    "addresses": [p["status"]["podIP"]],
                    "conditions": {"ready": ready, "serving": is_ready(p) || publish_not_ready, "terminating": terminating},
                    "targetRef": {"kind": "Pod", "name": meta_str(p, "name"), "namespace": ns, "uid": meta_str(p, "uid")},
                });
                if let Some(node) = p.pointer("/spec/nodeName").and_then(Value::as_str) {
                    e["nodeName"] = json!(node);
                }
                e
            })
            .collect();
        let ports: Vec<Value> = match members.first() {
            None => Vec::new(),
            Some(pod) => svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|port| {
                    let mut p = json!({
                        "name": port.get("name").and_then(Value::as_str).unwrap_or(""),
                        "port": target_port(port, pod)?,
                        "protocol": port.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                    });
                    if let Some(a) = port.get("appProtocol") {
                        p["appProtocol"] = a.clone();
                    }
                    Some(p)
                })
                .collect(),
        };
        let (endpoints, ports) = (
            if endpoints.is_empty() {
                Value::Null
            } else {
                json!(endpoints)
            },
            if ports.is_empty() {
                Value::Null
            } else {
                json!(ports)
            },
        );
        let mut labels = svc
            .pointer("/metadata/labels")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        labels[MANAGED_BY] = json!(CONTROLLER);
        labels[SERVICE_NAME] = json!(name);
        if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
            labels["service.kubernetes.io/headless"] = json!("");
        }
        let existing = slices
            .iter()
            .find(|s| meta_str(s, "namespace") == ns && controller_uid(s) == Some(uid));
        match existing {
            None => {
                let slice = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {TRIGGER: now_rfc3339()},
                        "ownerReferences": [controller_ref(svc, "v1", "Service")],
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                ctx.create(&slice_ty, ns, slice, CONTROLLER_MANAGER);
            }
            Some(slice) => {
                let same = slice.get("endpoints").unwrap_or(&Value::Null) == &endpoints
                    && slice.get("ports").unwrap_or(&Value::Null) == &ports
                    && slice.pointer("/metadata/labels") == Some(&labels);
                if same {
                    continue;
                }
                ctx.update(
                    &slice_ty,
                    ns,
                    meta_str(slice, "name"),
                    CONTROLLER_MANAGER,
                    None,
                    |o| {
                        o["endpoints"] = endpoints;
                        o["ports"] = ports;
                        o["metadata"]["labels"] = labels;
                        o["metadata"]["annotations"][TRIGGER] = json!(now_rfc3339());
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ports_resolve_numbers_names_and_default_to_the_port() {
        let pod =
            json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": 9090}), &pod),
            Some(9090)
        );
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": "http"}), &pod),
            Some(8080)
        );
        assert_eq!(target_port(&json!({"port": 80}), &pod), Some(80));
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": "nope"}), &pod),
            None
        );
    }
}
