//! Discovery documents (`/api`, `/apis`, `/apis/{g}/{v}`) and `/version` (OpenAPI is in `openapi/`).

use axum::extract::Request;
use http::header;
use serde_json::{Value, json};

use crate::registry::Registry;

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
            "storageVersionHash": t.storage_version_hash(),
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
