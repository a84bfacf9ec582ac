//! The HTTP entry point and the only module that knows every handler: the request log and faults, bearer
//! token authentication, dispatch to discovery, reads, writes, patches, scale and watches, and turning
//! every error (or panic) into a `kind: Status` response.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::FutureExt;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::faults::{Failure, RequestRecord};
use crate::request::{Query, Req, verb_for};
use crate::response::{accepts_json, error_response, json_response, text_response};
use crate::route::{self, Route};
use crate::state::AppState;
use crate::{
    aggregated, discovery, openapi, patching, protobuf, read, scale, simulate, subresource,
    watch as watching, write,
};

/// The axum router serving everything.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Every request: served, then its status recorded for the fault injector's response log.
async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let faults = state.faults.clone();
    let response = respond(state, req).await;
    faults.on_response(response.status().as_u16());
    response
}

/// The request log and injected faults, the bearer token check, then [`serve`]; a panic costs the request a
/// 500 and nothing more.
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
    let wants_protobuf = protobuf::wanted(req.headers());
    // A bug must cost one request a 500, never the connection or the server.
    let served = std::panic::AssertUnwindSafe(serve(&state, route, method, query, req))
        .catch_unwind()
        .await;
    let response = match served {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => {
            tracing::error!(path = %uri_path, "request handler panicked");
            error_response(&ApiError::internal(
                "the server panicked while handling the request",
            ))
        }
    };
    if wants_protobuf {
        protobuf::encode_response(response, watch).await
    } else {
        response
    }
}

/// Dispatches one authenticated request: discovery and other non-resource paths here, resource requests
/// to their handler by verb (after reading the body within the size limit).
async fn serve(
    state: &Arc<AppState>,
    route: Route,
    method: Method,
    query: Query,
    req: Request,
) -> ApiResult<Response> {
    let read_only = || -> ApiResult<()> {
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::method_not_allowed());
        }
        Ok(())
    };
    let non_resource = |v: Value| -> ApiResult<Response> {
        read_only()?;
        Ok(json_response(StatusCode::OK, &v))
    };
    // Objects and discovery documents have a protobuf form (custom resources excepted, below).
    let protobuf_resource = protobuf::wanted(req.headers())
        && matches!(
            route,
            Route::Resource(_)
                | Route::CoreVersions
                | Route::Groups
                | Route::Group(_)
                | Route::GroupVersion(..)
        );
    if !accepts_json(req.headers())
        && !protobuf_resource
        && !matches!(route, Route::Health | Route::OpenApi(_))
    {
        let mut e = ApiError::new(
            406,
            "NotAcceptable",
            "406: Not Acceptable\n\nAvailable representations: application/json, application/vnd.kubernetes.protobuf",
        );
        e.details.always = true;
        return Err(e);
    }
    let registry = state.registry();
    match route {
        Route::CoreVersions | Route::Groups if aggregated::wanted(req.headers()) => {
            read_only()?;
            Ok(aggregated::response(
                &registry,
                matches!(route, Route::CoreVersions),
            ))
        }
        Route::CoreVersions => non_resource(discovery::core_versions(&req)),
        Route::Groups => non_resource(discovery::groups(&registry)),
        Route::Group(g) => match discovery::group(&registry, &g) {
            Some(v) => non_resource(v),
            None => Ok(page_not_found()),
        },
        Route::GroupVersion(g, _) if !registry.has_group(&g) => Ok(page_not_found()),
        Route::GroupVersion(g, v) => match discovery::resources(&registry, &g, &v) {
            Some(doc) => non_resource(doc),
            None => Err(ApiError::no_route(req.uri().path())),
        },
        Route::Version => non_resource(discovery::version()),
        Route::Health => Ok(text_response(StatusCode::OK, "ok")),
        Route::OpenApi(rest) => openapi::serve(state, &rest, query.get("hash"), req.headers()),
        Route::Unknown => Ok(page_not_found()),
        Route::Resource(path) if !registry.has_group(&path.group) => Ok(page_not_found()),
        Route::Resource(path) => {
            let ty = registry
                .get(&path.group, &path.version, &path.resource)
                .ok_or_else(|| ApiError::no_route(req.uri().path()))?;
            if protobuf_resource && !ty.builtin {
                return Err(protobuf::not_acceptable());
            }
            if let Some(sub) = &path.subresource
                && !ty.serves_subresource(sub)
            {
                // A custom resource's handler takes any subresource path and finds no such object.
                return Err(match &path.name {
                    Some(name) if !ty.builtin => ApiError::not_found(&ty.group, &ty.resource, name),
                    _ => ApiError::no_route(req.uri().path()),
                });
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
            if !r.scope_ok() {
                // No route is registered for the other scope's paths.
                return Ok(page_not_found());
            }
            r.check_dry_run(verb)?;
            match r.path.subresource.as_deref() {
                None | Some("status") => {}
                Some("scale") => return scale::handle(state, &r, verb),
                Some(sub) if simulate::subresources::serves(&r.ty, sub) => {
                    return simulate::subresources::serve(state, &r);
                }
                Some(_) => return subresource::handle(state, &r, verb).await,
            }
            match verb {
                "get" => read::get(state, &r),
                "list" => read::list(state, &r),
                "watch" => watching::watch(state.clone(), &r),
                "create" if r.ty.is_review() => subresource::review(&r),
                _ if r.ty.is_review() => Err(ApiError::method_not_allowed()),
                "create" => write::create(state, &r),
                "update" => write::update(state, &r),
                "patch" => patching::handle(state, &r),
                "delete" => write::delete(state, &r),
                "deletecollection" => write::delete_collection(state, &r),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

/// What kube-apiserver answers for a path outside every served group (and any other path it does
/// not know): a plain-text 404, not a Status.
fn page_not_found() -> Response {
    text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}
