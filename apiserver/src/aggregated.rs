//! Aggregated discovery (`apidiscovery.k8s.io/v2`): `/api` and `/apis` answer every group, version and
//! resource in one document when the client asks for it in `Accept`, as kubectl and client-go do first
//! (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`). Without that media type the
//! legacy documents of `discovery.rs` are served.

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};
use crate::response::json_response;

/// The media type of an aggregated discovery answer.
const MEDIA_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether `Accept` asks for the aggregated `v2` document (ahead of, or instead of, the legacy one).
///
/// Clients list it first and the legacy `application/json` after it; the first media range that names
/// a discovery document the server has decides.
pub fn wanted(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let base = parts.next().unwrap_or("");
        if !matches!(base, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        match (param("g"), param("v"), param("as")) {
            (None, None, None) => return false,
            (Some("apidiscovery.k8s.io"), Some("v2"), Some("APIGroupDiscoveryList")) => {
                return true;
            }
            // another version (v2beta1) or another `as`: try the next range
            _ => {}
        }
    }
    false
}

/// The aggregated document for the core group (`/api`) or for every named group (`/apis`).
pub fn response(registry: &Registry, core: bool) -> Response {
    let items: Vec<Value> = if core {
        vec![json!({
            "metadata": {},
            "versions": [version_doc(registry, "", "v1")],
        })]
    } else {
        registry
            .groups()
            .into_iter()
            .map(|(group, versions, _)| {
                json!({
                    "metadata": {"name": group},
                    "versions": versions
                        .iter()
                        .map(|v| version_doc(registry, &group, v))
                        .collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    let doc = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    let mut r = json_response(StatusCode::OK, &doc);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn version_doc(registry: &Registry, group: &str, version: &str) -> Value {
    let mut types = registry.resources(group, version);
    types.sort_by(|a, b| a.resource.cmp(&b.resource));
    json!({
        "version": version,
        "resources": types.iter().map(|t| resource_doc(t)).collect::<Vec<_>>(),
        "freshness": "Current",
    })
}

fn resource_doc(t: &ResourceType) -> Value {
    let mut r = json!({
        "resource": t.resource,
        "responseKind": {"group": "", "version": "", "kind": t.kind},
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    let subs: Vec<Value> = t
        .subresources()
        .iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind.unwrap_or(&t.kind)},
                "verbs": s.verbs,
            })
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_v2_media_type_is_recognised_where_clients_put_it() {
        assert!(wanted(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(wanted(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )));
        assert!(!wanted(&accept("application/json")));
        assert!(!wanted(&accept(
            "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )));
        assert!(!wanted(&HeaderMap::new()));
    }

    #[test]
    fn pods_list_their_subresources_with_the_kinds_they_answer() {
        let r = Registry::builtin();
        let pods = r.get("", "v1", "pods").unwrap();
        let doc = resource_doc(&pods);
        let subs = doc["subresources"].as_array().unwrap();
        let eviction = subs
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        let log = subs.iter().find(|s| s["subresource"] == "log").unwrap();
        assert_eq!(log["responseKind"]["kind"], "Pod");
        assert_eq!(doc["scope"], "Namespaced");
    }
}
