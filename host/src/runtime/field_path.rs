//! [`FieldPath`]: the dotted JSON paths that indexes and watch mappings declare.

/// A parse failure, naming the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?}: {reason}")]
pub struct FieldPathError {
    path: String,
    reason: &'static str,
}

/// A path into a JSON object: `spec.nodeName`, or with bracketed keys for keys that contain
/// dots: `metadata.labels[app.kubernetes.io/name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted path.
    ///
    /// # Errors
    /// [`FieldPathError`] for an empty path or segment, or an unclosed `[`.
    pub fn parse(path: &str) -> Result<Self, FieldPathError> {
        let err = |reason| FieldPathError {
            path: path.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or(err("unclosed '['"))?;
                segments.push(after[..end].to_owned());
                rest = &after[end + 1..];
                rest = rest.strip_prefix('.').unwrap_or(rest);
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                segments.push(rest[..end].to_owned());
                rest = &rest[end..];
                rest = rest.strip_prefix('.').unwrap_or(rest);
            }
        }
        if segments.is_empty() || segments.iter().any(String::is_empty) {
            return Err(err("empty segment"));
        }
        Ok(Self { segments })
    }

    /// The path's keys.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The index values of `object` at this path: a string, number or bool gives one value,
    /// an array gives one per scalar element, anything else (or nothing there) gives none.
    pub fn values(&self, object: &serde_json::Value) -> Vec<String> {
        let mut v = object;
        for s in &self.segments {
            match v.get(s) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        match v {
            serde_json::Value::Array(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        }
    }
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_and_bracketed_paths_reach_the_value() {
        let obj = json!({"spec": {"nodeName": "n1", "ports": [80, 443]},
                         "metadata": {"labels": {"app.kubernetes.io/name": "web"}}});
        assert_eq!(
            FieldPath::parse("spec.nodeName").unwrap().values(&obj),
            ["n1"]
        );
        assert_eq!(
            FieldPath::parse("spec.ports").unwrap().values(&obj),
            ["80", "443"]
        );
        let p = FieldPath::parse("metadata.labels[app.kubernetes.io/name]").unwrap();
        assert_eq!(p.values(&obj), ["web"]);
        assert!(
            FieldPath::parse("spec.missing")
                .unwrap()
                .values(&obj)
                .is_empty()
        );
    }

    #[test]
    fn empty_segments_and_unclosed_brackets_are_rejected() {
        for bad in ["", "a..b", ".a", "a[b", "a[]"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }
}
