//! The create, replace and delete handlers (POST, PUT, DELETE of one object or a collection): check the
//! body and options against the URL, commit through `commit`, and answer as kube-apiserver does.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::commit::{
    Propagation, Track, WriteOpts, create_object, delete_object, field_manager, update_object,
};
use crate::error::{ApiError, ApiResult, Cause, success_deleted};
use crate::events;
use crate::object::{meta_str, metadata_mut};
use crate::openapi;
use crate::read::{Selectors, output};
use crate::registry::ResourceType;
use crate::request::Req;
use crate::response::{bytes_response, json_response};
use crate::state::AppState;

/// Checks the body's apiVersion/kind against the URL and fills them in if missing.
fn check_type(ty: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let want_av = ty.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(want_av),
        Some(av) if av == want_av => {}
        Some(av) if !ty.builtin => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: no kind \"{}\" is registered for version \"{av}\" in scheme \"pkg/runtime/scheme.go:111\"",
                ty.kind, ty.version, ty.kind, ty.kind
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(ty.kind),
        Some(k) if k == ty.kind => {}
        Some(k) if !ty.builtin => {
            // A custom resource's body is decoded as unstructured, then validated.
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(ApiError::invalid(
                &ty.group,
                k,
                name,
                vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{k}\": must be {}", ty.kind),
                    field: "kind".into(),
                }],
            ));
        }
        Some(k) => {
            // kube-apiserver's words: the decoder tried to convert one kind into the other.
            let internal = if ty.group.is_empty() {
                "core"
            } else {
                ty.group.split('.').next().unwrap_or("")
            };
            return Err(ApiError::bad_request(format!(
                "{k} in version \"{}\" cannot be handled as a {}: converting ({}.{k}) to ({internal}.{}): unknown conversion",
                ty.version, ty.kind, ty.version, ty.kind
            )));
        }
    }
    Ok(())
}

/// The namespace of the request, checked against the body's `metadata.namespace` and set on it.
fn namespace_for(r: &Req, obj: &mut Value) -> ApiResult<String> {
    let ns = r.path.namespace.clone().unwrap_or_default();
    let meta = metadata_mut(obj)?;
    if !r.ty.namespaced {
        meta.remove("namespace");
        return Ok(String::new());
    }
    match meta.get("namespace").and_then(Value::as_str) {
        Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
            tracing::debug!(body_ns, ns, "namespace of the body differs from the path's");
            Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ))
        }
        _ => {
            meta.insert("namespace".into(), json!(ns));
            Ok(ns)
        }
    }
}

/// POST: create.
///
/// # Errors
/// 400/415 for bad bodies, 404 for a missing namespace, 409 if it exists, 422 if invalid.
pub fn create(state: &AppState, r: &Req) -> ApiResult<Response> {
    if r.path.name.is_some() || r.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let mut obj = r.object_body()?;
    let warnings = openapi::check_body(r, "CreateOptions", &mut obj)?;
    check_type(&r.ty, &mut obj)?;
    let mut obj = events::to_storage(&r.ty, obj);
    let ns = namespace_for(r, &mut obj)?;
    let manager = field_manager(r);
    let stored = create_object(
        state,
        &r.ty,
        &ns,
        obj,
        Some(&manager),
        WriteOpts::from_request(r),
    )?;
    Ok(warnings.apply(bytes_response(StatusCode::CREATED, output(&r.ty, &stored)?)))
}

/// PUT: replace (main resource or `/status`).
///
/// # Errors
/// 400/415 for bad bodies or a name mismatch, 404 if missing, 409 for a stale resourceVersion, 422 if invalid.
pub fn update(state: &AppState, r: &Req) -> ApiResult<Response> {
    let name = r
        .path
        .name
        .clone()
        .ok_or_else(ApiError::method_not_allowed)?;
    let mut obj = r.object_body()?;
    let warnings = openapi::check_body(r, "UpdateOptions", &mut obj)?;
    check_type(&r.ty, &mut obj)?;
    let mut obj = events::to_storage(&r.ty, obj);
    let ns = namespace_for(r, &mut obj)?;
    let body_name = meta_str(&obj, "name");
    if body_name.is_empty() {
        metadata_mut(&mut obj)?.insert("name".into(), json!(name));
    } else if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let manager = field_manager(r);
    if state.store.get(&r.ty.storage_key(), &ns, &name).is_none() {
        // Leases and Events are created by a PUT of a missing object, as kube-apiserver's
        // strategies for them allow; everything else is 404.
        if r.path.subresource.is_none() && creates_on_update(&r.ty) {
            metadata_mut(&mut obj)?.remove("resourceVersion");
            let stored = create_object(
                state,
                &r.ty,
                &ns,
                obj,
                Some(&manager),
                WriteOpts::from_request(r),
            )?;
            return Ok(warnings.apply(bytes_response(StatusCode::CREATED, output(&r.ty, &stored)?)));
        }
        return Err(ApiError::not_found(&r.ty.group, &r.ty.resource, &name));
    }
    if meta_str(&obj, "resourceVersion").is_empty() && !allows_unconditional_update(&r.ty) {
        return Err(ApiError::invalid(
            &r.ty.group,
            &r.ty.resource,
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: 0: must be specified for an update".into(),
                field: "metadata.resourceVersion".into(),
            }],
        ));
    }
    let (stored, _) = update_object(
        state,
        &r.ty,
        &ns,
        &name,
        r.path.subresource.as_deref(),
        Track::Update {
            manager: &manager,
            subresource: r.path.subresource.as_deref(),
        },
        WriteOpts::from_request(r),
        move |_| Ok(obj),
    )?;
    Ok(warnings.apply(bytes_response(StatusCode::OK, output(&r.ty, &stored)?)))
}

/// Whether a PUT without `metadata.resourceVersion` may replace the object: not for custom
/// resources nor Leases, whose strategies in kube-apiserver refuse unconditional updates.
fn allows_unconditional_update(ty: &ResourceType) -> bool {
    ty.builtin && !(ty.group == "coordination.k8s.io" && ty.resource == "leases")
}

/// Whether a PUT of a missing object creates it (Leases and Events in kube-apiserver).
fn creates_on_update(ty: &ResourceType) -> bool {
    ty.builtin
        && ((ty.group == "coordination.k8s.io" && ty.resource == "leases")
            || (ty.resource == "events" && (ty.group.is_empty() || ty.group == "events.k8s.io")))
}

/// `propagationPolicy` (query or DeleteOptions), or the deprecated `orphanDependents: true`.
fn propagation(r: &Req, opts: &Value) -> Propagation {
    let policy = r
        .query
        .get("propagationPolicy")
        .or_else(|| opts.get("propagationPolicy").and_then(Value::as_str));
    match policy {
        Some("Orphan") => Propagation::Orphan,
        Some("Foreground") => Propagation::Foreground,
        _ if opts.get("orphanDependents").and_then(Value::as_bool) == Some(true) => {
            Propagation::Orphan
        }
        _ => Propagation::Background,
    }
}

/// Whether a DELETE that removed the object answers with the object (Pods, Services,
/// ServiceAccounts, Namespaces, as their storage in kube-apiserver does) rather than a
/// `Success` Status.
fn answers_with_object(ty: &ResourceType) -> bool {
    ty.builtin
        && ty.group.is_empty()
        && matches!(
            ty.resource.as_str(),
            "pods" | "services" | "serviceaccounts" | "namespaces"
        )
}

/// The DeleteOptions body; an empty body is `{}`.
fn delete_options(r: &Req) -> ApiResult<Value> {
    if r.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    r.options_body("DeleteOptions")
}

/// DELETE of one object.
///
/// # Errors
/// 404 if missing, 409 if a precondition fails, 400 for malformed DeleteOptions.
pub fn delete(state: &AppState, r: &Req) -> ApiResult<Response> {
    if r.path.subresource.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let name = r.path.name.clone().unwrap_or_default();
    let ns = r.path.namespace.clone().unwrap_or_default();
    let opts = delete_options(r)?;
    let dry_run = r.query.dry_run()
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "All"));
    let pre = opts.get("preconditions").cloned().unwrap_or(Value::Null);
    let (stored, gone) = delete_object(
        state,
        &r.ty,
        &ns,
        &name,
        &pre,
        dry_run,
        propagation(r, &opts),
    )?;
    if gone && !answers_with_object(&r.ty) {
        let v = stored.value()?;
        return Ok(json_response(
            StatusCode::OK,
            &success_deleted(&r.ty.group, &r.ty.resource, &name, meta_str(&v, "uid")),
        ));
    }
    Ok(bytes_response(StatusCode::OK, output(&r.ty, &stored)?))
}

/// DELETE of a collection (with selectors): deletes every match and returns them as a list.
///
/// # Errors
/// 400 for invalid selectors.
pub fn delete_collection(state: &AppState, r: &Req) -> ApiResult<Response> {
    let selectors = Selectors::from_request(r)?;
    let opts = delete_options(r)?;
    let dry_run = r.query.dry_run();
    let pre = opts.get("preconditions").cloned().unwrap_or(Value::Null);
    let (rv, items) = state
        .store
        .list(&r.ty.storage_key(), r.path.namespace.as_deref());
    let mut deleted = Vec::new();
    for (ns, name, obj) in items {
        if !selectors.matches(&ns, &name, &obj) {
            continue;
        }
        match delete_object(
            state,
            &r.ty,
            &ns,
            &name,
            &pre,
            dry_run,
            propagation(r, &opts),
        ) {
            Ok((s, _)) => {
                let mut item = s.value()?;
                // As in a list: a built-in kind's items carry no apiVersion and kind.
                if r.ty.builtin
                    && let Some(o) = item.as_object_mut()
                {
                    o.remove("apiVersion");
                    o.remove("kind");
                }
                deleted.push(item);
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": r.ty.api_version(),
            "kind": format!("{}List", r.ty.kind),
            "metadata": {"resourceVersion": state.store.current_rv().max(rv).to_string()},
            "items": deleted,
        }),
    ))
}
