//! `FieldPath`: a JSON path such as `spec.nodeName` that a field index extracts values with.

use std::fmt;
use std::str::FromStr;

use kube::api::DynamicObject;
use serde_json::Value;

/// Why a field path could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The path was empty.
    #[error("empty field path")]
    Empty,
    /// A segment was empty (`spec..name`) or a bracket was not closed.
    #[error("invalid field path {path:?} at byte {at}: {what}")]
    Invalid {
        /// The whole path.
        path: String,
        /// Byte offset of the problem.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// A path into an object, written with dots (`spec.nodeName`, optionally with a leading dot as in
/// controller-runtime: `.spec.nodeName`). Keys that contain dots are written in brackets, with or
/// without quotes: `metadata.labels['app.kubernetes.io/name']`, `metadata.labels[app.kubernetes.io/name]`.
///
/// Values: a string, number or boolean at the path gives one value; an array on the way is walked
/// element by element (`spec.containers.image` gives every container's image); anything else
/// (missing, null, an object) gives no value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a path.
    ///
    /// # Errors
    /// [`Error`] when the path is empty, has an empty segment or an unclosed bracket.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let text = path.trim();
        let body = text.strip_prefix('.').unwrap_or(text);
        if body.is_empty() {
            return Err(Error::Empty);
        }
        let invalid = |at: usize, what| Error::Invalid {
            path: text.to_owned(),
            at,
            what,
        };
        let bytes = body.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'[' {
                let first = *bytes
                    .get(i + 1)
                    .ok_or_else(|| invalid(i, "unclosed bracket"))?;
                if first == b'\'' || first == b'"' {
                    let start = i + 2;
                    let close = body[start..]
                        .find(char::from(first))
                        .map(|p| start + p)
                        .ok_or_else(|| invalid(i, "unclosed quote"))?;
                    if bytes.get(close + 1) != Some(&b']') {
                        return Err(invalid(close + 1, "expected ']' after the closing quote"));
                    }
                    segments.push(body[start..close].to_owned());
                    i = close + 2;
                } else {
                    // Unquoted: the key runs to the closing bracket.
                    let start = i + 1;
                    let close = body[start..]
                        .find(']')
                        .map(|p| start + p)
                        .ok_or_else(|| invalid(i, "unclosed bracket"))?;
                    if close == start {
                        return Err(invalid(start, "empty segment"));
                    }
                    segments.push(body[start..close].to_owned());
                    i = close + 1;
                }
                match bytes.get(i) {
                    None => {}
                    Some(b'.') => {
                        i += 1;
                        if i == bytes.len() {
                            return Err(invalid(i, "empty segment"));
                        }
                    }
                    Some(b'[') => {}
                    Some(_) => return Err(invalid(i, "expected '.' or '[' after ']'")),
                }
            } else {
                let end = body[i..].find(['.', '[']).map_or(bytes.len(), |p| i + p);
                if end == i {
                    return Err(invalid(i, "empty segment"));
                }
                segments.push(body[i..end].to_owned());
                i = end;
                if bytes.get(i) == Some(&b'.') {
                    i += 1;
                    if i == bytes.len() {
                        return Err(invalid(i, "empty segment"));
                    }
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// One spelling per path: segments joined with dots, keys that contain a dot or a bracket
    /// in quoted brackets (`metadata.labels['app.kubernetes.io/name']`). Two spellings of the
    /// same path have the same canonical form.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            if segment.contains(['.', '[', ']']) {
                out.push_str("['");
                out.push_str(segment);
                out.push_str("']");
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(segment);
            }
        }
        out
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path's keys, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The values at this path in `obj` (see the type docs).
    pub fn values(&self, obj: &DynamicObject) -> Vec<String> {
        let mut out = Vec::new();
        let (first, rest) = match self.segments.split_first() {
            Some(split) => split,
            None => return out,
        };
        if first != "metadata" {
            collect(obj.data.get(first.as_str()), rest, &mut out);
            return out;
        }
        let meta = &obj.metadata;
        match rest {
            [field] if field == "name" => out.extend(meta.name.clone()),
            [field] if field == "namespace" => out.extend(meta.namespace.clone()),
            [field] if field == "uid" => out.extend(meta.uid.clone()),
            [map, key] if map == "labels" => {
                out.extend(meta.labels.as_ref().and_then(|l| l.get(key)).cloned());
            }
            [map, key] if map == "annotations" => {
                out.extend(meta.annotations.as_ref().and_then(|a| a.get(key)).cloned());
            }
            _ => {
                // Rare paths (ownerReferences.uid, finalizers, ...): go through JSON.
                if let Ok(v) = serde_json::to_value(meta) {
                    collect(Some(&v), rest, &mut out);
                }
            }
        }
        out
    }

    /// The values at this path in a JSON value.
    pub fn values_in_json(&self, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        collect(Some(value), &self.segments, &mut out);
        out
    }
}

fn collect(value: Option<&Value>, rest: &[String], out: &mut Vec<String>) {
    let Some(value) = value else { return };
    if let Value::Array(items) = value {
        for item in items {
            collect(Some(item), rest, out);
        }
        return;
    }
    match rest.split_first() {
        None => match value {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            Value::Null | Value::Object(_) | Value::Array(_) => {}
        },
        Some((key, rest)) => collect(value.get(key.as_str()), rest, out),
    }
}

impl FromStr for FieldPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).expect("object")
    }

    #[test]
    fn field_path_parses_dots_a_leading_dot_and_quoted_brackets() {
        let p = FieldPath::parse(".spec.nodeName").expect("parse");
        assert_eq!(p.segments(), ["spec", "nodeName"]);
        let p = FieldPath::parse("metadata.labels['app.kubernetes.io/name']").expect("parse");
        assert_eq!(
            p.segments(),
            ["metadata", "labels", "app.kubernetes.io/name"]
        );
        let p = FieldPath::parse(r#"a["x.y"]["z"].w"#).expect("parse");
        assert_eq!(p.segments(), ["a", "x.y", "z", "w"]);
    }

    #[test]
    fn field_path_rejects_malformed_paths_with_a_position() {
        assert_eq!(FieldPath::parse(""), Err(Error::Empty));
        assert_eq!(FieldPath::parse("."), Err(Error::Empty));
        for bad in ["spec..x", "spec.", "a['x", "a[]", "a[x", "a['x']y", "a['x'"] {
            assert!(
                matches!(FieldPath::parse(bad), Err(Error::Invalid { .. })),
                "{bad} should fail"
            );
        }
    }

    #[test]
    fn field_path_extracts_scalars_walks_arrays_and_ignores_objects() {
        let o = obj(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app.kubernetes.io/name": "web"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u1"}]},
            "spec": {"nodeName": "n1", "replicas": 3, "paused": false, "template": {},
                     "containers": [{"image": "a"}, {"image": "b"}, {"name": "no-image"}]}
        }));
        let v = |p: &str| FieldPath::parse(p).expect("path").values(&o);
        assert_eq!(v("spec.nodeName"), ["n1"]);
        assert_eq!(v("spec.replicas"), ["3"]);
        assert_eq!(v("spec.paused"), ["false"]);
        assert!(v("spec.template").is_empty());
        assert!(v("spec.missing.deeper").is_empty());
        assert_eq!(v("spec.containers.image"), ["a", "b"]);
        assert_eq!(v("metadata.name"), ["p"]);
        assert_eq!(v("metadata.namespace"), ["ns"]);
        assert_eq!(v("metadata.labels['app.kubernetes.io/name']"), ["web"]);
        assert_eq!(v("metadata.ownerReferences.uid"), ["u1"]);
    }

    #[test]
    fn keys_with_dots_may_be_bracketed_with_or_without_quotes() {
        let quoted = FieldPath::parse("metadata.labels['app.kubernetes.io/name']").expect("quoted");
        let double =
            FieldPath::parse("metadata.labels[\"app.kubernetes.io/name\"]").expect("double");
        let bare = FieldPath::parse("metadata.labels[app.kubernetes.io/name]").expect("bare");
        assert_eq!(quoted.segments(), bare.segments());
        assert_eq!(double.segments(), bare.segments());
        assert_eq!(
            bare.segments(),
            ["metadata", "labels", "app.kubernetes.io/name"]
        );
        assert_eq!(
            bare.canonical(),
            "metadata.labels['app.kubernetes.io/name']"
        );
        assert_eq!(quoted.canonical(), bare.canonical());
        let obj = serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}}});
        assert_eq!(bare.values_in_json(&obj), ["web"]);
        assert!(FieldPath::parse("metadata.labels[]").is_err());
        assert!(FieldPath::parse("metadata.labels[app").is_err());
        assert_eq!(
            FieldPath::parse(".spec.nodeName")
                .expect("path")
                .canonical(),
            "spec.nodeName"
        );
    }
}
