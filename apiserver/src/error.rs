//! The error model: [`ApiError`] with its [`Cause`]s, the [`ApiResult`] every handler returns, and the
//! `kind: Status` bodies they become, with kube-apiserver's codes, reasons and message wording.

use serde_json::{Value, json};

/// One `details.causes[]` entry of a Status: which field failed and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// e.g. "FieldValueInvalid", "FieldValueRequired".
    pub reason: String,
    /// A sentence a person can act on.
    pub message: String,
    /// The field path, e.g. "spec.replicas".
    pub field: String,
}

/// `details` of a Status.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind` (the resource plural for most errors, like kube-apiserver).
    pub kind: Option<String>,
    /// `details.causes`.
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u64>,
    /// Render `details: {}` even when empty (kube-apiserver's route-level 404 and 405 do).
    pub always: bool,
}

/// An API error, rendered as a `kind: Status` body with the HTTP status `code`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason ("NotFound", "Conflict", ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details`, boxed to keep `Result<_, ApiError>` small.
    pub details: Box<Details>,
}

/// Shorthand for results whose error is an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A bare error without details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_target(mut self, group: &str, resource: &str, name: &str) -> ApiError {
        self.details.group = Some(group.to_string());
        self.details.kind = Some(resource.to_string());
        self.details.name = Some(name.to_string());
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 404 NotFound for `resource "name"` (resource plural, with group as kube prints it).
    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_target(group, resource, name)
    }

    /// 404 NotFound for a path that names no known resource, in kube-apiserver's words (the path is
    /// logged at debug level).
    pub fn no_route(path: &str) -> ApiError {
        tracing::debug!(path, "no resource at this path");
        let mut e = ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details.always = true;
        e
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_target(group, resource, name)
    }

    /// 409 Conflict for a stale resourceVersion (or another failed precondition, given as `why`).
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
        )
        .with_target(group, resource, name)
    }

    /// 409 Conflict because the object was modified since the client read it.
    pub fn stale(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid: `Kind.group "name" is invalid: field: message, ...`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let kind_q = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let list: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{kind_q} \"{name}\" is invalid: {joined}"),
        );
        e.details.group = Some(group.to_string());
        e.details.kind = Some(kind.to_string());
        e.details.name = Some(name.to_string());
        e.details.causes = causes;
        e
    }

    /// 410 Expired (too old resource version / expired continue token).
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// 405 MethodNotAllowed, in kube-apiserver's words: a verb the path does not serve (PUT on a
    /// collection, POST on an object, GET of a review, ...).
    pub fn method_not_allowed() -> ApiError {
        let mut e = ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details.always = true;
        e
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 429 TooManyRequests with a retry delay in seconds.
    pub fn too_many_requests(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details.retry_after = Some(retry_after);
        e
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// The `kind: Status` body.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        let d = &self.details;
        // kube-apiserver leaves empty strings out (omitempty).
        if let Some(n) = d.name.as_ref().filter(|n| !n.is_empty()) {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = d.group.as_ref().filter(|g| !g.is_empty()) {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &d.kind {
            details.insert("kind".into(), json!(k));
        }
        if !d.causes.is_empty() {
            let causes: Vec<Value> = d
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = d.retry_after {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() || d.always {
            status["details"] = Value::Object(details);
        }
        // An error kube-apiserver gives no reason (StatusReasonUnknown) has no `reason` field.
        if self.reason.is_empty()
            && let Some(s) = status.as_object_mut()
        {
            s.remove("reason");
        }
        status
    }
}

/// `resource` or `resource.group`, as kube-apiserver names a resource in messages.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A `status: Success` Status for a deleted object (what kube-apiserver returns for an immediate delete).
pub fn success_deleted(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": if group.is_empty() {
            json!({"name": name, "kind": resource, "uid": uid})
        } else {
            json!({"name": name, "group": group, "kind": resource, "uid": uid})
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_resource_and_group_like_kube() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["kind"], "deployments");
    }

    #[test]
    fn stale_conflict_uses_kube_wording() {
        let e = ApiError::stale("", "configmaps", "foo");
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on configmaps \"foo\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }

    #[test]
    fn invalid_lists_every_cause_in_the_message() {
        let causes = vec![
            Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.a".into(),
            },
            Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: 3".into(),
                field: "spec.b".into(),
            },
        ];
        let e = ApiError::invalid("example.com", "Foo", "x", causes);
        assert_eq!(
            e.message,
            "Foo.example.com \"x\" is invalid: [spec.a: Required value, spec.b: Invalid value: 3]"
        );
        assert_eq!(e.to_status()["details"]["causes"][1]["field"], "spec.b");
    }
}
