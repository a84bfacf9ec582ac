//! CRD structural-schema logic: validation with kube-style field errors, defaulting and pruning.
//!
//! The server calls, on every create and update of a custom resource: [`prune`], then
//! [`apply_defaults`], then [`validate()`] (the order kube-apiserver uses), and [`apply_defaults`]
//! again when reading objects stored before a default was added.

mod validate;

use std::fmt;

use serde_json::Value;

/// One validation failure, shaped like kube-apiserver's `field.Error`.
///
/// `message` is what kube-apiserver puts in `details.causes[].message` (its `ErrorBody()`), e.g.
/// `Invalid value: 50: spec.replicas in body should be less than or equal to 20` or
/// `Required value`; the full Status message is `{path}: {message}`, which is what [`fmt::Display`]
/// prints.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field, kube-style: `spec.replicas`, `spec.items[0].name`.
    pub path: String,
    /// Which rule failed.
    pub reason: FieldErrorKind,
    /// kube-apiserver's cause message for this error (see the type docs).
    pub message: String,
}

/// Which schema rule a [`FieldError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A `required` property is missing (`FieldValueRequired`).
    Required,
    /// The value has the wrong JSON type, or is null where not `nullable` (`FieldValueTypeInvalid`).
    Type,
    /// Below `minimum` (`FieldValueInvalid`).
    Minimum,
    /// Above `maximum` (`FieldValueInvalid`).
    Maximum,
    /// Not one of the `enum` values (`FieldValueNotSupported`).
    Enum,
    /// Does not match `pattern` (`FieldValueInvalid`).
    Pattern,
    /// Shorter than `minLength` (`FieldValueInvalid`).
    MinLength,
    /// Longer than `maxLength` (`FieldValueTooLong`).
    MaxLength,
    /// Fewer than `minItems` (`FieldValueInvalid`).
    MinItems,
    /// More than `maxItems` (`FieldValueTooMany`).
    MaxItems,
    /// The same item twice in an `x-kubernetes-list-type: set` or `map` list
    /// (`FieldValueDuplicate`).
    Duplicate,
    /// A field the schema does not know (pruned off); informational.
    Unknown,
}

impl FieldErrorKind {
    /// The `details.causes[].reason` kube-apiserver reports for this kind of error.
    #[must_use]
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Type => "FieldValueTypeInvalid",
            FieldErrorKind::Enum => "FieldValueNotSupported",
            FieldErrorKind::MaxLength => "FieldValueTooLong",
            FieldErrorKind::MaxItems => "FieldValueTooMany",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Unknown => "FieldValueForbidden",
            FieldErrorKind::Minimum
            | FieldErrorKind::Maximum
            | FieldErrorKind::Pattern
            | FieldErrorKind::MinLength
            | FieldErrorKind::MinItems => "FieldValueInvalid",
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validates `object` against a CRD version's `openAPIV3Schema`.
///
/// Supports the structural-schema subset: `type`, `properties`, `required`, `items`,
/// `minimum`/`maximum` (with `exclusiveMinimum`/`exclusiveMaximum`), `enum`, `pattern`,
/// `minLength`/`maxLength`, `minItems`/`maxItems`, `additionalProperties`, `nullable`,
/// `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string` and
/// `x-kubernetes-embedded-resource`. At the root, `apiVersion`, `kind` and `metadata` are not
/// validated by the schema (the server checks them). Returns every error found, in document order;
/// an empty list means the object is valid.
#[must_use]
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut path = String::new();
    validate::node(schema, object, &mut path, true, &mut errors);
    errors
}

/// Applies `default` values from the schema in place, as kube-apiserver does on create, update and
/// read: a missing property with a `default` gets a copy of it (nested defaults inside it too);
/// a `null` in a non-nullable property with a default is replaced by the default.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    default_node(schema, object);
}

/// Removes, in place, fields the schema does not declare (unless
/// `x-kubernetes-preserve-unknown-fields: true`), and `null` values of non-nullable fields, as
/// kube-apiserver's pruning does. At the root, `apiVersion`, `kind` and `metadata` are kept.
pub fn prune(schema: &Value, object: &mut Value) {
    prune_node(schema, object, true);
}

/// Like [`prune`], but returns what it removed, for `fieldValidation`: each error's `message` is
/// kube-apiserver's wording, `unknown field "spec.junk"`, which it sends as a `Warning` header
/// (`fieldValidation=Warn`) or, prefixed with `strict decoding error: `, as a 400
/// (`fieldValidation=Strict`, kubectl's default).
pub fn prune_reporting(schema: &Value, object: &mut Value) -> Vec<FieldError> {
    let mut removed = Vec::new();
    let mut path = String::new();
    prune_node_reporting(schema, object, true, &mut path, &mut removed);
    removed
        .into_iter()
        .map(|path| FieldError {
            message: format!("unknown field {path:?}"),
            path,
            reason: FieldErrorKind::Unknown,
        })
        .collect()
}

const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn join_field(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn default_node(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child_schema) in properties {
                    let Some(default) = child_schema.get("default") else {
                        continue;
                    };
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !flag(child_schema, "nullable"),
                        Some(_) => false,
                    };
                    if missing {
                        map.insert(key.clone(), default.clone());
                    }
                }
                for (key, child) in map.iter_mut() {
                    if let Some(child_schema) = properties.get(key) {
                        default_node(child_schema, child);
                    }
                }
            } else if let Some(additional) =
                schema.get("additionalProperties").filter(|s| s.is_object())
            {
                for child in map.values_mut() {
                    default_node(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    default_node(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn prune_node(schema: &Value, value: &mut Value, root: bool) {
    let mut sink = None;
    prune_inner(schema, value, root, &mut String::new(), &mut sink);
}

fn prune_node_reporting(
    schema: &Value,
    value: &mut Value,
    root: bool,
    path: &mut String,
    removed: &mut Vec<String>,
) {
    let mut sink = Some(removed);
    prune_inner(schema, value, root, path, &mut sink);
}

/// Pruning walk; `removed` collects removed paths when the caller wants them (the path string is
/// only maintained then, so plain pruning allocates nothing for paths).
fn prune_inner(
    schema: &Value,
    value: &mut Value,
    root: bool,
    path: &mut String,
    removed: &mut Option<&mut Vec<String>>,
) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    match value {
        Value::Object(map) => {
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|s| s.is_object() || s.as_bool() == Some(true));
            let keep_root_fields = root || embedded;
            map.retain(|key, child| {
                if keep_root_fields && ROOT_FIELDS.contains(&key.as_str()) {
                    return true;
                }
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                let keep = match child_schema {
                    Some(s) => !(child.is_null() && !flag(s, "nullable") && s.is_object()),
                    None => preserve,
                };
                if !keep && let Some(list) = removed.as_deref_mut() {
                    list.push(join_field(path, key));
                }
                keep
            });
            for (key, child) in map.iter_mut() {
                if keep_root_fields && ROOT_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(child_schema) = properties
                    .and_then(|p| p.get(key))
                    .or(additional)
                    .filter(|s| s.is_object())
                {
                    let len = path.len();
                    if removed.is_some() {
                        *path = join_field(path, key);
                    }
                    prune_inner(child_schema, child, false, path, removed);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (index, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    if removed.is_some() {
                        path.push_str(&format!("[{index}]"));
                    }
                    prune_inner(item_schema, item, false, path, removed);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn redis_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1},
                        "image": {"type": "string", "minLength": 3, "maxLength": 20, "pattern": "^[a-z0-9:./-]+$"},
                        "mode": {"type": "string", "enum": ["Pending", "Running"]},
                        "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "exclusiveMaximum": true, "maximum": 1},
                        "port": {"x-kubernetes-int-or-string": true},
                        "note": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}},
                        "servers": {"type": "array", "items": {
                            "type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}, "weight": {"type": "integer", "default": 10}}
                        }},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
            }
        })
    }

    pub(super) fn obj(spec: Value) -> Value {
        json!({"apiVersion": "cache.example.com/v1", "kind": "RedisCluster", "metadata": {"name": "r", "labels": {"x": "y"}}, "spec": spec})
    }

    #[test]
    fn defaults_fill_missing_fields_including_inside_list_items() {
        let mut object =
            obj(json!({"image": "redis", "servers": [{"name": "a"}, {"name": "b", "weight": 3}]}));
        apply_defaults(&redis_schema(), &mut object);
        assert_eq!(object["spec"]["replicas"], 1);
        assert_eq!(
            object["spec"]["servers"],
            json!([{"name": "a", "weight": 10}, {"name": "b", "weight": 3}])
        );
    }

    #[test]
    fn defaults_never_overwrite_a_set_value() {
        let mut object = obj(json!({"image": "redis", "replicas": 5}));
        apply_defaults(&redis_schema(), &mut object);
        assert_eq!(object["spec"]["replicas"], 5);
    }

    #[test]
    fn defaults_apply_nested_defaults_inside_a_defaulted_object() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
            "size": {"type": "integer", "default": 3}
        }}}});
        let mut object = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {}});
        apply_defaults(&schema, &mut object);
        assert_eq!(object["spec"], json!({"size": 3}));
    }

    #[test]
    fn defaults_replace_null_in_non_nullable_fields() {
        let mut object = obj(json!({"image": "redis", "replicas": null}));
        apply_defaults(&redis_schema(), &mut object);
        assert_eq!(object["spec"]["replicas"], 1);
    }

    #[test]
    fn pruning_drops_unknown_fields_but_keeps_root_metadata() {
        let mut object =
            obj(json!({"image": "redis", "bogus": 1, "servers": [{"name": "a", "junk": true}]}));
        object["status"] = json!({"ready": true, "other": 1});
        object["topLevel"] = json!("x");
        let removed = prune_reporting(&redis_schema(), &mut object);
        assert_eq!(
            object["spec"],
            json!({"image": "redis", "servers": [{"name": "a"}]})
        );
        assert_eq!(object["status"], json!({"ready": true}));
        assert_eq!(
            object["metadata"],
            json!({"name": "r", "labels": {"x": "y"}})
        );
        assert!(object.get("topLevel").is_none());
        let bogus = removed
            .iter()
            .find(|e| e.path == "spec.bogus")
            .expect("reported");
        assert_eq!(bogus.message, "unknown field \"spec.bogus\"");
        assert_eq!(bogus.reason, FieldErrorKind::Unknown);
        let mut paths: Vec<String> = removed.into_iter().map(|e| e.path).collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![
                "spec.bogus",
                "spec.servers[0].junk",
                "status.other",
                "topLevel"
            ]
        );
    }

    #[test]
    fn pruning_keeps_everything_under_preserve_unknown_fields() {
        let mut object = obj(json!({"image": "redis", "extra": {"anything": {"deep": [1, 2]}}}));
        prune(&redis_schema(), &mut object);
        assert_eq!(
            object["spec"]["extra"],
            json!({"anything": {"deep": [1, 2]}})
        );
    }

    #[test]
    fn pruning_keeps_embedded_resource_metadata() {
        let template =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"a": 1}});
        let mut object = obj(json!({"image": "redis", "template": template.clone()}));
        prune(&redis_schema(), &mut object);
        assert_eq!(object["spec"]["template"], template);
    }

    #[test]
    fn pruning_removes_null_from_non_nullable_fields_and_keeps_it_for_nullable() {
        let mut object = obj(json!({"image": "redis", "mode": null, "note": null}));
        prune(&redis_schema(), &mut object);
        assert_eq!(object["spec"], json!({"image": "redis", "note": null}));
    }

    #[test]
    fn pruning_keeps_map_values_under_additional_properties() {
        let mut object = obj(json!({"image": "redis", "labels": {"a": "x"}}));
        prune(&redis_schema(), &mut object);
        assert_eq!(object["spec"]["labels"], json!({"a": "x"}));
    }
}
