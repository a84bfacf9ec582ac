//! Shared helpers for the integration tests: a running server, a kube client, raw HTTP.
#![allow(dead_code)]

pub mod kubectl;

use std::time::Duration;

use http_body_util::BodyExt;
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::Value;

/// Starts a server on an ephemeral loopback port.
pub async fn server() -> ApiServer {
    server_with(Config::default()).await
}

/// Starts a server with a custom config.
pub async fn server_with(config: Config) -> ApiServer {
    ApiServer::start(config).await.expect("server starts")
}

/// A kube client for the server, default namespace "default".
pub fn client(server: &ApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_namespace = "default".into();
    kube::Client::try_from(config).expect("client")
}

/// A raw HTTP response: status code and parsed JSON body (Null if not JSON).
pub struct Raw {
    pub code: u16,
    pub body: Value,
    pub text: String,
    pub headers: http::HeaderMap,
}

/// Sends a raw request and returns status and body.
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Raw {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    let req = b
        .body(kube::client::Body::from(body.into()))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(30), client.send(req))
        .await
        .expect("response within 30s")
        .expect("request sent");
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Raw {
        code,
        body,
        text,
        headers,
    }
}

/// GET as JSON.
pub async fn get(client: &kube::Client, path: &str) -> Raw {
    raw(client, "GET", path, None, Vec::new()).await
}

/// Sends JSON.
pub async fn send_json(client: &kube::Client, method: &str, path: &str, body: &Value) -> Raw {
    raw(
        client,
        method,
        path,
        Some("application/json"),
        serde_json::to_vec(body).expect("json"),
    )
    .await
}

/// Polls `f` until it returns Some, failing after 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 30s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a raw response is a `kind: Status` failure with this code and reason.
/// Asserts kube-apiserver's answer for a path outside every served group: a plain-text 404 page.
pub fn assert_page_not_found(r: &Raw) {
    assert_eq!(
        (r.code, r.text.as_str()),
        (404, "404 page not found\n"),
        "a path outside every served group"
    );
}

pub fn assert_status(r: &Raw, code: u16, reason: &str) {
    assert_eq!(r.code, code, "unexpected HTTP code; body: {}", r.text);
    assert_eq!(r.body["kind"], "Status", "body: {}", r.text);
    assert_eq!(r.body["apiVersion"], "v1", "body: {}", r.text);
    assert_eq!(r.body["status"], "Failure", "body: {}", r.text);
    assert_eq!(r.body["code"], code, "body: {}", r.text);
    assert_eq!(r.body["reason"], reason, "body: {}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message missing: {}",
        r.text
    );
}
