//! What kube-apiserver's typed decoding does to every written object: Secret `stringData` folded into
//! `data`, and empty `omitempty` maps and lists (labels, annotations, finalizers, data, ...) dropped.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::registry::ResourceType;

/// Normalizes `obj` as kube-apiserver would store it. Run after validation (string maps are
/// checked there) and before managedFields are recorded, so the writer owns the stored form.
pub fn normalize(ty: &ResourceType, obj: &mut Value) {
    // ObjectMeta is typed for every kind, custom resources included.
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        drop_empty(
            meta,
            &["labels", "annotations", "finalizers", "ownerReferences"],
        );
    }
    if !ty.builtin {
        return;
    }
    let core_data = ty.group.is_empty() && matches!(ty.resource.as_str(), "configmaps" | "secrets");
    if let Some(root) = obj.as_object_mut() {
        if ty.group.is_empty() && ty.resource == "secrets" {
            fold_string_data(root);
        }
        if core_data {
            drop_empty(root, &["data", "binaryData"]);
        }
    }
    if let Some(template) = obj
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        drop_empty(template, &["labels", "annotations"]);
    }
}

/// Removes the named fields of `map` that are empty objects, empty arrays or null.
fn drop_empty(map: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        let empty = match map.get(*field) {
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            map.remove(*field);
        }
    }
}

/// `stringData` is write-only: each entry is base64-encoded into `data` (overriding it) and the
/// field removed, as kube-apiserver does on create and update.
pub(crate) fn fold_string_data(secret: &mut Map<String, Value>) {
    let Some(Value::Object(strings)) = secret.remove("stringData") else {
        return;
    };
    if strings.is_empty() {
        return;
    }
    if !secret.get("data").is_some_and(Value::is_object) {
        secret.insert("data".into(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(data)) = secret.get_mut("data") {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k, Value::String(encoded));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn ty(group: &str, version: &str, resource: &str) -> std::sync::Arc<ResourceType> {
        Registry::builtin()
            .get(group, version, resource)
            .expect("built-in type")
    }

    #[test]
    fn empty_metadata_maps_and_lists_are_dropped_but_filled_ones_kept() {
        let mut cm = json!({"metadata": {"name": "a", "labels": {}, "annotations": {"x": "1"},
            "finalizers": [], "ownerReferences": []}, "data": {}, "binaryData": {"b": "AA=="}});
        normalize(&ty("", "v1", "configmaps"), &mut cm);
        assert_eq!(
            cm,
            json!({"metadata": {"name": "a", "annotations": {"x": "1"}}, "binaryData": {"b": "AA=="}})
        );
    }

    #[test]
    fn string_data_is_encoded_into_data_and_wins_over_it() {
        let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "b2xk", "keep": "eA=="},
            "stringData": {"a": "new", "c": "hello"}});
        normalize(&ty("", "v1", "secrets"), &mut s);
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"a": "bmV3", "keep": "eA==", "c": "aGVsbG8="}})
        );
        let mut only = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        normalize(&ty("", "v1", "secrets"), &mut only);
        assert_eq!(only["data"], json!({"k": "dg=="}));
    }

    #[test]
    fn pod_template_labels_are_normalized_but_pointer_structs_stay() {
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {
            "metadata": {"labels": {}, "annotations": {}},
            "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}});
        normalize(&ty("apps", "v1", "deployments"), &mut d);
        assert_eq!(d["spec"]["template"]["metadata"], json!({}));
        assert_eq!(
            d["spec"]["template"]["spec"]["volumes"][0]["emptyDir"],
            json!({})
        );
    }
}
