//! [`FieldPath`]: a JSON path such as `spec.nodeName` that field indexes, index lookups and
//! projections read values with.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why a field path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The path was empty.
    Empty,
    /// A segment was empty (`spec..name`) or a bracket was not closed.
    Invalid {
        /// The whole path.
        path: String,
        /// Byte offset of the problem.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty field path"),
            Self::Invalid { path, at, what } => {
                write!(f, "invalid field path {path:?} at byte {at}: {what}")
            }
        }
    }
}

impl std::error::Error for Error {}

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

    /// The values at this path in a JSON value.
    pub fn values_in_json(&self, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        collect(Some(value), &self.segments, &mut out);
        out
    }

    /// The values at this path in JSON text: the same as [`FieldPath::values_in_json`] of the
    /// parsed text, read in one pass that skips everything off the path without allocating.
    /// Text that is not JSON gives the values found before the error.
    pub fn values_in_text(&self, json: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut de = serde_json::Deserializer::from_str(json);
        let _ = Walk {
            rest: &self.segments,
            out: &mut out,
        }
        .deserialize(&mut de);
        out
    }
}

/// Walks JSON along `rest` as [`collect`] walks a `Value`, pushing the scalars at its end.
struct Walk<'p, 'o> {
    rest: &'p [String],
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Arrays on the way, and at the end, are walked element by element.
        while seq
            .next_element_seed(Walk {
                rest: self.rest,
                out: &mut *self.out,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((key, rest)) = self.rest.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        while let Some(found) = map.next_key_seed(KeyIs(key))? {
            if found {
                map.next_value_seed(Walk {
                    rest,
                    out: &mut *self.out,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.rest.is_empty() {
            self.out.push(v.to_owned());
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        if self.rest.is_empty() {
            self.out.push(v.to_string());
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match serde_json::Number::from_f64(v) {
            Some(n) => self.number(n),
            None => Ok(()),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

impl Walk<'_, '_> {
    /// A number at the end of the path, written as `serde_json::Number` writes it.
    fn number<E>(self, n: serde_json::Number) -> Result<(), E> {
        if self.rest.is_empty() {
            self.out.push(n.to_string());
        }
        Ok(())
    }
}

/// Reads a map key and says whether it is the given one, without allocating for plain keys.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
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

    fn obj(v: Value) -> Value {
        v
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
        let v = |p: &str| FieldPath::parse(p).expect("path").values_in_json(&o);
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
    fn values_in_text_reads_what_values_in_json_reads() {
        let value = json!({
            "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "web", "a\"b": "q"},
                         "ownerReferences": [{"uid": "u1"}, {"uid": "u2"}]},
            "spec": {"nodeName": "n\u{e9}", "replicas": 3, "neg": -2, "ratio": 0.5, "big": 1e300,
                     "paused": false, "none": null, "template": {}, "nested": [[{"x": "deep"}], "top"],
                     "containers": [{"image": "a"}, {"image": "b"}, {"name": "no-image"}]}
        });
        let text = value.to_string();
        for path in [
            "metadata.name",
            "metadata.labels['app.kubernetes.io/name']",
            "metadata.labels['a\"b']",
            "metadata.ownerReferences.uid",
            "spec.nodeName",
            "spec.replicas",
            "spec.neg",
            "spec.ratio",
            "spec.big",
            "spec.paused",
            "spec.none",
            "spec.template",
            "spec.nested",
            "spec.nested.x",
            "spec.containers.image",
            "spec.containers",
            "spec.missing.deeper",
            "spec",
        ] {
            let p = FieldPath::parse(path).expect("path");
            assert_eq!(p.values_in_text(&text), p.values_in_json(&value), "{path}");
        }
        let p = FieldPath::parse("spec.nodeName").expect("path");
        assert_eq!(
            p.values_in_text(r#"{"spec":{"nodeName":"n1"}"#),
            ["n1"],
            "values before an error"
        );
        assert!(p.values_in_text("not json").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn values_in_text_agrees_with_values_in_json_on_any_json(
            value in json_value(),
            path in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "c"]), 1..4),
        ) {
            let p = FieldPath::parse(&path.join(".")).expect("path");
            // Compared with the text parsed again: a float need not survive a round trip
            // through text exactly, and both readers parse it the same way.
            let text = value.to_string();
            let parsed: Value = serde_json::from_str(&text).expect("json");
            proptest::prop_assert_eq!(p.values_in_text(&text), p.values_in_json(&parsed));
        }
    }

    /// Any JSON whose object keys are `a`, `b` or `c`.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\\\"é]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    proptest::sample::select(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]),
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
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
