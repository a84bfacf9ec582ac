//! [`Manifest`]: a plugin's validated declaration of the kinds it reconciles, owns and watches,
//! its indexes and the verbs it may use, and the permission check every call runs. The host
//! builds it from the manifest a component exports ([`Declaration`] is the WIT manifest as plain
//! data); the SDK's fake host builds it from the same builder a plugin uses, so both accept and
//! refuse the same manifests and calls.

mod custom_resources;
mod narrowing;

use std::fmt;
use std::sync::Arc;

pub use custom_resources::custom_resources;
use narrowing::Narrowing;
pub use narrowing::{Allowance, Denied};

use crate::field_path::FieldPath;
use crate::selector::LabelSelector;

/// Everything wrong with a manifest, so the author can fix it in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// One entry per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid manifest: {}", self.problems.join("; "))
    }
}

impl std::error::Error for ManifestError {}

/// A kind as a manifest declares it (the WIT `kind` record).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindRef {
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind name, e.g. `Pod`.
    pub kind: String,
    /// URL plural, when declared (guessed otherwise).
    pub plural: Option<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

/// How a watched kind maps to reconcile keys, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingRef {
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
        /// The index, declared on the reconciled kind.
        index: String,
        /// The path in the watched object, unparsed.
        field: String,
    },
}

/// A plugin's manifest as declared, before validation (the WIT `manifest` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The reconciled kind.
    pub reconciles: KindRef,
    /// Only this namespace, if set.
    pub namespace: Option<String>,
    /// Only objects matching this selector, if set (unparsed).
    pub label_selector: Option<String>,
    /// Owned kinds.
    pub owns: Vec<KindRef>,
    /// Watched kinds: the kind, a label selector (unparsed) and the mapping.
    pub watches: Vec<(KindRef, Option<String>, MappingRef)>,
    /// Indexes: name, kind, field path (unparsed).
    pub indexes: Vec<(String, KindRef, String)>,
    /// Extra verbs per kind.
    pub permissions: Vec<(KindRef, Vec<Verb>)>,
    /// Maximum concurrent reconciles.
    pub concurrency: u32,
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

    /// `Kind` or `Kind.group`, as a policy and error messages name kinds.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn from_ref(k: KindRef) -> Self {
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
    /// The resource as RBAC names it: `pods`, `deployments.apps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// The plural used when a kind declares none: lowercase, then `-y` after a consonant becomes
/// `-ies`, a trailing `s`, `x`, `z`, `ch` or `sh` gets `-es`, else `-s`.
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

    /// Every verb, in Kubernetes' usual order.
    pub const ALL: [Verb; 7] = [
        Self::Get,
        Self::List,
        Self::Watch,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
    ];
}

/// A set of verbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verbs(u8);

impl Verbs {
    /// `get`, `list` and `watch`: what a cached kind needs.
    pub const READ: Self =
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

    /// The verbs in either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
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

impl FromIterator<Verb> for Verbs {
    fn from_iter<I: IntoIterator<Item = Verb>>(iter: I) -> Self {
        let mut v = Self::default();
        for verb in iter {
            v.insert(verb);
        }
        v
    }
}

impl fmt::Display for Verbs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Verb::as_str).collect();
        f.write_str(&names.join(", "))
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

/// A plugin's validated manifest, built by [`Manifest::validate`] and possibly narrowed by an
/// operator's policy ([`Manifest::narrow`]).
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
pub const MAX_CONCURRENCY: u32 = 1024;

impl Manifest {
    /// Validates a manifest as the plugin declared it.
    ///
    /// # Errors
    /// [`ManifestError`] listing every problem: empty or malformed kinds, conflicting
    /// versions of one kind, bad selectors or field paths, duplicate or dangling indexes,
    /// empty verb lists, concurrency outside 1..=1024.
    pub fn validate(m: Declaration) -> Result<Self, ManifestError> {
        let mut problems = Vec::new();
        let kind = |k: KindRef, what: &str, problems: &mut Vec<String>| {
            check_kind(&k, what, problems);
            Kind::from_ref(k)
        };
        let selector = |s: Option<String>, what: &str, problems: &mut Vec<String>| {
            s.and_then(|s| {
                LabelSelector::parse(&s)
                    .map_err(|e| problems.push(format!("{what}: {e}")))
                    .ok()
            })
        };

        let rk = kind(m.reconciles, "reconciles", &mut problems);
        if m.namespace.as_deref() == Some("") {
            problems.push("reconciles: namespace is empty (omit it for every namespace)".into());
        }
        if m.namespace.is_some() && !rk.namespaced {
            problems.push(format!(
                "reconciles: {} is cluster-scoped but a namespace is set",
                rk.kind
            ));
        }
        let reconciles = Reconciles {
            label_selector: selector(m.label_selector, "reconciles", &mut problems),
            namespace: m.namespace,
            kind: rk,
        };
        let owns: Vec<Kind> = m
            .owns
            .into_iter()
            .map(|k| kind(k, "owns", &mut problems))
            .collect();
        let mut watches = Vec::new();
        for (k, label_selector, mapping) in m.watches {
            let wk = kind(k, "watches", &mut problems);
            let label_selector = selector(label_selector, "watches", &mut problems);
            let mapping = match mapping {
                MappingRef::OwnerReferences => WatchMapping::OwnerReferences,
                MappingRef::SameName => WatchMapping::SameName,
                MappingRef::Namespace => WatchMapping::Namespace,
                MappingRef::All => WatchMapping::All,
                MappingRef::IndexLookup { index, field } => match FieldPath::parse(&field) {
                    Ok(field) => WatchMapping::IndexLookup { index, field },
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
                g.verbs = g.verbs.union(verbs);
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
        for (k, verbs) in m.permissions {
            let pk = kind(k, "permissions", &mut problems);
            if verbs.is_empty() {
                problems.push(format!("permissions: no verbs for {}", pk.kind));
            }
            grant(&pk, verbs.into_iter().collect(), &mut problems);
        }

        let mut indexes: Vec<Index> = Vec::new();
        for (name, k, field) in m.indexes {
            let ik = kind(k, "indexes", &mut problems);
            if name.is_empty() {
                problems.push("indexes: empty index name".into());
            }
            if indexes.iter().any(|x| x.name == name) {
                problems.push(format!("indexes: {name:?} is declared twice"));
            }
            let listable = grants
                .iter()
                .any(|g| g.kind.is(&ik.group, &ik.kind) && g.verbs.contains(Verb::List));
            if !listable {
                problems.push(format!(
                    "indexes: {name:?} is on {}, which the manifest neither reconciles, owns, watches nor may list",
                    ik.kind
                ));
            }
            match FieldPath::parse(&field) {
                Ok(field) => indexes.push(Index {
                    name,
                    kind: ik,
                    field,
                }),
                Err(e) => problems.push(format!("indexes {name:?}: {e}")),
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
    /// (with its resolved plural) for the call.
    ///
    /// # Errors
    /// [`Denied`] naming the kind and verb (and the policy, when a policy took it away).
    pub fn check(&self, group: &str, kind: &str, verb: Verb) -> Result<&Kind, Denied> {
        match self.grants.iter().find(|g| g.kind.is(group, kind)) {
            Some(g) if g.verbs.contains(verb) => Ok(&g.kind),
            _ => Err(self
                .removed_by_policy(group, kind, Some(verb))
                .unwrap_or_else(|| self.not_granted(group, kind, verb))),
        }
    }

    /// `forbidden` for a kind or verb the manifest itself does not grant.
    #[cold]
    fn not_granted(&self, group: &str, kind: &str, verb: Verb) -> Denied {
        Denied::Manifest(match self.grants.iter().find(|g| g.kind.is(group, kind)) {
            Some(g) => format!(
                "the manifest does not grant {} on {} (granted: {})",
                verb.as_str(),
                g.kind,
                g.verbs
            ),
            None => format!(
                "the manifest does not declare kind {}{}{group} (needed for {})",
                kind,
                if group.is_empty() { "" } else { "." },
                verb.as_str()
            ),
        })
    }

    /// The declared kind `group`/`kind` with any verb, for events about objects.
    ///
    /// # Errors
    /// [`Denied`] when the manifest does not mention the kind.
    pub fn declared(&self, group: &str, kind: &str) -> Result<&Kind, Denied> {
        self.grants
            .iter()
            .find(|g| g.kind.is(group, kind))
            .map(|g| &g.kind)
            .ok_or_else(|| {
                self.removed_by_policy(group, kind, None)
                    .unwrap_or_else(|| {
                        Denied::Manifest(format!("the manifest does not declare kind {kind}"))
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

fn check_kind(k: &KindRef, what: &str, problems: &mut Vec<String>) {
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn kind(group: &str, k: &str) -> KindRef {
        KindRef {
            group: group.into(),
            version: "v1".into(),
            kind: k.into(),
            plural: None,
            namespaced: true,
        }
    }

    pub(crate) fn manifest(k: KindRef) -> Declaration {
        Declaration {
            reconciles: k,
            namespace: None,
            label_selector: None,
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
        let m = Manifest::validate(manifest(kind("", "ConfigMap"))).unwrap();
        assert!(m.check("", "ConfigMap", Verb::Get).is_ok());
        assert!(m.check("", "ConfigMap", Verb::List).is_ok());
        let e = m.check("", "ConfigMap", Verb::Patch).unwrap_err();
        assert!(
            e.message().contains("patch") && e.message().contains("configmaps"),
            "{e}"
        );
        let e = m.check("", "Secret", Verb::Get).unwrap_err();
        assert!(e.message().contains("Secret"), "{e}");
    }

    #[test]
    fn permissions_add_verbs_to_a_kind() {
        let mut w = manifest(kind("", "ConfigMap"));
        w.permissions
            .push((kind("apps", "Deployment"), vec![Verb::Patch]));
        let m = Manifest::validate(w).unwrap();
        let k = m.check("apps", "Deployment", Verb::Patch).unwrap();
        assert_eq!(k.plural, "deployments");
        assert!(m.check("apps", "Deployment", Verb::Delete).is_err());
    }

    #[test]
    fn every_problem_of_a_nonsense_manifest_is_reported() {
        let mut w = manifest(kind("", ""));
        w.concurrency = 0;
        w.indexes.push((
            "by-zone".into(),
            kind("", "Node"),
            "metadata.labels.zone".into(),
        ));
        w.permissions.push((kind("", "Secret"), vec![]));
        w.label_selector = Some("a in (".into());
        let e = Manifest::validate(w).unwrap_err();
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
        w.watches.push((
            KindRef {
                namespaced: false,
                ..kind("", "Node")
            },
            None,
            MappingRef::IndexLookup {
                index: "by-node".into(),
                field: "metadata.name".into(),
            },
        ));
        let e = Manifest::validate(w.clone()).unwrap_err();
        assert!(
            e.to_string().contains("index \"by-node\" is not declared"),
            "{e}"
        );
        w.indexes
            .push(("by-node".into(), kind("", "Pod"), "spec.nodeName".into()));
        let m = Manifest::validate(w).unwrap();
        assert!(m.index(&m.reconciles.kind, "by-node").is_some());
        assert!(
            m.check("", "Node", Verb::List).is_ok(),
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
            Manifest::validate(w)
                .unwrap_err()
                .to_string()
                .contains("versions")
        );
    }
}
