//! CRD structural-schema logic: validation with kube-style field errors, defaulting and pruning.
//!
//! The server calls, on every create and update of a custom resource: [`prune`], then
//! [`apply_defaults`], then [`validate`] (the order kube-apiserver uses), and [`apply_defaults`]
//! again when reading objects stored before a default was added.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

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
    validate_node(schema, object, &mut path, true, &mut errors);
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

/// Like [`prune`], but returns the paths of the fields it removed (for warnings).
pub fn prune_reporting(schema: &Value, object: &mut Value) -> Vec<FieldError> {
    let mut removed = Vec::new();
    let mut path = String::new();
    prune_node_reporting(schema, object, true, &mut path, &mut removed);
    removed
        .into_iter()
        .map(|path| FieldError {
            path,
            reason: FieldErrorKind::Unknown,
            message: "unknown field".to_owned(),
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

/// How a value is shown after `Invalid value:` (Go's `%#v`-like rendering used by field errors).
fn show(value: &Value) -> String {
    match value {
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    let actual = json_type(value);
    actual == expected || (expected == "number" && actual == "integer")
}

fn push(errors: &mut Vec<FieldError>, path: &str, reason: FieldErrorKind, message: String) {
    errors.push(FieldError {
        path: path.to_owned(),
        reason,
        message,
    });
}

fn invalid(
    errors: &mut Vec<FieldError>,
    path: &str,
    reason: FieldErrorKind,
    value: &Value,
    detail: &str,
) {
    push(
        errors,
        path,
        reason,
        format!("Invalid value: {}: {path} in body {detail}", show(value)),
    );
}

/// kube-apiserver reports a wrong type with the actual type as the "value":
/// `Invalid value: "integer": spec.image in body must be of type string: "integer"`.
fn type_error(errors: &mut Vec<FieldError>, path: &str, expected: &str, value: &Value) {
    let actual = json_type(value);
    push(
        errors,
        path,
        FieldErrorKind::Type,
        format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
    );
}

fn validate_node(
    schema: &Value,
    value: &Value,
    path: &mut String,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    if value.is_null() {
        if flag(schema, "nullable")
            || schema.get("type").is_none() && !flag(schema, "x-kubernetes-int-or-string")
        {
            return;
        }
        let expected = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        type_error(errors, path, expected, value);
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(json_type(value), "integer" | "string") {
            type_error(errors, path, "integer or string", value);
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        type_error(errors, path, expected, value);
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
        push(
            errors,
            path,
            FieldErrorKind::Enum,
            format!(
                "Unsupported value: {}: supported values: {}",
                show(value),
                supported.join(", ")
            ),
        );
    }
    match value {
        Value::Number(n) => {
            validate_number(schema, value, n.as_f64().unwrap_or(f64::NAN), path, errors)
        }
        Value::String(s) => validate_string(schema, value, s, path, errors),
        Value::Array(items) => validate_array(schema, value, items, path, errors),
        Value::Object(map) => validate_object(schema, map, path, root, errors),
        Value::Null | Value::Bool(_) => {}
    }
}

fn validate_number(
    schema: &Value,
    value: &Value,
    n: f64,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if exclusive && n >= max {
            invalid(
                errors,
                path,
                FieldErrorKind::Maximum,
                value,
                &format!("should be less than {}", number(schema, "maximum")),
            );
        } else if !exclusive && n > max {
            let detail = format!(
                "should be less than or equal to {}",
                number(schema, "maximum")
            );
            invalid(errors, path, FieldErrorKind::Maximum, value, &detail);
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if exclusive && n <= min {
            let detail = format!("should be greater than {}", number(schema, "minimum"));
            invalid(errors, path, FieldErrorKind::Minimum, value, &detail);
        } else if !exclusive && n < min {
            let detail = format!(
                "should be greater than or equal to {}",
                number(schema, "minimum")
            );
            invalid(errors, path, FieldErrorKind::Minimum, value, &detail);
        }
    }
}

/// A bound as written in the schema (`20`, not `20.0`).
fn number(schema: &Value, key: &str) -> String {
    schema.get(key).map(Value::to_string).unwrap_or_default()
}

fn validate_string(
    schema: &Value,
    value: &Value,
    s: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let chars = s.chars().count();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars as u64 > max
    {
        push(
            errors,
            path,
            FieldErrorKind::MaxLength,
            format!("Too long: may not be more than {max} bytes"),
        );
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (chars as u64) < min
    {
        invalid(
            errors,
            path,
            FieldErrorKind::MinLength,
            value,
            &format!("should be at least {min} chars long"),
        );
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match pattern_matches(pattern, s) {
            Some(true) => {}
            Some(false) => invalid(
                errors,
                path,
                FieldErrorKind::Pattern,
                value,
                &format!("should match '{pattern}'"),
            ),
            None => invalid(
                errors,
                path,
                FieldErrorKind::Pattern,
                value,
                &format!(
                    "cannot be checked: the schema pattern '{pattern}' is not a valid regular expression"
                ),
            ),
        }
    }
}

/// Matches `s` against an ECMA-262-style schema pattern; compiled patterns are cached because the
/// same few CRD patterns are checked on every write. `None` when the pattern does not compile.
fn pattern_matches(pattern: &str, s: &str) -> Option<bool> {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, Option<regex::Regex>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() > 1024 {
        cache.clear();
    }
    let compiled = cache
        .entry(pattern.to_owned())
        .or_insert_with(|| regex::Regex::new(pattern).ok());
    compiled.as_ref().map(|re| re.is_match(s))
}

fn validate_array(
    schema: &Value,
    value: &Value,
    items: &[Value],
    path: &mut String,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        push(
            errors,
            path,
            FieldErrorKind::MaxItems,
            format!("Too many: {}: must have at most {max} items", items.len()),
        );
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        invalid(
            errors,
            path,
            FieldErrorKind::MinItems,
            value,
            &format!("should have at least {min} items"),
        );
    }
    if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
        for (index, item) in items.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{index}]"));
            validate_node(item_schema, item, path, false, errors);
            path.truncate(len);
        }
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &mut String,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if root && ROOT_FIELDS.contains(&name) {
                continue;
            }
            if !map.contains_key(name) {
                push(
                    errors,
                    &join_field(path, name),
                    FieldErrorKind::Required,
                    "Required value".to_owned(),
                );
            }
        }
    }
    if embedded {
        for name in ["apiVersion", "kind"] {
            if map
                .get(name)
                .and_then(Value::as_str)
                .is_none_or(|s| s.is_empty())
            {
                push(
                    errors,
                    &join_field(path, name),
                    FieldErrorKind::Required,
                    "Required value".to_owned(),
                );
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|s| s.is_object());
    for (key, child) in map {
        if (root || embedded) && ROOT_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let child_schema = properties.and_then(|p| p.get(key)).or(additional);
        if let Some(child_schema) = child_schema {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            validate_node(child_schema, child, path, false, errors);
            path.truncate(len);
        }
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

    fn redis_schema() -> Value {
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

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "cache.example.com/v1", "kind": "RedisCluster", "metadata": {"name": "r", "labels": {"x": "y"}}, "spec": spec})
    }

    fn errors_for(spec: Value) -> Vec<FieldError> {
        validate(&redis_schema(), &obj(spec))
    }

    fn only_error(spec: Value) -> FieldError {
        let mut errors = errors_for(spec);
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error, got {errors:?}"
        );
        errors.remove(0)
    }

    #[test]
    fn a_valid_object_has_no_errors() {
        let errors = errors_for(
            json!({"image": "redis:7", "replicas": 3, "mode": "Running", "ratio": 0.5, "port": "http", "tags": ["a"]}),
        );
        assert_eq!(errors, vec![]);
    }

    #[test]
    fn maximum_is_reported_with_kube_message_and_path() {
        let err = only_error(json!({"image": "redis", "replicas": 50}));
        assert_eq!(err.path, "spec.replicas");
        assert_eq!(err.reason, FieldErrorKind::Maximum);
        assert_eq!(
            err.message,
            "Invalid value: 50: spec.replicas in body should be less than or equal to 20"
        );
        assert_eq!(
            err.to_string(),
            "spec.replicas: Invalid value: 50: spec.replicas in body should be less than or equal to 20"
        );
    }

    #[test]
    fn minimum_is_reported_with_kube_message() {
        let err = only_error(json!({"image": "redis", "replicas": 0}));
        assert_eq!(err.reason, FieldErrorKind::Minimum);
        assert_eq!(
            err.message,
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
        );
    }

    #[test]
    fn exclusive_bounds_reject_the_bound_itself() {
        let err = only_error(json!({"image": "redis", "ratio": 1}));
        assert_eq!(err.reason, FieldErrorKind::Maximum);
        assert_eq!(
            err.message,
            "Invalid value: 1: spec.ratio in body should be less than 1"
        );
        let err = only_error(json!({"image": "redis", "ratio": 0}));
        assert_eq!(err.reason, FieldErrorKind::Minimum);
        assert_eq!(
            err.message,
            "Invalid value: 0: spec.ratio in body should be greater than 0"
        );
    }

    #[test]
    fn a_missing_required_field_is_required_value() {
        let err = only_error(json!({"replicas": 2}));
        assert_eq!(err.path, "spec.image");
        assert_eq!(err.reason, FieldErrorKind::Required);
        assert_eq!(err.message, "Required value");
        assert_eq!(err.reason.cause_reason(), "FieldValueRequired");
    }

    #[test]
    fn a_wrong_type_names_expected_and_actual_types() {
        let err = only_error(json!({"image": 5}));
        assert_eq!(err.path, "spec.image");
        assert_eq!(err.reason, FieldErrorKind::Type);
        assert_eq!(
            err.message,
            "Invalid value: \"integer\": spec.image in body must be of type string: \"integer\""
        );
    }

    #[test]
    fn a_fractional_number_is_not_an_integer() {
        let err = only_error(json!({"image": "redis", "replicas": 1.5}));
        assert_eq!(
            err.message,
            "Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\""
        );
    }

    #[test]
    fn an_object_where_a_string_is_expected_is_a_type_error() {
        let err = only_error(json!({"image": {"a": 1}}));
        assert_eq!(
            err.message,
            "Invalid value: \"object\": spec.image in body must be of type string: \"object\""
        );
    }

    #[test]
    fn enum_lists_the_supported_values() {
        let err = only_error(json!({"image": "redis", "mode": "Foo"}));
        assert_eq!(err.path, "spec.mode");
        assert_eq!(err.reason, FieldErrorKind::Enum);
        assert_eq!(
            err.message,
            "Unsupported value: \"Foo\": supported values: \"Pending\", \"Running\""
        );
        assert_eq!(err.reason.cause_reason(), "FieldValueNotSupported");
    }

    #[test]
    fn pattern_mismatch_quotes_the_pattern() {
        let err = only_error(json!({"image": "Redis!"}));
        assert_eq!(err.reason, FieldErrorKind::Pattern);
        assert_eq!(
            err.message,
            "Invalid value: \"Redis!\": spec.image in body should match '^[a-z0-9:./-]+$'"
        );
    }

    #[test]
    fn string_length_limits_are_enforced() {
        let err = only_error(json!({"image": "ab"}));
        assert_eq!(err.reason, FieldErrorKind::MinLength);
        assert_eq!(
            err.message,
            "Invalid value: \"ab\": spec.image in body should be at least 3 chars long"
        );
        let err = only_error(json!({"image": "a".repeat(21)}));
        assert_eq!(err.reason, FieldErrorKind::MaxLength);
        assert_eq!(err.message, "Too long: may not be more than 20 bytes");
    }

    #[test]
    fn item_count_limits_are_enforced() {
        let err = only_error(json!({"image": "redis", "tags": []}));
        assert_eq!(err.path, "spec.tags");
        assert_eq!(err.reason, FieldErrorKind::MinItems);
        assert_eq!(
            err.message,
            "Invalid value: \"array\": spec.tags in body should have at least 1 items"
        );
        let err = only_error(json!({"image": "redis", "tags": ["a", "b", "c", "d"]}));
        assert_eq!(err.reason, FieldErrorKind::MaxItems);
        assert_eq!(err.message, "Too many: 4: must have at most 3 items");
    }

    #[test]
    fn list_items_are_validated_with_indexed_paths() {
        let errors = errors_for(
            json!({"image": "redis", "tags": ["a", 7], "servers": [{"name": "a"}, {"weight": 1}]}),
        );
        let paths: Vec<(&str, FieldErrorKind)> =
            errors.iter().map(|e| (e.path.as_str(), e.reason)).collect();
        assert_eq!(
            paths,
            vec![
                ("spec.servers[1].name", FieldErrorKind::Required),
                ("spec.tags[1]", FieldErrorKind::Type)
            ]
        );
    }

    #[test]
    fn additional_properties_validate_every_map_value() {
        let err = only_error(json!({"image": "redis", "labels": {"a": "x", "b": 3}}));
        assert_eq!(err.path, "spec.labels.b");
        assert_eq!(err.reason, FieldErrorKind::Type);
    }

    #[test]
    fn int_or_string_accepts_both_and_rejects_others() {
        assert_eq!(errors_for(json!({"image": "redis", "port": 8080})), vec![]);
        assert_eq!(
            errors_for(json!({"image": "redis", "port": "http"})),
            vec![]
        );
        let err = only_error(json!({"image": "redis", "port": true}));
        assert_eq!(
            err.message,
            "Invalid value: \"boolean\": spec.port in body must be of type integer or string: \"boolean\""
        );
    }

    #[test]
    fn null_is_allowed_only_where_nullable() {
        assert_eq!(errors_for(json!({"image": "redis", "note": null})), vec![]);
        let err = only_error(json!({"image": "redis", "mode": null}));
        assert_eq!(
            err.message,
            "Invalid value: \"null\": spec.mode in body must be of type string: \"null\""
        );
    }

    #[test]
    fn root_metadata_api_version_and_kind_are_not_schema_validated() {
        let schema = json!({"type": "object", "required": ["metadata", "spec"], "properties": {"spec": {"type": "object"}}});
        let object = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": 5}});
        let errors = validate(&schema, &object);
        assert_eq!(
            errors.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            vec!["spec"]
        );
    }

    #[test]
    fn embedded_resources_require_api_version_and_kind() {
        let errors = errors_for(
            json!({"image": "redis", "template": {"metadata": {"name": "x"}, "spec": {}}}),
        );
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["spec.template.apiVersion", "spec.template.kind"]
        );
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
