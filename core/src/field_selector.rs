//! [`FieldSelector`]: the `field-selector` of the WIT `list-params`, evaluated on cached
//! objects by the host and on the fake cluster by the SDK's fake host.
//!
//! The syntax is the Kubernetes one (comma-separated `path=value`, `path==value`,
//! `path!=value`, all of which must hold), but any dotted path works (the same paths as
//! indexes and projections, [`FieldPath`]): the cache evaluates it on the object instead of
//! asking the API server, which only knows a few fields per kind.

use std::fmt;

use serde_json::Value;

use crate::FieldPath;

/// Why a field selector does not parse. The message names the offending term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelectorError {
    /// The whole selector.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for FieldSelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad field selector {:?}: {}", self.selector, self.reason)
    }
}

impl std::error::Error for FieldSelectorError {}

/// One `path=value` or `path!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    path: FieldPath,
    equal: bool,
    value: String,
}

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    text: String,
    terms: Vec<Term>,
}

impl FieldSelector {
    /// Parses `path=value`, `path==value` and `path!=value` terms separated by commas. An empty
    /// selector selects everything.
    ///
    /// # Errors
    /// [`FieldSelectorError`] for a term without an operator, an empty term, an empty path or a
    /// path that does not parse as a [`FieldPath`].
    pub fn parse(text: &str) -> Result<Self, FieldSelectorError> {
        let err = |reason: String| FieldSelectorError {
            selector: text.to_owned(),
            reason,
        };
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let term = raw.trim();
            if term.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(err("an empty term (two commas, or one at an end)".into()));
            }
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(err(format!(
                    "{term:?} has no operator (use path=value, path==value or path!=value)"
                )));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(err(format!("{term:?} has no field path")));
            }
            let path = FieldPath::parse(path).map_err(|e| err(format!("{term:?}: {e}")))?;
            terms.push(Term {
                path,
                equal,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            terms,
        })
    }

    /// Whether the object, as JSON text, matches every term. A path missing in the object
    /// has the value `""` (as the API server treats an unset field); a path reaching several
    /// values (through an array) matches `=` when any of them is the value and `!=` when none
    /// is. Bytes that are not UTF-8 match nothing.
    pub fn matches_json(&self, json: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(json) else {
            return false;
        };
        self.matches_with(|path| path.values_in_text(text))
    }

    /// [`FieldSelector::matches_json`] for an object already parsed.
    pub fn matches_value(&self, object: &Value) -> bool {
        self.matches_with(|path| path.values_in_json(object))
    }

    fn matches_with(&self, values_at: impl Fn(&FieldPath) -> Vec<String>) -> bool {
        self.terms.iter().all(|t| {
            let values = values_at(&t.path);
            let found = if values.is_empty() {
                t.value.is_empty()
            } else {
                values.contains(&t.value)
            };
            found == t.equal
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(text: &str) -> FieldSelector {
        FieldSelector::parse(text).unwrap()
    }

    const POD: &[u8] = br#"{"metadata":{"name":"p","labels":{"app.kubernetes.io/name":"web"}},
        "spec":{"nodeName":"node-1","containers":[{"image":"a"},{"image":"b"}]},
        "status":{"phase":"Running","ready":true}}"#;

    /// Asserts the selector gives `want` on the pod both as text and as a parsed value.
    #[track_caller]
    fn check(text: &str, want: bool) {
        let selector = sel(text);
        let pod: Value = serde_json::from_slice(POD).unwrap();
        assert_eq!(selector.matches_json(POD), want, "{text} on JSON text");
        assert_eq!(
            selector.matches_value(&pod),
            want,
            "{text} on a parsed value"
        );
    }

    #[test]
    fn every_operator_compares_the_value_at_the_path() {
        check("spec.nodeName=node-1", true);
        check("spec.nodeName==node-1", true);
        check("spec.nodeName!=node-1", false);
        check("spec.nodeName!=node-2", true);
        check("status.ready=true", true);
        check("metadata.labels['app.kubernetes.io/name']=web", true);
    }

    #[test]
    fn terms_separated_by_commas_must_all_hold() {
        check("spec.nodeName=node-1,status.phase=Running", true);
        check("spec.nodeName=node-1,status.phase!=Running", false);
        check(" spec.nodeName = node-1 , status.phase = Running ", true);
        check("", true);
        check("  ", true);
    }

    #[test]
    fn a_missing_field_is_the_empty_string_and_arrays_match_any_element() {
        check("spec.hostname=", true);
        check("spec.hostname!=x", true);
        check("spec.hostname=x", false);
        check("spec.containers.image=b", true);
        check("spec.containers.image!=b", false);
    }

    #[test]
    fn bytes_that_are_not_utf8_match_nothing() {
        assert!(!sel("").matches_json(b"\xff\xfe"));
    }

    #[test]
    fn a_bad_selector_says_which_term_is_wrong() {
        for (text, needle) in [
            ("spec.nodeName", "no operator"),
            ("=x", "no field path"),
            ("a=1,,b=2", "empty term"),
            ("a=1,", "empty term"),
            ("spec..x=1", "spec..x"),
        ] {
            let e = FieldSelector::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(
                e.starts_with(&format!("bad field selector {text:?}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn it_displays_as_written() {
        assert_eq!(sel("a=1, b!=2").to_string(), "a=1, b!=2");
    }
}
