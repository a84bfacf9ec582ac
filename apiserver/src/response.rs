//! Building responses: JSON bodies (from values or pre-serialized bytes), plain text, the `kind: Status`
//! body of an error, and whether the client accepts JSON at all.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;

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

/// A plain-text response.
pub(crate) fn text_response(code: StatusCode, text: &'static str) -> Response {
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

/// Whether the Accept header (if any) allows a JSON answer; protobuf-first clients list JSON or `*/*` too.
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.trim().is_empty()
        || accept.split(',').any(|m| {
            let base = m.split(';').next().unwrap_or("").trim();
            matches!(base, "application/json" | "*/*" | "application/*")
        })
}
