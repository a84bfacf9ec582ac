//! The `/scale` subresource (autoscaling/v1 Scale) of Deployments, StatefulSets, ReplicaSets and of CRDs
//! that declare `subresources.scale`; what `kubectl scale` uses.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::commit::{Track, WriteOpts, field_manager, update_object};
use crate::error::{ApiError, ApiResult, Cause};
use crate::patch::{self, PatchType, TypeInfo};
use crate::registry::{ResourceType, ScalePaths};
use crate::request::Req;
use crate::response::json_response;
use crate::state::AppState;

fn pointer(path: &str) -> String {
    path.replace('.', "/")
}

/// A LabelSelector object as a selector string, as Kubernetes prints it ("app=web,tier in
/// (a,b)", requirements sorted by key), or a string as is.
fn selector_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => kubewasm_core::LabelSelector::from_json(v)
            .ok()
            .map(|s| s.canonical().to_string()),
        _ => None,
    }
}

/// The Scale view of an object.
fn to_scale(paths: &ScalePaths, obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut m = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let replicas = obj
        .pointer(&pointer(&paths.spec_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let observed = obj
        .pointer(&pointer(&paths.status_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let mut status = json!({"replicas": observed});
    if let Some(sel) = paths
        .label_selector
        .as_ref()
        .and_then(|p| obj.pointer(&pointer(p)))
        .and_then(selector_string)
    {
        status["selector"] = json!(sel);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        // ScaleSpec's replicas is an int32 with omitempty: a scale to zero has an empty spec.
        "spec": if replicas == json!(0) { json!({}) } else { json!({"replicas": replicas}) },
        "status": status,
    })
}

/// Sets desired replicas (and the resourceVersion precondition, if given) on the object.
fn apply_scale(
    ty: &ResourceType,
    paths: &ScalePaths,
    old: &Value,
    scale: &Value,
) -> ApiResult<Value> {
    let name = old
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {}: must be greater than or equal to 0",
                        scale.pointer("/spec/replicas").unwrap_or(&Value::Null)
                    ),
                    field: "spec.replicas".into(),
                }],
            )
        })?;
    let mut new = old.clone();
    let mut cur = &mut new;
    let segs: Vec<&str> = paths
        .spec_replicas
        .trim_start_matches('.')
        .split('.')
        .collect();
    for (i, seg) in segs.iter().enumerate() {
        let Some(o) = cur.as_object_mut() else {
            return Err(ApiError::internal(format!(
                "{} {name}: {} is not an object path",
                ty.kind, paths.spec_replicas
            )));
        };
        if i + 1 == segs.len() {
            o.insert((*seg).to_string(), json!(replicas));
            break;
        }
        cur = o.entry((*seg).to_string()).or_insert_with(|| json!({}));
    }
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        new["metadata"]["resourceVersion"] = json!(rv);
    }
    Ok(new)
}

/// GET, PUT and PATCH of `/scale`.
///
/// # Errors
/// 404 if the object is missing, 409 for a stale resourceVersion, 422 for invalid replicas, 415 for
/// unsupported patch types (server-side apply on `/scale` is not supported).
pub fn handle(state: &AppState, r: &Req, verb: &str) -> ApiResult<Response> {
    let paths =
        r.ty.scale
            .as_ref()
            .ok_or_else(|| ApiError::no_route("scale"))?;
    let name = r.path.name.clone().unwrap_or_default();
    let ns = r.path.namespace.clone().unwrap_or_default();
    let manager = field_manager(r);
    let opts = WriteOpts::from_request(r);
    let stored = match verb {
        "get" => {
            let s = state
                .store
                .get(&r.ty.storage_key(), &ns, &name)
                .ok_or_else(|| ApiError::not_found(&r.ty.group, &r.ty.resource, &name))?;
            let scale = to_scale(paths, &s.value()?);
            if r.wants_table() {
                let opts = crate::read::table_options(r)?;
                let t = crate::printers::scale_table(&s.rv.to_string(), &scale, opts);
                return Ok(json_response(StatusCode::OK, &t));
            }
            return Ok(json_response(StatusCode::OK, &scale));
        }
        "update" => {
            let scale = r.object_body()?;
            update_object(
                state,
                &r.ty,
                &ns,
                &name,
                None,
                Track::Update {
                    manager: &manager,
                    subresource: Some("scale"),
                },
                opts,
                |old| apply_scale(&r.ty, paths, old, &scale),
            )?
            .0
        }
        "patch" => {
            let ct = r.content_type();
            let pt = PatchType::from_content_type(&ct)
                .filter(|p| *p != PatchType::Apply)
                .ok_or_else(|| {
                    ApiError::unsupported_media_type(format!(
                        "the body of the request was in an unknown format - accepted media types for /scale include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"
                    ))
                })?;
            let body: Value = serde_json::from_slice(&r.body)
                .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
            let info = TypeInfo {
                api_version: "autoscaling/v1",
                kind: "Scale",
                builtin: true,
                schema: None,
            };
            update_object(
                state,
                &r.ty,
                &ns,
                &name,
                None,
                Track::Update {
                    manager: &manager,
                    subresource: Some("scale"),
                },
                opts,
                |old| {
                    let patched = patch::apply_patch(
                        pt,
                        &info,
                        Some(&to_scale(paths, old)),
                        &body,
                        &manager,
                        false,
                    )
                    .map_err(|e| {
                        ApiError::new(
                            422,
                            "Invalid",
                            format!(
                                "Scale \"{name}\" is invalid: the patch could not be applied: {e}"
                            ),
                        )
                    })?;
                    apply_scale(&r.ty, paths, old, &patched)
                },
            )?
            .0
        }
        _ => {
            return Err(ApiError::method_not_allowed());
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &to_scale(paths, &stored.value()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selector_objects_become_selector_strings() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]});
        // Sorted by key, as kube-apiserver prints a selector.
        assert_eq!(
            selector_string(&sel).as_deref(),
            Some("app=web,!legacy,tier in (a,b)")
        );
    }
}
