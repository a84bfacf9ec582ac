//! Structural checks every write gets before it is stored: metadata maps and lists have the right types
//! and label syntax, and the few built-in fields whose type clients rely on (ConfigMap and Secret data).

use base64::Engine;
use serde_json::Value;

use crate::registry::ResourceType;
use crate::status::{ApiError, ApiResult, Cause};

fn decode_error(ty: &ResourceType, field: &str, want: &str, got: &Value) -> ApiError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {kind} into Go struct field {field} of type {want}",
        ty.kind, ty.version, ty.kind
    ))
}

/// A map of strings at `path` (absent or null is fine).
fn string_map<'a>(
    ty: &ResourceType,
    obj: &'a Value,
    path: &str,
    field: &str,
) -> ApiResult<Option<&'a serde_json::Map<String, Value>>> {
    match obj.pointer(path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            if let Some((_, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(decode_error(ty, field, "string", v));
            }
            Ok(Some(m))
        }
        Some(other) => Err(decode_error(ty, field, "map[string]string", other)),
    }
}

/// Checks metadata (labels, annotations, finalizers) and built-in data fields.
///
/// # Errors
/// 400 BadRequest for wrong JSON types (as kube-apiserver's decoder reports them), 422 Invalid for
/// label keys or values with the wrong syntax.
pub fn validate(ty: &ResourceType, obj: &Value, name: &str) -> ApiResult<()> {
    let mut causes = Vec::new();
    if let Some(labels) = string_map(ty, obj, "/metadata/labels", "ObjectMeta.metadata.labels")? {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            if !crate::selector::valid_label_key(k) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    field: "metadata.labels".into(),
                });
            }
            if !crate::selector::valid_label_value(v) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                    field: format!("metadata.labels.{k}"),
                });
            }
        }
    }
    string_map(
        ty,
        obj,
        "/metadata/annotations",
        "ObjectMeta.metadata.annotations",
    )?;
    match obj.pointer("/metadata/finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                return Err(decode_error(
                    ty,
                    "ObjectMeta.metadata.finalizers",
                    "string",
                    bad,
                ));
            }
        }
        Some(other) => {
            return Err(decode_error(
                ty,
                "ObjectMeta.metadata.finalizers",
                "[]string",
                other,
            ));
        }
    }
    if ty.builtin && ty.group.is_empty() {
        match ty.resource.as_str() {
            "configmaps" => {
                string_map(ty, obj, "/data", "ConfigMap.data")?;
                string_map(ty, obj, "/binaryData", "ConfigMap.binaryData")?;
            }
            "secrets" => {
                if let Some(data) = string_map(ty, obj, "/data", "Secret.data")? {
                    for (k, v) in data {
                        let s = v.as_str().unwrap_or_default();
                        if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                            return Err(ApiError::bad_request(format!(
                                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data.{k}"
                            )));
                        }
                    }
                }
                string_map(ty, obj, "/stringData", "Secret.stringData")?;
            }
            _ => {}
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&ty.group, &ty.kind, name, causes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn configmap_data_must_be_strings() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "configmaps").expect("configmaps");
        assert!(validate(&ty, &json!({"data": {"a": "1"}}), "x").is_ok());
        let e = validate(&ty, &json!({"data": {"a": true}}), "x").expect_err("bool");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("ConfigMap.data"));
    }

    #[test]
    fn bad_label_values_are_422_naming_the_label() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "pods").expect("pods");
        let e = validate(
            &ty,
            &json!({"metadata": {"labels": {"app": "not ok"}}}),
            "p",
        )
        .expect_err("invalid");
        assert_eq!(e.code, 422);
        assert_eq!(e.details.causes[0].field, "metadata.labels.app");
        let e = validate(&ty, &json!({"metadata": {"labels": {"app": 1}}}), "p").expect_err("type");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn secret_data_must_be_base64() {
        let r = Registry::builtin();
        let ty = r.get("", "v1", "secrets").expect("secrets");
        assert!(validate(&ty, &json!({"data": {"k": "aGk="}}), "s").is_ok());
        assert_eq!(
            validate(&ty, &json!({"data": {"k": "%%%"}}), "s").map_err(|e| e.code),
            Err(400)
        );
    }
}
