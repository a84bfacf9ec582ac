//! One parsed request: its query parameters ([`Query`], percent-decoded), and everything a resource
//! handler needs about it ([`Req`]: path, type, headers, body), with the verb it maps to and the checks
//! every resource request gets (scope, `dryRun`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, header};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause};
use crate::protobuf;
use crate::registry::ResourceType;
use crate::route::ResourcePath;

/// Parsed query parameters (last value wins).
#[derive(Debug, Default)]
pub(crate) struct Query {
    params: HashMap<String, String>,
}

impl Query {
    /// Parses a raw query string, percent-decoding names and values.
    pub fn parse(raw: &str) -> Query {
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

/// Decodes `%XX` escapes and `+` (a space); malformed escapes stay as they are.
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

    /// Whether the client asked for metadata only (`as=PartialObjectMetadata` or
    /// `as=PartialObjectMetadataList` in `Accept`, as kube-rs's `list_metadata` and metadata watches
    /// and client-go's metadata informers do).
    pub fn wants_metadata(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=PartialObjectMetadata"))
    }

    /// Whether the client asked for a meta.k8s.io Table.
    pub fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=Table"))
    }

    /// Decodes a JSON, YAML or (built-in kinds) protobuf object body (create/update).
    ///
    /// # Errors
    /// 415 for other content types and for protobuf bodies of custom resources, 400 for malformed
    /// bodies or non-objects.
    pub fn object_body(&self) -> ApiResult<Value> {
        // The kind (and its group) the body must be, as kube-apiserver checks it.
        let (group, kind) = match self.path.subresource.as_deref() {
            Some("scale") => ("autoscaling", "Scale"),
            Some("token") => ("authentication.k8s.io", "TokenRequest"),
            Some("eviction") => ("policy", "Eviction"),
            Some("binding") => ("", "Binding"),
            _ => (self.ty.group.as_str(), self.ty.kind.as_str()),
        };
        self.body_of_kind(group, kind)
    }

    /// Decodes an options body (`DeleteOptions`) like [`Req::object_body`].
    ///
    /// # Errors
    /// As [`Req::object_body`].
    pub fn options_body(&self, kind: &str) -> ApiResult<Value> {
        self.body_of_kind("meta.k8s.io", kind)
    }

    fn body_of_kind(&self, group: &str, kind: &str) -> ApiResult<Value> {
        let ct = self.content_type();
        let base = ct.split(';').next().unwrap_or("").trim();
        let value: Value = match base {
            b if protobuf::is_protobuf(b) && self.ty.builtin => {
                protobuf::decode(&self.body, group, kind)?
            }
            b if protobuf::is_protobuf(b) => {
                return Err(ApiError::unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
                ));
            }
            "" | "application/json" | "*/*" => serde_json::from_slice(&self.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
            })?,
            "application/yaml" | "application/x-yaml" | "text/yaml" => {
                serde_yaml::from_slice(&self.body).map_err(|e| {
                    ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
                })?
            }
            _ => {
                // kube-apiserver's wording exactly (it does not repeat the type it got).
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, {}",
                    protobuf::MEDIA_TYPE
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

    /// `dryRun` takes only `All`, as kube-apiserver validates it in the write's options.
    ///
    /// # Errors
    /// 422 for any other value on a write `verb`.
    pub fn check_dry_run(&self, verb: &str) -> ApiResult<()> {
        let Some(value) = self.query.get("dryRun") else {
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

    /// Whether the path fits the type's scope: cluster-scoped resources cannot be addressed inside a
    /// namespace; namespaced objects need one (lists across all namespaces are fine).
    pub fn scope_ok(&self) -> bool {
        if !self.ty.namespaced {
            return self.path.namespace.is_none();
        }
        self.path.namespace.is_some() || (self.path.name.is_none() && self.method == Method::GET)
    }
}

/// The verb of a request as kube-apiserver names it (`get`, `list`, `watch`, `create`, ...), and whether it
/// is a watch.
pub(crate) fn verb_for(
    method: &Method,
    path: &ResourcePath,
    query: &Query,
) -> (&'static str, bool) {
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
