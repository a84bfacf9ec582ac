//! The HTTP entry point: request log and faults, authentication, routing to discovery, reads, writes and
//! watches, and turning every error into a `kind: Status` response.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

use crate::faults::{Failure, Faults, RequestRecord};
use crate::registry::{Registry, ResourceType};
use crate::route::{self, ResourcePath, Route};
use crate::server::Config;
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::Store;
use crate::{discovery, read, scale, watch as watching, write};

/// Shared server state.
pub(crate) struct AppState {
    pub store: Arc<Store>,
    registry: RwLock<Arc<Registry>>,
    /// Bumped on every registry change, so watches of a removed type can end.
    registry_changes: watch::Sender<u64>,
    pub faults: Faults,
    pub config: Config,
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn new(config: Config, shutdown: watch::Receiver<bool>) -> AppState {
        let store = Arc::new(Store::new(config.history_limit));
        let faults = Faults::new(store.clone());
        let state = AppState {
            store,
            registry: RwLock::new(Arc::new(Registry::builtin())),
            registry_changes: watch::channel(0).0,
            faults,
            config,
            shutdown,
        };
        write::create_initial_namespaces(&state);
        state
    }

    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().clone()
    }

    /// Replaces the registry (CRD changes).
    pub fn update_registry(&self, f: impl FnOnce(&mut Registry)) {
        let mut guard = self.registry.write();
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
        drop(guard);
        self.registry_changes.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever the registry does.
    pub fn registry_changes(&self) -> watch::Receiver<u64> {
        self.registry_changes.subscribe()
    }
}

/// The axum router serving everything.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Parsed query parameters (last value wins).
#[derive(Debug, Default)]
pub(crate) struct Query {
    params: HashMap<String, String>,
}

impl Query {
    fn parse(raw: &str) -> Query {
        let mut params = HashMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(percent_decode(k), percent_decode(v));
        }
        Query { params }
    }

    /// A parameter's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }

    /// A boolean parameter ("true"/"1").
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }

    /// Whether `dryRun=All` was given.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything a resource handler needs about one request.
pub(crate) struct Req {
    pub method: Method,
    pub path: ResourcePath,
    pub ty: Arc<ResourceType>,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// The Content-Type header without parameters, lowercased.
    pub fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// Whether the client asked for a meta.k8s.io Table.
    pub fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=Table"))
    }

    /// Decodes a JSON or YAML object body (create/update).
    ///
    /// # Errors
    /// 415 for other content types, 400 for malformed bodies or non-objects.
    pub fn object_body(&self) -> ApiResult<Value> {
        let ct = self.content_type();
        let base = ct.split(';').next().unwrap_or("").trim();
        let value: Value = match base {
            "" | "application/json" | "*/*" => serde_json::from_slice(&self.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
            })?,
            "application/yaml" | "application/x-yaml" | "text/yaml" => {
                serde_yaml::from_slice(&self.body).map_err(|e| {
                    ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
                })?
            }
            other => {
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other:?})"
                )));
            }
        };
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object (a Kubernetes resource)",
            ));
        }
        Ok(value)
    }
}

fn verb_for(method: &Method, path: &ResourcePath, query: &Query) -> (&'static str, bool) {
    let watch = path.watch_prefix || query.flag("watch");
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if path.name.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if path.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, watch)
}

/// `dryRun` takes only `All`, as kube-apiserver validates it in the write's options.
fn check_dry_run(r: &Req, verb: &str) -> ApiResult<()> {
    let Some(value) = r.query.get("dryRun") else {
        return Ok(());
    };
    if value == "All" {
        return Ok(());
    }
    let options = match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        "delete" | "deletecollection" => "DeleteOptions",
        _ => return Ok(()),
    };
    Err(ApiError::invalid(
        "meta.k8s.io",
        options,
        "",
        vec![Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: [{value:?}]: supported values: \"All\""),
            field: "dryRun".into(),
        }],
    ))
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let faults = state.faults.clone();
    let response = respond(state, req).await;
    faults.on_response(response.status().as_u16());
    response
}

async fn respond(state: Arc<AppState>, req: Request) -> Response {
    let method = req.method().clone();
    let uri_path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let query = Query::parse(&raw_query);
    let route = route::parse(&uri_path);
    let (verb, watch, resource, namespace) = match &route {
        Route::Resource(p) => {
            let (v, w) = verb_for(&method, p, &query);
            (v, w, Some(p.resource.clone()), p.namespace.clone())
        }
        Route::CoreVersions | Route::Groups | Route::Group(_) | Route::GroupVersion(..) => {
            ("discovery", false, None, None)
        }
        _ => ("other", false, None, None),
    };
    let (failure, latency) = state.faults.on_request(RequestRecord {
        verb: verb.to_string(),
        method: method.to_string(),
        path: uri_path.clone(),
        query: raw_query,
        watch,
        resource,
        namespace,
    });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(f) = failure {
        return match f {
            Failure::ServerError => error_response(&ApiError::internal("injected fault")),
            Failure::TooManyRequests { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let mut r = error_response(&ApiError::too_many_requests(secs));
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
        };
    }
    if let Some(token) = &state.config.token {
        let expected = format!("Bearer {token}");
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return error_response(&ApiError::unauthorized());
        }
    }
    // A bug must cost one request a 500, never the connection or the server.
    let served = std::panic::AssertUnwindSafe(serve(&state, route, method, query, req))
        .catch_unwind()
        .await;
    match served {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => {
            tracing::error!(path = %uri_path, "request handler panicked");
            error_response(&ApiError::internal(
                "the server panicked while handling the request",
            ))
        }
    }
}

async fn serve(
    state: &Arc<AppState>,
    route: Route,
    method: Method,
    query: Query,
    req: Request,
) -> ApiResult<Response> {
    let non_resource = |v: Value| -> ApiResult<Response> {
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on this path"
            )));
        }
        Ok(json_response(StatusCode::OK, &v))
    };
    if !accepts_json(req.headers()) && !matches!(route, Route::Health | Route::OpenApi(_)) {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
        ));
    }
    let registry = state.registry();
    match route {
        Route::CoreVersions => non_resource(discovery::core_versions(&req)),
        Route::Groups => non_resource(discovery::groups(&registry)),
        Route::Group(g) => match discovery::group(&registry, &g) {
            Some(v) => non_resource(v),
            None => Err(ApiError::no_route(req.uri().path())),
        },
        Route::GroupVersion(g, v) => match discovery::resources(&registry, &g, &v) {
            Some(doc) => non_resource(doc),
            None => Err(ApiError::no_route(req.uri().path())),
        },
        Route::Version => non_resource(discovery::version()),
        Route::Health => Ok(text_response(StatusCode::OK, "ok")),
        Route::OpenApi(rest) => discovery::openapi(&registry, &rest),
        Route::Unknown => Err(ApiError::no_route(req.uri().path())),
        Route::Resource(path) => {
            let ty = registry
                .get(&path.group, &path.version, &path.resource)
                .ok_or_else(|| ApiError::no_route(req.uri().path()))?;
            if let Some(sub) = &path.subresource
                && !(sub == "status" && ty.has_status)
                && !(sub == "scale" && ty.scale.is_some())
            {
                return Err(ApiError::no_route(req.uri().path()));
            }
            let (headers, body) = {
                let (parts, body) = req.into_parts();
                let limit = state.config.max_body_bytes;
                let collected = http_body_util::Limited::new(body, limit)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            ApiError::too_large(limit)
                        } else {
                            ApiError::bad_request(format!("failed to read request body: {e}"))
                        }
                    })?;
                (parts.headers, collected.to_bytes())
            };
            let r = Req {
                method: method.clone(),
                path,
                ty,
                query,
                headers,
                body,
            };
            let (verb, _) = verb_for(&r.method, &r.path, &r.query);
            if !ty_scope_ok(&r) {
                return Err(ApiError::no_route(&req_path(&r)));
            }
            check_dry_run(&r, verb)?;
            if r.path.subresource.as_deref() == Some("scale") {
                return scale::handle(state, &r, verb);
            }
            match verb {
                "get" => read::get(state, &r),
                "list" => read::list(state, &r),
                "watch" => watching::watch(state.clone(), &r),
                "create" => write::create(state, &r),
                "update" => write::update(state, &r),
                "patch" => write::patch(state, &r),
                "delete" => write::delete(state, &r),
                "deletecollection" => write::delete_collection(state, &r),
                _ => Err(ApiError::method_not_allowed(format!(
                    "{method} is not supported on {}",
                    r.ty.resource
                ))),
            }
        }
    }
}

/// Whether the Accept header (if any) allows a JSON answer; protobuf-first clients list JSON or `*/*` too.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.trim().is_empty()
        || accept.split(',').any(|m| {
            let base = m.split(';').next().unwrap_or("").trim();
            matches!(base, "application/json" | "*/*" | "application/*")
        })
}

fn req_path(r: &Req) -> String {
    let mut p = if r.path.group.is_empty() {
        format!("/api/{}", r.path.version)
    } else {
        format!("/apis/{}/{}", r.path.group, r.path.version)
    };
    if let Some(ns) = &r.path.namespace {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    p.push('/');
    p.push_str(&r.path.resource);
    if let Some(n) = &r.path.name {
        p.push('/');
        p.push_str(n);
    }
    p
}

/// Cluster-scoped resources cannot be addressed inside a namespace; namespaced objects need one
/// (lists across all namespaces are fine).
fn ty_scope_ok(r: &Req) -> bool {
    if !r.ty.namespaced {
        return r.path.namespace.is_none();
    }
    r.path.namespace.is_some() || (r.path.name.is_none() && r.method == Method::GET)
}

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    bytes_response(code, Bytes::from(body))
}

/// A JSON response from pre-serialized bytes.
pub(crate) fn bytes_response(code: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(code: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The `kind: Status` response for an error.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Cenv+in+%28a%29&limit=2&watch=true");
        assert_eq!(q.get("labelSelector"), Some("app=web,env in (a)"));
        assert_eq!(q.get("limit"), Some("2"));
        assert!(q.flag("watch"));
        assert_eq!(Query::parse("a=%zz%2").get("a"), Some("%zz%2"));
    }
}
