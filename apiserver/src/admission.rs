//! What kube-apiserver's default admission plugins and REST storage add to new objects beyond
//! defaulting: a Service's cluster IP, IP families and node ports (allocated, as its Service
//! storage does), and a Pod's priority, default tolerations, ServiceAccount and API access volume
//! (the Priority, DefaultTolerationSeconds and ServiceAccount admission plugins). On an update a
//! Service keeps what was allocated when the new object leaves it out.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::ResourceType;
use crate::state::AppState;

/// Service cluster IPs come from 10.0.0.0/24 (kube-apiserver's default range); .1 belongs to
/// the `kubernetes` Service.
const SERVICE_NET: [u8; 3] = [10, 0, 0];
/// Node ports come from kube-apiserver's default range.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// Where the ServiceAccount admission plugin mounts the API access volume.
const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Completes a new object of `ty` in namespace `ns`.
///
/// # Errors
/// 422 when a Service asks for a cluster IP or node port that is taken or out of range.
pub fn create(state: &AppState, ty: &ResourceType, ns: &str, obj: &mut Value) -> ApiResult<()> {
    if !ty.builtin || !ty.group.is_empty() {
        return Ok(());
    }
    match ty.resource.as_str() {
        "services" => allocate(state, ty, obj),
        "pods" => {
            if let Some(o) = obj.as_object_mut() {
                pod(o, ns);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Carries what a Service was allocated over to an update that leaves it out, as
/// kube-apiserver's Service storage does.
pub fn update(ty: &ResourceType, old: &Value, new: &mut Value) {
    if !(ty.builtin && ty.group.is_empty() && ty.resource == "services") {
        return;
    }
    let (Some(old_spec), Some(spec)) = (
        old.get("spec").and_then(Value::as_object),
        new.get_mut("spec").and_then(Value::as_object_mut),
    ) else {
        return;
    };
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let missing = match spec.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if missing && let Some(v) = old_spec.get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    let old_ports: Vec<&Value> = old_spec
        .get("ports")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("nodePort").is_some_and(|n| !n.is_null()) {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == port.get("port")
                    && o.get("protocol").unwrap_or(&json!("TCP"))
                        == port.get("protocol").unwrap_or(&json!("TCP"))
            });
            if let Some(n) = same.and_then(|o| o.get("nodePort")) {
                port.insert("nodePort".into(), n.clone());
            }
        }
    }
}

/// Every cluster IP and node port the stored Services hold.
fn taken(state: &AppState, ty: &ResourceType) -> (Vec<String>, Vec<u64>) {
    let (_, services) = state.store.list(&ty.storage_key(), None);
    let mut ips = Vec::new();
    let mut ports = Vec::new();
    for (_, _, s) in services {
        let Ok(v) = s.value() else { continue };
        if let Some(Value::Array(list)) = v.pointer("/spec/clusterIPs") {
            ips.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(Value::Array(list)) = v.pointer("/spec/ports") {
            ports.extend(list.iter().filter_map(|p| p.get("nodePort")?.as_u64()));
        }
    }
    (ips, ports)
}

fn invalid(name: &str, field: &str, value: &Value, why: &str) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {why}"),
            field: field.into(),
        }],
    )
}

fn allocate(state: &AppState, ty: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if kind == "ExternalName" {
        return Ok(());
    }
    let (ips, ports) = taken(state, ty);
    let asked = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let ip = match asked.as_deref() {
        Some("None") => "None".to_owned(),
        Some(ip) => {
            let in_range = ip
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.octets()[..3] == SERVICE_NET);
            if !in_range {
                return Err(invalid(
                    &name,
                    "spec.clusterIPs",
                    &json!([ip]),
                    "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.0.0.0/24",
                ));
            }
            if ips.iter().any(|t| t == ip) {
                return Err(invalid(
                    &name,
                    "spec.clusterIPs",
                    &json!([ip]),
                    &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                ));
            }
            ip.to_owned()
        }
        None => (2..=254)
            .map(|last| format!("10.0.0.{last}"))
            .find(|ip| !ips.contains(ip))
            .ok_or_else(|| ApiError::internal("failed to allocate a service IP: range is full"))?,
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    spec.entry("ipFamilyPolicy")
        .or_insert_with(|| json!("SingleStack"));
    if kind == "NodePort" || kind == "LoadBalancer" {
        let mut used = ports;
        if let Some(Value::Array(list)) = spec.get_mut("ports") {
            for port in list.iter_mut().filter_map(Value::as_object_mut) {
                if port.get("nodePort").is_some_and(|n| !n.is_null()) {
                    continue;
                }
                let free = NODE_PORTS
                    .map(u64::from)
                    .find(|p| !used.contains(p))
                    .ok_or_else(|| ApiError::internal("failed to allocate a node port"))?;
                used.push(free);
                port.insert("nodePort".into(), json!(free));
            }
        }
    }
    Ok(())
}

/// The Priority, DefaultTolerationSeconds and ServiceAccount admission plugins on a new Pod.
fn pod(o: &mut Map<String, Value>, _ns: &str) {
    let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        spec.entry("priority").or_insert_with(|| json!(0));
        spec.entry("preemptionPolicy")
            .or_insert_with(|| json!("PreemptLowerPriority"));
    }
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| json!([]))
        .as_array_mut();
    if let Some(tolerations) = tolerations {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = tolerations.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(key)
                    && t.get("effect")
                        .and_then(Value::as_str)
                        .is_none_or(|e| e.is_empty() || e == "NoExecute")
            });
            if !tolerated {
                tolerations.push(json!({"key": key, "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_owned();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    if spec.get("automountServiceAccountToken") == Some(&json!(false)) {
        return;
    }
    let mounted = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .any(|m| m.get("mountPath") == Some(&json!(TOKEN_MOUNT)))
            })
    };
    let volume = crate::object::generate_name("kube-api-access-");
    let mut added = false;
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut() {
                if mounted(c) {
                    continue;
                }
                if let Some(c) = c.as_object_mut() {
                    let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                    if let Some(m) = mounts.as_array_mut() {
                        m.push(json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT}));
                        added = true;
                    }
                }
            }
        }
    }
    if added {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(v) = volumes.as_array_mut() {
            v.push(json!({
                "name": volume,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    ],
                    "defaultMode": 420,
                },
            }));
        }
    }
}
