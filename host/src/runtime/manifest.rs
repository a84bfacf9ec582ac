//! [`Manifest`]: a plugin's validated declaration of kinds, watches, indexes and verbs, and
//! the permission check every import runs.

use std::fmt;
use std::sync::Arc;

use super::api_error::ApiError;
use super::bindings::exports::kubewasm::controller::reconciler as wit;
use super::bindings::kubewasm::controller::types as wit_types;
use kubewasm_controller::{FieldPath, LabelSelector};

mod narrowing;
use narrowing::Narrowing;

/// Everything wrong with a manifest, so the author can fix it in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid manifest: {}", .problems.join("; "))]
pub struct ManifestError {
    /// One entry per problem.
    pub problems: Vec<String>,
}

/// A Kubernetes kind with its URL plural resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind {
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind name, e.g. `Pod`.
    pub kind: String,
    /// URL plural, e.g. `pods` (declared, or guessed by [`guess_plural`]).
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Kind {
    /// `apiVersion` as written in objects: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// True when `group`/`kind` name this kind (versions are not compared).
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.kind == kind && self.group == group
    }

    pub(crate) fn from_wit(k: wit_types::Kind) -> Self {
        let plural = match k.plural {
            Some(p) if !p.is_empty() => p,
            _ => guess_plural(&k.kind),
        };
        Self {
            group: k.group,
            version: k.version,
            kind: k.kind,
            plural,
            namespaced: k.namespaced,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// The plural the host uses when a kind declares none: lowercase, then `-y` after a
/// consonant becomes `-ies`, a trailing `s`, `x`, `z`, `ch` or `sh` gets `-es`, else `-s`.
pub fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && !stem.is_empty()
    {
        return format!("{stem}ies");
    }
    if lower.ends_with(['s', 'x', 'z']) || lower.ends_with("ch") || lower.ends_with("sh") {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// A verb from the fixed RBAC-like set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Cache `get`.
    Get,
    /// Cache `list` and `list-by-index`.
    List,
    /// Keep an informer for the kind.
    Watch,
    /// `create`.
    Create,
    /// `replace`, `replace-status`.
    Update,
    /// `patch` (all three kinds).
    Patch,
    /// `delete`.
    Delete,
}

impl Verb {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The verb as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }

    /// Parses a verb as Kubernetes spells it (`get`, `list`, ..., `delete`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }

    const ALL: [Verb; 7] = [
        Self::Get,
        Self::List,
        Self::Watch,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
    ];
}

impl fmt::Display for Verbs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Verb::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

impl From<wit::Verb> for Verb {
    fn from(v: wit::Verb) -> Self {
        match v {
            wit::Verb::Get => Self::Get,
            wit::Verb::List => Self::List,
            wit::Verb::Watch => Self::Watch,
            wit::Verb::Create => Self::Create,
            wit::Verb::Update => Self::Update,
            wit::Verb::Patch => Self::Patch,
            wit::Verb::Delete => Self::Delete,
        }
    }
}

/// A set of verbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verbs(u8);

impl Verbs {
    pub(crate) const READ: Self =
        Self(1 << Verb::Get as u8 | 1 << Verb::List as u8 | 1 << Verb::Watch as u8);

    /// True when `verb` is in the set.
    pub fn contains(self, verb: Verb) -> bool {
        self.0 & verb.bit() != 0
    }

    /// Adds `verb` to the set.
    pub fn insert(&mut self, verb: Verb) {
        self.0 |= verb.bit();
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The verbs in both sets.
    #[must_use]
    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The verbs in `self` but not in `other`.
    #[must_use]
    pub fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The verbs in the set.
    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL.into_iter().filter(move |v| self.contains(*v))
    }
}

/// The reconciled kind and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciles {
    /// The kind.
    pub kind: Kind,
    /// Only this namespace, if set.
    pub namespace: Option<String>,
    /// Only objects matching this selector, if set.
    pub label_selector: Option<LabelSelector>,
}

/// How a watched object's change maps to reconcile keys (see `wit/reconciler.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMapping {
    /// Via `ownerReferences` to the reconciled kind.
    OwnerReferences,
    /// The reconciled object with the same namespace/name.
    SameName,
    /// Every reconciled object in the same namespace.
    Namespace,
    /// Every reconciled object.
    All,
    /// Reconciled objects whose index `index` holds the watched object's value at `field`.
    IndexLookup {
        /// Index declared on the reconciled kind.
        index: String,
        /// Path into the watched object.
        field: FieldPath,
    },
}

/// An extra watched kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The kind.
    pub kind: Kind,
    /// Only objects matching this selector, if set.
    pub label_selector: Option<LabelSelector>,
    /// The mapping to reconcile keys.
    pub mapping: WatchMapping,
}

/// A declared cache index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Name, unique in the plugin.
    pub name: String,
    /// The indexed kind.
    pub kind: Kind,
    /// The indexed field.
    pub field: FieldPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    kind: Kind,
    verbs: Verbs,
}

/// A plugin's validated manifest. Built once at load by [`Manifest::from_wit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The reconciled kind.
    pub reconciles: Reconciles,
    /// Owned kinds (mapped to owners through `ownerReferences`).
    pub owns: Vec<Kind>,
    /// Extra watches.
    pub watches: Vec<Watch>,
    /// Declared indexes.
    pub indexes: Vec<Index>,
    /// Maximum concurrent reconciles.
    pub concurrency: u32,
    grants: Vec<Grant>,
    /// What an operator's policy took away, when one narrowed this manifest.
    narrowing: Option<Arc<Narrowing>>,
}

/// The largest concurrency a plugin may ask for.
const MAX_CONCURRENCY: u32 = 1024;

impl Manifest {
    /// Validates a manifest as the plugin exported it.
    ///
    /// # Errors
    /// [`ManifestError`] listing every problem: empty or malformed kinds, conflicting
    /// versions of one kind, bad selectors or field paths, duplicate or dangling indexes,
    /// empty verb lists, concurrency outside 1..=1024.
    pub fn from_wit(m: wit::Manifest) -> Result<Self, ManifestError> {
        let mut problems = Vec::new();
        let kind = |k: wit_types::Kind, what: &str, problems: &mut Vec<String>| {
            check_kind(&k, what, problems);
            Kind::from_wit(k)
        };
        let selector = |s: Option<String>, what: &str, problems: &mut Vec<String>| {
            s.and_then(|s| {
                LabelSelector::parse(&s)
                    .map_err(|e| problems.push(format!("{what}: {e}")))
                    .ok()
            })
        };

        let rk = kind(m.reconciles.kind, "reconciles", &mut problems);
        if m.reconciles.namespace.as_deref() == Some("") {
            problems.push("reconciles: namespace is empty (omit it for every namespace)".into());
        }
        if m.reconciles.namespace.is_some() && !rk.namespaced {
            problems.push(format!(
                "reconciles: {} is cluster-scoped but a namespace is set",
                rk.kind
            ));
        }
        let reconciles = Reconciles {
            label_selector: selector(m.reconciles.label_selector, "reconciles", &mut problems),
            namespace: m.reconciles.namespace,
            kind: rk,
        };
        let owns: Vec<Kind> = m
            .owns
            .into_iter()
            .map(|k| kind(k, "owns", &mut problems))
            .collect();
        let mut watches = Vec::new();
        for w in m.watches {
            let wk = kind(w.kind, "watches", &mut problems);
            let label_selector = selector(w.label_selector, "watches", &mut problems);
            let mapping = match w.mapping {
                wit::WatchMapping::OwnerReferences => WatchMapping::OwnerReferences,
                wit::WatchMapping::SameName => WatchMapping::SameName,
                wit::WatchMapping::Namespace => WatchMapping::Namespace,
                wit::WatchMapping::All => WatchMapping::All,
                wit::WatchMapping::IndexLookup(l) => match FieldPath::parse(&l.field) {
                    Ok(field) => WatchMapping::IndexLookup {
                        index: l.index,
                        field,
                    },
                    Err(e) => {
                        problems.push(format!("watches {}: {e}", wk.kind));
                        continue;
                    }
                },
            };
            watches.push(Watch {
                kind: wk,
                label_selector,
                mapping,
            });
        }

        // Grants: reconciled/owned/watched kinds are readable; permissions add verbs.
        let mut grants: Vec<Grant> = Vec::new();
        let mut grant = |k: &Kind, verbs: Verbs, problems: &mut Vec<String>| match grants
            .iter_mut()
            .find(|g| g.kind.is(&k.group, &k.kind))
        {
            Some(g) => {
                if g.kind.version != k.version {
                    problems.push(format!(
                        "{} is declared with versions {} and {}",
                        k.kind, g.kind.version, k.version
                    ));
                }
                g.verbs.0 |= verbs.0;
            }
            None => grants.push(Grant {
                kind: k.clone(),
                verbs,
            }),
        };
        grant(&reconciles.kind, Verbs::READ, &mut problems);
        for k in &owns {
            grant(k, Verbs::READ, &mut problems);
        }
        for w in &watches {
            grant(&w.kind, Verbs::READ, &mut problems);
        }
        for p in m.permissions {
            let pk = kind(p.kind, "permissions", &mut problems);
            if p.verbs.is_empty() {
                problems.push(format!("permissions: no verbs for {}", pk.kind));
            }
            let mut verbs = Verbs::default();
            for v in p.verbs {
                verbs.insert(v.into());
            }
            grant(&pk, verbs, &mut problems);
        }

        let mut indexes: Vec<Index> = Vec::new();
        for i in m.indexes {
            let ik = kind(i.kind, "indexes", &mut problems);
            if i.name.is_empty() {
                problems.push("indexes: empty index name".into());
            }
            if indexes.iter().any(|x| x.name == i.name) {
                problems.push(format!("indexes: {:?} is declared twice", i.name));
            }
            let listable = grants
                .iter()
                .any(|g| g.kind.is(&ik.group, &ik.kind) && g.verbs.contains(Verb::List));
            if !listable {
                problems.push(format!(
                    "indexes: {:?} is on {}, which the manifest neither reconciles, owns, watches nor may list",
                    i.name, ik.kind
                ));
            }
            match FieldPath::parse(&i.field) {
                Ok(field) => indexes.push(Index {
                    name: i.name,
                    kind: ik,
                    field,
                }),
                Err(e) => problems.push(format!("indexes {:?}: {e}", i.name)),
            }
        }
        for w in &watches {
            if let WatchMapping::IndexLookup { index, .. } = &w.mapping {
                let ok = indexes.iter().any(|i| {
                    &i.name == index && i.kind.is(&reconciles.kind.group, &reconciles.kind.kind)
                });
                if !ok {
                    problems.push(format!(
                        "watches {}: index {index:?} is not declared on the reconciled kind {}",
                        w.kind.kind, reconciles.kind.kind
                    ));
                }
            }
        }
        if m.concurrency == 0 || m.concurrency > MAX_CONCURRENCY {
            problems.push(format!(
                "concurrency must be 1..={MAX_CONCURRENCY}, not {}",
                m.concurrency
            ));
        }
        if !problems.is_empty() {
            return Err(ManifestError { problems });
        }
        Ok(Self {
            reconciles,
            owns,
            watches,
            indexes,
            concurrency: m.concurrency,
            grants,
            narrowing: None,
        })
    }

    /// Checks that `verb` is granted on the kind `group`/`kind` and returns the declared kind
    /// (with its resolved plural) for the backend call.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the kind and verb.
    pub fn check(&self, kind: &wit_types::Kind, verb: Verb) -> Result<&Kind, ApiError> {
        match self
            .grants
            .iter()
            .find(|g| g.kind.is(&kind.group, &kind.kind))
        {
            Some(g) if g.verbs.contains(verb) => Ok(&g.kind),
            _ if self.narrowing.is_some() => Err(self
                .removed_by_policy(kind, Some(verb))
                .unwrap_or_else(|| self.not_granted(kind, verb))),
            _ => Err(self.not_granted(kind, verb)),
        }
    }

    /// `forbidden` for a kind or verb the manifest itself does not grant.
    #[cold]
    fn not_granted(&self, kind: &wit_types::Kind, verb: Verb) -> ApiError {
        match self
            .grants
            .iter()
            .find(|g| g.kind.is(&kind.group, &kind.kind))
        {
            Some(g) => ApiError::Forbidden(format!(
                "the manifest does not grant {} on {} (granted: {})",
                verb.as_str(),
                g.kind,
                g.verbs
            )),
            None => ApiError::Forbidden(format!(
                "the manifest does not declare kind {}{}{} (needed for {})",
                kind.kind,
                if kind.group.is_empty() { "" } else { "." },
                kind.group,
                verb.as_str()
            )),
        }
    }

    /// The declared kind `group`/`kind` with any verb, for events about objects.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] when the manifest does not mention the kind.
    pub fn declared(&self, kind: &wit_types::Kind) -> Result<&Kind, ApiError> {
        self.grants
            .iter()
            .find(|g| g.kind.is(&kind.group, &kind.kind))
            .map(|g| &g.kind)
            .ok_or_else(|| {
                self.removed_by_policy(kind, None).unwrap_or_else(|| {
                    ApiError::Forbidden(format!("the manifest does not declare kind {}", kind.kind))
                })
            })
    }

    /// The verbs granted on `kind`, if it is declared.
    pub fn verbs(&self, group: &str, kind: &str) -> Option<Verbs> {
        self.grants
            .iter()
            .find(|g| g.kind.is(group, kind))
            .map(|g| g.verbs)
    }

    /// Every declared kind with its verbs (what the host must cache and may write).
    pub fn grants(&self) -> impl Iterator<Item = (&Kind, Verbs)> {
        self.grants.iter().map(|g| (&g.kind, g.verbs))
    }

    /// The index `name` declared on `kind`.
    pub fn index(&self, kind: &Kind, name: &str) -> Option<&Index> {
        self.indexes
            .iter()
            .find(|i| i.name == name && i.kind.is(&kind.group, &kind.kind))
    }
}

fn check_kind(k: &wit_types::Kind, what: &str, problems: &mut Vec<String>) {
    if k.kind.is_empty() {
        problems.push(format!("{what}: empty kind"));
    } else if !k.kind.starts_with(|c: char| c.is_ascii_uppercase())
        || !k.kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        problems.push(format!("{what}: kind {:?} is not CamelCase", k.kind));
    }
    if k.version.is_empty() {
        problems.push(format!("{what}: {:?} has an empty version", k.kind));
    }
    let dns = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if !dns(&k.group) {
        problems.push(format!("{what}: group {:?} is not a DNS name", k.group));
    }
    if let Some(p) = &k.plural
        && (p.is_empty() || !dns(p))
    {
        problems.push(format!(
            "{what}: plural {p:?} of {:?} is not lowercase",
            k.kind
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn kind(group: &str, k: &str) -> wit_types::Kind {
        wit_types::Kind {
            group: group.into(),
            version: "v1".into(),
            kind: k.into(),
            plural: None,
            namespaced: true,
        }
    }

    pub(super) fn manifest(k: wit_types::Kind) -> wit::Manifest {
        wit::Manifest {
            reconciles: wit::Reconciles {
                kind: k,
                namespace: None,
                label_selector: None,
            },
            owns: vec![],
            watches: vec![],
            indexes: vec![],
            permissions: vec![],
            concurrency: 1,
        }
    }

    #[test]
    fn plurals_are_guessed_by_the_documented_rule() {
        for (k, p) in [
            ("Pod", "pods"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("Box", "boxes"),
            ("Mesh", "meshes"),
        ] {
            assert_eq!(guess_plural(k), p);
        }
    }

    #[test]
    fn reconciled_kinds_are_readable_but_not_writable_without_permissions() {
        let m = Manifest::from_wit(manifest(kind("", "ConfigMap"))).unwrap();
        assert!(m.check(&kind("", "ConfigMap"), Verb::Get).is_ok());
        assert!(m.check(&kind("", "ConfigMap"), Verb::List).is_ok());
        let e = m.check(&kind("", "ConfigMap"), Verb::Patch).unwrap_err();
        assert!(
            matches!(&e, ApiError::Forbidden(m) if m.contains("patch") && m.contains("configmaps")),
            "{e}"
        );
        let e = m.check(&kind("", "Secret"), Verb::Get).unwrap_err();
        assert!(
            matches!(&e, ApiError::Forbidden(m) if m.contains("Secret")),
            "{e}"
        );
    }

    #[test]
    fn permissions_add_verbs_to_a_kind() {
        let mut w = manifest(kind("", "ConfigMap"));
        w.permissions.push(wit::Permission {
            kind: kind("apps", "Deployment"),
            verbs: vec![wit::Verb::Patch],
        });
        let m = Manifest::from_wit(w).unwrap();
        let k = m.check(&kind("apps", "Deployment"), Verb::Patch).unwrap();
        assert_eq!(k.plural, "deployments");
        assert!(m.check(&kind("apps", "Deployment"), Verb::Delete).is_err());
    }

    #[test]
    fn every_problem_of_a_nonsense_manifest_is_reported() {
        let mut w = manifest(kind("", ""));
        w.concurrency = 0;
        w.indexes.push(wit::Index {
            name: "by-zone".into(),
            kind: kind("", "Node"),
            field: "metadata.labels.zone".into(),
        });
        w.permissions.push(wit::Permission {
            kind: kind("", "Secret"),
            verbs: vec![],
        });
        w.reconciles.label_selector = Some("a in (".into());
        let e = Manifest::from_wit(w).unwrap_err();
        let text = e.to_string();
        for needle in [
            "empty kind",
            "concurrency",
            "by-zone",
            "no verbs",
            "label selector",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn an_index_lookup_watch_needs_an_index_on_the_reconciled_kind() {
        let mut w = manifest(kind("", "Pod"));
        w.watches.push(wit::Watch {
            kind: wit_types::Kind {
                namespaced: false,
                ..kind("", "Node")
            },
            label_selector: None,
            mapping: wit::WatchMapping::IndexLookup(wit::IndexLookup {
                index: "by-node".into(),
                field: "metadata.name".into(),
            }),
        });
        let e = Manifest::from_wit(w.clone()).unwrap_err();
        assert!(
            e.to_string().contains("index \"by-node\" is not declared"),
            "{e}"
        );
        w.indexes.push(wit::Index {
            name: "by-node".into(),
            kind: kind("", "Pod"),
            field: "spec.nodeName".into(),
        });
        let m = Manifest::from_wit(w).unwrap();
        assert!(m.index(&m.reconciles.kind, "by-node").is_some());
        assert!(
            m.check(&kind("", "Node"), Verb::List).is_ok(),
            "watched kinds are readable"
        );
    }

    #[test]
    fn two_versions_of_one_kind_are_rejected() {
        let mut w = manifest(kind("", "ConfigMap"));
        let mut v2 = kind("", "ConfigMap");
        v2.version = "v2".into();
        w.owns.push(v2);
        assert!(
            Manifest::from_wit(w)
                .unwrap_err()
                .to_string()
                .contains("versions")
        );
    }
}
