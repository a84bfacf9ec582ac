//! Structural checks every write gets before it is stored: metadata maps and lists have the right types
//! and label syntax, and the few built-in fields whose type clients rely on (ConfigMap and Secret data).

use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::ResourceType;

fn decode_error(ty: &ResourceType, field: &str, want: &str, got: &Value) -> ApiError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {kind} into Go struct field {field} of type {want}",
        ty.kind, ty.version, ty.kind
    ))
}

/// A map of strings at `path` (absent or null is fine).
fn string_map<'a>(
    ty: &ResourceType,
    obj: &'a Value,
    path: &str,
    field: &str,
) -> ApiResult<Option<&'a serde_json::Map<String, Value>>> {
    match obj.pointer(path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            if let Some((_, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(decode_error(ty, field, "string", v));
            }
            Ok(Some(m))
        }
        Some(other) => Err(decode_error(ty, field, "map[string]string", other)),
    }
}

/// Checks metadata (labels, annotations, finalizers) and built-in data fields.
///
/// # Errors
/// 400 BadRequest for wrong JSON types (as kube-apiserver's decoder reports them), 422 Invalid for
/// label keys or values with the wrong syntax.
pub fn validate(ty: &ResourceType, obj: &Value, name: &str) -> ApiResult<()> {
    let mut causes = Vec::new();
    if let Some(labels) = string_map(ty, obj, "/metadata/labels", "ObjectMeta.metadata.labels")? {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            if !kubewasm_core::is_label_key(k) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    field: "metadata.labels".into(),
                });
            }
            if !kubewasm_core::is_label_value(v) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                    field: format!("metadata.labels.{k}"),
                });
            }
        }
    }
    string_map(
        ty,
        obj,
        "/metadata/annotations",
        "ObjectMeta.metadata.annotations",
    )?;
    match obj.pointer("/metadata/finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                return Err(decode_error(
                    ty,
                    "ObjectMeta.metadata.finalizers",
                    "string",
                    bad,
                ));
            }
        }
        Some(other) => {
            return Err(decode_error(
                ty,
                "ObjectMeta.metadata.finalizers",
                "[]string",
                other,
            ));
        }
    }
    if let Some(Value::Array(items)) = obj.pointer("/metadata/finalizers") {
        for f in items.iter().filter_map(Value::as_str) {
            if !kubewasm_core::is_label_key(f) {
                causes.push(invalid_value(
                    "metadata.finalizers",
                    &json!(f),
                    "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                ));
            }
        }
    }
    owner_references(obj, &mut causes);
    if ty.builtin && ty.group.is_empty() && ty.resource == "secrets" {
        typed_secret(obj, &mut causes);
    }
    if ty.builtin && ty.group == "apps" && ty.resource == "deployments" {
        let recreate =
            obj.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        if recreate
            && obj
                .pointer("/spec/strategy/rollingUpdate")
                .is_some_and(|r| !r.is_null())
        {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: may not be specified when strategy `type` is 'Recreate'"
                    .into(),
                field: "spec.strategy.rollingUpdate".into(),
            });
        }
    }
    if ty.builtin && ty.group.is_empty() {
        match ty.resource.as_str() {
            "configmaps" => {
                string_map(ty, obj, "/data", "ConfigMap.data")?;
                string_map(ty, obj, "/binaryData", "ConfigMap.binaryData")?;
            }
            "secrets" => {
                if let Some(data) = string_map(ty, obj, "/data", "Secret.data")? {
                    for (k, v) in data {
                        let s = v.as_str().unwrap_or_default();
                        if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                            return Err(ApiError::bad_request(format!(
                                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data.{k}"
                            )));
                        }
                    }
                }
                string_map(ty, obj, "/stringData", "Secret.stringData")?;
            }
            _ => {}
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&ty.group, &ty.kind, name, causes));
    }
    Ok(())
}

/// A `FieldValueInvalid` cause, worded as kube-apiserver words it.
fn invalid_value(field: &str, value: &Value, why: &str) -> Cause {
    // A pre-rendered value (a string starting with '[' or '{') is printed as it is.
    let shown = match value {
        Value::String(s) if s.starts_with('[') || s.starts_with('{') => s.clone(),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: {why}"),
        field: field.into(),
    }
}

fn immutable(field: &str, value: &Value) -> Cause {
    invalid_value(field, value, "field is immutable")
}

fn forbidden(field: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {why}"),
        field: field.into(),
    }
}

/// `metadata.ownerReferences`: every reference names its owner fully, and at most one is the
/// controller.
fn owner_references(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(Value::Array(refs)) = obj.pointer("/metadata/ownerReferences") else {
        return;
    };
    for (i, r) in refs.iter().enumerate() {
        for key in ["apiVersion", "kind", "name", "uid"] {
            if r.get(key).and_then(Value::as_str).unwrap_or("").is_empty() {
                causes.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: must not be empty".into(),
                    field: format!("metadata.ownerReferences[{i}].{key}"),
                });
            }
        }
    }
    let controllers: Vec<&Value> = refs
        .iter()
        .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .collect();
    if controllers.len() > 1 {
        let named: Vec<String> = controllers
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r.get("kind").and_then(Value::as_str).unwrap_or(""),
                    r.get("name").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect();
        // Go prints the references with their fields in declaration order.
        let go_order: Vec<String> = refs
            .iter()
            .map(|r| {
                let fields: Vec<String> = [
                    "apiVersion",
                    "kind",
                    "name",
                    "uid",
                    "controller",
                    "blockOwnerDeletion",
                ]
                .iter()
                .filter_map(|k| r.get(*k).map(|v| format!("{k:?}:{v}")))
                .collect();
                format!("{{{}}}", fields.join(","))
            })
            .collect();
        causes.push(invalid_value(
            "metadata.ownerReferences",
            &Value::String(format!("[{}]", go_order.join(","))),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                named.join(" and ")
            ),
        ));
    }
}

/// The keys a typed Secret must carry.
fn typed_secret(obj: &Value, causes: &mut Vec<Cause>) {
    let required: &[&str] = match obj.get("type").and_then(Value::as_str) {
        Some("kubernetes.io/tls") => &["tls.crt", "tls.key"],
        Some("kubernetes.io/dockerconfigjson") => &[".dockerconfigjson"],
        Some("kubernetes.io/dockercfg") => &[".dockercfg"],
        Some("kubernetes.io/ssh-auth") => &["ssh-privatekey"],
        _ => &[],
    };
    let data = obj.get("data").and_then(Value::as_object);
    for key in required {
        if !data.is_some_and(|d| d.contains_key(*key)) {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: format!("data[{key}]"),
            });
        }
    }
}

/// What may not change in an update of a built-in kind (immutable fields, a Pod's spec beyond
/// the few mutable fields) and of any object being deleted (no new finalizers).
///
/// # Errors
/// 422 Invalid naming each field, as kube-apiserver's update validation does.
pub fn validate_update(ty: &ResourceType, old: &Value, new: &Value, name: &str) -> ApiResult<()> {
    let mut causes = Vec::new();
    if old
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        let before: Vec<&Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().collect())
            .unwrap_or_default();
        let added: Vec<String> = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| !before.contains(f))
            .filter_map(|f| f.as_str().map(|s| format!("{s:?}")))
            .collect();
        if !added.is_empty() {
            causes.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    added.join(", ")
                ),
            ));
        }
    }
    let at = |v: &Value, p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
    let changed = |p: &str| at(old, p) != at(new, p);
    match (ty.builtin, ty.group.as_str(), ty.resource.as_str()) {
        (true, "", "secrets" | "configmaps") => {
            if ty.resource == "secrets" && changed("/type") {
                causes.push(immutable("type", &at(new, "/type")));
            }
            if old.get("immutable") == Some(&json!(true)) {
                for field in ["data", "binaryData", "stringData"] {
                    if changed(&format!("/{field}"))
                        && !(field == "stringData" && at(new, "/stringData").is_null())
                    {
                        causes.push(forbidden(
                            field,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if changed("/immutable") {
                    causes.push(forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        (true, "", "services") => {
            let old_ip = at(old, "/spec/clusterIP");
            let new_ip = at(new, "/spec/clusterIP");
            if !new_ip.is_null() && new_ip != "" && old_ip != new_ip {
                causes.push(invalid_value(
                    "spec.clusterIPs[0]",
                    &json!([new_ip]),
                    "may not change once set",
                ));
            }
        }
        (true, "", "pods") if pod_spec_changed(old, new) => {
            causes.push(forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        (true, "apps", "deployments" | "replicasets" | "daemonsets")
            if changed("/spec/selector") =>
        {
            causes.push(immutable("spec.selector", &at(new, "/spec/selector")));
        }
        (true, "apps", "statefulsets") => {
            for (pointer, field) in [
                ("/spec/selector", "spec.selector"),
                ("/spec/serviceName", "spec.serviceName"),
                ("/spec/podManagementPolicy", "spec.podManagementPolicy"),
                ("/spec/volumeClaimTemplates", "spec.volumeClaimTemplates"),
            ] {
                if changed(pointer) {
                    causes.push(immutable(field, &at(new, pointer)));
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&ty.group, &ty.kind, name, causes))
    }
}

/// Whether a Pod's spec changed beyond what an update may change: its containers' images,
/// `activeDeadlineSeconds`, added tolerations, `terminationGracePeriodSeconds` and removed
/// scheduling gates.
fn pod_spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(s) = spec.as_object_mut() {
            for key in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "schedulingGates",
            ] {
                s.remove(key);
            }
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = s.get_mut(list) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        spec
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn configmap_data_must_be_strings() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "configmaps").expect("configmaps");
        assert!(validate(&ty, &json!({"data": {"a": "1"}}), "x").is_ok());
        let e = validate(&ty, &json!({"data": {"a": true}}), "x").expect_err("bool");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("ConfigMap.data"));
    }

    #[test]
    fn bad_label_values_are_422_naming_the_label() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "pods").expect("pods");
        let e = validate(
            &ty,
            &json!({"metadata": {"labels": {"app": "not ok"}}}),
            "p",
        )
        .expect_err("invalid");
        assert_eq!(e.code, 422);
        assert_eq!(e.details.causes[0].field, "metadata.labels.app");
        let e = validate(&ty, &json!({"metadata": {"labels": {"app": 1}}}), "p").expect_err("type");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn secret_data_must_be_base64() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "secrets").expect("secrets");
        assert!(validate(&ty, &json!({"data": {"k": "aGk="}}), "s").is_ok());
        assert_eq!(
            validate(&ty, &json!({"data": {"k": "%%%"}}), "s").map_err(|e| e.code),
            Err(400)
        );
    }
}
