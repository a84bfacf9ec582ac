//! Discovery documents (`/api`, `/apis`, `/apis/{g}/{v}`), `/version` and the OpenAPI endpoints.

use axum::extract::Request;
use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::Registry;
use crate::response::json_response;


/// `/api`: the core group's versions.
pub fn core_versions(req: &Request) -> Value {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    })
}

fn group_doc(name: &str, versions: &[String], preferred: &str) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(preferred),
    })
}

/// `/apis`: every named group.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs, p)| group_doc(g, vs, p))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, or None if the group is not served.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    registry
        .groups()
        .into_iter()
        .find(|(g, _, _)| g == name)
        .map(|(g, vs, p)| {
            let mut doc = group_doc(&g, &vs, &p);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

/// `/api/v1` or `/apis/{group}/{version}`, or None if not served.
pub fn resources(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.has_group_version(group, version) {
        return None;
    }
    let mut list = Vec::new();
    for t in registry.resources(group, version) {
        let mut r = json!({
            "name": t.resource,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs(),
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        list.push(r);
        for s in t.subresources() {
            let mut r = json!({
                "name": format!("{}/{}", t.resource, s.name),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": s.kind.unwrap_or(&t.kind),
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                r["group"] = json!(s.group);
            }
            if !s.version.is_empty() {
                r["version"] = json!(s.version);
            }
            list.push(r);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": list,
    }))
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.2-kubewasm",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.26.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A stable hash of what a group/version serves, so clients re-fetch the OpenAPI document when a CRD
/// changes it.
fn gv_hash(registry: &Registry, group: &str, version: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for t in registry.resources(group, version) {
        t.resource.hash(&mut h);
        t.kind.hash(&mut h);
        t.namespaced.hash(&mut h);
        t.schema.as_ref().map(Value::to_string).hash(&mut h);
    }
    format!("{:016X}", h.finish())
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of per-group-version documents.
fn openapi_v3_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for t in registry.all() {
        let gv = (t.group.clone(), t.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    for (g, v) in gvs {
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", gv_hash(registry, &g, &v))}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{api/v1 | apis/g/v}`: the object paths with their PATCH operations and query parameters,
/// which kubectl reads to learn that server-side field validation is supported. Schemas are not served
/// (kubectl falls back to its built-in types; `kubectl explain` does not work).
fn openapi_v3_gv(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.has_group_version(group, version) {
        return None;
    }
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
    ]);
    let mut paths = serde_json::Map::new();
    for t in registry.resources(group, version) {
        let base = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.resource)
        } else {
            format!("{base}/{}/{{name}}", t.resource)
        };
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let op = |id: &str| {
            json!({
                "operationId": format!("{id}{}", t.kind),
                "x-kubernetes-action": id,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(
            path,
            json!({
                "get": op("get"),
                "put": op("put"),
                "patch": op("patch"),
                "delete": op("delete"),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.2"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v3[/...]` (see [`openapi_v3_gv`]); `/openapi/v2` is not served (404), which kubectl
/// tolerates once v3 answers.
///
/// # Errors
/// 404 NotFound for `/openapi/v2` and unknown group/versions.
pub fn openapi(registry: &Registry, rest: &str) -> ApiResult<Response> {
    let rest = rest.trim_matches('/');
    if rest == "v3" {
        return Ok(json_response(StatusCode::OK, &openapi_v3_index(registry)));
    }
    if let Some(gv) = rest.strip_prefix("v3/") {
        let doc = match gv.split('/').collect::<Vec<_>>().as_slice() {
            ["api", v] => openapi_v3_gv(registry, "", v),
            ["apis", g, v] => openapi_v3_gv(registry, g, v),
            _ => None,
        };
        if let Some(d) = doc {
            return Ok(json_response(StatusCode::OK, &d));
        }
    }
    Err(ApiError::no_route(&format!("/openapi/{rest}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_version_discovery_lists_status_subresources() {
        let r = Registry::builtin();
        let doc = resources(&r, "apps", "v1").expect("apps/v1 served");
        let names: Vec<&str> = doc["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"deployments"));
        assert!(names.contains(&"deployments/status"));
        assert!(resources(&r, "apps", "v2").is_none());
    }
}
