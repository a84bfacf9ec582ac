//! Sets of field paths in structured-merge-diff's `FieldsV1` form, and how to compute them from objects.
//!
//! A [`FieldSet`] is a tree keyed by path elements exactly as `FieldsV1` spells them: `f:<field>`
//! for a field, `k:{"name":"web"}` for an item of an associative list, `v:"value"` for an item of
//! a set, `i:<index>` for an item of a list whose item has no usable key. A node that is itself
//! in the set (a leaf, a list item, an atomic value) is a *member*, written `".": {}` when it also
//! has children.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::PatchError;
use super::merge_keys::{Keys, ListKind, Shape};

/// A set of field paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// The path ending at this node is in the set.
    pub(crate) member: bool,
    /// Paths that continue below this node, by `FieldsV1` element.
    pub(crate) children: BTreeMap<String, FieldSet>,
}

/// How a set is computed from a value: an applied configuration owns leaves and list items; an
/// update also owns every map and list it added (written `".": {}` when it has children), as
/// structured-merge-diff records the difference between the old object and the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Apply,
    Update,
}

/// Where in the object a walk is, for the fields the server manages itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Root,
    Metadata,
    Inner,
}

impl Level {
    /// Whether `field` at this level is server-managed and never in a manager's set.
    pub(crate) fn ignores(self, field: &str) -> bool {
        match self {
            Level::Root => matches!(field, "apiVersion" | "kind"),
            Level::Metadata => matches!(
                field,
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ),
            Level::Inner => false,
        }
    }

    /// The level of `field`'s value.
    pub(crate) fn below(self, field: &str) -> Level {
        if self == Level::Root && field == "metadata" {
            Level::Metadata
        } else {
            Level::Inner
        }
    }
}

impl FieldSet {
    /// True when no path is in the set.
    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The child node for `element`, created if missing.
    pub(crate) fn child(&mut self, element: String) -> &mut FieldSet {
        self.children.entry(element).or_default()
    }

    /// Drops empty subtrees left behind by walks that created nodes speculatively.
    pub(crate) fn compact(&mut self) {
        self.children.retain(|_, child| {
            child.compact();
            !child.is_empty()
        });
    }

    /// Reads a `FieldsV1` object; anything malformed in it is ignored (it was written by a client).
    pub(crate) fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = value {
            for (key, child) in map {
                if key == "." {
                    set.member = true;
                } else {
                    set.children
                        .insert(key.clone(), FieldSet::from_fields_v1(child));
                }
            }
        }
        set.compact_keep_leaves();
        set
    }

    /// In `FieldsV1`, `"f:x": {}` means `x` is a member; normalise such nodes.
    fn compact_keep_leaves(&mut self) {
        for child in self.children.values_mut() {
            if child.children.is_empty() {
                child.member = true;
            }
        }
    }

    /// The `FieldsV1` JSON for this set.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (key, child) in &self.children {
            if !child.is_empty() {
                map.insert(key.clone(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Paths in `self` or `other`.
    pub(crate) fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (key, child) in &other.children {
            self.child(key.clone()).union(child);
        }
    }

    /// Paths in `self` that are not in `other` (membership by membership).
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            let diff = match other.children.get(key) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !diff.is_empty() {
                out.children.insert(key.clone(), diff);
            }
        }
        out
    }

    /// Removes from `self` the members of `other` (in place; see [`FieldSet::difference`]).
    pub(crate) fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        self.children.retain(|key, child| {
            if let Some(theirs) = other.children.get(key) {
                child.subtract(theirs);
            }
            !child.is_empty()
        });
    }

    /// Removes from `self` every path at or below a member of `removed`, in place.
    pub(crate) fn remove_subtrees(&mut self, removed: &FieldSet) {
        if removed.member {
            *self = FieldSet::default();
            return;
        }
        self.children.retain(|key, child| {
            if let Some(gone) = removed.children.get(key) {
                child.remove_subtrees(gone);
            }
            !child.is_empty()
        });
    }

    /// The node at `path`, if the set has one.
    pub(crate) fn node(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for element in path {
            node = node.children.get(element)?;
        }
        Some(node)
    }

    /// Whether the set holds `path` or anything below it.
    pub(crate) fn touches(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|node| !node.is_empty())
    }

    /// Calls `visit` with the path of every member, parents before children.
    pub(crate) fn for_each_member(&self, visit: &mut dyn FnMut(&[String], &FieldSet)) {
        let mut path = Vec::new();
        self.walk(&mut path, visit);
    }

    fn walk(&self, path: &mut Vec<String>, visit: &mut dyn FnMut(&[String], &FieldSet)) {
        if self.member {
            visit(path, self);
        }
        for (key, child) in &self.children {
            path.push(key.clone());
            child.walk(path, visit);
            path.pop();
        }
    }
}

/// Adds to `node` the paths of `value` (which has `shape`), as an applier or updater owns them.
///
/// # Errors
/// [`PatchError::Invalid`] when an item of an associative list lacks one of its key fields (only
/// checked in [`Style::Apply`]: an applied configuration must name its items; stored objects get
/// an index element instead).
pub(crate) fn collect(
    value: &Value,
    shape: Shape<'_>,
    level: Level,
    style: Style,
    node: &mut FieldSet,
) -> Result<(), PatchError> {
    match value {
        Value::Object(map) if !shape.is_atomic_object() => {
            if map.is_empty() || style == Style::Update {
                node.member = true;
            }
            for (key, child) in map {
                if level.ignores(key) || child.is_null() || !shape.declares(key) {
                    continue;
                }
                collect(
                    child,
                    shape.field(key),
                    level.below(key),
                    style,
                    node.child(format!("f:{key}")),
                )?;
            }
        }
        Value::Array(items) => match shape.list_kind() {
            ListKind::Atomic => node.member = true,
            ListKind::Set => {
                if items.is_empty() || style == Style::Update {
                    node.member = true;
                }
                for item in items {
                    let element = value_element(item);
                    if style == Style::Apply && node.children.contains_key(&element) {
                        return Err(PatchError::Invalid(format!(
                            "duplicate entries for key {}",
                            display(std::slice::from_ref(&element))
                        )));
                    }
                    node.child(element).member = true;
                }
            }
            ListKind::Map(keys) => {
                if items.is_empty() || style == Style::Update {
                    node.member = true;
                }
                for (index, item) in items.iter().enumerate() {
                    let element = match key_element(item, keys) {
                        Some(element) => element,
                        None if style == Style::Update => format!("i:{index}"),
                        None => return Err(missing_key(item, keys)),
                    };
                    if style == Style::Apply && node.children.contains_key(&element) {
                        return Err(PatchError::Invalid(format!(
                            "duplicate entries for key {}",
                            display(std::slice::from_ref(&element))
                        )));
                    }
                    let child = node.child(element);
                    child.member = true;
                    collect(item, shape.items(), Level::Inner, style, child)?;
                }
            }
        },
        _ => node.member = true,
    }
    Ok(())
}

/// The fields an update changed going from `old` to `new` (added or modified, owned by the updater
/// afterwards) into `changed`, and the ones it removed into `removed`.
pub(crate) fn diff(
    old: &Value,
    new: &Value,
    shape: Shape<'_>,
    level: Level,
    changed: &mut FieldSet,
    removed: &mut FieldSet,
) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) if !shape.is_atomic_object() => {
            for (key, new_child) in new_map {
                if level.ignores(key) || !shape.declares(key) {
                    continue;
                }
                // A null field is an unset field, as in a typed Kubernetes object.
                let old_child = old_map.get(key).filter(|v| !v.is_null());
                if old_child == Some(new_child) || (old_child.is_none() && new_child.is_null()) {
                    continue;
                }
                let element = format!("f:{key}");
                let child_shape = shape.field(key);
                match old_child {
                    Some(_) if new_child.is_null() => removed.child(element).member = true,
                    Some(old_child) => {
                        diff(
                            old_child,
                            new_child,
                            child_shape,
                            level.below(key),
                            changed.child(element.clone()),
                            removed.child(element),
                        );
                    }
                    None => {
                        // Update style never fails: items without keys get index elements.
                        let _ = collect(
                            new_child,
                            child_shape,
                            level.below(key),
                            Style::Update,
                            changed.child(element),
                        );
                    }
                }
            }
            for (key, old_child) in old_map {
                if !new_map.contains_key(key)
                    && !old_child.is_null()
                    && !level.ignores(key)
                    && shape.declares(key)
                {
                    removed.child(format!("f:{key}")).member = true;
                }
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => match shape.list_kind() {
            ListKind::Atomic => {
                if old_items != new_items {
                    changed.member = true;
                }
            }
            ListKind::Set => {
                let old_set: HashSet<String> = old_items.iter().map(value_element).collect();
                let new_set: HashSet<String> = new_items.iter().map(value_element).collect();
                for element in new_set.difference(&old_set) {
                    changed.child(element.clone()).member = true;
                }
                for element in old_set.difference(&new_set) {
                    removed.child(element.clone()).member = true;
                }
            }
            ListKind::Map(keys) => {
                let old_keyed: HashMap<String, &Value> = old_items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        (
                            key_element(item, keys).unwrap_or_else(|| format!("i:{i}")),
                            item,
                        )
                    })
                    .collect();
                let mut new_elements = HashSet::with_capacity(new_items.len());
                for (index, item) in new_items.iter().enumerate() {
                    let element = key_element(item, keys).unwrap_or_else(|| format!("i:{index}"));
                    match old_keyed.get(&element) {
                        Some(old_item) if *old_item == item => {}
                        Some(old_item) => diff(
                            old_item,
                            item,
                            shape.items(),
                            Level::Inner,
                            changed.child(element.clone()),
                            removed.child(element.clone()),
                        ),
                        None => {
                            let child = changed.child(element.clone());
                            child.member = true;
                            let _ =
                                collect(item, shape.items(), Level::Inner, Style::Update, child);
                        }
                    }
                    new_elements.insert(element);
                }
                for (element, _) in old_keyed {
                    if !new_elements.contains(&element) {
                        removed.child(element).member = true;
                    }
                }
            }
        },
        (old, new) => {
            if old != new {
                if new.is_object() && !shape.is_atomic_object() || new.is_array() {
                    let _ = collect(new, shape, level, Style::Update, changed);
                    changed.member = true;
                } else {
                    changed.member = true;
                }
            }
        }
    }
}

/// The `k:{...}` element of an associative-list item (a missing key field takes its default),
/// or `None` when a key field is missing and has no default.
pub(crate) fn key_element(item: &Value, keys: Keys<'_>) -> Option<String> {
    let mut key = Map::new();
    for name in keys.names() {
        let value = match item.get(name) {
            Some(value) => value.clone(),
            None => keys.default_for(name)?,
        };
        key.insert(name.to_owned(), value);
    }
    if key.is_empty() {
        return None;
    }
    Some(format!("k:{}", Value::Object(key)))
}

/// The `v:<json>` element of a set item.
pub(crate) fn value_element(item: &Value) -> String {
    format!("v:{item}")
}

fn missing_key(item: &Value, keys: Keys<'_>) -> PatchError {
    let names: Vec<&str> = keys.names().collect();
    PatchError::Invalid(format!(
        "associative list with keys {names:?} has an element that omits a key field: {item}"
    ))
}

/// The value a path element selects in `value`.
pub(crate) fn get<'v>(value: &'v Value, element: &str) -> Option<&'v Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.get(field);
    }
    let items = value.as_array()?;
    items.get(item_index(items, element)?)
}

/// Removes what a path element selects in `value`; returns whether something was removed.
pub(crate) fn remove(value: &mut Value, element: &str) -> bool {
    if let Some(field) = element.strip_prefix("f:") {
        return value
            .as_object_mut()
            .is_some_and(|map| map.remove(field).is_some());
    }
    let Some(items) = value.as_array_mut() else {
        return false;
    };
    match item_index(items, element) {
        Some(index) => {
            items.remove(index);
            true
        }
        None => false,
    }
}

/// The mutable value a path element selects in `value`.
pub(crate) fn get_mut<'v>(value: &'v mut Value, element: &str) -> Option<&'v mut Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.get_mut(field);
    }
    let items = value.as_array_mut()?;
    let index = item_index(items, element)?;
    items.get_mut(index)
}

fn item_index(items: &[Value], element: &str) -> Option<usize> {
    if let Some(key) = element.strip_prefix("k:") {
        let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) else {
            return None;
        };
        items
            .iter()
            .position(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
    } else if let Some(raw) = element.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(raw).ok()?;
        items.iter().position(|item| *item == wanted)
    } else if let Some(index) = element.strip_prefix("i:") {
        index.parse().ok().filter(|i| *i < items.len())
    } else {
        None
    }
}

/// The value at a whole path.
pub(crate) fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |value, element| get(value, element))
}

/// A path rendered kube-style: `.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`.
pub(crate) fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            out.push('[');
            if let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) {
                let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&parts.join(","));
            } else {
                out.push_str(key);
            }
            out.push(']');
        } else if let Some(raw) = element.strip_prefix("v:") {
            out.push_str("[=");
            out.push_str(raw);
            out.push(']');
        } else if let Some(index) = element.strip_prefix("i:") {
            out.push('[');
            out.push_str(index);
            out.push(']');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::TypeInfo;
    use serde_json::json;

    const DEPLOYMENT: TypeInfo<'static> = TypeInfo {
        api_version: "apps/v1",
        kind: "Deployment",
        builtin: true,
        schema: None,
    };

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
            }
        })
    }

    #[test]
    fn an_applied_deployment_owns_leaves_items_and_atomic_selector_like_kubectl_shows() {
        let mut set = FieldSet::default();
        collect(
            &deployment(),
            Shape::root(&DEPLOYMENT),
            Level::Root,
            Style::Apply,
            &mut set,
        )
        .expect("collects");
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                    }
                }
            })
        );
    }

    #[test]
    fn an_update_also_owns_the_label_maps_it_created() {
        let (mut set, mut removed) = (FieldSet::default(), FieldSet::default());
        diff(
            &super::super::managed_fields::zero_value(&DEPLOYMENT),
            &deployment(),
            Shape::root(&DEPLOYMENT),
            Level::Root,
            &mut set,
            &mut removed,
        );
        assert_eq!(
            set.to_fields_v1()["f:metadata"],
            json!({"f:labels": {".": {}, "f:app": {}}})
        );
    }

    #[test]
    fn null_fields_are_unset_fields() {
        let object = json!({"spec": {"template": {"metadata": {"creationTimestamp": null, "labels": {"a": "b"}}}}});
        let (mut set, mut removed) = (FieldSet::default(), FieldSet::default());
        diff(
            &super::super::managed_fields::zero_value(&DEPLOYMENT),
            &object,
            Shape::root(&DEPLOYMENT),
            Level::Root,
            &mut set,
            &mut removed,
        );
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:spec": {"f:template": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}})
        );
        let (mut changed, mut removed) = (FieldSet::default(), FieldSet::default());
        diff(
            &json!({"spec": {"a": 1, "b": null}}),
            &json!({"spec": {"a": null, "b": null, "c": null}}),
            Shape::root(&DEPLOYMENT),
            Level::Root,
            &mut changed,
            &mut removed,
        );
        changed.compact();
        removed.compact();
        assert!(changed.is_empty(), "{changed:?}");
        assert_eq!(removed.to_fields_v1(), json!({"f:spec": {"f:a": {}}}));
    }

    #[test]
    fn fields_v1_round_trips() {
        let v1 = json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}}}, "f:replicas": {}}});
        assert_eq!(FieldSet::from_fields_v1(&v1).to_fields_v1(), v1);
    }

    #[test]
    fn an_apply_item_without_its_key_is_invalid() {
        let mut set = FieldSet::default();
        let object = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = collect(
            &object,
            Shape::root(&DEPLOYMENT),
            Level::Root,
            Style::Apply,
            &mut set,
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("omits a key field")),
            "{err}"
        );
    }

    #[test]
    fn an_applied_list_with_a_repeated_key_is_invalid() {
        let object =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let mut set = FieldSet::default();
        let err = collect(
            &object,
            Shape::root(&DEPLOYMENT),
            Level::Root,
            Style::Apply,
            &mut set,
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("duplicate entries for key [name=\"a\"]")),
            "{err}"
        );
        let object = json!({"metadata": {"finalizers": ["x", "x"]}});
        let err = collect(
            &object,
            Shape::root(&DEPLOYMENT),
            Level::Root,
            Style::Apply,
            &mut FieldSet::default(),
        )
        .expect_err("invalid");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn diff_reports_modified_added_and_removed_paths() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["replicas"] = json!(3);
        new["metadata"]["labels"] = json!({"tier": "fe"});
        new["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "nginx", "image": "nginx:2"}, {"name": "side", "image": "x"}]);
        let (mut changed, mut removed) = (FieldSet::default(), FieldSet::default());
        diff(
            &old,
            &new,
            Shape::root(&DEPLOYMENT),
            Level::Root,
            &mut changed,
            &mut removed,
        );
        changed.compact();
        removed.compact();
        assert_eq!(
            changed.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:tier": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {"f:image": {}},
                    "k:{\"name\":\"side\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}}
            })
        );
        assert_eq!(
            removed.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}})
        );
    }

    #[test]
    fn paths_render_kube_style() {
        let path = vec![
            "f:spec".to_owned(),
            "f:containers".to_owned(),
            "k:{\"name\":\"web\"}".to_owned(),
            "f:image".to_owned(),
        ];
        assert_eq!(display(&path), ".spec.containers[name=\"web\"].image");
        let path = vec![
            "f:metadata".to_owned(),
            "f:finalizers".to_owned(),
            "v:\"x\"".to_owned(),
        ];
        assert_eq!(display(&path), ".metadata.finalizers[=\"x\"]");
    }

    #[test]
    fn elements_select_items_by_key_value_and_index() {
        let list = json!([{"name": "a", "v": 1}, {"name": "b", "v": 2}]);
        assert_eq!(
            get(&list, "k:{\"name\":\"b\"}"),
            Some(&json!({"name": "b", "v": 2}))
        );
        assert_eq!(get(&json!(["x", "y"]), "v:\"y\""), Some(&json!("y")));
        assert_eq!(
            get(&list, "i:0").and_then(|v| v.get("name")),
            Some(&json!("a"))
        );
        let mut list = list;
        assert!(remove(&mut list, "k:{\"name\":\"a\"}"));
        assert_eq!(list, json!([{"name": "b", "v": 2}]));
    }

    #[test]
    fn difference_and_subtree_removal_work_on_members() {
        let a = FieldSet::from_fields_v1(
            &json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {"f:d": {}}}}),
        );
        let b = FieldSet::from_fields_v1(&json!({"f:spec": {"f:a": {}}}));
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:spec": {"f:b": {}, "f:c": {"f:d": {}}}})
        );
        let gone = FieldSet::from_fields_v1(&json!({"f:spec": {"f:c": {}}}));
        assert_eq!(
            {
                let mut kept = a.clone();
                kept.remove_subtrees(&gone);
                kept.to_fields_v1()
            },
            json!({"f:spec": {"f:a": {}, "f:b": {}}})
        );
    }
}
