//! Server-side field validation (`fieldValidation`): finds the fields of a request body that its
//! kind's schema does not declare and the fields it names twice, in the order they appear, as
//! kube-apiserver's strict JSON decoder reports them (`unknown field "spec.bogus"`,
//! `duplicate field "metadata.name"`).
//!
//! Built-in kinds are checked against kube-apiserver's own OpenAPI v3 schemas (`$ref`s resolved in
//! the kind's document); custom resources against their CRD version's schema, with `metadata`
//! checked as ObjectMeta.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::builtin;
use crate::registry::ResourceType;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const REF_PREFIX: &str = "#/components/schemas/";

/// Where a kind's schema and the definitions its `$ref`s name come from.
#[derive(Clone, Copy)]
pub(crate) struct KindSchema<'a> {
    root: &'a Value,
    defs: &'a Map<String, Value>,
    /// Custom resources: the root's `metadata` is ObjectMeta, whatever the CRD schema says.
    custom: bool,
}

impl<'a> KindSchema<'a> {
    /// The schema of `ty`, or None when there is nothing to check against (a built-in kind missing
    /// from the compiled-in documents, a CRD version without a schema).
    pub fn of(ty: &'a ResourceType) -> Option<KindSchema<'a>> {
        if ty.builtin {
            let (defs, root) = builtin::kind_schema(&ty.group, &ty.version, &ty.kind)?;
            return Some(KindSchema {
                root,
                defs,
                custom: false,
            });
        }
        let defs = builtin::v3().get("api/v1")?.schemas();
        Some(KindSchema {
            root: ty.schema.as_ref()?,
            defs,
            custom: true,
        })
    }

    /// Follows `$ref` (directly or as the single `allOf` kube-openapi wraps references in).
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let target = s.get("$ref").and_then(Value::as_str).or_else(|| {
                s.get("allOf")
                    .and_then(Value::as_array)
                    .filter(|a| a.len() == 1)
                    .and_then(|a| a[0].get("$ref"))
                    .and_then(Value::as_str)
            });
            match target
                .and_then(|t| t.strip_prefix(REF_PREFIX))
                .and_then(|t| self.defs.get(t))
            {
                Some(next) => s = next,
                None => break,
            }
        }
        s
    }
}

/// What the walk found, in document order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Problems {
    /// kube's wording for each problem.
    pub messages: Vec<String>,
    /// Whether any is an unknown field (which decoding drops) rather than a duplicate.
    pub unknown: bool,
}

/// Checks a JSON document (a request body or a patched object serialized) against `schema`.
/// Returns kube's wording for each problem, or the JSON error if the document does not parse.
pub(crate) fn check_json(
    schema: KindSchema<'_>,
    json: &[u8],
) -> Result<Problems, serde_json::Error> {
    let mut problems = Problems::default();
    let mut path = String::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    Node {
        schema: Some(schema.root),
        kind: &schema,
        root: true,
        path: &mut path,
        problems: &mut problems,
    }
    .deserialize(&mut de)?;
    Ok(problems)
}

/// How an object's fields are looked up in its schema.
struct Fields<'s> {
    properties: Option<&'s Map<String, Value>>,
    additional: Option<&'s Value>,
    open: bool,
    embedded: bool,
    root: bool,
}

/// A field's schema: `Some(Some(s))` declared with schema `s`, `Some(None)` allowed with any
/// content, `None` unknown.
type Child<'s> = Option<Option<&'s Value>>;

impl<'s> Fields<'s> {
    fn of(kind: &KindSchema<'s>, schema: Option<&'s Value>, root: bool) -> Fields<'s> {
        let schema = schema.map(|s| kind.resolve(s));
        let properties = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        let additional = schema
            .and_then(|s| s.get("additionalProperties"))
            .filter(|s| s.is_object());
        let open = match schema {
            None => true,
            Some(s) => {
                flag(s, "x-kubernetes-preserve-unknown-fields")
                    || (properties.is_none() && additional.is_none())
                    || s.get("additionalProperties") == Some(&Value::Bool(true))
            }
        };
        Fields {
            properties,
            additional,
            open,
            embedded: schema.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource")),
            root,
        }
    }

    fn child(&self, kind: &KindSchema<'s>, key: &str) -> Child<'s> {
        let declared = self.properties.and_then(|p| p.get(key)).or(self.additional);
        match (key, declared) {
            ("metadata", _) if self.root && kind.custom => Some(kind.defs.get(OBJECT_META)),
            ("apiVersion" | "kind", None) if self.root || self.embedded => Some(None),
            ("metadata", None) if self.embedded => Some(None),
            (_, Some(s)) => Some(Some(s)),
            (_, None) if self.open => Some(None),
            (_, None) => None,
        }
    }
}

/// One value to walk: its schema (None: anything goes); `path` is a shared buffer holding its
/// path while it is walked.
struct Node<'s, 'p> {
    schema: Option<&'s Value>,
    kind: &'s KindSchema<'s>,
    root: bool,
    path: &'p mut String,
    problems: &'p mut Problems,
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

impl<'de, 's, 'p> DeserializeSeed<'de> for Node<'s, 'p> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 's, 'p> Visitor<'de> for Node<'s, 'p> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = self
            .schema
            .map(|s| self.kind.resolve(s))
            .and_then(|s| s.get("items"))
            .filter(|s| s.is_object());
        let len = self.path.len();
        let mut index = 0usize;
        loop {
            self.path.truncate(len);
            self.path.push_str(&format!("[{index}]"));
            let node = Node {
                schema: items,
                kind: self.kind,
                root: false,
                path: &mut *self.path,
                problems: &mut *self.problems,
            };
            if seq.next_element_seed(node)?.is_none() {
                self.path.truncate(len);
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = Fields::of(self.kind, self.schema, self.root);
        let mut seen = HashSet::new();
        let len = self.path.len();
        while let Some(key) = map.next_key::<String>()? {
            self.path.truncate(len);
            push_key(self.path, &key);
            if !seen.insert(key.clone()) {
                self.problems
                    .messages
                    .push(format!("duplicate field {:?}", self.path));
            }
            match fields.child(self.kind, &key) {
                Some(child_schema) => map.next_value_seed(Node {
                    schema: child_schema,
                    kind: self.kind,
                    root: false,
                    path: &mut *self.path,
                    problems: &mut *self.problems,
                })?,
                None => {
                    self.problems
                        .messages
                        .push(format!("unknown field {:?}", self.path));
                    self.problems.unknown = true;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.path.truncate(len);
        Ok(())
    }
}

/// Removes the fields `schema` does not declare, as decoding into kube's types drops them.
pub(crate) fn prune(schema: KindSchema<'_>, value: &mut Value) {
    prune_walk(&schema, Some(schema.root), value, true);
}

fn prune_walk(kind: &KindSchema<'_>, schema: Option<&Value>, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let fields = Fields::of(kind, schema, root);
            map.retain(|key, _| fields.child(kind, key).is_some());
            for (key, child) in map.iter_mut() {
                if let Some(Some(s)) = fields.child(kind, key) {
                    prune_walk(kind, Some(s), child, false);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema
                .map(|s| kind.resolve(s))
                .and_then(|s| s.get("items"))
                .filter(|s| s.is_object());
            if let Some(s) = item_schema {
                for item in items {
                    prune_walk(kind, Some(s), item, false);
                }
            }
        }
        _ => {}
    }
}

/// The fields of a server-side apply configuration its kind does not declare, as
/// structured-merge-diff names them when it refuses to build the typed patch: `.spec.bogus`,
/// `.spec.template.spec.containers[name="c"].bogus`, `.spec.tolerations[0].qq`; sorted.
pub(crate) fn undeclared_for_apply(schema: KindSchema<'_>, config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    apply_walk(
        &schema,
        Some(schema.root),
        config,
        String::new(),
        true,
        &mut out,
    );
    out.sort();
    out
}

/// An item's key in structured-merge-diff's path syntax: `[name="c"]`, `[containerPort=80,protocol="TCP"]`.
fn list_key(keys: &[Value], item: &Value) -> Option<String> {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|k| item.get(k).map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| format!("[{}]", parts.join(",")))
}

fn apply_walk(
    kind: &KindSchema<'_>,
    schema: Option<&Value>,
    value: &Value,
    path: String,
    root: bool,
    out: &mut Vec<String>,
) {
    let Some(schema) = schema.map(|s| kind.resolve(s)) else {
        return;
    };
    match value {
        Value::Object(map) => {
            let fields = Fields::of(kind, Some(schema), root);
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match fields.child(kind, key) {
                    Some(Some(s)) => apply_walk(kind, Some(s), child, child_path, false, out),
                    Some(None) => {}
                    None => out.push(format!("{child_path}: field not declared in schema")),
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema.get("items").filter(|s| s.is_object());
            let keys = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .filter(|_| schema["x-kubernetes-list-type"] == "map");
            for (i, item) in items.iter().enumerate() {
                let at = keys
                    .and_then(|k| list_key(k, item))
                    .unwrap_or_else(|| format!("[{i}]"));
                apply_walk(kind, item_schema, item, format!("{path}{at}"), false, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn check(group: &str, version: &str, resource: &str, body: &str) -> Vec<String> {
        let r = Registry::builtin();
        let ty = r.get(group, version, resource).expect("served");
        let schema = KindSchema::of(&ty).expect("schema");
        check_json(schema, body.as_bytes())
            .expect("parses")
            .messages
    }

    #[test]
    fn unknown_fields_are_reported_with_their_path_in_document_order() {
        let found = check(
            "apps",
            "v1",
            "deployments",
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","zz":1},
               "spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},
               "spec":{"containers":[{"name":"c","image":"i","bogus":1,"ports":[{"containerPort":1,"zz":2}],
               "resources":{"limits":{"cpu":"1"}}}]}}},"status":{"replicas":1}}"#,
        );
        assert_eq!(
            found,
            vec![
                r#"unknown field "metadata.zz""#,
                r#"unknown field "spec.template.spec.containers[0].bogus""#,
                r#"unknown field "spec.template.spec.containers[0].ports[0].zz""#,
            ]
        );
    }

    #[test]
    fn apply_configurations_name_undeclared_fields_as_structured_merge_diff_does() {
        let r = Registry::builtin();
        let ty = r.get("apps", "v1", "deployments").expect("served");
        let schema = KindSchema::of(&ty).expect("schema");
        let config = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "zz": 1,
            "spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "i", "bogus": 1}],
                "tolerations": [{"key": "a", "qq": 1}],
            }}},
        });
        assert_eq!(
            undeclared_for_apply(schema, &config),
            vec![
                r#".spec.template.spec.containers[name="c"].bogus: field not declared in schema"#,
                ".spec.template.spec.tolerations[0].qq: field not declared in schema",
                ".zz: field not declared in schema",
            ]
        );
    }

    #[test]
    fn pruning_drops_exactly_the_reported_unknown_fields() {
        let r = Registry::builtin();
        let ty = r.get("apps", "v1", "deployments").expect("served");
        let schema = KindSchema::of(&ty).expect("schema");
        let mut d = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "zz": 1}, "zz": 1,
            "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"keep": "me"}}, "spec": {
                "containers": [{"name": "c", "image": "i", "bogus": 1, "resources": {"limits": {"cpu": "1"}}}],
            }}},
        });
        prune(schema, &mut d);
        assert_eq!(
            d,
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"keep": "me"}}, "spec": {
                    "containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}}],
                }}},
            })
        );
    }

    #[test]
    fn duplicate_fields_are_reported_at_any_depth() {
        let found = check(
            "",
            "v1",
            "configmaps",
            r#"{"metadata":{"name":"x","name":"y","labels":{"a":"b","a":"c"}},"data":{"a":"b"},"data":{}}"#,
        );
        assert_eq!(
            found,
            vec![
                r#"duplicate field "metadata.name""#,
                r#"duplicate field "metadata.labels.a""#,
                r#"duplicate field "data""#,
            ]
        );
    }

    #[test]
    fn maps_raw_extensions_and_quantities_accept_any_content() {
        let found = check(
            "apps",
            "v1",
            "controllerrevisions",
            r#"{"metadata":{"name":"x","annotations":{"any":"thing"}},"data":{"whatever":{"deep":1}},"revision":1}"#,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn custom_resources_check_metadata_as_object_meta_and_honour_preserve_unknown_fields() {
        let mut ty = Registry::builtin()
            .get("", "v1", "configmaps")
            .expect("served")
            .as_ref()
            .clone();
        ty.builtin = false;
        ty.schema = Some(serde_json::json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }
        }));
        let schema = KindSchema::of(&ty).expect("schema");
        let found = check_json(
            schema,
            br#"{"apiVersion":"x/v1","kind":"W","metadata":{"name":"a","nope":1},"spec":{"size":1,"bogus":2},"extra":{"free":1}}"#,
        )
        .expect("parses")
        .messages;
        assert_eq!(
            found,
            vec![
                r#"unknown field "metadata.nope""#,
                r#"unknown field "spec.bogus""#
            ]
        );
    }
}
