//! `LabelSelector`: the full Kubernetes label selector syntax, parsed into kube-core expressions.
//!
//! kube-core 5 has [`kube::core::Expression`]/[`kube::core::Selector`] with matching but no parser
//! for the string form, so this module parses `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
//! `a` and `!a` (comma-separated, whitespace allowed) into those expressions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use kube::core::{Expression, Selector};

use crate::labels::LabelSource;

/// Why a selector could not be parsed or converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The string is not a valid selector; `at` is the byte offset of the problem.
    #[error("invalid label selector {selector:?} at byte {at}: {what}")]
    Syntax {
        /// The selector text.
        selector: String,
        /// Byte offset.
        at: usize,
        /// What was wrong.
        what: String,
    },
    /// A structured `LabelSelector` (matchLabels/matchExpressions) had an invalid requirement.
    #[error("invalid label selector requirement: {0}")]
    Requirement(String),
}

/// A parsed label selector: every expression must match (logical AND). Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    exprs: Vec<Expression>,
}

impl LabelSelector {
    /// Parses the string form used by `kubectl -l` and `?labelSelector=`.
    ///
    /// # Errors
    /// [`Error::Syntax`] with the byte offset of the first problem.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Parser { text, pos: 0 }.parse()
    }

    /// A selector from its expressions.
    pub fn from_expressions(exprs: impl IntoIterator<Item = Expression>) -> Self {
        Self {
            exprs: exprs.into_iter().collect(),
        }
    }

    /// A selector that requires every `key=value` of a map (a Service's `spec.selector`).
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        Self::from_expressions(
            map.iter()
                .map(|(k, v)| Expression::Equal(k.clone(), v.clone())),
        )
    }

    /// Converts a structured selector (`matchLabels` + `matchExpressions`, as in a Deployment's
    /// `spec.selector`).
    ///
    /// # Errors
    /// [`Error::Requirement`] for an unknown operator or an `In`/`NotIn` without values.
    pub fn from_k8s(
        selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Result<Self, Error> {
        let s = Selector::try_from(selector.clone()).map_err(|e| Error::Requirement(e.0))?;
        Ok(Self::from_expressions(s))
    }

    /// The same selector with its requirements sorted and duplicates removed, so that equivalent
    /// spellings (`b=2,a=1` and `a==1, b=2`) print the same.
    pub fn canonical(&self) -> Self {
        let mut exprs = self.exprs.clone();
        exprs.sort();
        exprs.dedup();
        Self { exprs }
    }

    /// The expressions, in the order written.
    pub fn expressions(&self) -> &[Expression] {
        &self.exprs
    }

    /// Whether the selector selects every object.
    pub fn selects_all(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Whether `labels` (a map, or a cached object's [`crate::Labels`]) satisfy every expression.
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        self.exprs.iter().all(|e| match e {
            Expression::In(k, values) => labels.label(k).is_some_and(|v| values.contains(v)),
            Expression::NotIn(k, values) => labels.label(k).is_none_or(|v| !values.contains(v)),
            Expression::Equal(k, value) => labels.label(k) == Some(value.as_str()),
            Expression::NotEqual(k, value) => labels.label(k) != Some(value.as_str()),
            Expression::Exists(k) => labels.label(k).is_some(),
            Expression::DoesNotExist(k) => labels.label(k).is_none(),
        })
    }

    /// The same selector as kube-core's type (for `watcher::Config::labels_from`).
    pub fn to_kube(&self) -> Selector {
        self.exprs.iter().cloned().collect()
    }
}

impl FromStr for LabelSelector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form, accepted by [`LabelSelector::parse`] and the API server.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.exprs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
}

impl Parser<'_> {
    fn err(&self, at: usize, what: impl Into<String>) -> Error {
        Error::Syntax {
            selector: self.text.to_owned(),
            at,
            what: what.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self
            .text
            .as_bytes()
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// A run of label characters (letters, digits, `-`, `_`, `.`, `/`), possibly empty.
    fn word(&mut self) -> &str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn key(&mut self) -> Result<String, Error> {
        self.skip_ws();
        let at = self.pos;
        let key = self.word().to_owned();
        if key.is_empty() {
            return Err(match self.peek() {
                None => self.err(at, "expected a label key"),
                Some(c) => self.err(
                    at,
                    format!("expected a label key, found {:?}", char::from(c)),
                ),
            });
        }
        validate_key(&key).map_err(|what| self.err(at, what))?;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, Error> {
        self.skip_ws();
        let at = self.pos;
        let value = self.word().to_owned();
        validate_value(&value).map_err(|what| self.err(at, what))?;
        Ok(value)
    }

    fn parse(mut self) -> Result<LabelSelector, Error> {
        let mut exprs = Vec::new();
        self.skip_ws();
        if self.peek().is_none() {
            return Ok(LabelSelector { exprs });
        }
        loop {
            exprs.push(self.requirement()?);
            self.skip_ws();
            match self.peek() {
                None => return Ok(LabelSelector { exprs }),
                Some(b',') => self.pos += 1,
                Some(c) => {
                    return Err(self.err(
                        self.pos,
                        format!("expected ',' or the end, found {:?}", char::from(c)),
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Expression, Error> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.text.as_bytes().get(self.pos + 1) != Some(&b'=') {
            self.pos += 1;
            return Ok(Expression::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        let at = self.pos;
        let op = match self.peek() {
            None | Some(b',') => return Ok(Expression::Exists(key)),
            Some(b'=') => {
                self.pos += if self.text[self.pos..].starts_with("==") {
                    2
                } else {
                    1
                };
                Op::Eq
            }
            Some(b'!') if self.text[self.pos..].starts_with("!=") => {
                self.pos += 2;
                Op::NotEq
            }
            Some(b'>' | b'<') => {
                return Err(self.err(at, "the numeric operators '>' and '<' are not supported"));
            }
            Some(_) => match self.word().to_owned().as_str() {
                "in" => Op::In,
                "notin" => Op::NotIn,
                "" => return Err(self.err(at, "expected an operator")),
                other => {
                    return Err(self.err(
                        at,
                        format!("expected an operator (=, ==, !=, in, notin), found {other:?}"),
                    ));
                }
            },
        };
        match op {
            Op::Eq => Ok(Expression::Equal(key, self.value()?)),
            Op::NotEq => Ok(Expression::NotEqual(key, self.value()?)),
            Op::In => Ok(Expression::In(key, self.set()?)),
            Op::NotIn => Ok(Expression::NotIn(key, self.set()?)),
        }
    }

    fn set(&mut self) -> Result<BTreeSet<String>, Error> {
        self.skip_ws();
        if self.peek() != Some(b'(') {
            return Err(self.err(self.pos, "expected '(' after in/notin"));
        }
        self.pos += 1;
        let mut values = BTreeSet::new();
        loop {
            values.insert(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                None => return Err(self.err(self.pos, "unclosed '('")),
                Some(c) => {
                    return Err(self.err(
                        self.pos,
                        format!("expected ',' or ')', found {:?}", char::from(c)),
                    ));
                }
            }
        }
    }
}

fn is_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty()
            || p.len() > 253
            || !p.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            }))
    {
        return Err(format!(
            "invalid label key prefix {p:?}: must be a DNS subdomain"
        ));
    }
    if !is_name(name, 63) {
        return Err(format!(
            "invalid label key {key:?}: the name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value, 63) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be empty or 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn selector_parses_every_operator_of_the_kubernetes_syntax() {
        let s = LabelSelector::parse(
            " a=b, c==d ,e!=f, g in (x, y),h notin (z),i,!j, app.kubernetes.io/name=web,k=",
        )
        .expect("parse");
        assert_eq!(
            s.expressions(),
            &[
                Expression::Equal("a".into(), "b".into()),
                Expression::Equal("c".into(), "d".into()),
                Expression::NotEqual("e".into(), "f".into()),
                Expression::In("g".into(), set(&["x", "y"])),
                Expression::NotIn("h".into(), set(&["z"])),
                Expression::Exists("i".into()),
                Expression::DoesNotExist("j".into()),
                Expression::Equal("app.kubernetes.io/name".into(), "web".into()),
                Expression::Equal("k".into(), String::new()),
            ]
        );
        assert!(LabelSelector::parse("").expect("empty").selects_all());
        assert!(LabelSelector::parse("   ").expect("blank").selects_all());
    }

    #[test]
    fn selector_matches_like_the_api_server() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let m = |s: &str| LabelSelector::parse(s).expect("parse").matches(&l);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("env!=prod"), "!= matches when the key is absent");
        assert!(m("tier in (front,back)"));
        assert!(!m("tier notin (front)"));
        assert!(
            m("env notin (prod)"),
            "notin matches when the key is absent"
        );
        assert!(m("!env"));
        assert!(!m("!app"));
        assert!(!m("env"));
        assert!(m(""));
    }

    #[test]
    fn canonical_form_ignores_order_spelling_and_duplicates() {
        let a = LabelSelector::parse("b=2, a==1,b=2,c in (y,x)")
            .expect("parse")
            .canonical();
        let b = LabelSelector::parse("c in (x,y),a=1,b==2")
            .expect("parse")
            .canonical();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(a, b);
    }

    #[test]
    fn selector_display_round_trips() {
        let s = LabelSelector::parse("a=b,c in (y,x),!d,e notin (z),f!=g,h").expect("parse");
        let again = LabelSelector::parse(&s.to_string()).expect("reparse");
        assert_eq!(s, again);
        assert_eq!(s.to_kube().to_string(), s.to_string());
    }

    #[test]
    fn selector_rejects_bad_input_with_a_clear_position() {
        let cases = [
            ("a=b,", 4, "expected a label key"),
            ("a in x", 5, "expected '('"),
            ("a in (x", 7, "unclosed '('"),
            ("a in (x y)", 8, "expected ',' or ')'"),
            ("a foo b", 2, "expected an operator"),
            ("a>1", 1, "'>' and '<' are not supported"),
            ("=b", 0, "expected a label key"),
            ("-a=b", 0, "invalid label key"),
            ("a=-b", 2, "invalid label value"),
            ("a=b c", 4, "expected ',' or the end"),
            ("/a=b", 0, "invalid label key prefix"),
        ];
        for (text, at, what) in cases {
            match LabelSelector::parse(text) {
                Err(Error::Syntax {
                    at: got_at,
                    what: got,
                    ..
                }) => {
                    assert_eq!(got_at, at, "{text}: {got}");
                    assert!(
                        got.contains(what),
                        "{text}: {got:?} should mention {what:?}"
                    );
                }
                other => panic!("{text}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn selector_converts_a_structured_label_selector() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            LabelSelector as K8s, LabelSelectorRequirement,
        };
        let k = K8s {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["front".into()]),
            }]),
        };
        let s = LabelSelector::from_k8s(&k).expect("convert");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
    }
}
