//! [`Manifest`]: a plugin's validated declaration of kinds, watches, indexes and verbs, and
//! the permission check every import runs.

use std::fmt;
use std::sync::Arc;

use super::api_error::ApiError;
use super::bindings::exports::kubewasm::controller::reconciler as wit;
use super::bindings::kubewasm::controller::types as wit_types;
use kubewasm_controller::{FieldPath, LabelSelector};

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

/// How a policy narrowed a manifest: kept for the namespace checks and for `forbidden` messages
/// that name the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Narrowing {
    plugin: String,
    policy: String,
    /// Where namespaced kinds may be read and written (sorted); `None` means every namespace.
    namespaces: Option<Vec<String>>,
    /// Verbs the policy removed, per kind.
    removed: Vec<Grant>,
}

impl Narrowing {
    fn forbidden_namespace(&self, verb: &str, kind: &Kind, namespace: Option<&str>) -> ApiError {
        let place = namespace.map_or_else(
            || "across all namespaces".to_owned(),
            |ns| format!("in namespace {ns}"),
        );
        self.denied(format!(
            "the policy {} does not allow plugin {} to {verb} {kind} {place} (allowed namespaces: {})",
            self.policy,
            self.plugin,
            self.namespaces.as_deref().unwrap_or_default().join(", ")
        ))
    }

    /// Logs a denial (the operator sees what a plugin tried) and makes it the plugin's error.
    #[cold]
    fn denied(&self, message: String) -> ApiError {
        tracing::warn!(
            target: "kubewasm::policy",
            plugin = %self.plugin,
            policy = %self.policy,
            "denied by the policy: {message}"
        );
        ApiError::Forbidden(message)
    }

    fn allows(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|ns| ns.iter().any(|n| n == namespace))
    }

    /// `forbidden` naming the policy, when it removed `verb` on `group`/`kind`.
    fn removed(&self, group: &str, kind: &str, verb: Option<Verb>) -> Option<ApiError> {
        let g = self
            .removed
            .iter()
            .find(|g| g.kind.is(group, kind) && verb.is_none_or(|v| g.verbs.contains(v)))?;
        Some(self.denied(format!(
            "the policy {} does not allow plugin {} to {} {} (its manifest asks for it; the policy removed: {})",
            self.policy,
            self.plugin,
            verb.map_or("use", Verb::as_str),
            kind_name(&g.kind),
            g.verbs
        )))
    }
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

    /// This manifest intersected with an operator's `allowance` (see [`crate::policy`]); never
    /// wider than before. Returns the narrowed manifest and a description of each thing dropped.
    ///
    /// - A kind the allowance does not list loses every verb (and its owns, watches, indexes).
    /// - A kind with a verb limit keeps only the verbs in both; an owned or watched kind left
    ///   without `watch` is no longer owned/watched, an indexed kind left without `list` loses
    ///   its indexes.
    /// - With namespaces narrowed, cluster-scoped kinds keep only their reads unless the
    ///   allowance lists them by name; namespaced kinds are checked per call by
    ///   [`Manifest::check_namespace`], and a reconciled kind narrowed to one namespace is
    ///   watched only there.
    ///
    /// # Errors
    /// Why the plugin cannot run at all: its reconciled kind is not allowed or loses a read verb,
    /// or it reconciles in a namespace the allowance does not allow.
    pub fn narrow(
        mut self,
        plugin: &str,
        policy: &str,
        allowance: &crate::policy::Allowance,
    ) -> Result<(Self, Vec<String>), String> {
        let name = kind_name;
        let primary = self.reconciles.kind.clone();
        if !allowance.allows_kind(&primary.group, &primary.kind) {
            return Err(format!(
                "it reconciles {}, which the policy's kinds do not list",
                name(&primary)
            ));
        }
        if let (Some(ns), Some(allowed)) = (&self.reconciles.namespace, &allowance.namespaces)
            && !allowed.contains(ns)
        {
            return Err(format!(
                "it reconciles {} in namespace {ns}, which is not among the allowed namespaces ({})",
                name(&primary),
                allowed.join(", ")
            ));
        }
        let mut dropped = Vec::new();
        let mut removed = Vec::new();
        for g in &mut self.grants {
            let (group, kind) = (g.kind.group.as_str(), g.kind.kind.as_str());
            let mut keep = if allowance.allows_kind(group, kind) {
                g.verbs
            } else {
                Verbs::default()
            };
            if let Some(limit) = allowance.verb_limit(group, kind) {
                keep = keep.intersection(limit);
            }
            if allowance.namespaces.is_some() && !g.kind.namespaced && !allowance.lists(group, kind)
            {
                keep = keep.intersection(Verbs::READ);
            }
            let gone = g.verbs.difference(keep);
            if !gone.is_empty() {
                dropped.push(format!("{gone} on {}", name(&g.kind)));
                removed.push(Grant {
                    kind: g.kind.clone(),
                    verbs: gone,
                });
            }
            g.verbs = keep;
        }
        let reads = self
            .verbs(&primary.group, &primary.kind)
            .unwrap_or_default();
        if reads.intersection(Verbs::READ) != Verbs::READ {
            return Err(format!(
                "the policy leaves it without get, list and watch on its reconciled kind {}",
                name(&primary)
            ));
        }
        self.grants.retain(|g| !g.verbs.is_empty());
        let has = |grants: &[Grant], k: &Kind, v: Verb| {
            grants
                .iter()
                .any(|g| g.kind.is(&k.group, &k.kind) && g.verbs.contains(v))
        };
        let grants = &self.grants;
        self.owns.retain(|k| {
            let keep = has(grants, k, Verb::Watch);
            if !keep {
                dropped.push(format!("owns {}", name(k)));
            }
            keep
        });
        self.watches.retain(|w| {
            let keep = has(grants, &w.kind, Verb::Watch);
            if !keep {
                dropped.push(format!("watches {}", name(&w.kind)));
            }
            keep
        });
        self.indexes.retain(|i| {
            let keep = has(grants, &i.kind, Verb::List);
            if !keep {
                dropped.push(format!("index {:?} on {}", i.name, name(&i.kind)));
            }
            keep
        });
        if let Some(allowed) = &allowance.namespaces
            && let [only] = allowed.as_slice()
            && primary.namespaced
            && self.reconciles.namespace.is_none()
        {
            self.reconciles.namespace = Some(only.clone());
        }
        self.narrowing = Some(Arc::new(Narrowing {
            plugin: plugin.to_owned(),
            policy: policy.to_owned(),
            namespaces: allowance.namespaces.clone(),
            removed,
        }));
        Ok((self, dropped))
    }

    /// The namespaces a policy limits namespaced kinds to (sorted), if one does.
    pub fn allowed_namespaces(&self) -> Option<&[String]> {
        self.narrowing.as_ref()?.namespaces.as_deref()
    }

    /// The policy that narrowed this manifest (its file name), if one did.
    pub fn policy(&self) -> Option<&str> {
        self.narrowing.as_ref().map(|n| n.policy.as_str())
    }

    /// Checks a call's namespace against the policy: a namespaced `kind` may only be used in an
    /// allowed namespace (`None`, "every namespace", is not allowed then). Free when no policy
    /// narrows namespaces.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the policy, the plugin, the verb and the namespace.
    #[inline]
    pub fn check_namespace(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        verb: Verb,
    ) -> Result<(), ApiError> {
        match &self.narrowing {
            Some(n) if n.namespaces.is_some() && kind.namespaced => match namespace {
                Some(ns) if n.allows(ns) => Ok(()),
                _ => Err(n.forbidden_namespace(verb.as_str(), kind, namespace)),
            },
            _ => Ok(()),
        }
    }

    /// The namespaces a read of `kind` across all namespaces is limited to, when a policy
    /// narrows them and `kind` is namespaced.
    #[inline]
    pub fn read_namespaces(&self, kind: &Kind) -> Option<&[String]> {
        match &self.narrowing {
            Some(n) if kind.namespaced => n.namespaces.as_deref(),
            _ => None,
        }
    }

    /// Checks the namespace an Event is written to (the object's, or `default` for a
    /// cluster-scoped object) against the policy.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the policy.
    pub fn check_event_namespace(&self, kind: &Kind, namespace: &str) -> Result<(), ApiError> {
        match &self.narrowing {
            Some(n) if !n.allows(namespace) => {
                Err(n.forbidden_namespace("record events about", kind, Some(namespace)))
            }
            _ => Ok(()),
        }
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

    /// `forbidden` naming the policy when it (not the manifest) took `verb` away on `kind`.
    #[cold]
    fn removed_by_policy(&self, kind: &wit_types::Kind, verb: Option<Verb>) -> Option<ApiError> {
        self.narrowing
            .as_ref()?
            .removed(&kind.group, &kind.kind, verb)
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

/// `Kind` or `Kind.group`, as a policy names kinds.
fn kind_name(k: &Kind) -> String {
    if k.group.is_empty() {
        k.kind.clone()
    } else {
        format!("{}.{}", k.kind, k.group)
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

    fn kind(group: &str, k: &str) -> wit_types::Kind {
        wit_types::Kind {
            group: group.into(),
            version: "v1".into(),
            kind: k.into(),
            plural: None,
            namespaced: true,
        }
    }

    fn manifest(k: wit_types::Kind) -> wit::Manifest {
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

    fn allowance(yaml: &str) -> crate::policy::Allowance {
        crate::policy::Policy::parse(yaml, "policy.yaml")
            .unwrap()
            .allowance("p")
            .clone()
    }

    /// Reconciles ConfigMaps, owns Secrets, may create/patch/delete ConfigMaps and create
    /// Namespaces (cluster-scoped), indexes Secrets.
    fn writer() -> Manifest {
        let mut w = manifest(kind("", "ConfigMap"));
        w.owns.push(kind("", "Secret"));
        w.indexes.push(wit::Index {
            name: "by-type".into(),
            kind: kind("", "Secret"),
            field: "type".into(),
        });
        w.permissions.push(wit::Permission {
            kind: kind("", "ConfigMap"),
            verbs: vec![wit::Verb::Create, wit::Verb::Patch, wit::Verb::Delete],
        });
        w.permissions.push(wit::Permission {
            kind: wit_types::Kind {
                namespaced: false,
                ..kind("", "Namespace")
            },
            verbs: vec![wit::Verb::Create],
        });
        Manifest::from_wit(w).unwrap()
    }

    fn forbidden_naming_the_policy(r: Result<impl fmt::Debug, ApiError>, needle: &str) {
        match r {
            Err(ApiError::Forbidden(m)) => {
                assert!(m.contains("policy.yaml") && m.contains(needle), "{m}");
            }
            other => panic!("expected forbidden ({needle}), got {other:?}"),
        }
    }

    #[test]
    fn a_policy_drops_unlisted_kinds_with_their_owns_and_indexes() {
        let a = allowance("plugins: {p: {kinds: [ConfigMap]}}");
        let (m, dropped) = writer().narrow("p", "policy.yaml", &a).unwrap();
        assert!(m.owns.is_empty() && m.indexes.is_empty());
        assert!(m.verbs("", "Secret").is_none());
        assert!(m.check(&kind("", "ConfigMap"), Verb::Patch).is_ok());
        let text = dropped.join("; ");
        for needle in [
            "on Secret",
            "owns Secret",
            "index \"by-type\"",
            "on Namespace",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        forbidden_naming_the_policy(m.check(&kind("", "Secret"), Verb::Get), "Secret");
        forbidden_naming_the_policy(m.declared(&kind("", "Secret")), "Secret");
        let e = m.check(&kind("", "Pod"), Verb::Get).unwrap_err();
        assert!(e.to_string().contains("manifest does not declare"), "{e}");
    }

    #[test]
    fn a_verb_limit_keeps_only_verbs_in_both_and_never_widens() {
        let a = allowance("plugins: {p: {verbs: {ConfigMap: [get, list, watch, patch, update]}}}");
        let (m, _) = writer().narrow("p", "policy.yaml", &a).unwrap();
        assert!(m.check(&kind("", "ConfigMap"), Verb::Patch).is_ok());
        forbidden_naming_the_policy(m.check(&kind("", "ConfigMap"), Verb::Create), "create");
        let e = m.check(&kind("", "ConfigMap"), Verb::Update).unwrap_err();
        assert!(
            e.to_string().contains("the manifest does not grant update"),
            "update was never asked for, so the manifest (not the policy) refuses it: {e}"
        );
    }

    #[test]
    fn narrowed_namespaces_make_cluster_scoped_kinds_read_only_unless_listed() {
        let namespace = wit_types::Kind {
            namespaced: false,
            ..kind("", "Namespace")
        };
        let (m, _) = writer()
            .narrow(
                "p",
                "policy.yaml",
                &allowance("default: {namespaces: [apps]}"),
            )
            .unwrap();
        forbidden_naming_the_policy(m.check(&namespace, Verb::Create), "create");
        let listed =
            allowance("default: {namespaces: [apps], kinds: [ConfigMap, Secret, Namespace]}");
        let (m, _) = writer().narrow("p", "policy.yaml", &listed).unwrap();
        assert!(m.check(&namespace, Verb::Create).is_ok());
    }

    #[test]
    fn narrowed_namespaces_forbid_namespaced_calls_elsewhere_naming_the_policy() {
        let (m, _) = writer()
            .narrow(
                "p",
                "policy.yaml",
                &allowance("default: {namespaces: [apps, staging]}"),
            )
            .unwrap();
        let cm = m
            .check(&kind("", "ConfigMap"), Verb::Create)
            .unwrap()
            .clone();
        assert!(m.check_namespace(&cm, Some("apps"), Verb::Create).is_ok());
        assert!(
            m.check_namespace(&cm, Some("staging"), Verb::Delete)
                .is_ok()
        );
        forbidden_naming_the_policy(
            m.check_namespace(&cm, Some("other"), Verb::Create),
            "in namespace other",
        );
        forbidden_naming_the_policy(
            m.check_namespace(&cm, None, Verb::Get),
            "across all namespaces",
        );
        assert_eq!(
            m.read_namespaces(&cm),
            Some(&["apps".to_owned(), "staging".to_owned()][..])
        );
        assert!(m.check_event_namespace(&cm, "apps").is_ok());
        forbidden_naming_the_policy(m.check_event_namespace(&cm, "default"), "record events");
        assert_eq!(
            m.reconciles.namespace, None,
            "two namespaces: the informer sees all"
        );
        let unnarrowed = writer();
        assert!(
            unnarrowed
                .check_namespace(&cm, Some("other"), Verb::Create)
                .is_ok()
        );
        assert_eq!(unnarrowed.read_namespaces(&cm), None);
    }

    #[test]
    fn one_allowed_namespace_narrows_what_the_reconciled_kind_watches() {
        let (m, _) = writer()
            .narrow(
                "p",
                "policy.yaml",
                &allowance("default: {namespaces: [apps]}"),
            )
            .unwrap();
        assert_eq!(m.reconciles.namespace.as_deref(), Some("apps"));
        assert_eq!(m.allowed_namespaces(), Some(&["apps".to_owned()][..]));
        assert_eq!(m.policy(), Some("policy.yaml"));
    }

    #[test]
    fn a_plugin_whose_reconciled_kind_is_not_allowed_is_refused() {
        let e = writer()
            .narrow("p", "policy.yaml", &allowance("default: {kinds: [Secret]}"))
            .unwrap_err();
        assert!(e.contains("reconciles ConfigMap"), "{e}");
        let e = writer()
            .narrow(
                "p",
                "policy.yaml",
                &allowance("default: {verbs: {ConfigMap: [get]}}"),
            )
            .unwrap_err();
        assert!(e.contains("get, list and watch"), "{e}");
        let mut w = manifest(kind("", "ConfigMap"));
        w.reconciles.namespace = Some("other".into());
        let e = Manifest::from_wit(w)
            .unwrap()
            .narrow(
                "p",
                "policy.yaml",
                &allowance("default: {namespaces: [apps]}"),
            )
            .unwrap_err();
        assert!(e.contains("namespace other"), "{e}");
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
