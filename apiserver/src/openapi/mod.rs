//! OpenAPI: `/openapi/v3` (the index and one document per group/version) and `/openapi/v2` (gnostic
//! protobuf or JSON), which `kubectl explain`, `kubectl apply` (strategic merge patches, server-side
//! field validation) and client-side validation read, and server-side field validation
//! (`fieldValidation`) of write bodies against the same schemas.
//!
//! Built-in groups get kube-apiserver 1.37.2's own documents, captured from a real server by
//! `tools/k8s-openapi` and compiled in (`builtin.rs`); CRD group/versions get documents built from
//! their schemas as kube-apiserver builds them (`custom.rs`). `/openapi/v2` holds the built-in
//! groups only.

mod builtin;
mod custom;
mod fields;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::{Registry, ResourceType};
use crate::request::Req;
use crate::state::AppState;
use custom::CustomKind;

pub(crate) use fields::KindSchema;

/// The media type kubectl asks `/openapi/v2` for (`...spec.v2@v1.0+protobuf`) and the
/// Content-Type kube-apiserver answers with (the `@` replaced, as kube-openapi does).
const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2";
const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn response(content_type: &'static str, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Where the documents come from: the served types, and each CRD's `spec.names.listKind`.
struct Sources<'a> {
    registry: &'a Registry,
    list_kind: &'a dyn Fn(&ResourceType) -> Option<String>,
}

/// The custom-resource types served at a group/version (none for built-in group/versions).
fn custom_kinds<'a>(src: &Sources<'a>, group: &str, version: &str) -> Vec<CustomKind<'a>> {
    src.registry
        .all()
        .filter(|t| t.group == group && t.version == version && !t.builtin)
        .map(|t| CustomKind {
            t: t.as_ref(),
            list_kind: (src.list_kind)(t).unwrap_or_else(|| format!("{}List", t.kind)),
        })
        .collect()
}

/// A CRD's `spec.names.listKind`, read from the stored CRD.
fn stored_list_kind(state: &AppState, t: &ResourceType) -> Option<String> {
    let crd = state.store.get(
        "customresourcedefinitions.apiextensions.k8s.io",
        "",
        &format!("{}.{}", t.resource, t.group),
    )?;
    let crd = crd.value().ok()?;
    crd.pointer("/spec/names/listKind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// Whether a compiled-in document belongs in the index: the root documents always, a group's or
/// group/version's only while this server serves built-in kinds there.
fn builtin_listed(registry: &Registry, path: &str) -> bool {
    let builtin_in = |group: &str, version: Option<&str>| {
        registry
            .all()
            .any(|t| t.builtin && t.group == group && version.is_none_or(|v| t.version == v))
    };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api"] | ["apis"] | ["version"] => true,
        ["api", v] => builtin_in("", Some(v)),
        ["apis", g] => builtin_in(g, None),
        ["apis", g, v] => builtin_in(g, Some(v)),
        _ => false,
    }
}

/// A group/version's document (built-in or built from its CRDs), as served bytes with their hash.
fn v3_document(src: &Sources<'_>, path: &str) -> Option<(Bytes, String)> {
    if builtin_listed(src.registry, path) {
        return builtin::v3()
            .get(path)
            .map(|d| (d.bytes.clone(), d.hash().to_string()));
    }
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["apis", g, v] => ((*g).to_string(), (*v).to_string()),
        _ => return None,
    };
    let doc = custom::document(&custom_kinds(src, &group, &version))?;
    let bytes = serde_json::to_vec(&doc).ok()?;
    let hash = builtin::hash(&bytes);
    Some((Bytes::from(bytes), hash))
}

/// `/openapi/v3`: every document with the hash of its current content, so clients re-fetch a
/// group/version's document when a CRD changes it.
fn v3_index(src: &Sources<'_>) -> Value {
    let registry = src.registry;
    let mut paths = serde_json::Map::new();
    for (path, doc) in builtin::v3() {
        if builtin_listed(registry, path) {
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash())}),
            );
        }
    }
    let mut custom_gvs: Vec<(String, String)> = registry
        .all()
        .filter(|t| !t.builtin)
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    custom_gvs.dedup();
    for (g, v) in custom_gvs {
        let path = builtin::gv_path(&g, &v);
        if paths.contains_key(&path) {
            continue;
        }
        if let Some((_, hash)) = v3_document(src, &path) {
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// Whether the Accept header prefers the gnostic protobuf form of `/openapi/v2` over JSON (the
/// first acceptable media type wins; none means JSON), or None if it accepts neither.
fn wants_v2_protobuf(headers: &HeaderMap) -> Option<bool> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(false);
    };
    if accept.trim().is_empty() {
        return Some(false);
    }
    accept.split(',').find_map(|m| {
        let base = m.split(';').next().unwrap_or("").trim();
        if base.starts_with(V2_PROTOBUF_ACCEPT) {
            Some(true)
        } else if matches!(base, "application/json" | "*/*" | "application/*") {
            Some(false)
        } else {
            None
        }
    })
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{api/v1 | apis/g | apis/g/v | ...}`. A document
/// asked for with the index's `hash` is immutable (`Cache-Control: public, immutable`); one asked
/// for with an outdated hash is a 301 to the current one, as kube-apiserver answers.
///
/// # Errors
/// 404 NotFound for documents not served (`/openapi/v2` answers an Accept header it cannot
/// satisfy with an empty 406, as kube-apiserver does).
pub(crate) fn serve(
    state: &AppState,
    rest: &str,
    hash: Option<&str>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let rest = rest.trim_matches('/');
    let registry = state.registry();
    let list_kind = |t: &ResourceType| stored_list_kind(state, t);
    let src = Sources {
        registry: &registry,
        list_kind: &list_kind,
    };
    match rest {
        "v2" => {
            let Some(protobuf) = wants_v2_protobuf(headers) else {
                // kube-apiserver's answer has no body.
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_ACCEPTABLE;
                return Ok(r);
            };
            return Ok(if protobuf {
                response(V2_PROTOBUF_CONTENT_TYPE, builtin::v2_protobuf())
            } else {
                response("application/json", builtin::v2_json())
            });
        }
        "v3" => {
            let body = serde_json::to_vec(&v3_index(&src)).unwrap_or_default();
            return Ok(response("application/json", Bytes::from(body)));
        }
        _ => {}
    }
    if let Some(path) = rest.strip_prefix("v3/")
        && let Some((bytes, current)) = v3_document(&src, path)
    {
        let mut r = match hash {
            Some(h) if !h.is_empty() && h != current => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
                if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{path}?hash={current}"))
                {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            _ => response("application/json", bytes),
        };
        let cache = if hash == Some(current.as_str()) {
            "public, immutable"
        } else {
            "no-cache, private"
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Ok(v) = HeaderValue::from_str(&format!("\"{current}\"")) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    Err(ApiError::no_route(&format!("/openapi/{rest}")))
}

/// How a write treats fields its kind does not declare, or names twice (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in `Warning` headers (kube-apiserver's default).
    Warn,
    /// Refuse the write.
    Strict,
}

impl FieldValidation {
    /// From the request's `fieldValidation`; `options` names the options kind kube-apiserver
    /// reports an unsupported value against (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
    ///
    /// # Errors
    /// 422 Invalid for a value other than `Ignore`, `Warn` or `Strict`.
    pub fn from_request(r: &Req, options: &str) -> ApiResult<FieldValidation> {
        match r.query.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::invalid(
                "meta.k8s.io",
                options,
                "",
                vec![Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                    ),
                    field: "fieldValidation".into(),
                }],
            )),
        }
    }
}

/// What a write found: the problems to send as `Warning` headers.
#[derive(Debug, Default)]
pub(crate) struct Warnings(Vec<String>);

impl Warnings {
    /// Adds them to a response, one `Warning: 299 - "..."` header each, as kube-apiserver does.
    pub fn apply(&self, mut response: Response) -> Response {
        for w in &self.0 {
            let text = format!("299 - {}", serde_json::Value::String(w.clone()));
            if let Ok(v) = HeaderValue::from_str(&text) {
                response.headers_mut().append(header::WARNING, v);
            }
        }
        response
    }
}

/// Checks `json` against the kind's schema and drops from `obj` (the same document, decoded) the
/// fields the kind does not declare, as decoding into kube-apiserver's types does.
fn check_and_prune(ty: &ResourceType, json: &[u8], obj: &mut Value) -> Vec<String> {
    let Some(schema) = KindSchema::of(ty) else {
        return Vec::new();
    };
    let Ok(problems) = fields::check_json(schema, json) else {
        return Vec::new();
    };
    if problems.unknown {
        fields::prune(schema, obj);
    }
    problems.messages
}

fn strict_error(ty: &ResourceType, problems: &[String]) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
        problems.join(", "),
        kind = ty.kind,
        version = ty.version,
    ))
}

/// Checks a create or replace body (JSON or YAML; protobuf has no unknown fields to report) for
/// unknown and duplicate fields, and drops the unknown ones from `obj`, the decoded body.
///
/// # Errors
/// 422 for a bad `fieldValidation`; under `Strict`, 400 BadRequest with kube-apiserver's
/// `strict decoding error: ...` message naming every problem.
pub(crate) fn check_body(r: &Req, options: &str, obj: &mut Value) -> ApiResult<Warnings> {
    let mode = FieldValidation::from_request(r, options)?;
    if r.path.subresource.as_deref() == Some("scale") {
        return Ok(Warnings::default());
    }
    let problems = match r.content_type().as_str() {
        "" | "application/json" | "*/*" => check_and_prune(&r.ty, &r.body, obj),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let json = serde_json::to_vec(obj).unwrap_or_default();
            check_and_prune(&r.ty, &json, obj)
        }
        _ => Vec::new(),
    };
    match mode {
        _ if problems.is_empty() => Ok(Warnings::default()),
        FieldValidation::Strict => Err(strict_error(&r.ty, &problems)),
        FieldValidation::Warn => Ok(Warnings(problems)),
        FieldValidation::Ignore => Ok(Warnings::default()),
    }
}

/// Checks the object a merge, JSON or strategic merge patch produced, as kube-apiserver decodes
/// it: unknown fields are dropped from it, and reported as warnings or, under `Strict`, as a 422
/// naming the patched object.
///
/// # Errors
/// 422 Invalid (field `patch`) under `Strict` when the patched object has unknown fields.
pub(crate) fn check_patched(
    ty: &ResourceType,
    mode: FieldValidation,
    patched: &mut Value,
    warnings: &mut Warnings,
) -> ApiResult<()> {
    let json = serde_json::to_vec(patched).unwrap_or_default();
    let problems = check_and_prune(ty, &json, patched);
    if problems.is_empty() {
        return Ok(());
    }
    match mode {
        FieldValidation::Strict => {
            let mut e = ApiError::invalid(
                "",
                "",
                "",
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {}: strict decoding error: {}",
                        Value::String(String::from_utf8_lossy(&json).into_owned()),
                        problems.join(", ")
                    ),
                    field: "patch".into(),
                }],
            );
            // kube-apiserver names no kind or object here: the error is about the patch.
            e.details.kind = None;
            e.details.group = None;
            e.details.name = None;
            Err(e)
        }
        FieldValidation::Warn => {
            warnings.0.extend(problems);
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Refuses a server-side apply configuration that names fields its kind does not declare, as
/// kube-apiserver does whatever `fieldValidation` says: structured-merge-diff cannot build a typed
/// patch from it.
///
/// # Errors
/// 500 (no reason) naming every undeclared field.
pub(crate) fn check_apply(ty: &ResourceType, config: &Value) -> ApiResult<()> {
    let Some(schema) = KindSchema::of(ty) else {
        return Ok(());
    };
    let problems = fields::undeclared_for_apply(schema, config);
    if problems.is_empty() {
        return Ok(());
    }
    let ns = config
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let listed = if problems.len() == 1 {
        problems[0].clone()
    } else {
        format!("errors:\n  {}", problems.join("\n  "))
    };
    Err(ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({ns}/{name}; {}/{}, Kind={}): {listed}",
            ty.group, ty.version, ty.kind
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lists_served_builtin_group_versions_only() {
        let r = Registry::builtin();
        let index = v3_index(&Sources {
            registry: &r,
            list_kind: &|_| None,
        });
        let paths = index["paths"].as_object().expect("paths");
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/apps/v1"));
        assert!(
            !paths.contains_key("apis/storage.k8s.io/v1"),
            "not served here"
        );
        let url = paths["api/v1"]["serverRelativeURL"].as_str().expect("url");
        assert!(url.starts_with("/openapi/v3/api/v1?hash="));
    }

    #[test]
    fn every_builtin_group_version_has_a_compiled_in_document() {
        let r = Registry::builtin();
        for t in r.all().filter(|t| t.builtin) {
            let path = builtin::gv_path(&t.group, &t.version);
            assert!(
                builtin::v3().contains_key(&path),
                "{path} is served but has no OpenAPI document: regenerate apiserver/openapi (see tools/k8s-openapi)"
            );
        }
    }

    #[test]
    fn kubectl_v2_accept_header_selects_protobuf() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
        );
        assert_eq!(wants_v2_protobuf(&h), Some(true));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert_eq!(wants_v2_protobuf(&h), Some(false));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(wants_v2_protobuf(&h), None);
    }
}
