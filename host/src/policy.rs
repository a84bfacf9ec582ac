//! [`Policy`]: an operator's file that narrows what plugins' manifests ask for — kinds, verbs,
//! namespaces — and never widens it.
//!
//! ```yaml
//! # kubewasm policy: narrows what plugins' manifests ask for. A plugin not listed gets `default`.
//! default:
//!   namespaces: [apps, staging]   # namespaced kinds only here (omit = every namespace)
//! plugins:
//!   rediscluster:
//!     kinds: [RedisCluster.cache.example.com, StatefulSet.apps, Service]  # omit = every declared kind
//!     verbs: { Secret: [get] }    # per-kind verb limits (optional)
//!     namespaces: [apps]
//! ```
//!
//! A plugin's entry is merged over `default` field by field: a field the entry leaves out is taken
//! from `default` (so listing a plugin never loosens what `default` says); `"*"` as the only item
//! of `kinds` or `namespaces` means "all". Kinds are written `Kind` (core group) or `Kind.group`.
//!
//! The effective manifest is the plugin's manifest intersected with its [`Allowance`] (see
//! [`crate::runtime::Manifest::narrow`]). What is taken away is logged once at load as a warning;
//! a plugin whose reconciled kind (or the namespace it reconciles in) is not allowed is not loaded
//! at all. The policy is read once at start: editing the file takes effect at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use kubewasm_core::{Manifest, Verb, Verbs};

/// Why a policy file could not be used, or why it refuses a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("failed to read the policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML of the policy's shape (unknown keys included).
    #[error("the policy file {source_name} is not valid: {source}")]
    Parse {
        /// The file.
        source_name: String,
        /// The YAML parser's explanation, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// The file parses but says something meaningless (bad kind, verb or namespace names).
    #[error("the policy file {source_name} is not valid: {}", .problems.join("; "))]
    Invalid {
        /// The file.
        source_name: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The policy leaves the plugin nothing to run on: its reconciled kind, or the namespace it
    /// reconciles in, is not allowed.
    #[error("the policy {source_name} does not allow plugin {plugin} to run: {reason}")]
    Refused {
        /// The policy file.
        source_name: String,
        /// The plugin.
        plugin: String,
        /// What is not allowed.
        reason: String,
    },
}

/// A kind as a policy names it: `Kind` for the core group, `Kind.group` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindName {
    /// API group, `""` for core.
    pub group: String,
    /// Kind, e.g. `StatefulSet`.
    pub kind: String,
}

impl KindName {
    /// Parses `Kind` or `Kind.group`.
    ///
    /// # Errors
    /// A message when the kind is not CamelCase or the group not a lowercase DNS name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, group) = text.split_once('.').unwrap_or((text, ""));
        if kind.is_empty()
            || !kind.starts_with(|c: char| c.is_ascii_uppercase())
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "kind {text:?} is not a CamelCase kind name (write Kind or Kind.group, e.g. StatefulSet.apps)"
            ));
        }
        let dns = group.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if text.contains('.') && !dns {
            return Err(format!(
                "kind {text:?} has a group that is not a lowercase DNS name"
            ));
        }
        Ok(Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
        })
    }

    /// True when this names `group`/`kind` (versions are not compared).
    pub fn names(&self, group: &str, kind: &str) -> bool {
        self.kind == kind && self.group == group
    }
}

impl std::fmt::Display for KindName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// What the policy allows one plugin: its entry merged over `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowance {
    /// Kinds the plugin may use; `None` keeps every declared kind.
    pub kinds: Option<Vec<KindName>>,
    /// The most each listed kind may keep of its verbs.
    pub verbs: Vec<(KindName, Verbs)>,
    /// Namespaces where namespaced kinds may be read and written; `None` means every namespace.
    pub namespaces: Option<Vec<String>>,
}

impl Allowance {
    /// True when this narrows nothing.
    pub fn is_unrestricted(&self) -> bool {
        self.kinds.is_none() && self.verbs.is_empty() && self.namespaces.is_none()
    }

    /// True when `kinds` lists `group`/`kind` by name (not merely "every kind").
    pub fn lists(&self, group: &str, kind: &str) -> bool {
        self.kinds
            .as_ref()
            .is_some_and(|ks| ks.iter().any(|k| k.names(group, kind)))
    }

    /// True when the plugin may use `group`/`kind` at all.
    pub fn allows_kind(&self, group: &str, kind: &str) -> bool {
        self.kinds.is_none() || self.lists(group, kind)
    }

    /// The verb limit on `group`/`kind`, if the policy sets one.
    pub fn verb_limit(&self, group: &str, kind: &str) -> Option<Verbs> {
        self.verbs
            .iter()
            .find(|(k, _)| k.names(group, kind))
            .map(|(_, v)| *v)
    }
}

/// What the manifest model narrows a plugin's manifest by.
impl kubewasm_core::Allowance for Allowance {
    fn allows_kind(&self, group: &str, kind: &str) -> bool {
        Allowance::allows_kind(self, group, kind)
    }

    fn lists(&self, group: &str, kind: &str) -> bool {
        Allowance::lists(self, group, kind)
    }

    fn verb_limit(&self, group: &str, kind: &str) -> Option<Verbs> {
        Allowance::verb_limit(self, group, kind)
    }

    fn namespaces(&self) -> Option<&[String]> {
        self.namespaces.as_deref()
    }
}

/// A parsed, validated policy file. Cheap to share (wrap it in an `Arc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    source_name: String,
    default: Allowance,
    plugins: BTreeMap<String, Allowance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    default: Option<RuleShape>,
    #[serde(default)]
    plugins: BTreeMap<String, RuleShape>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleShape {
    kinds: Option<Vec<String>>,
    #[serde(default)]
    verbs: BTreeMap<String, Vec<String>>,
    namespaces: Option<Vec<String>>,
}

/// A `kinds` or `namespaces` list as written: `None` when absent, `Some(None)` for `["*"]`.
type Listed<T> = Option<Option<Vec<T>>>;

fn parse_rule(
    rule: RuleShape,
    what: &str,
    problems: &mut Vec<String>,
) -> (Listed<KindName>, Vec<(KindName, Verbs)>, Listed<String>) {
    let star = |items: &[String]| items.len() == 1 && items[0] == "*";
    let kinds = rule.kinds.map(|ks| {
        if star(&ks) {
            return None;
        }
        Some(
            ks.iter()
                .filter_map(|k| {
                    KindName::parse(k)
                        .map_err(|e| problems.push(format!("{what}: {e}")))
                        .ok()
                })
                .collect(),
        )
    });
    let mut verbs = Vec::new();
    for (k, vs) in rule.verbs {
        let Ok(kind) = KindName::parse(&k).map_err(|e| problems.push(format!("{what}.verbs: {e}")))
        else {
            continue;
        };
        let mut set = Verbs::default();
        for v in vs {
            match Verb::parse(&v) {
                Some(v) => set.insert(v),
                None => problems.push(format!(
                    "{what}.verbs.{k}: unknown verb {v:?} (use get, list, watch, create, update, patch, delete)"
                )),
            }
        }
        verbs.push((kind, set));
    }
    let namespaces = rule.namespaces.map(|ns| {
        if star(&ns) {
            return None;
        }
        for n in &ns {
            let ok = !n.is_empty()
                && n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !n.starts_with('-')
                && !n.ends_with('-');
            if !ok {
                problems.push(format!(
                    "{what}.namespaces: {n:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
                ));
            }
        }
        let mut ns = ns;
        ns.sort();
        ns.dedup();
        Some(ns)
    });
    (kinds, verbs, namespaces)
}

impl Policy {
    /// Reads and validates the policy file at `path`.
    ///
    /// # Errors
    /// [`PolicyError::Read`], [`PolicyError::Parse`] (not YAML, unknown keys, wrong types) or
    /// [`PolicyError::Invalid`] (bad kind, verb or namespace names), each naming the file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a policy; `source_name` (usually the file name) names it in errors
    /// and in the `forbidden` messages plugins get.
    ///
    /// # Errors
    /// As [`Policy::from_file`], minus reading.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, PolicyError> {
        let shape: FileShape = if text.trim().is_empty() {
            FileShape::default()
        } else {
            serde_yaml::from_str(text).map_err(|source| PolicyError::Parse {
                source_name: source_name.to_owned(),
                source,
            })?
        };
        let mut problems = Vec::new();
        let (kinds, verbs, namespaces) =
            parse_rule(shape.default.unwrap_or_default(), "default", &mut problems);
        let default = Allowance {
            kinds: kinds.flatten(),
            verbs,
            namespaces: namespaces.flatten(),
        };
        let mut plugins = BTreeMap::new();
        for (name, rule) in shape.plugins {
            if name.is_empty() {
                problems.push("plugins: an empty plugin name".into());
            }
            let (kinds, verbs, namespaces) =
                parse_rule(rule, &format!("plugins.{name}"), &mut problems);
            let mut merged_verbs = verbs;
            for (k, v) in &default.verbs {
                if !merged_verbs.iter().any(|(m, _)| m == k) {
                    merged_verbs.push((k.clone(), *v));
                }
            }
            plugins.insert(
                name,
                Allowance {
                    kinds: kinds.unwrap_or_else(|| default.kinds.clone()),
                    verbs: merged_verbs,
                    namespaces: namespaces.unwrap_or_else(|| default.namespaces.clone()),
                },
            );
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid {
                source_name: source_name.to_owned(),
                problems,
            });
        }
        Ok(Self {
            source_name: source_name.to_owned(),
            default,
            plugins,
        })
    }

    /// The name the policy goes by in messages (its file path).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The plugins the policy has an entry for, by name.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// What the policy allows `plugin`: its own entry (merged over `default`), else `default`.
    pub fn allowance(&self, plugin: &str) -> &Allowance {
        self.plugins.get(plugin).unwrap_or(&self.default)
    }

    /// The effective manifest of `plugin`: `manifest` narrowed by [`Policy::allowance`]. What was
    /// taken away is logged as one warning naming the plugin and the policy.
    ///
    /// # Errors
    /// [`PolicyError::Refused`] when the reconciled kind, its reads, or the namespace it
    /// reconciles in is not allowed.
    pub fn narrow(&self, plugin: &str, manifest: Manifest) -> Result<Manifest, PolicyError> {
        let allowance = self.allowance(plugin);
        if allowance.is_unrestricted() {
            return Ok(manifest);
        }
        let (narrowed, dropped) = manifest
            .narrow(plugin, &self.source_name, allowance)
            .map_err(|reason| PolicyError::Refused {
                source_name: self.source_name.clone(),
                plugin: plugin.to_owned(),
                reason,
            })?;
        if !dropped.is_empty() {
            tracing::warn!(
                plugin,
                policy = %self.source_name,
                "the policy narrows what the plugin's manifest asks for; dropped: {}",
                dropped.join("; ")
            );
        }
        if let Some(ns) = &allowance.namespaces {
            tracing::info!(
                plugin,
                policy = %self.source_name,
                "namespaced kinds are limited to the namespaces {}",
                ns.join(", ")
            );
        }
        Ok(narrowed)
    }
}

/// `metadata.namespace` of a JSON object. Parsing stops as soon as it is found (or `metadata`
/// ends without it): objects from the API server carry `metadata` near the top, so filtering a
/// list by namespace costs a few hundred bytes of parsing per object, not the whole object.
pub(crate) fn object_namespace(json: &[u8]) -> Option<String> {
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// Stops the parse once the answer is known (the error is the way out, not a failure).
    const STOP: &str = "kubewasm: namespace found";

    /// Whether a map key is `self.0`, without allocating it.
    struct IsKey(&'static str);
    impl<'de> DeserializeSeed<'de> for IsKey {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for IsKey {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(v == self.0)
        }
    }

    /// Walks the object (`inner` false) or its metadata (`inner` true).
    struct Walk<'a> {
        found: &'a mut Option<String>,
        inner: bool,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let wanted = if self.inner { "namespace" } else { "metadata" };
            while let Some(hit) = map.next_key_seed(IsKey(wanted))? {
                if !hit {
                    map.next_value::<IgnoredAny>()?;
                } else if self.inner {
                    *self.found = map.next_value::<Option<String>>()?;
                    return Err(de::Error::custom(STOP));
                } else {
                    map.next_value_seed(Walk {
                        found: self.found,
                        inner: true,
                    })?;
                    // `metadata` ended without a namespace: nothing more to look for.
                    return Err(de::Error::custom(STOP));
                }
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    // Err is how the walk stops early (or a malformed object: then no namespace).
    let _ = Walk {
        found: &mut found,
        inner: false,
    }
    .deserialize(&mut de);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "
default:
  namespaces: [staging, apps]
plugins:
  rediscluster:
    kinds: [RedisCluster.cache.example.com, StatefulSet.apps, Service]
    verbs: { Secret: [get] }
    namespaces: [apps]
  open:
    namespaces: ['*']
";

    #[test]
    fn the_documented_example_parses_and_entries_merge_over_default() {
        let p = Policy::parse(EXAMPLE, "policy.yaml").unwrap();
        assert_eq!(
            p.plugin_names().collect::<Vec<_>>(),
            ["open", "rediscluster"]
        );
        let r = p.allowance("rediscluster");
        assert_eq!(r.namespaces.as_deref(), Some(&["apps".to_owned()][..]));
        assert!(r.lists("apps", "StatefulSet"));
        assert!(r.lists("cache.example.com", "RedisCluster"));
        assert!(r.allows_kind("", "Service"));
        assert!(!r.allows_kind("", "Secret"));
        let secret = r.verb_limit("", "Secret").unwrap();
        assert!(secret.contains(Verb::Get) && !secret.contains(Verb::List));

        let other = p.allowance("not-listed");
        assert_eq!(
            other.namespaces.as_deref(),
            Some(&["apps".to_owned(), "staging".to_owned()][..]),
            "a plugin not listed gets default (namespaces sorted)"
        );
        assert!(other.kinds.is_none());
        assert!(p.allowance("open").is_unrestricted(), "'*' means all");
    }

    #[test]
    fn an_entry_that_leaves_a_field_out_inherits_it_from_default() {
        let p = Policy::parse(
            "default: {namespaces: [apps], verbs: {Secret: [get]}}\nplugins: {x: {kinds: [ConfigMap]}}",
            "p",
        )
        .unwrap();
        let x = p.allowance("x");
        assert_eq!(x.namespaces.as_deref(), Some(&["apps".to_owned()][..]));
        assert!(x.verb_limit("", "Secret").is_some());
    }

    #[test]
    fn an_empty_file_narrows_nothing() {
        let p = Policy::parse("", "empty.yaml").unwrap();
        assert!(p.allowance("anything").is_unrestricted());
    }

    #[test]
    fn unknown_keys_are_an_error_naming_the_key_and_file() {
        let e = Policy::parse("default:\n  namespace: [apps]\n", "bad.yaml").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, PolicyError::Parse { .. }), "{e:?}");
        assert!(
            text.contains("bad.yaml") && text.contains("namespace"),
            "{text}"
        );
        let e = Policy::parse("plugin: {}\n", "bad.yaml").unwrap_err();
        assert!(e.to_string().contains("plugin"), "{e}");
    }

    #[test]
    fn bad_kind_verb_and_namespace_names_are_all_reported() {
        let e = Policy::parse(
            "default:\n  kinds: [statefulset.apps, Pod.Apps]\n  verbs: {Secret: [read]}\n  namespaces: [Apps, '']\n",
            "bad.yaml",
        )
        .unwrap_err();
        let text = e.to_string();
        for needle in [
            "\"statefulset.apps\"",
            "\"Pod.Apps\"",
            "unknown verb \"read\"",
            "\"Apps\" is not a namespace name",
            "\"\" is not a namespace name",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn kind_names_parse_with_and_without_group() {
        assert_eq!(
            KindName::parse("Service").unwrap(),
            KindName {
                group: String::new(),
                kind: "Service".into()
            }
        );
        let k = KindName::parse("RedisCluster.cache.example.com").unwrap();
        assert_eq!(k.group, "cache.example.com");
        assert_eq!(k.to_string(), "RedisCluster.cache.example.com");
        assert!(KindName::parse("Pod.").is_err());
        assert!(KindName::parse("").is_err());
    }

    #[test]
    fn a_file_that_is_not_a_mapping_is_a_parse_error_not_a_panic() {
        for text in ["- a\n- b\n", "default: 3\n", "plugins: [x]\n", ":\n  :"] {
            assert!(Policy::parse(text, "p").is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_namespace_is_read_from_object_json() {
        assert_eq!(
            object_namespace(br#"{"kind":"ConfigMap","metadata":{"name":"a","namespace":"apps","labels":{}},"data":{}}"#).as_deref(),
            Some("apps")
        );
        assert_eq!(object_namespace(br#"{"metadata":{"name":"n"}}"#), None);
        assert_eq!(object_namespace(b"not json"), None);
        assert_eq!(
            object_namespace(br#"{"spec":{"metadata":{"namespace":"nested"}},"metadata":{"labels":{"namespace":"label"},"namespace":"real"}}"#).as_deref(),
            Some("real"),
            "only the object's own metadata.namespace counts"
        );
        assert_eq!(
            object_namespace(br#"{"metadata":{"namespace":"ap\u0070s"},"spec":{"x":"#).as_deref(),
            Some("apps"),
            "escapes are decoded, and parsing stops before what follows"
        );
        assert_eq!(
            object_namespace(br#"{"metadata":{"namespace":null}}"#),
            None
        );
        assert_eq!(object_namespace(br#"{"metadata":{"namespace":3}}"#), None);
    }
}
