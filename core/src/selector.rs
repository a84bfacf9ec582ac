//! [`LabelSelector`]: the full Kubernetes label selector syntax (`a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated, whitespace allowed), its structured
//! form (`matchLabels` + `matchExpressions`), and matching. One implementation for the host's
//! manifests and caches, the API server's queries and the SDK's fake host.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::labels::LabelSource;

/// Why a selector could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The string is not a valid selector; `at` is the byte offset of the problem.
    Syntax {
        /// The selector text.
        selector: String,
        /// Byte offset.
        at: usize,
        /// What was wrong.
        what: String,
    },
    /// A structured selector (matchLabels/matchExpressions) had an invalid requirement.
    Requirement(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { selector, at, what } => {
                write!(
                    f,
                    "invalid label selector {selector:?} at byte {at}: {what}"
                )
            }
            Self::Requirement(why) => write!(f, "invalid label selector requirement: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    /// `key in (values)`.
    In(String, BTreeSet<String>),
    /// `key notin (values)`: a missing label satisfies it.
    NotIn(String, BTreeSet<String>),
    /// `key=value` (or `key==value`).
    Equal(String, String),
    /// `key!=value`: a missing label satisfies it.
    NotEqual(String, String),
    /// `key`: the label is set.
    Exists(String),
    /// `!key`: the label is not set.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Self::In(k, values) => labels.label(k).is_some_and(|v| values.contains(v)),
            Self::NotIn(k, values) => labels.label(k).is_none_or(|v| !values.contains(v)),
            Self::Equal(k, value) => labels.label(k) == Some(value.as_str()),
            Self::NotEqual(k, value) => labels.label(k) != Some(value.as_str()),
            Self::Exists(k) => labels.label(k).is_some(),
            Self::DoesNotExist(k) => labels.label(k).is_none(),
        }
    }

    /// The label key the requirement is about.
    pub fn key(&self) -> &str {
        match self {
            Self::In(k, _)
            | Self::NotIn(k, _)
            | Self::Equal(k, _)
            | Self::NotEqual(k, _)
            | Self::Exists(k)
            | Self::DoesNotExist(k) => k,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join =
            |v: &BTreeSet<String>| v.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        match self {
            Self::In(k, v) => write!(f, "{k} in ({})", join(v)),
            Self::NotIn(k, v) => write!(f, "{k} notin ({})", join(v)),
            Self::Equal(k, v) => write!(f, "{k}={v}"),
            Self::NotEqual(k, v) => write!(f, "{k}!={v}"),
            Self::Exists(k) => write!(f, "{k}"),
            Self::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A parsed label selector: every requirement must match (logical AND). Empty selects
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    exprs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string form used by `kubectl -l` and `?labelSelector=`.
    ///
    /// # Errors
    /// [`Error::Syntax`] with the byte offset of the first problem.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Parser { text, pos: 0 }.parse()
    }

    /// A selector from its requirements.
    pub fn from_requirements(exprs: impl IntoIterator<Item = Requirement>) -> Self {
        Self {
            exprs: exprs.into_iter().collect(),
        }
    }

    /// A selector that requires every `key=value` of a map (a Service's `spec.selector`).
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        Self::from_requirements(
            map.iter()
                .map(|(k, v)| Requirement::Equal(k.clone(), v.clone())),
        )
    }

    /// Converts a structured selector as JSON (`matchLabels` + `matchExpressions`, as in a
    /// Deployment's `spec.selector`). `null` or `{}` selects everything.
    ///
    /// # Errors
    /// [`Error::Requirement`] for an unknown operator, an `In`/`NotIn` without values, or
    /// `Exists`/`DoesNotExist` with values.
    pub fn from_json(selector: &Value) -> Result<Self, Error> {
        let mut exprs = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                exprs.push(Requirement::Equal(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        for e in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let values: BTreeSet<String> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            exprs.push(match op {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(Error::Requirement(format!(
                        "{op} on {key:?} needs at least one value"
                    )));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(Error::Requirement(format!(
                        "{op} on {key:?} takes no values"
                    )));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(Error::Requirement(format!(
                        "unknown operator {other:?} on {key:?}"
                    )));
                }
            });
        }
        Ok(Self { exprs })
    }

    /// The same selector with its requirements sorted by key (as Kubernetes prints selectors)
    /// and duplicates removed, so that equivalent spellings (`b=2,a=1` and `a==1, b=2`) print
    /// the same.
    pub fn canonical(&self) -> Self {
        let mut exprs = self.exprs.clone();
        exprs.sort_by(|a, b| a.key().cmp(b.key()).then_with(|| a.cmp(b)));
        exprs.dedup();
        Self { exprs }
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.exprs
    }

    /// Whether the selector selects every object.
    pub fn selects_all(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Whether `labels` (a map, or a cached object's [`crate::Labels`]) satisfy every
    /// requirement.
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        self.exprs.iter().all(|e| e.matches(labels))
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

    fn requirement(&mut self) -> Result<Requirement, Error> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.text.as_bytes().get(self.pos + 1) != Some(&b'=') {
            self.pos += 1;
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        let at = self.pos;
        let op = match self.peek() {
            None | Some(b',') => return Ok(Requirement::Exists(key)),
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
            Op::Eq => Ok(Requirement::Equal(key, self.value()?)),
            Op::NotEq => Ok(Requirement::NotEqual(key, self.value()?)),
            Op::In => Ok(Requirement::In(key, self.set()?)),
            Op::NotIn => Ok(Requirement::NotIn(key, self.set()?)),
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

/// Whether `s` is a DNS subdomain: dot-separated labels of lowercase letters, digits and `-`,
/// each starting and ending with a letter or digit, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether `key` is a valid label key (and so a valid finalizer or annotation key): an
/// optional DNS-subdomain prefix and `/`, then a name of 1-63 letters, digits, `-`, `_`, `.`.
pub fn is_label_key(key: &str) -> bool {
    validate_key(key).is_ok()
}

/// Whether `value` is a valid label value: empty, or 1-63 letters, digits, `-`, `_`, `.`
/// starting and ending with a letter or digit.
pub fn is_label_value(value: &str) -> bool {
    validate_value(value).is_ok()
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
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
            s.requirements(),
            &[
                Requirement::Equal("a".into(), "b".into()),
                Requirement::Equal("c".into(), "d".into()),
                Requirement::NotEqual("e".into(), "f".into()),
                Requirement::In("g".into(), set(&["x", "y"])),
                Requirement::NotIn("h".into(), set(&["z"])),
                Requirement::Exists("i".into()),
                Requirement::DoesNotExist("j".into()),
                Requirement::Equal("app.kubernetes.io/name".into(), "web".into()),
                Requirement::Equal("k".into(), String::new()),
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
        let s = LabelSelector::from_json(&serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
        }))
        .expect("convert");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        for bad in [
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        ] {
            assert!(LabelSelector::from_json(&bad).is_err(), "{bad}");
        }
        assert!(
            LabelSelector::from_json(&serde_json::Value::Null)
                .unwrap()
                .selects_all()
        );
    }

    #[test]
    fn a_key_prefix_is_a_lowercase_dns_subdomain_as_the_api_server_requires() {
        assert!(is_label_key("example.com/name"));
        assert!(!is_label_key("Example.com/name"));
        assert!(!is_label_key("-example.com/name"));
        assert!(!is_label_key("not a/valid/name"));
        assert!(LabelSelector::parse("Example.com/x=1").is_err());
    }
}
