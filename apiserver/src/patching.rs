//! The PATCH handler (merge, JSON, strategic merge and server-side apply): turns a request into a patch
//! of the pure `patch` module and commits the result through `commit`, as a create when apply finds no object.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::commit::{Track, WriteOpts, create_object, field_manager, update_object};
use crate::error::{ApiError, ApiResult, Cause};
use crate::events;
use crate::openapi;
use crate::patch::{self, PatchError, PatchType, TypeInfo};
use crate::read::output;
use crate::registry::ResourceType;
use crate::request::Req;
use crate::response::bytes_response;
use crate::state::AppState;

/// The part of an apply configuration a write through `subresource` may change, as kube-apiserver's
/// reset fields: the main resource of a kind with a status subresource ignores `status`, and
/// `/status` ignores everything but `status`. Without this the applier would own fields the server
/// then resets.
fn applicable_config(ty: &ResourceType, subresource: Option<&str>, config: Value) -> Value {
    let Value::Object(mut fields) = config else {
        return config;
    };
    if subresource == Some("status") {
        fields.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status" | "metadata"));
        if let Some(Value::Object(meta)) = fields.get_mut("metadata") {
            meta.retain(|k, _| k == "name" || k == "namespace");
        }
    } else if ty.has_status {
        fields.remove("status");
    }
    Value::Object(fields)
}

/// Applies a merge, JSON or strategic merge patch without recording managedFields: the server
/// records them once it has reset status and applied defaults ([`Track::Update`]).
fn patch_content(
    pt: PatchType,
    info: &TypeInfo<'_>,
    current: &Value,
    body: &Value,
) -> Result<Value, PatchError> {
    let mut updated = current.clone();
    match pt {
        PatchType::Json => patch::json_patch(&mut updated, body)?,
        PatchType::Merge => patch::merge_patch(&mut updated, body)?,
        PatchType::StrategicMerge => patch::strategic_merge_patch(info, &mut updated, body)?,
        PatchType::Apply => {
            return Err(PatchError::Invalid(
                "server-side apply is not a content patch".to_owned(),
            ));
        }
    }
    Ok(updated)
}

fn patch_error(ty: &ResourceType, name: &str, e: PatchError) -> ApiError {
    match e {
        PatchError::Invalid(msg) => ApiError::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: the patch could not be applied: {msg}",
                ty.kind
            ),
        ),
        PatchError::UnsupportedMediaType(msg) => ApiError::unsupported_media_type(msg),
        PatchError::Conflict { conflicts } => {
            let n = conflicts.len();
            let lines: Vec<String> = conflicts
                .iter()
                .map(|c| format!("conflict with {:?}: {}", c.manager, c.field))
                .collect();
            let mut err = ApiError::conflict(&ty.group, &ty.resource, name, "");
            err.message = format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                lines.join("\n")
            );
            err.details.causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {:?}", c.manager),
                    field: c.field.clone(),
                })
                .collect();
            err
        }
    }
}

/// PATCH of one object (or its `/status`).
///
/// # Errors
/// 415 for unsupported content types (and strategic merge on custom resources), 400 for a malformed
/// patch or a missing fieldManager on apply, 404 if the object is missing (apply creates it instead),
/// 409 for apply conflicts or a stale resourceVersion, 422 if the patch cannot be applied or the result
/// is invalid.
pub fn handle(state: &AppState, r: &Req) -> ApiResult<Response> {
    let name = r
        .path
        .name
        .clone()
        .ok_or_else(ApiError::method_not_allowed)?;
    let ns = r.path.namespace.clone().unwrap_or_default();
    let ct = r.content_type();
    // kube-apiserver's words: a media type that is no patch type is refused before the handler
    // (a bare 415); strategic merge of a custom resource by the handler, naming what it accepts.
    let pt = PatchType::from_content_type(&ct).ok_or_else(|| {
        let mut e = ApiError::unsupported_media_type("415: Unsupported Media Type");
        e.details.always = true;
        e
    })?;
    if pt == PatchType::StrategicMerge && !r.ty.builtin {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let body: Value = if pt == PatchType::Apply {
        serde_yaml::from_slice(&r.body).map_err(|e| {
            ApiError::bad_request(format!("error decoding YAML/JSON apply configuration: {e}"))
        })?
    } else {
        serde_json::from_slice(&r.body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?
    };
    let force = r.query.flag("force");
    let manager = if pt == PatchType::Apply {
        match r.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: is required for apply patch".into(),
                        field: "fieldManager".into(),
                    }],
                ));
            }
        }
    } else {
        if force {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: may not be specified for non-apply patch".into(),
                    field: "force".into(),
                }],
            ));
        }
        if pt == PatchType::Json && !body.is_array() {
            let go_type = match &body {
                serde_json::Value::Object(_) => "object",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "bool",
                _ => "null",
            };
            return Err(ApiError::bad_request(format!(
                "error decoding patch: json: cannot unmarshal {go_type} into Go value of type []handlers.jsonPatchOp"
            )));
        }
        field_manager(r)
    };
    let av = r.ty.api_version();
    let info = TypeInfo {
        api_version: &av,
        kind: &r.ty.kind,
        builtin: r.ty.builtin,
        schema: r.ty.schema.as_ref(),
    };
    let opts = WriteOpts::from_request(r);
    let validation = openapi::FieldValidation::from_request(r, "PatchOptions")?;
    let mut warnings = openapi::Warnings::default();
    let sub = r.path.subresource.as_deref();
    if pt == PatchType::Apply {
        openapi::check_apply(&r.ty, &body)?;
    }
    let body = if pt == PatchType::Apply {
        applicable_config(&r.ty, sub, body)
    } else {
        body
    };
    if pt == PatchType::Apply
        && let Some(body_name) = body
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .filter(|n| !n.is_empty() && *n != name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let exists = state.store.get(&r.ty.storage_key(), &ns, &name).is_some();
    if pt == PatchType::Apply && !exists && sub.is_none() {
        let mut obj = patch::apply_patch(pt, &info, None, &body, &manager, force)
            .map_err(|e| patch_error(&r.ty, &name, e))?;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be an object",
            ));
        }
        obj["apiVersion"] = json!(av);
        obj["kind"] = json!(r.ty.kind);
        let meta = crate::object::metadata_mut(&mut obj)?;
        meta.insert("name".into(), json!(name));
        if r.ty.namespaced {
            meta.insert("namespace".into(), json!(ns));
        }
        let obj = events::to_storage(&r.ty, obj);
        let stored = create_object(state, &r.ty, &ns, obj, None, opts)?;
        return Ok(bytes_response(StatusCode::CREATED, output(&r.ty, &stored)?));
    }
    let ty = r.ty.clone();
    let track = if pt == PatchType::Apply {
        Track::Done
    } else {
        Track::Update {
            manager: &manager,
            subresource: sub,
        }
    };
    let (stored, _) = update_object(state, &r.ty, &ns, &name, sub, track, opts, |old| {
        let view = events::to_view(&ty, old);
        let new = if pt == PatchType::Apply {
            patch::apply_patch_subresource(pt, &info, Some(&view), &body, &manager, force, sub)
        } else {
            patch_content(pt, &info, &view, &body)
        }
        .map_err(|e| patch_error(&ty, &name, e))?;
        let mut new = new;
        if pt != PatchType::Apply {
            openapi::check_patched(&ty, validation, &mut new, &mut warnings)?;
        }
        if !new.is_object() {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: the patched object is not a JSON object",
                    ty.kind
                ),
            ));
        }
        Ok(events::to_storage(&ty, new))
    })?;
    Ok(warnings.apply(bytes_response(StatusCode::OK, output(&r.ty, &stored)?)))
}
