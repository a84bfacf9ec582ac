//! The Pod subresources that act on the simulated cluster: `pods/log` (a short synthetic log of a
//! started container, with `container`, `tailLines`, `timestamps` and `limitBytes`), `pods/eviction`
//! (policy/v1 Eviction, refused with 429 while a PodDisruptionBudget allows no disruption) and
//! `pods/binding` (what a scheduler posts). `exec`, `attach` and `portforward` are answered in
//! `subresource.rs`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::commit::{Propagation, delete_object};
use crate::error::{ApiError, ApiResult};
use crate::object::meta_str;
use crate::registry::ResourceType;
use crate::request::Req;
use crate::response::json_response;
use crate::state::AppState;

/// The Pod subresources served here.
const SERVED: &[&str] = &["log", "eviction", "binding"];

/// Whether `sub` of `ty` is served by [`serve`].
pub(crate) fn serves(ty: &ResourceType, sub: &str) -> bool {
    ty.builtin && ty.group.is_empty() && ty.resource == "pods" && SERVED.contains(&sub)
}

/// Serves a Pod subresource request (`serves` said yes).
///
/// # Errors
/// 404 for a missing Pod, 400 for bad input, 405 for a wrong method,
/// 429 when a disruption budget refuses an eviction.
pub(crate) fn serve(state: &AppState, r: &Req) -> ApiResult<Response> {
    let sub = r.path.subresource.as_deref().unwrap_or_default();
    let ns = r.path.namespace.clone().unwrap_or_default();
    let name = r.path.name.clone().unwrap_or_default();
    let pod = || -> ApiResult<Value> {
        state
            .store
            .get("pods", &ns, &name)
            .ok_or_else(|| ApiError::not_found("", "pods", &name))?
            .value()
    };
    match (sub, &r.method) {
        ("log", &Method::GET) => log(r, &pod()?),
        ("eviction", &Method::POST) => evict(state, r, &ns, &name),
        ("binding", &Method::POST) => bind(state, r, &ns, &name),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The container a log request names (the only one when unnamed), as kube-apiserver validates it.
fn container<'a>(pod: &'a Value, asked: Option<&str>) -> ApiResult<&'a Value> {
    let name = meta_str(pod, "name");
    let list = |k: &str| {
        pod.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let all: Vec<Value> = [
        list("initContainers"),
        list("containers"),
        list("ephemeralContainers"),
    ]
    .concat();
    let find = |c: &str| {
        ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
            .flatten()
            .find(|x| x["name"] == c)
    };
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => find(c).ok_or_else(|| {
            ApiError::bad_request(format!("container {c} is not valid for pod {name}"))
        }),
        None => {
            let main = pod.pointer("/spec/containers").and_then(Value::as_array);
            match main.map(Vec::as_slice) {
                Some([only]) => Ok(only),
                None | Some([]) => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}"
                ))),
                Some(_) => {
                    let names: Vec<&str> = all.iter().filter_map(|c| c["name"].as_str()).collect();
                    Err(ApiError::bad_request(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        names.join(" ")
                    )))
                }
            }
        }
    }
}

/// `GET pods/{name}/log`.
fn log(r: &Req, pod: &Value) -> ApiResult<Response> {
    let c = container(pod, r.query.get("container"))?;
    let (name, cname) = (
        meta_str(pod, "name"),
        c["name"].as_str().unwrap_or_default(),
    );
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| {
        pod.pointer(&format!("/status/{k}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s["name"] == cname);
    let state = status.and_then(|s| s.get("state"));
    let running = state.and_then(|s| s.get("running"));
    let terminated = state.and_then(|s| s.get("terminated"));
    if running.is_none() && terminated.is_none() {
        let reason = state
            .and_then(|s| s.pointer("/waiting/reason"))
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        return Err(ApiError::bad_request(format!(
            "container {cname:?} in pod {name:?} is waiting to start: {reason}"
        )));
    }
    if r.query.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container {cname:?} in pod {name:?} not found"
        )));
    }
    let started = running
        .or(terminated)
        .and_then(|s| s.get("startedAt"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let image = c["image"].as_str().unwrap_or_default();
    let ns = meta_str(pod, "namespace");
    let mut lines: Vec<(String, String)> = vec![
        (
            started.clone(),
            format!(
                "[kubewasm dev] container {cname:?} of pod {ns}/{name} started on node {node} (image {image})"
            ),
        ),
        (
            started.clone(),
            "[kubewasm dev] this Pod is simulated: no process runs, so this log is all there is"
                .to_string(),
        ),
    ];
    if let Some(t) = terminated {
        let at = t
            .get("finishedAt")
            .and_then(Value::as_str)
            .unwrap_or(&started)
            .to_string();
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        let reason = t
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Completed");
        lines.push((
            at,
            format!("[kubewasm dev] container {cname:?} exited with code {code} ({reason})"),
        ));
    }
    if let Some(n) = r.query.get("tailLines") {
        let n: usize = n.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid tailLines {n:?}: must be a non-negative integer"
            ))
        })?;
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let stamp = r.query.flag("timestamps");
    let mut text = String::new();
    for (at, line) in lines {
        if stamp {
            let nanos = at.trim_end_matches('Z');
            text.push_str(&format!("{nanos}.000000000Z "));
        }
        text.push_str(&line);
        text.push('\n');
    }
    if let Some(limit) = r.query.get("limitBytes") {
        let limit: usize = limit.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid limitBytes {limit:?}: must be a positive integer"
            ))
        })?;
        let mut end = limit.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn success(code: u16) -> Response {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::CREATED),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}),
    )
}

/// `POST pods/{name}/eviction`: deletes the Pod unless its disruption budget forbids it.
fn evict(state: &AppState, r: &Req, ns: &str, name: &str) -> ApiResult<Response> {
    let body = r.object_body()?;
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Eviction");
    if kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Eviction)"
        )));
    }
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let pod = state
        .store
        .get("pods", ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?
        .value()?;
    let options = body.get("deleteOptions").cloned().unwrap_or(json!({}));
    let dry_run = r.query.dry_run()
        || options
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "All"));
    super::disruption::check_and_decrement(state, &pod, dry_run)?;
    let registry = state.registry();
    let ty = registry
        .get("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    let preconditions = options.get("preconditions").cloned().unwrap_or(Value::Null);
    delete_object(
        state,
        &ty,
        ns,
        name,
        &preconditions,
        dry_run,
        Propagation::Background,
    )?;
    Ok(success(201))
}

/// `POST pods/{name}/binding`: assigns the Pod to the named node.
fn bind(state: &AppState, r: &Req, ns: &str, name: &str) -> ApiResult<Response> {
    let body = r.object_body()?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "",
                "Binding",
                name,
                vec![crate::error::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "target.name".into(),
                }],
            )
        })?;
    if r.query.dry_run() {
        return Ok(success(201));
    }
    super::pods::bind(state, ns, name, node)?;
    Ok(success(201))
}
