//! [`FieldSelector`]: the `field-selector` of the WIT `list-params`, evaluated on cached objects.
//!
//! The syntax is the Kubernetes one (comma-separated `path=value`, `path==value`,
//! `path!=value`, all of which must hold), but any dotted path works (the same paths as
//! indexes and projections, [`FieldPath`]): the cache evaluates it on the object instead of
//! asking the API server, which only knows a few fields per kind.

use std::fmt;

use kubewasm_core::FieldPath;

/// Why a field selector does not parse. The message names the offending term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad field selector {selector:?}: {reason}")]
pub struct FieldSelectorError {
    /// The whole selector.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

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
    /// [`FieldSelectorError`] for a term without an operator, an empty path or a path that does
    /// not parse as a [`FieldPath`].
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
    /// is.
    pub fn matches_json(&self, json: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(json) else {
            return false;
        };
        self.terms.iter().all(|t| {
            let values = t.path.values_in_text(text);
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

    #[test]
    fn every_operator_compares_the_value_at_the_path() {
        assert!(sel("spec.nodeName=node-1").matches_json(POD));
        assert!(sel("spec.nodeName==node-1").matches_json(POD));
        assert!(!sel("spec.nodeName!=node-1").matches_json(POD));
        assert!(sel("spec.nodeName!=node-2").matches_json(POD));
        assert!(sel("status.ready=true").matches_json(POD));
        assert!(sel("metadata.labels['app.kubernetes.io/name']=web").matches_json(POD));
    }

    #[test]
    fn terms_separated_by_commas_must_all_hold() {
        assert!(sel("spec.nodeName=node-1,status.phase=Running").matches_json(POD));
        assert!(!sel("spec.nodeName=node-1,status.phase!=Running").matches_json(POD));
        assert!(sel("").matches_json(POD));
    }

    #[test]
    fn a_missing_field_is_the_empty_string_and_arrays_match_any_element() {
        assert!(sel("spec.hostname=").matches_json(POD));
        assert!(sel("spec.hostname!=x").matches_json(POD));
        assert!(!sel("spec.hostname=x").matches_json(POD));
        assert!(sel("spec.containers.image=b").matches_json(POD));
        assert!(!sel("spec.containers.image!=b").matches_json(POD));
    }

    #[test]
    fn a_bad_selector_says_which_term_is_wrong() {
        for (text, needle) in [
            ("spec.nodeName", "no operator"),
            ("=x", "no field path"),
            ("a=1,,b=2", "empty term"),
            ("spec..x=1", "spec..x"),
        ] {
            let e = FieldSelector::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("bad field selector"), "{e}");
        }
    }
}
