//! Field projections as the fake host evaluates them for `get_fields`, `list_fields` and
//! `list_by_index_fields`: the same rules as the host's streaming projection, on a `Value`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// At most this many field paths per call, as the host allows.
const MAX_FIELDS: usize = 128;

/// Fields every projection keeps, as the host does.
const ALWAYS: [&[&str]; 6] = [
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "resourceVersion"],
    &["metadata", "uid"],
];

/// What to keep below one key.
enum Node {
    All,
    Keys(Vec<(String, Node)>),
}

impl Node {
    fn insert(&mut self, segments: &[String]) {
        let Self::Keys(children) = self else {
            return;
        };
        let Some((first, rest)) = segments.split_first() else {
            *self = Self::All;
            return;
        };
        let i = match children.iter().position(|(k, _)| k == first) {
            Some(i) => i,
            None => {
                children.push((first.clone(), Self::Keys(Vec::new())));
                children.len() - 1
            }
        };
        children[i].1.insert(rest);
    }

    fn apply(&self, value: &Value, top: bool) -> Option<Value> {
        match (self, value) {
            (Self::All, v) => Some(v.clone()),
            (Self::Keys(children), Value::Object(map)) => {
                let mut out = Map::new();
                for (key, v) in map {
                    if let Some((_, child)) = children.iter().find(|(k, _)| k == key)
                        && let Some(kept) = child.apply(v, false)
                    {
                        out.insert(key.clone(), kept);
                    }
                }
                (top || !out.is_empty()).then_some(Value::Object(out))
            }
            (Self::Keys(_), Value::Array(items)) if !top => {
                let out: Vec<Value> = items.iter().filter_map(|v| self.apply(v, false)).collect();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            _ => None,
        }
    }
}

/// Parses one field path strictly, as the host does: dotted segments, optional leading dot,
/// `[key]`, `['key']` or `["key"]` for keys with dots.
fn parse_path(path: &str) -> Result<Vec<String>> {
    let invalid = |what: &str| Error::Invalid(format!("invalid field path {path:?}: {what}"));
    let text = path.trim();
    let body = text.strip_prefix('.').unwrap_or(text);
    if body.is_empty() {
        return Err(invalid("empty field path"));
    }
    let mut segments = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (key, after) = match inner.chars().next() {
                Some(q @ ('\'' | '"')) => {
                    let close = inner[1..]
                        .find(q)
                        .ok_or_else(|| invalid("unclosed quote"))?;
                    let after = inner[1 + close + 1..]
                        .strip_prefix(']')
                        .ok_or_else(|| invalid("expected ']' after the closing quote"))?;
                    (&inner[1..=close], after)
                }
                _ => {
                    let close = inner.find(']').ok_or_else(|| invalid("unclosed bracket"))?;
                    if close == 0 {
                        return Err(invalid("empty segment"));
                    }
                    (&inner[..close], &inner[close + 1..])
                }
            };
            segments.push(key.to_owned());
            rest = match after.strip_prefix('.') {
                Some("") => return Err(invalid("empty segment")),
                Some(r) => r,
                None if after.is_empty() || after.starts_with('[') => after,
                None => return Err(invalid("expected '.' or '[' after ']'")),
            };
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err(invalid("empty segment"));
            }
            segments.push(rest[..end].to_owned());
            rest = &rest[end..];
            if let Some(r) = rest.strip_prefix('.') {
                if r.is_empty() {
                    return Err(invalid("empty segment"));
                }
                rest = r;
            }
        }
    }
    Ok(segments)
}

/// A parsed set of field paths plus the identity fields.
pub(super) struct Projection(Node);

impl Projection {
    /// Parses `fields`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad path or more than 128 paths, as the host answers.
    pub(super) fn new(fields: &[&str]) -> Result<Self> {
        if fields.len() > MAX_FIELDS {
            return Err(Error::Invalid(format!(
                "too many field paths: {} (at most {MAX_FIELDS})",
                fields.len()
            )));
        }
        let mut root = Node::Keys(Vec::new());
        for always in ALWAYS {
            let segments: Vec<String> = always.iter().map(|s| (*s).to_owned()).collect();
            root.insert(&segments);
        }
        for field in fields {
            root.insert(&parse_path(field)?);
        }
        Ok(Self(root))
    }

    /// The kept part of `value`.
    pub(super) fn apply(&self, value: &Value) -> Value {
        self.0
            .apply(value, true)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_like_the_hosts_and_bad_ones_are_invalid() {
        assert_eq!(
            parse_path(".spec.nodeName").ok(),
            Some(vec!["spec".into(), "nodeName".into()])
        );
        assert_eq!(
            parse_path("metadata.labels['a.b'][c.d]").ok(),
            Some(vec![
                "metadata".into(),
                "labels".into(),
                "a.b".into(),
                "c.d".into()
            ])
        );
        for bad in ["", ".", "a..b", "a.", "a[b", "a['b]", "a[]", "a[b]c"] {
            assert!(
                matches!(parse_path(bad), Err(Error::Invalid(_))),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn keeps_requested_fields_identity_and_per_element_paths() {
        let p = Projection::new(&["spec.containers.image", "status.phase"]).expect("parses");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}, {"name": "d"}]},
            "status": {"phase": "Running", "podIP": "1.2.3.4"}});
        assert_eq!(
            p.apply(&pod),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
                   "spec": {"containers": [{"image": "i"}]}, "status": {"phase": "Running"}})
        );
    }
}
