//! CustomResourceDefinitions: validating them, registering their versions at once, validating, defaulting
//! and pruning custom objects against their schema, and removing the type and its objects on delete.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::object::now_rfc3339;
use crate::registry::{PrinterColumn, ResourceType, ScalePaths, View, storage_key};
use crate::schema::{self, FieldErrorKind};
use crate::state::AppState;
use crate::store::{Stored, WriteOp};

const CRD_GROUP: &str = "apiextensions.k8s.io";

fn is_crd(ty: &ResourceType) -> bool {
    ty.group == CRD_GROUP && ty.resource == "customresourcedefinitions"
}

fn cause(field: &str, reason: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason: reason.into(),
        message: message.into(),
        field: field.into(),
    }
}

/// Server-side rules for a write, run inside the write transaction: CRD validation and status for
/// CustomResourceDefinitions, and prune/default/validate against the schema for custom objects.
///
/// With `strict` (`fieldValidation=Strict`), fields the schema does not declare are a 400 error instead
/// of being pruned.
///
/// # Errors
/// 422 Invalid naming each offending field; 400 BadRequest for unknown fields under `strict`.
pub fn prepare(ty: &ResourceType, obj: &mut Value, name: &str, strict: bool) -> ApiResult<()> {
    if is_crd(ty) {
        let causes = validate_crd(obj, name);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&ty.group, &ty.kind, name, causes));
        }
        set_crd_status(obj);
        return Ok(());
    }
    let Some(schema) = &ty.schema else {
        return Ok(());
    };
    if strict {
        let unknown = schema::prune_reporting(schema, obj);
        if !unknown.is_empty() {
            let fields: Vec<String> = unknown
                .iter()
                .map(|e| format!("unknown field \"{}\"", e.path))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                ty.kind,
                ty.version,
                ty.kind,
                fields.join(", ")
            )));
        }
    } else {
        schema::prune(schema, obj);
    }
    schema::apply_defaults(schema, obj);
    let errors = schema::validate(schema, obj);
    let causes: Vec<Cause> = errors
        .into_iter()
        .filter(|e| e.reason != FieldErrorKind::Unknown)
        .map(|e| {
            let reason = match e.reason {
                FieldErrorKind::Required => "FieldValueRequired",
                FieldErrorKind::Enum => "FieldValueNotSupported",
                FieldErrorKind::Type => "FieldValueTypeInvalid",
                _ => "FieldValueInvalid",
            };
            cause(&e.path, reason, e.message)
        })
        .collect();
    if !causes.is_empty() {
        return Err(ApiError::invalid(&ty.group, &ty.kind, name, causes));
    }
    Ok(())
}

fn validate_crd(obj: &Value, name: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let s = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or("");
    let group = s("/group");
    let plural = s("/names/plural");
    let kind = s("/names/kind");
    if group.is_empty() {
        causes.push(cause("spec.group", "FieldValueRequired", "Required value"));
    } else if !group.contains('.') {
        causes.push(cause(
            "spec.group",
            "FieldValueInvalid",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(cause(
            "spec.names.plural",
            "FieldValueRequired",
            "Required value",
        ));
    } else if plural != plural.to_lowercase() {
        causes.push(cause(
            "spec.names.plural",
            "FieldValueInvalid",
            format!("Invalid value: {plural:?}: must be lowercase"),
        ));
    }
    if kind.is_empty() {
        causes.push(cause(
            "spec.names.kind",
            "FieldValueRequired",
            "Required value",
        ));
    }
    match s("/scope") {
        "Namespaced" | "Cluster" => {}
        "" => causes.push(cause("spec.scope", "FieldValueRequired", "Required value")),
        other => causes.push(cause(
            "spec.scope",
            "FieldValueNotSupported",
            format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""),
        )),
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "spec.versions",
            "FieldValueRequired",
            "Required value: must have at least one version",
        ));
    }
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        if v.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(cause(
                &format!("spec.versions[{i}].name"),
                "FieldValueRequired",
                "Required value",
            ));
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if !v
            .pointer("/schema/openAPIV3Schema")
            .is_some_and(Value::is_object)
        {
            causes.push(cause(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "FieldValueRequired",
                "Required value",
            ));
        }
    }
    if !versions.is_empty() && storage != 1 {
        causes.push(cause(
            "spec.versions",
            "FieldValueInvalid",
            format!(
                "Invalid value: {storage}: must have exactly one version marked as storage version"
            ),
        ));
    }
    causes
}

fn set_crd_status(obj: &mut Value) {
    let now = now_rfc3339();
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    obj["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first, then others alphabetically.
fn version_priority(v: &str) -> (u8, u64, u64, String) {
    let rest = match v.strip_prefix('v') {
        Some(r) => r,
        None => return (0, 0, 0, v.to_string()),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0, v.to_string());
    };
    let tail = &rest[digits.len()..];
    let minor = |t: &str| t.parse::<u64>().ok();
    if tail.is_empty() {
        (3, major, 0, String::new())
    } else if let Some(m) = tail.strip_prefix("beta").and_then(minor) {
        (2, major, m, String::new())
    } else if let Some(m) = tail.strip_prefix("alpha").and_then(minor) {
        (1, major, m, String::new())
    } else {
        (0, 0, 0, v.to_string())
    }
}

/// The resource types a CRD object defines (one per served version), best version first.
fn types_of(crd: &Value) -> Vec<ResourceType> {
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let s = |p: &str| {
        spec.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let strings = |p: &str| -> Vec<String> {
        spec.pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let kind = s("/names/kind");
    let singular = match s("/names/singular") {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut out: Vec<ResourceType> = spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| {
            let columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Some(PrinterColumn {
                        name: c.get("name")?.as_str()?.to_string(),
                        json_path: c.get("jsonPath")?.as_str()?.to_string(),
                        type_: text("type"),
                        format: text("format"),
                        description: text("description"),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                })
                .collect();
            ResourceType {
                group: s("/group"),
                version: v
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                resource: s("/names/plural"),
                kind: kind.clone(),
                singular: singular.clone(),
                short_names: strings("/names/shortNames"),
                categories: strings("/names/categories"),
                namespaced: s("/scope") != "Cluster",
                has_status: v.pointer("/subresources/status").is_some(),
                builtin: false,
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                columns,
                view: View::Native,
                storage_version: storage_version.clone(),
                scale: v.pointer("/subresources/scale").map(|sc| {
                    let p = |k: &str| sc.get(k).and_then(Value::as_str).map(str::to_string);
                    ScalePaths {
                        spec_replicas: p("specReplicasPath")
                            .unwrap_or_else(|| ".spec.replicas".into()),
                        status_replicas: p("statusReplicasPath")
                            .unwrap_or_else(|| ".status.replicas".into()),
                        label_selector: p("labelSelectorPath"),
                    }
                }),
            }
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(version_priority(&t.version)));
    out
}

/// After a write: (re)registers the types a CRD defines, so they are served at once.
pub fn after_write(state: &AppState, ty: &ResourceType, stored: &Stored) {
    if !is_crd(ty) {
        return;
    }
    let Ok(crd) = stored.value() else {
        return;
    };
    let types = types_of(&crd);
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    state.update_registry(|r| {
        r.remove(&group, &plural);
        let preferred = types.first().map(|t| t.version.clone());
        for t in types {
            r.add(t);
        }
        if let Some(p) = preferred {
            r.set_preferred(&group, &p);
        }
    });
}

/// After a delete: when a CRD is gone, deletes its objects (with DELETED events) and unregisters the type.
pub fn after_delete(state: &AppState, ty: &ResourceType, stored: &Stored) {
    if !is_crd(ty) {
        return;
    }
    let Ok(crd) = stored.value() else {
        return;
    };
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let key = storage_key(group, plural);
    let (_, items) = state.store.list(&key, None);
    for (ns, name, _) in items {
        let r = state.store.write(&key, &ns, &name, |current, rv| {
            let current = current.ok_or_else(|| ApiError::not_found(group, plural, &name))?;
            let mut v = current.value()?;
            v["metadata"]["resourceVersion"] = json!(rv.to_string());
            Ok(WriteOp::Delete(v))
        });
        if let Err(e) = r {
            tracing::debug!(error = %e, "custom object already gone while deleting its CRD");
        }
    }
    let group = group.to_string();
    let plural = plural.to_string();
    state.update_registry(|r| r.remove(&group, &plural));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}, "schema": {"openAPIV3Schema": {"type": "object"}}},
                ],
            },
        })
    }

    #[test]
    fn a_crd_defines_one_type_per_served_version_best_first() {
        let types = types_of(&crd());
        assert_eq!(types.len(), 2);
        assert_eq!(types[0].version, "v1");
        assert!(types[0].has_status);
        assert!(!types[1].has_status);
        assert_eq!(types[0].short_names, ["wd"]);
    }

    #[test]
    fn crd_name_must_be_plural_dot_group() {
        let causes = validate_crd(&crd(), "wrong.example.com");
        assert!(causes.iter().any(|c| c.field == "metadata.name"));
        assert!(validate_crd(&crd(), "widgets.example.com").is_empty());
    }

    #[test]
    fn version_priority_prefers_ga_then_beta_then_alpha() {
        let mut v = vec!["v1alpha1", "v2beta1", "v1", "foo", "v2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1alpha1", "foo"]);
    }
}
