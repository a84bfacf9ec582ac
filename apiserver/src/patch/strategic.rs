//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! Follows k8s.io/apimachinery's `strategicpatch`: objects merge field by field, `null` deletes a
//! field, lists with a patch merge key (containers by `name`, ports by `containerPort`, ...) merge
//! item by item, primitive lists with the merge strategy (finalizers) merge as sets, every other
//! list is replaced. Directives: `$patch: replace|delete|merge` in objects and list items,
//! `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::merge_keys::{ListKind, Shape};
use super::{PatchError, TypeInfo};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// The 415 kube-apiserver answers for a strategic merge patch on a custom resource.
pub(crate) fn unsupported_for_custom_resources() -> PatchError {
    PatchError::UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            .to_owned(),
    )
}

/// Applies a strategic merge patch to `target` (an object of the built-in kind described by
/// `info`) in place. On error `target` may be partly patched: callers patch a copy.
///
/// # Errors
/// - [`PatchError::UnsupportedMediaType`] when `info` is a custom resource;
/// - [`PatchError::Invalid`] when the patch is not an object, a directive is unknown or malformed,
///   or a list item lacks its merge key.
pub fn strategic_merge_patch(
    info: &TypeInfo<'_>,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    if !info.builtin {
        return Err(unsupported_for_custom_resources());
    }
    let Value::Object(patch) = patch else {
        return Err(PatchError::Invalid(format!(
            "strategic merge patch must be a JSON object, got {}",
            super::type_name(patch)
        )));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_value_map(target, patch, Shape::root(info), "")
}

/// Merges `patch` into `original`, which becomes an object if it was not one.
fn merge_value_map(
    original: &mut Value,
    patch: &Map<String, Value>,
    shape: Shape<'_>,
    path: &str,
) -> Result<(), PatchError> {
    if !original.is_object() {
        *original = Value::Object(Map::new());
    }
    let Value::Object(map) = original else {
        return Ok(());
    };
    merge_map(map, patch, shape, path)
}

fn merge_map(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    shape: Shape<'_>,
    path: &str,
) -> Result<(), PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(directive)) if directive == "replace" => {
            original.clear();
            let mut cleaned = Map::new();
            for (key, value) in patch {
                if key != PATCH {
                    cleaned.insert(key.clone(), value.clone());
                }
            }
            // A replaced object still must not carry directives or nulls further down.
            return merge_map(original, &cleaned, shape, path);
        }
        Some(Value::String(directive)) if directive == "delete" => {
            if path.is_empty() {
                return Err(PatchError::Invalid(
                    "$patch: delete cannot delete the whole object; use DELETE".to_owned(),
                ));
            }
            original.clear();
            return Ok(());
        }
        Some(other) => {
            return Err(PatchError::Invalid(format!(
                "unknown $patch directive {other} at {}",
                display_path(path)
            )));
        }
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Value::Array(retain) = retain else {
            return Err(PatchError::Invalid(format!(
                "$retainKeys at {} must be a list of field names",
                display_path(path)
            )));
        };
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        if keep.len() != retain.len() {
            return Err(PatchError::Invalid(format!(
                "$retainKeys at {} must be a list of field names",
                display_path(path)
            )));
        }
        if let Some((stray, _)) = patch.iter().find(|(key, value)| {
            !key.starts_with('$') && !value.is_null() && !keep.contains(&key.as_str())
        }) {
            return Err(PatchError::Invalid(format!(
                "{stray:?} at {} is not in the $retainKeys list",
                display_path(path)
            )));
        }
        original.retain(|key, _| keep.contains(&key.as_str()));
    }

    for (key, values) in patch {
        let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
            continue;
        };
        let Value::Array(values) = values else {
            return Err(PatchError::Invalid(format!(
                "{key} at {} must be a list",
                display_path(path)
            )));
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|item| !values.contains(item));
        }
    }

    // `$setElementOrder` orders the merged list relative to the list as it was before this patch.
    let mut orders = Vec::new();
    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::Invalid(format!(
                "{key} at {} must be a list",
                display_path(path)
            )));
        };
        if let Some(Value::Array(list)) = patch.get(field) {
            let merge_key = match shape.field(field).list_kind() {
                ListKind::Map(keys) => keys.first(),
                ListKind::Set | ListKind::Atomic => None,
            };
            check_element_order(list, order, merge_key, key, path)?;
        }
        let before = match original.get(field) {
            Some(Value::Array(list)) => list.clone(),
            _ => Vec::new(),
        };
        orders.push((field, order, before));
    }

    for (key, value) in patch {
        if key == PATCH
            || key == RETAIN_KEYS
            || key.starts_with(SET_ELEMENT_ORDER)
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        {
            continue;
        }
        if key.starts_with('$') {
            return Err(PatchError::Invalid(format!(
                "unknown strategic merge directive {key} at {}",
                display_path(path)
            )));
        }
        let child_path = join(path, key);
        let child_shape = shape.field(key);
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(patch_map) => {
                // Strategic merge has no atomic maps: `x-kubernetes-map-type: atomic` (a
                // Deployment's selector) is a server-side apply notion; kubectl merges them.
                let slot = original.entry(key.clone()).or_insert(Value::Null);
                merge_value_map(slot, patch_map, child_shape, &child_path)?;
            }
            Value::Array(patch_list) => {
                let existing = match original.get_mut(key) {
                    Some(Value::Array(list)) => Some(list),
                    _ => None,
                };
                let merged = merge_list(
                    existing.map(std::mem::take).unwrap_or_default(),
                    patch_list,
                    child_shape,
                    &child_path,
                )?;
                original.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                original.insert(key.clone(), scalar.clone());
            }
        }
    }

    for (field, order, before) in orders {
        if let Some(Value::Array(list)) = original.get_mut(field) {
            let merge_key = match shape.field(field).list_kind() {
                ListKind::Map(keys) => keys.first(),
                ListKind::Set | ListKind::Atomic => None,
            };
            let merged = std::mem::take(list);
            *list = normalize_order(merged, order, &before, merge_key);
        }
    }
    Ok(())
}

/// A patch value with its directives applied to nothing: directives and nulls removed.
fn cleaned_copy(value: &Value, shape: Shape<'_>, path: &str) -> Result<Value, PatchError> {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            merge_map(&mut out, map, shape, path)?;
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(merge_list(Vec::new(), items, shape, path)?)),
        other => Ok(other.clone()),
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    shape: Shape<'_>,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    match shape.list_kind() {
        ListKind::Atomic => {
            let item_shape = shape.items();
            patch
                .iter()
                .map(|item| cleaned_copy(item, item_shape, path))
                .collect()
        }
        ListKind::Set => {
            let mut merged = original.clone();
            for item in patch {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            Ok(normalize_order(merged, patch, &original, None))
        }
        ListKind::Map(keys) => {
            let Some(merge_key) = keys.first() else {
                return Ok(patch.to_vec());
            };
            merge_keyed_list(original, patch, merge_key, shape.items(), path)
        }
    }
}

fn merge_keyed_list(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    item_shape: Shape<'_>,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    // Directive items first, as apimachinery does: deletions, and `{"$patch": "replace"}` which
    // makes the list exactly the other patch items.
    let mut plain: Vec<&Map<String, Value>> = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(item_map) = item else {
            return Err(PatchError::Invalid(format!(
                "{}: list items merged by {merge_key:?} must be objects, got {}",
                display_path(path),
                super::type_name(item)
            )));
        };
        match item_map.get(PATCH) {
            None => plain.push(item_map),
            Some(Value::String(d)) if d == "replace" => replace = true,
            Some(Value::String(d)) if d == "delete" => {
                let key_value = item_map
                    .get(merge_key)
                    .ok_or_else(|| missing_merge_key(path, item_map, merge_key))?;
                original.retain(|o| o.get(merge_key) != Some(key_value));
            }
            Some(other) => {
                return Err(PatchError::Invalid(format!(
                    "unknown $patch directive {other} in a list item at {}",
                    display_path(path)
                )));
            }
        }
    }
    if replace {
        original.clear();
    }
    let server_order = original.clone();
    let mut index: HashMap<String, usize> = HashMap::with_capacity(original.len());
    for (position, item) in original.iter().enumerate() {
        if let Some(key) = item.get(merge_key) {
            index.entry(key.to_string()).or_insert(position);
        }
    }
    for item_map in &plain {
        let key_value = item_map
            .get(merge_key)
            .ok_or_else(|| missing_merge_key(path, item_map, merge_key))?;
        let item_path = format!("{path}[{merge_key}={key_value}]");
        let key_text = key_value.to_string();
        match index.get(&key_text).copied() {
            Some(index) => {
                if let Some(slot) = original.get_mut(index) {
                    merge_value_map(slot, item_map, item_shape, &item_path)?;
                }
            }
            None => {
                let mut fresh = Value::Object(Map::new());
                merge_value_map(&mut fresh, item_map, item_shape, &item_path)?;
                index.insert(key_text, original.len());
                original.push(fresh);
            }
        }
    }
    if replace {
        return Ok(original);
    }
    let patch_order: Vec<Value> = plain
        .into_iter()
        .map(|m| Value::Object(m.clone()))
        .collect();
    Ok(normalize_order(
        original,
        &patch_order,
        &server_order,
        Some(merge_key),
    ))
}

fn missing_merge_key(path: &str, item: &Map<String, Value>, merge_key: &str) -> PatchError {
    PatchError::Invalid(format!(
        "{}: list item {} does not contain declared merge key: {merge_key}",
        display_path(path),
        Value::Object(item.clone())
    ))
}

/// apimachinery's `validatePatchWithSetOrderList`: the items of the patch list (deletions and
/// other directive items aside) must appear in the `$setElementOrder` list, in the same order.
fn check_element_order(
    list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
    directive: &str,
    path: &str,
) -> Result<(), PatchError> {
    let identity = |v: &Value| -> Option<Value> {
        match merge_key {
            Some(key) => v.get(key).cloned(),
            None => Some(v.clone()),
        }
    };
    let items: Vec<&Value> = list
        .iter()
        .filter(|item| item.get(PATCH).is_none())
        .collect();
    let mut at = 0;
    for wanted in order {
        let Some(item) = items.get(at) else { break };
        if identity(item).is_some() && identity(item) == identity(wanted) {
            at += 1;
        }
    }
    if at < items.len() {
        return Err(PatchError::Invalid(format!(
            "the order of the list at {} does not match its {directive} list",
            display_path(path)
        )));
    }
    Ok(())
}

/// apimachinery's `normalizeElementOrder`: the items named by `patch_order` come in that order,
/// and each item only the server had is slotted in before the first patch item that came after it
/// in `server_order` (so a brand-new item is placed before the server-only items).
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    // Items are compared by their merge key (or their value), through its JSON text so that each
    // lookup is a hash probe rather than a scan.
    let identity = |v: &Value| -> Option<String> {
        match merge_key {
            Some(key) => v.get(key).map(Value::to_string),
            None => Some(v.to_string()),
        }
    };
    let positions = |list: &[Value]| -> HashMap<String, usize> {
        let mut map = HashMap::with_capacity(list.len());
        for (index, item) in list.iter().enumerate() {
            if let Some(id) = identity(item) {
                map.entry(id).or_insert(index);
            }
        }
        map
    };
    let in_patch = positions(patch_order);
    let in_server = positions(server_order);
    let mut patch_items = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let id = identity(&item);
        let server_index = id.as_ref().and_then(|id| in_server.get(id)).copied();
        match id.as_ref().and_then(|id| in_patch.get(id)) {
            Some(&patch_index) => patch_items.push((patch_index, server_index, item)),
            None => server_only.push((usize::MAX, server_index, item)),
        }
    }
    patch_items.sort_by_key(|(patch_index, _, _)| *patch_index);
    server_only.sort_by_key(|(_, server_index, _)| server_index.unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l, _)), Some((_, r, _))) => {
                matches!((l, r), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(_, _, item)| item));
    }
    out
}

fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: TypeInfo<'static> = TypeInfo {
        api_version: "v1",
        kind: "Pod",
        builtin: true,
        schema: None,
    };
    const DEPLOYMENT: TypeInfo<'static> = TypeInfo {
        api_version: "apps/v1",
        kind: "Deployment",
        builtin: true,
        schema: None,
    };
    const SERVICE: TypeInfo<'static> = TypeInfo {
        api_version: "v1",
        kind: "Service",
        builtin: true,
        schema: None,
    };

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a", "b"]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "envoy:1"}
                ],
                "tolerations": [{"key": "k1", "operator": "Exists"}],
                "volumes": [{"name": "data", "emptyDir": {}}]
            }
        })
    }

    fn patch_of(info: &TypeInfo<'_>, target: Value, patch: Value) -> Value {
        let mut target = target;
        strategic_merge_patch(info, &mut target, &patch).expect("strategic patch applies");
        target
    }

    #[test]
    fn containers_merge_by_name_keeping_the_others() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
        );
        let containers = out["spec"]["containers"].as_array().expect("list");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(
            containers[0]["env"][0]["value"], "1",
            "unpatched fields of the item stay"
        );
        assert_eq!(containers[1]["name"], "sidecar");
    }

    #[test]
    fn a_new_container_goes_first_like_kube_apiserver_puts_it() {
        // apimachinery orders patch items not on the server before the server-only ones.
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "extra", "image": "busybox"}]}}),
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            vec!["extra", "app", "sidecar"]
        );
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"name": "extra", "image": "busybox"})
        );
    }

    #[test]
    fn patched_items_follow_the_patch_order_with_server_only_items_slotted_in() {
        // Same answers as `kubectl patch --local --type=strategic` gives.
        let target =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "injected"}, {"name": "b"}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"spec": {"containers": [{"name": "b", "image": "n"}, {"name": "a", "image": "q"}]}}),
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            vec!["injected", "b", "a"]
        );
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .expect("a list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect()
    }

    #[test]
    fn env_vars_merge_by_name_inside_a_container() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
    }

    #[test]
    fn container_ports_merge_by_container_port() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}], "selector": {"app": "web"}}});
        let out = patch_of(
            &SERVICE,
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
    }

    #[test]
    fn deployment_template_containers_merge_by_name() {
        let deploy = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let out = patch_of(
            &DEPLOYMENT,
            deploy,
            json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}}),
        );
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])
        );
    }

    #[test]
    fn null_deletes_a_field_and_a_label() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"metadata": {"labels": {"tier": null}}, "spec": {"volumes": null}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert!(out["spec"].get("volumes").is_none());
    }

    #[test]
    fn patch_delete_in_a_list_item_removes_that_item() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["app"]);
    }

    #[test]
    fn patch_replace_in_a_list_replaces_the_whole_list() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
    }

    #[test]
    fn patch_replace_in_a_map_replaces_the_whole_map() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));
    }

    #[test]
    fn patch_delete_in_a_map_empties_it() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
    }

    #[test]
    fn patch_delete_of_the_whole_object_is_invalid() {
        let mut target = pod();
        let err = strategic_merge_patch(&POD, &mut target, &json!({"$patch": "delete"}))
            .expect_err("invalid");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn patch_merge_directive_in_a_map_is_rejected_like_kube_apiserver_does() {
        let mut target = pod();
        let err = strategic_merge_patch(
            &POD,
            &mut target,
            &json!({"metadata": {"labels": {"$patch": "merge", "new": "1"}}}),
        )
        .expect_err("apimachinery only knows replace and delete in maps");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn retain_keys_rejects_a_patch_that_sets_a_field_it_does_not_retain() {
        let mut target = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
        let err = strategic_merge_patch(
            &DEPLOYMENT,
            &mut target,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}),
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("rollingUpdate")),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_patch_directive_is_invalid() {
        let mut target = pod();
        let err = strategic_merge_patch(
            &POD,
            &mut target,
            &json!({"metadata": {"labels": {"$patch": "explode"}}}),
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("explode")),
            "{err}"
        );
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "k2", "operator": "Exists"}])
        );
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"containers": [{"name": "app", "args": ["b"]}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["b"]));
    }

    #[test]
    fn finalizers_merge_as_a_set_of_values() {
        let out = patch_of(&POD, pod(), json!({"metadata": {"finalizers": ["b", "c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = patch_of(&POD, pod(), json!({"metadata": {"finalizers": ["c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn delete_from_primitive_list_removes_values() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order_reorders_the_merged_list_as_kubectl_apply_sends_it() {
        // kubectl apply sends the desired order plus only the changed items.
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"name": "sidecar", "image": "envoy:2"}]
            }}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["sidecar", "app"]);
        assert_eq!(out["spec"]["containers"][0]["image"], "envoy:2");
        assert!(out["spec"].get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn set_element_order_places_items_added_by_others_as_kube_apiserver_does() {
        let target =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "injected"}, {"name": "b"}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["injected", "b", "a"]);
        let target =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "injected"}, {"name": "b"}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "new"}, {"name": "a"}],
                "containers": [{"name": "new", "image": "n"}]
            }}),
        );
        assert_eq!(
            super::tests::names(&out["spec"]["containers"]),
            vec!["injected", "b", "new", "a"]
        );
    }

    #[test]
    fn set_element_order_must_list_the_patched_items_in_their_order() {
        let mut target = pod();
        let err = strategic_merge_patch(
            &POD,
            &mut target,
            &json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "sidecar", "image": "a"}, {"name": "app", "image": "b"}]
            }}),
        )
        .expect_err("kube-apiserver rejects a patch list that contradicts its order list");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("$setElementOrder/containers")),
            "{err}"
        );
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "gone", "$patch": "delete"}, {"name": "sidecar", "image": "a"}]
            }}),
        );
        assert_eq!(names(&out["spec"]["containers"]), vec!["app", "sidecar"]);
    }

    #[test]
    fn set_element_order_orders_primitive_lists() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "b", "a"]));
    }

    #[test]
    fn retain_keys_drops_fields_not_listed() {
        let target = json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/x"}}])
        );
    }

    #[test]
    fn retain_keys_with_a_null_for_the_dropped_member_as_kubectl_apply_sends_it() {
        let deploy = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = patch_of(
            &DEPLOYMENT,
            deploy,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_on_a_deployment_strategy_switches_the_union_member() {
        let deploy = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = patch_of(
            &DEPLOYMENT,
            deploy,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn a_list_item_without_its_merge_key_is_invalid() {
        let mut target = pod();
        let err = strategic_merge_patch(
            &POD,
            &mut target,
            &json!({"spec": {"containers": [{"image": "x"}]}}),
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("does not contain declared merge key: name")),
            "{err}"
        );
    }

    #[test]
    fn the_deployment_selector_merges_like_any_map_in_strategic_merge() {
        let deploy = json!({"spec": {"selector": {"matchLabels": {"app": "a", "tier": "b"}}}});
        let out = patch_of(
            &DEPLOYMENT,
            deploy,
            json!({"spec": {"selector": {"matchLabels": {"app": "c"}}}}),
        );
        assert_eq!(
            out["spec"]["selector"],
            json!({"matchLabels": {"app": "c", "tier": "b"}})
        );
    }

    #[test]
    fn new_nested_objects_are_added_without_nulls_or_directives() {
        let out = patch_of(
            &POD,
            pod(),
            json!({"spec": {"securityContext": {"runAsUser": 1, "fsGroup": null}}}),
        );
        assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 1}));
    }

    #[test]
    fn conditions_merge_by_type() {
        let target = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"}])
        );
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let target = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}});
        let out = patch_of(
            &POD,
            target,
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}])
        );
    }

    #[test]
    fn strategic_merge_on_a_custom_resource_is_rejected() {
        let info = TypeInfo {
            api_version: "x/v1",
            kind: "Thing",
            builtin: false,
            schema: None,
        };
        let mut target = json!({});
        let err = strategic_merge_patch(&info, &mut target, &json!({})).expect_err("415");
        assert!(matches!(err, PatchError::UnsupportedMediaType(_)));
    }

    #[test]
    fn a_non_object_strategic_patch_is_invalid() {
        let mut target = pod();
        let err = strategic_merge_patch(&POD, &mut target, &json!("x")).expect_err("invalid");
        assert!(matches!(err, PatchError::Invalid(_)));
    }
}
