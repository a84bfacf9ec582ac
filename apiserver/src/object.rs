//! Helpers over objects as JSON: metadata access, name validation, generated names, timestamps, and the
//! "did the spec change" rule behind `metadata.generation`.

use serde_json::{Map, Value};

use crate::error::{ApiError, Cause};

/// `metadata` of an object (created empty if missing or not an object).
///
/// # Errors
/// 400 if `obj` is not a JSON object.
pub fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let o = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        return Err(ApiError::bad_request("metadata must be a JSON object"));
    }
    m.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be a JSON object"))
}

/// A string field of `metadata`, "" if absent.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.finalizers` is non-empty.
pub fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Now, as an RFC 3339 timestamp with second precision (as kube stores it).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix` plus 5 random characters, like kube's name generator.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let max_prefix = 63usize.saturating_sub(5);
    let p = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix
    };
    format!("{p}{suffix}")
}

/// Validates `metadata.name` as kube does for most resources (DNS-1123 subdomain; a DNS-1123 label for
/// namespaces), with kube-apiserver's wording. Returns a cause for a 422 if invalid.
pub fn validate_name(name: &str, label_only: bool) -> Option<Cause> {
    let max = if label_only { 63 } else { 253 };
    let invalid = |what: &str| Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {name:?}: {what}"),
        field: "metadata.name".into(),
    };
    if name.len() > max {
        return Some(invalid(&format!("must be no more than {max} characters")));
    }
    let ok_chars = name.chars().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label_only && c == '.')
    });
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    // A subdomain is dot-separated labels, each starting and ending alphanumeric.
    let ok_parts = if label_only {
        name.starts_with(alnum) && name.ends_with(alnum)
    } else {
        name.split('.')
            .all(|part| part.starts_with(alnum) && part.ends_with(alnum))
    };
    if !name.is_empty() && ok_chars && ok_parts {
        return None;
    }
    Some(invalid(if label_only {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    }))
}

/// Validates `metadata.generateName` as kube does: the prefix must itself be a valid name once a
/// trailing `-` is masked (so `web-` passes, `web.` does not). Returns a cause for a 422 if invalid.
pub fn validate_generate_name(prefix: &str, label_only: bool) -> Option<Cause> {
    let masked = match prefix.strip_suffix('-') {
        Some(head) => format!("{head}a"),
        None => prefix.to_owned(),
    };
    let mut cause = validate_name(&masked, label_only)?;
    cause.message = cause
        .message
        .replacen(&format!("{masked:?}"), &format!("{prefix:?}"), 1);
    cause.field = "metadata.generateName".into();
    Some(cause)
}

/// Whether anything outside `metadata` and `status` differs (the rule for bumping generation).
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let skip = ["metadata", "status", "apiVersion", "kind"];
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let differs = |a: &Map<String, Value>, b: &Map<String, Value>| {
        a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .any(|(k, v)| b.get(k) != Some(v))
    };
    differs(o, n) || differs(n, o)
}

/// Whether two versions of an object are the same apart from resourceVersion (an update that
/// changes nothing is not written, like kube-apiserver). managedFields count: a write that only
/// changes ownership (kubectl's client-side to server-side apply migration) must be stored; a real
/// no-op keeps every entry and its timestamp, so it still compares equal.
pub fn same_content(old: &Value, new: &Value) -> bool {
    let rv = |v: &Value| {
        v.pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null)
    };
    if rv(old) == rv(new) {
        return old == new;
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_generate_name_may_end_in_a_dash_but_not_in_a_dot() {
        assert!(validate_generate_name("web-", false).is_none());
        let c = validate_generate_name("web.", false).expect("invalid");
        assert_eq!(c.field, "metadata.generateName");
        assert!(
            c.message
                .starts_with("Invalid value: \"web.\": a lowercase RFC 1123 subdomain")
        );
    }

    #[test]
    fn spec_changes_are_detected_but_metadata_and_status_changes_are_not() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"x": 1}, "status": {"y": 2}});
        assert!(!spec_changed(&a, &b));
        let c = json!({"metadata": {}, "spec": {"x": 2}});
        assert!(spec_changed(&a, &c));
        let d = json!({"metadata": {}, "data": {"k": "v"}});
        assert!(spec_changed(&a, &d));
    }

    #[test]
    fn generated_names_keep_the_prefix_and_differ() {
        let a = generate_name("web-");
        let b = generate_name("web-");
        assert!(a.starts_with("web-") && a.len() == 9);
        assert_ne!(a, b);
    }

    #[test]
    fn invalid_names_are_explained() {
        assert!(validate_name("ok-name.x", false).is_none());
        let c = validate_name("Bad_Name", false).expect("invalid");
        assert_eq!(c.field, "metadata.name");
        assert!(c.message.contains("RFC 1123"));
        assert!(validate_name("a.b", true).is_some());
    }
}
