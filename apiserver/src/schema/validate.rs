//! Schema validation of custom resources, with kube-apiserver's field paths and messages.

use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

use super::{FieldError, FieldErrorKind, ROOT_FIELDS, flag, join_field};

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

pub(super) fn node(
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
            node(item_schema, item, path, false, errors);
            path.truncate(len);
        }
    }
    validate_unique(schema, items, path, errors);
}

/// `x-kubernetes-list-type: set` items must be unique, `map` items unique by their keys.
fn validate_unique(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let keys: Vec<&str> = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => Vec::new(),
        Some("map") => match schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
        {
            Some(keys) if !keys.is_empty() => keys.iter().filter_map(Value::as_str).collect(),
            _ => return,
        },
        _ => return,
    };
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let identity = if keys.is_empty() {
            item.clone()
        } else {
            let mut key = Map::new();
            for name in &keys {
                if let Some(v) = item.get(*name) {
                    key.insert((*name).to_owned(), v.clone());
                }
            }
            Value::Object(key)
        };
        if !seen.insert(identity.to_string()) {
            push(
                errors,
                &format!("{path}[{index}]"),
                FieldErrorKind::Duplicate,
                format!("Duplicate value: {}", go_value(&identity)),
            );
        }
    }
}

/// A value as Go's `%#v` prints the decoded JSON kube-apiserver reports in duplicate errors:
/// `"a"`, `1`, `map[string]interface {}{"name":"a"}`.
fn go_value(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", go_value(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        other => other.to_string(),
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
            node(child_schema, child, path, false, errors);
            path.truncate(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{obj, redis_schema};
    use super::super::validate;
    use super::*;
    use serde_json::json;

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
    fn duplicate_items_in_sets_and_list_maps_are_reported() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
        }}}});
        let object = obj(
            json!({"zones": ["a", "b", "a"], "servers": [{"name": "x", "port": 1}, {"name": "x", "port": 2}]}),
        );
        let errors = validate(&schema, &object);
        assert_eq!(
            errors,
            vec![
                FieldError {
                    path: "spec.servers[1]".into(),
                    reason: FieldErrorKind::Duplicate,
                    message: "Duplicate value: map[string]interface {}{\"name\":\"x\"}".into()
                },
                FieldError {
                    path: "spec.zones[2]".into(),
                    reason: FieldErrorKind::Duplicate,
                    message: "Duplicate value: \"a\"".into()
                },
            ]
        );
        assert_eq!(
            FieldErrorKind::Duplicate.cause_reason(),
            "FieldValueDuplicate"
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
}
