//! Server-side apply: merging an applied configuration into the live object with field ownership.
//!
//! Follows structured-merge-diff: the applier's field set is every leaf and list item of its
//! configuration; a field another manager owns whose value would change is a conflict (unless
//! `force`, which moves ownership to the applier); fields the applier applied before and no longer
//! applies are removed when nobody else owns them.

use serde_json::{Map, Value};

use super::fieldset::{self, FieldSet, Level, Style};
use super::managed_fields::{self, Entry, Operation};
use super::merge_keys::Shape;
use super::structured_merge;
use super::{ApplyConflict, PatchError, TypeInfo};

/// The manager kube-apiserver credits with the fields of an untracked object on its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Applies `config` (the parsed body of an `application/apply-patch+yaml` request) for
/// `field_manager`. `current` is `None` when the object does not exist yet: apply creates it.
///
/// Returns the new object with `metadata.managedFields` updated (the applier's `Apply` entry holds
/// exactly the fields of `config`).
///
/// # Errors
/// - [`PatchError::Invalid`] when `config` is not an object, lacks `apiVersion`/`kind`, names a
///   different kind, sets `metadata.managedFields`, or has an associative-list item without its key;
/// - [`PatchError::Conflict`] when `force` is false and fields owned by other managers would change.
pub fn server_side_apply(
    info: &TypeInfo<'_>,
    current: Option<&Value>,
    config: &Value,
    field_manager: &str,
    force: bool,
) -> Result<Value, PatchError> {
    server_side_apply_subresource(info, current, config, field_manager, force, None)
}

/// [`server_side_apply`] through a subresource (`Some("status")`): the applier's entry carries
/// `subresource: status` and is separate from its entry for the main resource, so applying the
/// status never disowns (and removes) the fields it applied to the main resource, and vice versa.
///
/// # Errors
/// As [`server_side_apply`].
pub fn server_side_apply_subresource(
    info: &TypeInfo<'_>,
    current: Option<&Value>,
    config: &Value,
    field_manager: &str,
    force: bool,
    subresource: Option<&str>,
) -> Result<Value, PatchError> {
    check_config(info, config)?;
    let shape = Shape::root(info);
    let mut applied = FieldSet::default();
    fieldset::collect(config, shape, Level::Root, Style::Apply, &mut applied)?;
    applied.compact();

    let empty = Value::Object(Map::new());
    let live = current.unwrap_or(&empty);
    let mut merged = live.clone();
    structured_merge::merge_value(&mut merged, config, shape, Level::Root);

    let mut entries = managed_fields::read(live);
    if entries.is_empty()
        && let Some(current) = current
    {
        // kube-apiserver attributes the fields of an object nobody tracked (its managedFields
        // were cleared) to "before-first-apply", so a first apply cannot silently change them.
        let mut existing = FieldSet::default();
        let mut removed = FieldSet::default();
        fieldset::diff(
            &managed_fields::zero_value(info),
            current,
            shape,
            Level::Root,
            &mut existing,
            &mut removed,
        );
        existing.compact();
        if !existing.is_empty() {
            entries.push(Entry::new(
                BEFORE_FIRST_APPLY,
                Operation::Update,
                info.api_version,
                None,
                existing,
            ));
        }
    }
    let conflicts = find_conflicts(
        &entries,
        &applied,
        live,
        &merged,
        field_manager,
        subresource,
    );
    if !conflicts.is_empty() {
        if !force {
            return Err(PatchError::Conflict {
                conflicts: conflicts.into_iter().map(|(c, _)| c).collect(),
            });
        }
        let mut taken = FieldSet::default();
        for (_, path) in &conflicts {
            mark(&mut taken, path);
        }
        for entry in entries
            .iter_mut()
            .filter(|e| !e.is(field_manager, Operation::Apply, subresource))
        {
            entry.fields.subtract(&taken);
        }
    }

    let previous = entries
        .iter()
        .position(|e| e.is(field_manager, Operation::Apply, subresource))
        .map(|index| entries.remove(index));
    let mut others = FieldSet::default();
    for entry in &entries {
        others.union(&entry.fields);
    }
    let previous_fields = previous.as_ref().map(|e| &e.fields);
    if let Some(previous_fields) = previous_fields {
        remove_disowned(
            &mut merged,
            &previous_fields.difference(&applied),
            &applied,
            &others,
        );
    }

    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(info.api_version);
    let mut entry = Entry::new(
        field_manager,
        Operation::Apply,
        api_version,
        subresource,
        applied,
    );
    // An apply that changes nothing keeps its timestamp: re-applying the same configuration
    // (what controllers do on every reconcile) must not look like a change.
    if let Some(previous) = previous
        && previous.fields == entry.fields
        && previous.api_version == entry.api_version
    {
        entry.time = previous.time;
    }
    entries.push(entry);
    managed_fields::write(&mut merged, entries);
    Ok(merged)
}

fn check_config(info: &TypeInfo<'_>, config: &Value) -> Result<(), PatchError> {
    let Value::Object(map) = config else {
        return Err(PatchError::Invalid(format!(
            "the apply configuration must be an object, got {}",
            super::type_name(config)
        )));
    };
    let text = |name: &str| {
        map.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if text("apiVersion").is_none() {
        return Err(PatchError::Invalid(
            "apiVersion must be set in the apply configuration".to_owned(),
        ));
    }
    match text("kind") {
        None => {
            return Err(PatchError::Invalid(
                "kind must be set in the apply configuration".to_owned(),
            ));
        }
        Some(kind) if kind != info.kind => {
            return Err(PatchError::Invalid(format!(
                "the apply configuration is for kind {kind:?}, but the object is a {}",
                info.kind
            )));
        }
        Some(_) => {}
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(PatchError::Invalid(
            "metadata.managedFields must be nil in an apply configuration".to_owned(),
        ));
    }
    Ok(())
}

/// Every (manager, field) where another manager owns a field of `applied` whose value differs
/// between `live` and `merged`; with the field's path for moving ownership on force.
fn find_conflicts(
    entries: &[Entry],
    applied: &FieldSet,
    live: &Value,
    merged: &Value,
    field_manager: &str,
    subresource: Option<&str>,
) -> Vec<(ApplyConflict, Vec<String>)> {
    let mut conflicts = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| !e.is(field_manager, Operation::Apply, subresource))
    {
        applied.for_each_member(&mut |path, node| {
            if !node.children.is_empty() {
                // A list item: conflicts are judged on its fields.
                return;
            }
            if !entry.fields.node(path).is_some_and(|n| n.member) {
                return;
            }
            if fieldset::get_path(live, path) != fieldset::get_path(merged, path) {
                conflicts.push((
                    ApplyConflict {
                        manager: entry.manager.clone(),
                        field: fieldset::display(path),
                    },
                    path.to_vec(),
                ));
            }
        });
    }
    conflicts.sort_by(|a, b| a.0.cmp(&b.0));
    conflicts.dedup_by(|a, b| a.0 == b.0);
    conflicts
}

fn mark(set: &mut FieldSet, path: &[String]) {
    let node = path
        .iter()
        .fold(set, |node, element| node.child(element.clone()));
    node.member = true;
}

/// Removes from `object` the paths in `candidates` (fields the applier owned and stopped applying)
/// that neither the new applied set nor any other manager still holds, at or below them.
fn remove_disowned(
    object: &mut Value,
    candidates: &FieldSet,
    applied: &FieldSet,
    others: &FieldSet,
) {
    let mut doomed: Vec<Vec<String>> = Vec::new();
    collect_doomed(candidates, &mut Vec::new(), applied, others, &mut doomed);
    // Deepest and last items first, so removing one item never shifts another doomed path.
    doomed.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| b.cmp(a)));
    for path in doomed {
        if !remove_path(object, &path) {
            continue;
        }
        // A map or list emptied by the removal goes too, unless someone owns it (an applier may
        // apply `env: []` on purpose); top-level fields (`spec`, `metadata`) always stay. Typed
        // objects drop such empty lists and maps when kube-apiserver encodes them.
        for depth in (2..path.len()).rev() {
            let parent = &path[..depth];
            let emptied = fieldset::get_path(object, parent).is_some_and(|v| match v {
                Value::Object(map) => map.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            });
            if !emptied || applied.touches(parent) || others.touches(parent) {
                break;
            }
            remove_path(object, parent);
        }
    }
}

/// Removes the value at `path`; returns whether it was there.
fn remove_path(object: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut target = Some(object);
    for element in parents {
        target = target.and_then(|value| fieldset::get_mut(value, element));
    }
    target.is_some_and(|parent| fieldset::remove(parent, last))
}

fn collect_doomed(
    node: &FieldSet,
    path: &mut Vec<String>,
    applied: &FieldSet,
    others: &FieldSet,
    doomed: &mut Vec<Vec<String>>,
) {
    if node.member && !path.is_empty() && !applied.touches(path) && !others.touches(path) {
        doomed.push(path.clone());
        return;
    }
    // An item that stays keeps its key fields, whoever owned them.
    let key_fields: Vec<String> = path
        .last()
        .and_then(|element| element.strip_prefix("k:"))
        .and_then(|key| serde_json::from_str::<Map<String, Value>>(key).ok())
        .map(|key| key.keys().map(|name| format!("f:{name}")).collect())
        .unwrap_or_default();
    for (element, child) in &node.children {
        if key_fields.contains(element) {
            continue;
        }
        path.push(element.clone());
        collect_doomed(child, path, applied, others, doomed);
        path.pop();
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{PatchType, apply_patch};
    use serde_json::json;

    const DEPLOYMENT: TypeInfo<'static> = TypeInfo {
        api_version: "apps/v1",
        kind: "Deployment",
        builtin: true,
        schema: None,
    };

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": image}]}}
            }
        })
    }

    fn apply(
        current: Option<&Value>,
        cfg: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, PatchError> {
        server_side_apply(&DEPLOYMENT, current, cfg, manager, force)
    }

    fn entry<'v>(object: &'v Value, manager: &str, operation: &str) -> Option<&'v Value> {
        object["metadata"]["managedFields"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|e| e["manager"] == manager && e["operation"] == operation)
            })
    }

    fn conflicts(result: Result<Value, PatchError>) -> Vec<(String, String)> {
        match result {
            Err(PatchError::Conflict { conflicts }) => conflicts
                .into_iter()
                .map(|c| (c.manager, c.field))
                .collect(),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn apply_creates_the_object_with_an_apply_entry_in_fields_v1() {
        let out = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["metadata"]["name"], "web");
        let e = entry(&out, "kubectl", "Apply").expect("apply entry");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(
            e["fieldsV1"]["f:spec"]["f:template"]["f:spec"],
            json!({"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}})
        );
        assert_eq!(
            e["fieldsV1"]["f:metadata"],
            json!({"f:labels": {"f:app": {}}})
        );
    }

    #[test]
    fn reapplying_updates_values_owned_by_the_same_manager() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let out = apply(Some(&live), &config(5, "nginx:2"), "kubectl", false).expect("updates");
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        assert_eq!(
            out["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn reapplying_the_same_configuration_changes_nothing_not_even_the_timestamp() {
        let mut live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        live["metadata"]["managedFields"][0]["time"] = json!("2000-01-01T00:00:00Z");
        let out = apply(Some(&live), &config(2, "nginx:1"), "kubectl", false).expect("applies");
        assert_eq!(out, live);
    }

    #[test]
    fn applying_status_through_the_subresource_keeps_main_resource_fields_of_the_same_manager() {
        let live = apply(None, &config(2, "nginx:1"), "ctrl", false).expect("creates");
        let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                            "status": {"replicas": 2}});
        let out = server_side_apply_subresource(
            &DEPLOYMENT,
            Some(&live),
            &status,
            "ctrl",
            true,
            Some("status"),
        )
        .expect("applies");
        assert_eq!(
            out["spec"]["replicas"], 2,
            "spec is still owned by ctrl's main entry"
        );
        assert_eq!(out["status"]["replicas"], 2);
        let entries = out["metadata"]["managedFields"]
            .as_array()
            .expect("entries");
        assert_eq!(entries.len(), 2);
        let sub = entries
            .iter()
            .find(|e| e["subresource"] == "status")
            .expect("status entry");
        assert_eq!(sub["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    }

    #[test]
    fn a_field_the_manager_stops_applying_is_removed() {
        let mut first = config(2, "nginx:1");
        first["metadata"]["labels"]["tier"] = json!("fe");
        let live = apply(None, &first, "kubectl", false).expect("creates");
        let mut second = config(2, "nginx:1");
        second["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("replicas");
        let out = apply(Some(&live), &second, "kubectl", false).expect("applies");
        assert!(
            out["spec"].get("replicas").is_none(),
            "replicas was only ours: {out}"
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let fields = &entry(&out, "kubectl", "Apply").expect("entry")["fieldsV1"];
        assert!(fields["f:spec"].get("f:replicas").is_none());
    }

    #[test]
    fn a_list_emptied_by_removal_goes_too_unless_someone_owns_it() {
        let live = apply(None, &config(1, "a"), "kubectl", false).expect("creates");
        let mut with_env = config(1, "a");
        with_env["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}]);
        let live = apply(Some(&live), &with_env, "kubectl", false).expect("adds env");
        let out = apply(Some(&live), &config(1, "a"), "kubectl", false).expect("drops env");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "nginx", "image": "a"})
        );
        let mut explicit = config(1, "a");
        explicit["spec"]["template"]["spec"]["containers"][0]["env"] = json!([]);
        let out = apply(Some(&live), &explicit, "kubectl", false).expect("applies an empty env");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([])
        );
    }

    #[test]
    fn a_list_item_the_manager_stops_applying_is_removed() {
        let mut two = config(1, "nginx:1");
        two["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "nginx", "image": "a"}, {"name": "side", "image": "b"}]);
        let live = apply(None, &two, "kubectl", false).expect("creates");
        let out = apply(Some(&live), &config(1, "a"), "kubectl", false).expect("applies");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "a"}])
        );
    }

    #[test]
    fn a_dropped_item_that_another_manager_shares_keeps_its_key_and_their_fields() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let patched = apply_patch(
            PatchType::StrategicMerge,
            &DEPLOYMENT,
            Some(&live),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "imagePullPolicy": "Always"}]}}}}),
            "editor",
            false,
        )
        .expect("patch");
        let mut cfg = config(2, "nginx:1");
        cfg["spec"]["template"]["spec"]["containers"] = json!([{"name": "other", "image": "x"}]);
        let out = apply(Some(&patched), &cfg, "kubectl", false).expect("applies");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers,
            &json!([{"name": "nginx", "imagePullPolicy": "Always"}, {"name": "other", "image": "x"}]),
            "kubectl's image goes, the editor's field and the key stay"
        );
    }

    #[test]
    fn a_field_another_manager_also_owns_is_kept_when_dropped_from_the_config() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let live =
            apply(Some(&live), &config(2, "nginx:1"), "other", false).expect("shared, same values");
        let mut second = config(2, "nginx:1");
        second["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("replicas");
        let out = apply(Some(&live), &second, "kubectl", false).expect("applies");
        assert_eq!(out["spec"]["replicas"], 2, "still owned by other");
    }

    #[test]
    fn changing_a_field_owned_by_another_applier_conflicts_without_force() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let found = conflicts(apply(Some(&live), &config(3, "nginx:1"), "ci", false));
        assert_eq!(
            found,
            vec![("kubectl".to_owned(), ".spec.replicas".to_owned())]
        );
    }

    #[test]
    fn conflicts_inside_list_items_name_the_item_key() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let found = conflicts(apply(Some(&live), &config(2, "nginx:2"), "ci", false));
        assert_eq!(
            found,
            vec![(
                "kubectl".to_owned(),
                ".spec.template.spec.containers[name=\"nginx\"].image".to_owned()
            )]
        );
    }

    #[test]
    fn force_takes_ownership_from_the_other_manager() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let out = apply(Some(&live), &config(3, "nginx:1"), "ci", true).expect("forced");
        assert_eq!(out["spec"]["replicas"], 3);
        let kubectl = &entry(&out, "kubectl", "Apply").expect("kubectl keeps the rest")["fieldsV1"];
        assert!(kubectl["f:spec"].get("f:replicas").is_none(), "{kubectl}");
        assert!(kubectl["f:spec"].get("f:selector").is_some());
        let ci = &entry(&out, "ci", "Apply").expect("ci entry")["fieldsV1"];
        assert_eq!(ci["f:spec"]["f:replicas"], json!({}));
    }

    #[test]
    fn two_managers_on_different_fields_do_not_conflict() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let scaler = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"minReadySeconds": 5}});
        let out = apply(Some(&live), &scaler, "scaler", false).expect("no conflict");
        assert_eq!(out["spec"]["minReadySeconds"], 5);
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(
            entry(&out, "scaler", "Apply").expect("entry")["fieldsV1"],
            json!({"f:spec": {"f:minReadySeconds": {}}})
        );
    }

    #[test]
    fn applying_the_same_value_as_another_manager_shares_ownership() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let out = apply(Some(&live), &config(2, "nginx:1"), "other", false)
            .expect("same values do not conflict");
        assert!(entry(&out, "kubectl", "Apply").is_some());
        assert!(entry(&out, "other", "Apply").is_some());
    }

    #[test]
    fn a_field_changed_by_an_update_conflicts_with_a_later_apply() {
        let live = apply(None, &config(2, "nginx:1"), "kubectl", false).expect("creates");
        let scaled = apply_patch(
            PatchType::Merge,
            &DEPLOYMENT,
            Some(&live),
            &json!({"spec": {"replicas": 7}}),
            "hpa",
            false,
        )
        .expect("merge patch");
        assert!(entry(&scaled, "hpa", "Update").is_some());
        let found = conflicts(apply(
            Some(&scaled),
            &config(2, "nginx:1"),
            "kubectl",
            false,
        ));
        assert_eq!(found, vec![("hpa".to_owned(), ".spec.replicas".to_owned())]);
        let forced = apply(Some(&scaled), &config(2, "nginx:1"), "kubectl", true).expect("forced");
        assert_eq!(forced["spec"]["replicas"], 2);
        assert!(
            entry(&forced, "hpa", "Update").is_none(),
            "hpa owned only replicas, its entry is gone"
        );
    }

    #[test]
    fn apply_keeps_live_items_added_by_others_in_associative_lists() {
        let live = apply(None, &config(1, "a"), "kubectl", false).expect("creates");
        let injected = apply_patch(
            PatchType::StrategicMerge,
            &DEPLOYMENT,
            Some(&live),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}}}),
            "injector",
            false,
        )
        .expect("patch");
        let out = apply(Some(&injected), &config(1, "b"), "kubectl", false).expect("applies");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "proxy", "image": "envoy"}, {"name": "nginx", "image": "b"}])
        );
    }

    #[test]
    fn applied_list_order_wins_and_live_only_items_are_interleaved_as_structured_merge_diff_does() {
        let mut cfg = config(1, "a");
        cfg["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]);
        let live = apply(None, &cfg, "kubectl", false).expect("creates");
        let injected = apply_patch(
            PatchType::StrategicMerge,
            &DEPLOYMENT,
            Some(&live),
            &json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "c"}],
                "containers": [{"name": "x"}]
            }}}}),
            "injector",
            false,
        )
        .expect("patch");
        let order = |v: &Value| -> Vec<String> {
            v["spec"]["template"]["spec"]["containers"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(order(&injected), vec!["a", "x", "b", "c"]);
        cfg["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "c"}, {"name": "a"}, {"name": "b"}]);
        let out = apply(Some(&injected), &cfg, "kubectl", false).expect("applies");
        // structured-merge-diff's walk: "x" is emitted when the walk over the live list reaches
        // it, before the first applied item it has merged ("c").
        assert_eq!(order(&out), vec!["x", "c", "a", "b"]);
    }

    #[test]
    fn the_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
        let mut live = apply(None, &config(2, "nginx:1"), "creator", false).expect("creates");
        live["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("managedFields");
        let found = conflicts(apply(Some(&live), &config(3, "nginx:1"), "kubectl", false));
        assert_eq!(
            found,
            vec![("before-first-apply".to_owned(), ".spec.replicas".to_owned())]
        );
        let out = apply(Some(&live), &config(2, "nginx:1"), "kubectl", false).expect("same values");
        assert!(entry(&out, "before-first-apply", "Update").is_some());
        assert!(entry(&out, "kubectl", "Apply").is_some());
    }

    #[test]
    fn apply_without_kind_or_with_managed_fields_is_invalid() {
        let err = apply(
            None,
            &json!({"apiVersion": "apps/v1", "metadata": {"name": "x"}}),
            "m",
            false,
        )
        .expect_err("no kind");
        assert!(matches!(err, PatchError::Invalid(ref m) if m.contains("kind")));
        let mut cfg = config(1, "a");
        cfg["metadata"]["managedFields"] = json!([]);
        let err = apply(None, &cfg, "m", false).expect_err("managedFields");
        assert!(matches!(err, PatchError::Invalid(ref m) if m.contains("managedFields")));
        let err = apply(
            None,
            &json!({"apiVersion": "v1", "kind": "Pod"}),
            "m",
            false,
        )
        .expect_err("wrong kind");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn service_ports_on_the_same_number_with_two_protocols_stay_apart() {
        let info = TypeInfo {
            api_version: "v1",
            kind: "Service",
            builtin: true,
            schema: None,
        };
        let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
            "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}]}});
        let live = server_side_apply(&info, None, &cfg, "kubectl", false).expect("creates");
        let mut cfg2 = cfg.clone();
        cfg2["spec"]["ports"][1]["targetPort"] = json!(5353);
        let out = server_side_apply(&info, Some(&live), &cfg2, "kubectl", false).expect("applies");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "targetPort": 5353}])
        );
        let fields =
            &entry(&out, "kubectl", "Apply").expect("entry")["fieldsV1"]["f:spec"]["f:ports"];
        assert!(
            fields.get("k:{\"port\":53,\"protocol\":\"TCP\"}").is_some(),
            "{fields}"
        );
        assert!(
            fields.get("k:{\"port\":53,\"protocol\":\"UDP\"}").is_some(),
            "{fields}"
        );
    }

    #[test]
    fn crd_list_map_keys_left_out_take_their_schema_default() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "proto"],
                "items": {"type": "object", "properties": {"port": {"type": "integer"}, "proto": {"type": "string", "default": "tcp"}}}}
        }}}});
        let info = TypeInfo {
            api_version: "x.io/v1",
            kind: "Gw",
            builtin: false,
            schema: Some(&schema),
        };
        let cfg = json!({"apiVersion": "x.io/v1", "kind": "Gw", "metadata": {"name": "g"},
            "spec": {"listeners": [{"port": 80}]}});
        let out = server_side_apply(&info, None, &cfg, "m", false).expect("creates");
        let fields =
            &entry(&out, "m", "Apply").expect("entry")["fieldsV1"]["f:spec"]["f:listeners"];
        assert!(
            fields.get("k:{\"port\":80,\"proto\":\"tcp\"}").is_some(),
            "{fields}"
        );
    }

    pub(super) fn crd_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}, "weight": {"type": "integer"}}}},
            "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}}
        }}}})
    }

    #[test]
    fn crd_list_map_items_merge_by_key_across_managers() {
        let schema = crd_schema();
        let info = TypeInfo {
            api_version: "cache.example.com/v1",
            kind: "Redis",
            builtin: false,
            schema: Some(&schema),
        };
        let base = |spec: Value| json!({"apiVersion": "cache.example.com/v1", "kind": "Redis", "metadata": {"name": "r"}, "spec": spec});
        let live = server_side_apply(
            &info,
            None,
            &base(json!({"servers": [{"name": "a", "port": 1}], "zones": ["x"], "args": ["1"]})),
            "one",
            false,
        )
        .expect("creates");
        let out = server_side_apply(
            &info,
            Some(&live),
            &base(json!({"servers": [{"name": "a", "weight": 5}, {"name": "b", "port": 2}], "zones": ["y"]})),
            "two",
            false,
        )
        .expect("no conflict: different fields");
        assert_eq!(
            out["spec"]["servers"],
            json!([{"name": "a", "port": 1, "weight": 5}, {"name": "b", "port": 2}])
        );
        assert_eq!(out["spec"]["zones"], json!(["x", "y"]));
        let two = &entry(&out, "two", "Apply").expect("entry")["fieldsV1"];
        assert_eq!(
            two["f:spec"],
            json!({
                "f:servers": {
                    "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:weight": {}},
                    "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:port": {}}
                },
                "f:zones": {"v:\"y\"": {}}
            })
        );
        // An atomic list owned by "one" cannot be replaced by "two" without force.
        let found = conflicts(server_side_apply(
            &info,
            Some(&out),
            &base(json!({"args": ["2"]})),
            "two",
            false,
        ));
        assert_eq!(found, vec![("one".to_owned(), ".spec.args".to_owned())]);
    }

    #[test]
    fn crd_fields_the_schema_does_not_declare_are_never_owned() {
        let schema = crd_schema();
        let info = TypeInfo {
            api_version: "cache.example.com/v1",
            kind: "Redis",
            builtin: false,
            schema: Some(&schema),
        };
        let cfg = json!({"apiVersion": "cache.example.com/v1", "kind": "Redis", "metadata": {"name": "r", "labels": {"a": "b"}},
            "spec": {"replicas": 1, "junk": 2}, "extra": true});
        let out = server_side_apply(&info, None, &cfg, "m", false).expect("creates");
        assert_eq!(
            entry(&out, "m", "Apply").expect("entry")["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn crd_set_items_the_manager_stops_applying_are_removed() {
        let schema = crd_schema();
        let info = TypeInfo {
            api_version: "cache.example.com/v1",
            kind: "Redis",
            builtin: false,
            schema: Some(&schema),
        };
        let base = |spec: Value| json!({"apiVersion": "cache.example.com/v1", "kind": "Redis", "metadata": {"name": "r"}, "spec": spec});
        let live = server_side_apply(
            &info,
            None,
            &base(json!({"zones": ["x", "y"]})),
            "one",
            false,
        )
        .expect("creates");
        let out = server_side_apply(
            &info,
            Some(&live),
            &base(json!({"zones": ["y"]})),
            "one",
            false,
        )
        .expect("applies");
        assert_eq!(out["spec"]["zones"], json!(["y"]));
    }
}
