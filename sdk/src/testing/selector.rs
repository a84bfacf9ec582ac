//! Label selectors and field paths, as the fake host evaluates them for `list` and
//! `list_by_index`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Splits a dotted path with `[...]` for keys containing dots; the key may be quoted
/// (`['a.b']`, `["a.b"]`) or not (`[a.b]`), as the host accepts.
pub(super) fn field_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
            }
            '[' => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                let key: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let unquoted = ['\'', '"']
                    .iter()
                    .find_map(|q| key.strip_prefix(*q).and_then(|k| k.strip_suffix(*q)));
                parts.push(unquoted.map_or(key.clone(), str::to_owned));
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// The values at `path` (arrays index each element), as text.
pub(super) fn index_values(value: &Value, path: &[String]) -> Vec<String> {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().flat_map(|v| index_values(v, path)).collect(),
        (Value::Object(map), Some((first, rest))) => map
            .get(first)
            .map(|v| index_values(v, rest))
            .unwrap_or_default(),
        (Value::String(s), None) => vec![s.clone()],
        (Value::Number(n), None) => vec![n.to_string()],
        (Value::Bool(b), None) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

/// A parsed label selector.
pub(super) struct Selector(Vec<Requirement>);

enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Selector {
    pub(super) fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Invalid(format!("bad label selector {text:?}"));
        // Split on commas outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&text[start..]);
        let mut reqs = Vec::new();
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Result<Vec<String>> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set(rest)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else if part.contains([' ', '(', ')']) {
                return Err(bad());
            } else {
                Requirement::Exists(part.into())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub(super) fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| obj.pointer("/metadata/labels")?.get(k)?.as_str();
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => label(k) != Some(v.as_str()),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::field_path;

    #[test]
    fn bracketed_keys_parse_the_same_with_or_without_quotes() {
        let expected = ["metadata", "annotations", "mirror.kubewasm.dev/source"];
        assert_eq!(
            field_path("metadata.annotations[mirror.kubewasm.dev/source]"),
            expected
        );
        assert_eq!(
            field_path("metadata.annotations['mirror.kubewasm.dev/source']"),
            expected
        );
        assert_eq!(
            field_path("metadata.annotations[\"mirror.kubewasm.dev/source\"]"),
            expected
        );
        assert_eq!(field_path("spec.nodeName"), ["spec", "nodeName"]);
    }
}
