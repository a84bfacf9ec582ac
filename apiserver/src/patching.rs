//! The PATCH handler and managedFields tracking: wires HTTP requests to the pure `patch` module.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::api::{AppState, Req, bytes_response};
use crate::events;
use crate::patch::{self, PatchError, PatchType, TypeInfo};
use crate::read::output;
use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult, Cause};
use crate::write::{Track, WriteOpts, create_object, field_manager, update_object};

/// Records managedFields (operation "Update") for a create or PUT.
pub fn track(ty: &ResourceType, old: Option<&Value>, new: &mut Value, manager: &str) {
    let av = ty.api_version();
    let info = TypeInfo {
        api_version: &av,
        kind: &ty.kind,
        builtin: ty.builtin,
        schema: ty.schema.as_ref(),
    };
    patch::track_update(&info, old, new, manager);
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
    let name =
        r.path.name.clone().ok_or_else(|| {
            ApiError::method_not_allowed("PATCH needs an object name in the path")
        })?;
    let ns = r.path.namespace.clone().unwrap_or_default();
    let ct = r.content_type();
    let pt = PatchType::from_content_type(&ct).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{} (got {ct:?})",
            if r.ty.builtin { ", application/strategic-merge-patch+json" } else { "" }
        ))
    })?;
    if pt == PatchType::StrategicMerge && !r.ty.builtin {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not supported for custom resource {})",
            r.ty.kind
        )));
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
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
        }
    } else {
        if force {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
            ));
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
    let sub = r.path.subresource.as_deref();
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
    let (stored, _) = update_object(state, &r.ty, &ns, &name, sub, Track::Done, opts, |old| {
        let view = events::to_view(&ty, old);
        let new = patch::apply_patch(pt, &info, Some(&view), &body, &manager, force)
            .map_err(|e| patch_error(&ty, &name, e))?;
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
    Ok(bytes_response(StatusCode::OK, output(&r.ty, &stored)?))
}
