//! Subresources other than `status` and `scale`: a ServiceAccount's `token` (TokenRequest), a
//! CertificateSigningRequest's `approval`, and a Pod's `exec`, `attach` and `portforward`, which the
//! dev cluster answers with a clear Status since no container runs; and the reviews
//! (`kubectl auth can-i`, `kubectl auth whoami`), answered and never stored.

use std::time::Duration;

use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Value, json};

use crate::commit::{Track, WriteOpts, field_manager, update_object};
use crate::error::{ApiError, ApiResult};
use crate::object::{new_uid, now_rfc3339};
use crate::read;
use crate::request::Req;
use crate::response::{bytes_response, json_response};
use crate::state::AppState;

/// The audience and issuer of tokens, as a cluster's default `--service-account-issuer`.
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// A TokenRequest without `expirationSeconds` gets one hour, as kube-apiserver's default.
const DEFAULT_EXPIRATION: u64 = 3600;
/// The shortest expiration kube-apiserver accepts.
const MIN_EXPIRATION: u64 = 600;

/// Serves `{resource}/{name}/{sub}` for the subresources listed in the registry.
///
/// # Errors
/// 404 for a missing object, 405 for a verb the subresource does not serve, 400/422 for bad bodies,
/// 400 for the container subresources the dev cluster cannot serve.
pub async fn handle(state: &AppState, r: &Req, verb: &str) -> ApiResult<Response> {
    let sub = r.path.subresource.as_deref().unwrap_or("");
    match (r.ty.group.as_str(), r.ty.resource.as_str(), sub, verb) {
        ("", "serviceaccounts", "token", "create") => token(state, r),
        ("certificates.k8s.io", "certificatesigningrequests", "approval", "get") => {
            read::get(state, r)
        }
        ("certificates.k8s.io", "certificatesigningrequests", "approval", "update") => {
            approval(state, r)
        }
        ("", "pods", "exec" | "attach" | "portforward", _) => Err(ApiError::bad_request(format!(
            "pods/{sub} is not supported in the kubewasm dev cluster: no container runs here (Pods are \
             simulated); use a real cluster to {}",
            match sub {
                "exec" => "run commands in a container",
                "attach" => "attach to a container",
                _ => "forward ports",
            }
        ))),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `POST serviceaccounts/{name}/token`: a TokenRequest answered with a signed-looking JWT for the
/// ServiceAccount. The dev cluster does not authenticate loopback clients, so the token identifies the
/// account (its claims are those kube-apiserver issues) without granting anything by itself.
fn token(state: &AppState, r: &Req) -> ApiResult<Response> {
    let ns = r.path.namespace.as_deref().unwrap_or("");
    let name = r.path.name.as_deref().unwrap_or("");
    let sa = state
        .store
        .get(&r.ty.storage_key(), ns, name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?
        .value()?;
    let body = r.object_body()?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "TokenRequest" {
        return Err(ApiError::bad_request(format!(
            "the body of a token request must be a TokenRequest, not {kind}"
        )));
    }
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION,
        Some(v) => v.as_u64().filter(|s| *s >= MIN_EXPIRATION).ok_or_else(|| {
            ApiError::invalid(
                "authentication.k8s.io",
                "TokenRequest",
                name,
                vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {v}: may not specify a duration less than 10 minutes"
                    ),
                    field: "spec.expirationSeconds".into(),
                }],
            )
        })?,
    };
    let audiences = match spec.get("audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => Value::Array(a.clone()),
        _ => json!([ISSUER]),
    };
    let uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let now = jiff::Timestamp::now();
    let expires = now + Duration::from_secs(seconds);
    let claims = json!({
        "aud": audiences,
        "exp": expires.as_second(),
        "iat": now.as_second(),
        "iss": ISSUER,
        "jti": new_uid(),
        "kubernetes.io": {
            "namespace": ns,
            "serviceaccount": {"name": name, "uid": uid},
        },
        "nbf": now.as_second(),
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    });
    let token = jwt(&claims);
    let answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid,
            "creationTimestamp": now_rfc3339(),
        },
        "spec": {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {
            "token": token,
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
    });
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// The user every client of the dev cluster is: it does not authenticate loopback clients (nor
/// tell token holders apart), and it authorises everything.
const USER: &str = "kubewasm-admin";
const GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// `POST` of a review: SelfSubjectAccessReview, SubjectAccessReview and LocalSubjectAccessReview
/// are allowed (the dev cluster authorises every request), a SelfSubjectReview names the user.
///
/// # Errors
/// 400 for a body that is not the review's kind.
pub fn review(r: &Req) -> ApiResult<Response> {
    let mut body = r.object_body()?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != r.ty.kind {
        return Err(ApiError::bad_request(format!(
            "the body of the request must be a {}, not {kind}",
            r.ty.kind
        )));
    }
    body["kind"] = json!(r.ty.kind);
    body["apiVersion"] = json!(r.ty.api_version());
    if body.get("metadata").is_none_or(|m| !m.is_object()) {
        body["metadata"] = json!({});
    }
    if r.ty.kind == "SelfSubjectReview" {
        body["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        body["status"] = json!({"userInfo": {"username": USER, "uid": USER, "groups": GROUPS}});
    } else {
        if r.ty.namespaced
            && let Some(ns) = r.path.namespace.as_deref()
        {
            body["metadata"]["namespace"] = json!(ns);
        }
        body["status"] = json!({
            "allowed": true,
            "reason": "the kubewasm dev cluster authorizes every request",
        });
    }
    Ok(json_response(StatusCode::CREATED, &body))
}

/// A JWT with `alg: none`-free shape: the dev cluster has no signing key its clients could verify,
/// so the signature part is a random value (clients that decode the claims, as kubectl and client
/// libraries do, read them as from a real cluster).
fn jwt(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "kubewasm-dev"});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(new_uid().as_bytes());
    format!("{}.{}.{signature}", part(&header), part(claims))
}

/// `PUT certificatesigningrequests/{name}/approval`: only the Approved/Denied conditions of the body
/// are taken; the spec and other status fields stay as they are.
fn approval(state: &AppState, r: &Req) -> ApiResult<Response> {
    let name = r.path.name.as_deref().unwrap_or("");
    let body = r.object_body()?;
    let manager = field_manager(r);
    let (stored, _) = update_object(
        state,
        &r.ty,
        "",
        name,
        Some("status"),
        Track::Update {
            manager: &manager,
            subresource: Some("approval"),
        },
        WriteOpts::from_request(r),
        |old| {
            let mut new = old.clone();
            let conditions: Vec<Value> = body
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in &conditions {
                let t = c.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(t, "Approved" | "Denied" | "Failed") {
                    return Err(ApiError::invalid(
                        "certificates.k8s.io",
                        "CertificateSigningRequest",
                        name,
                        vec![crate::error::Cause {
                            reason: "FieldValueNotSupported".into(),
                            message: format!(
                                "Unsupported value: \"{t}\": supported values: \"Approved\", \"Denied\", \"Failed\""
                            ),
                            field: "status.conditions[0].type".into(),
                        }],
                    ));
                }
            }
            let mut conditions = conditions;
            for c in &mut conditions {
                if c.get("lastUpdateTime").is_none_or(Value::is_null) {
                    c["lastUpdateTime"] = json!(now_rfc3339());
                }
                if c.get("lastTransitionTime").is_none_or(Value::is_null) {
                    c["lastTransitionTime"] = json!(now_rfc3339());
                }
                if c.get("status").is_none_or(Value::is_null) {
                    c["status"] = json!("True");
                }
            }
            new["status"]["conditions"] = Value::Array(conditions);
            if let Some(rv) = body.pointer("/metadata/resourceVersion") {
                new["metadata"]["resourceVersion"] = rv.clone();
            }
            Ok(new)
        },
    )?;
    Ok(bytes_response(
        StatusCode::OK,
        read::output(&r.ty, &stored)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_three_part_jwts_whose_claims_decode() {
        let t = jwt(&json!({"sub": "system:serviceaccount:ns:robot"}));
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "system:serviceaccount:ns:robot");
    }
}
