//! Narrowing a [`Manifest`] by an operator's policy: the intersection made once at load, and
//! the cheap per-call namespace checks that use what it precomputed. What a policy file says is
//! parsed by the host; here it is an [`Allowance`].

use std::fmt;
use std::sync::Arc;

use super::{Grant, Kind, Manifest, Verb, Verbs};

/// What an operator's policy allows one plugin.
pub trait Allowance {
    /// True when the plugin may use `group`/`kind` at all.
    fn allows_kind(&self, group: &str, kind: &str) -> bool;
    /// True when the policy lists `group`/`kind` by name (not merely "every kind").
    fn lists(&self, group: &str, kind: &str) -> bool;
    /// The most verbs `group`/`kind` may keep, if the policy limits them.
    fn verb_limit(&self, group: &str, kind: &str) -> Option<Verbs>;
    /// Where namespaced kinds may be read and written (sorted); `None` means everywhere.
    fn namespaces(&self) -> Option<&[String]>;
}

/// Why a call is refused: the plugin's `forbidden` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The manifest does not declare the kind or grant the verb.
    Manifest(String),
    /// An operator's policy took it away (the host logs these: the operator sees what a plugin
    /// tried).
    Policy {
        /// The plugin.
        plugin: String,
        /// The policy (its file name).
        policy: String,
        /// The message, naming the policy.
        message: String,
    },
}

impl Denied {
    /// The message for the plugin.
    pub fn message(&self) -> &str {
        match self {
            Self::Manifest(m) | Self::Policy { message: m, .. } => m,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Denied {}

/// How a policy narrowed a manifest: kept for the namespace checks and for `forbidden` messages
/// that name the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Narrowing {
    plugin: String,
    policy: String,
    /// Where namespaced kinds may be read and written (sorted); `None` means every namespace.
    namespaces: Option<Vec<String>>,
    /// Verbs the policy removed, per kind.
    removed: Vec<Grant>,
}

impl Narrowing {
    fn forbidden_namespace(&self, verb: &str, kind: &Kind, namespace: Option<&str>) -> Denied {
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

    #[cold]
    fn denied(&self, message: String) -> Denied {
        Denied::Policy {
            plugin: self.plugin.clone(),
            policy: self.policy.clone(),
            message,
        }
    }

    fn allows(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|ns| ns.iter().any(|n| n == namespace))
    }

    /// `forbidden` naming the policy, when it removed `verb` on `group`/`kind`.
    fn removed(&self, group: &str, kind: &str, verb: Option<Verb>) -> Option<Denied> {
        let g = self
            .removed
            .iter()
            .find(|g| g.kind.is(group, kind) && verb.is_none_or(|v| g.verbs.contains(v)))?;
        Some(self.denied(format!(
            "the policy {} does not allow plugin {} to {} {} (its manifest asks for it; the policy removed: {})",
            self.policy,
            self.plugin,
            verb.map_or("use", Verb::as_str),
            g.kind.qualified(),
            g.verbs
        )))
    }
}

impl Manifest {
    /// This manifest intersected with an operator's `allowance`; never
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
        allowance: &impl Allowance,
    ) -> Result<(Self, Vec<String>), String> {
        let name = Kind::qualified;
        let primary = self.reconciles.kind.clone();
        if !allowance.allows_kind(&primary.group, &primary.kind) {
            return Err(format!(
                "it reconciles {}, which the policy's kinds do not list",
                name(&primary)
            ));
        }
        if let (Some(ns), Some(allowed)) = (&self.reconciles.namespace, allowance.namespaces())
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
            if allowance.namespaces().is_some()
                && !g.kind.namespaced
                && !allowance.lists(group, kind)
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
        if let Some(allowed) = allowance.namespaces()
            && let [only] = allowed
            && primary.namespaced
            && self.reconciles.namespace.is_none()
        {
            self.reconciles.namespace = Some(only.clone());
        }
        self.narrowing = Some(Arc::new(Narrowing {
            plugin: plugin.to_owned(),
            policy: policy.to_owned(),
            namespaces: allowance.namespaces().map(<[String]>::to_vec),
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
    /// [`Denied::Manifest`] naming the policy, the plugin, the verb and the namespace.
    #[inline]
    pub fn check_namespace(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        verb: Verb,
    ) -> Result<(), Denied> {
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
    /// [`Denied::Manifest`] naming the policy.
    pub fn check_event_namespace(&self, kind: &Kind, namespace: &str) -> Result<(), Denied> {
        match &self.narrowing {
            Some(n) if !n.allows(namespace) => {
                Err(n.forbidden_namespace("record events about", kind, Some(namespace)))
            }
            _ => Ok(()),
        }
    }

    /// `forbidden` naming the policy when it (not the manifest) took `verb` away on `kind`.
    #[cold]
    pub(super) fn removed_by_policy(
        &self,
        group: &str,
        kind: &str,
        verb: Option<Verb>,
    ) -> Option<Denied> {
        self.narrowing.as_ref()?.removed(group, kind, verb)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{kind, manifest};
    use super::super::{KindRef, MappingRef};
    use super::*;

    /// An allowance written out: listed kinds (`None` = all), verb limits, namespaces.
    struct Allow {
        kinds: Option<Vec<(&'static str, &'static str)>>,
        verbs: Vec<((&'static str, &'static str), Vec<Verb>)>,
        namespaces: Option<Vec<String>>,
    }

    impl Allow {
        fn all() -> Self {
            Self {
                kinds: None,
                verbs: Vec::new(),
                namespaces: None,
            }
        }
    }

    impl Allowance for Allow {
        fn allows_kind(&self, group: &str, kind: &str) -> bool {
            self.kinds.is_none() || self.lists(group, kind)
        }
        fn lists(&self, group: &str, kind: &str) -> bool {
            self.kinds
                .as_ref()
                .is_some_and(|ks| ks.contains(&(group, kind)))
        }
        fn verb_limit(&self, group: &str, kind: &str) -> Option<Verbs> {
            self.verbs
                .iter()
                .find(|(k, _)| *k == (group, kind))
                .map(|(_, v)| v.iter().copied().collect())
        }
        fn namespaces(&self) -> Option<&[String]> {
            self.namespaces.as_deref()
        }
    }

    /// Reconciles ConfigMaps, owns Secrets, may create/patch/delete ConfigMaps and create
    /// Namespaces (cluster-scoped), indexes Secrets.
    fn writer() -> Manifest {
        let mut w = manifest(kind("", "ConfigMap"));
        w.owns.push(kind("", "Secret"));
        w.indexes
            .push(("by-type".into(), kind("", "Secret"), "type".into()));
        w.permissions.push((
            kind("", "ConfigMap"),
            vec![Verb::Create, Verb::Patch, Verb::Delete],
        ));
        w.permissions.push((
            KindRef {
                namespaced: false,
                ..kind("", "Namespace")
            },
            vec![Verb::Create],
        ));
        let _ = MappingRef::All;
        Manifest::validate(w).unwrap()
    }

    fn by_policy<T: fmt::Debug>(r: Result<T, Denied>, needle: &str) {
        match r {
            Err(Denied::Policy { message, .. }) => {
                assert!(
                    message.contains("policy.yaml") && message.contains(needle),
                    "{message}"
                );
            }
            other => panic!("expected a denial by the policy ({needle}), got {other:?}"),
        }
    }

    #[test]
    fn a_policy_drops_unlisted_kinds_with_their_owns_and_indexes() {
        let a = Allow {
            kinds: Some(vec![("", "ConfigMap")]),
            ..Allow::all()
        };
        let (m, dropped) = writer().narrow("p", "policy.yaml", &a).unwrap();
        assert!(m.owns.is_empty() && m.indexes.is_empty());
        assert!(m.verbs("", "Secret").is_none());
        assert!(m.check("", "ConfigMap", Verb::Patch).is_ok());
        let text = dropped.join("; ");
        for needle in [
            "on Secret",
            "owns Secret",
            "index \"by-type\"",
            "on Namespace",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        by_policy(m.check("", "Secret", Verb::Get), "Secret");
        by_policy(m.declared("", "Secret"), "Secret");
        let e = m.check("", "Pod", Verb::Get).unwrap_err();
        assert!(e.to_string().contains("manifest does not declare"), "{e}");
    }

    #[test]
    fn a_verb_limit_keeps_only_verbs_in_both_and_never_widens() {
        let a = Allow {
            verbs: vec![(
                ("", "ConfigMap"),
                vec![
                    Verb::Get,
                    Verb::List,
                    Verb::Watch,
                    Verb::Patch,
                    Verb::Update,
                ],
            )],
            ..Allow::all()
        };
        let (m, _) = writer().narrow("p", "policy.yaml", &a).unwrap();
        assert!(m.check("", "ConfigMap", Verb::Patch).is_ok());
        by_policy(m.check("", "ConfigMap", Verb::Create), "create");
        let e = m.check("", "ConfigMap", Verb::Update).unwrap_err();
        assert!(
            matches!(&e, Denied::Manifest(m) if m.contains("the manifest does not grant update")),
            "update was never asked for, so the manifest (not the policy) refuses it: {e}"
        );
    }

    #[test]
    fn narrowed_namespaces_make_cluster_scoped_kinds_read_only_unless_listed() {
        let apps = || Some(vec!["apps".to_owned()]);
        let a = Allow {
            namespaces: apps(),
            ..Allow::all()
        };
        let (m, _) = writer().narrow("p", "policy.yaml", &a).unwrap();
        by_policy(m.check("", "Namespace", Verb::Create), "create");
        let listed = Allow {
            namespaces: apps(),
            kinds: Some(vec![("", "ConfigMap"), ("", "Secret"), ("", "Namespace")]),
            ..Allow::all()
        };
        let (m, _) = writer().narrow("p", "policy.yaml", &listed).unwrap();
        assert!(m.check("", "Namespace", Verb::Create).is_ok());
    }

    #[test]
    fn narrowed_namespaces_forbid_namespaced_calls_elsewhere_naming_the_policy() {
        let a = Allow {
            namespaces: Some(vec!["apps".to_owned(), "staging".to_owned()]),
            ..Allow::all()
        };
        let (m, _) = writer().narrow("p", "policy.yaml", &a).unwrap();
        let cm = m.check("", "ConfigMap", Verb::Create).unwrap().clone();
        assert!(m.check_namespace(&cm, Some("apps"), Verb::Create).is_ok());
        assert!(
            m.check_namespace(&cm, Some("staging"), Verb::Delete)
                .is_ok()
        );
        by_policy(
            m.check_namespace(&cm, Some("other"), Verb::Create),
            "in namespace other",
        );
        by_policy(
            m.check_namespace(&cm, None, Verb::Get),
            "across all namespaces",
        );
        assert_eq!(
            m.read_namespaces(&cm),
            Some(&["apps".to_owned(), "staging".to_owned()][..])
        );
        assert!(m.check_event_namespace(&cm, "apps").is_ok());
        by_policy(m.check_event_namespace(&cm, "default"), "record events");
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
        let a = Allow {
            namespaces: Some(vec!["apps".to_owned()]),
            ..Allow::all()
        };
        let (m, _) = writer().narrow("p", "policy.yaml", &a).unwrap();
        assert_eq!(m.reconciles.namespace.as_deref(), Some("apps"));
        assert_eq!(m.allowed_namespaces(), Some(&["apps".to_owned()][..]));
        assert_eq!(m.policy(), Some("policy.yaml"));
    }

    #[test]
    fn a_plugin_whose_reconciled_kind_is_not_allowed_is_refused() {
        let only_secrets = Allow {
            kinds: Some(vec![("", "Secret")]),
            ..Allow::all()
        };
        let e = writer()
            .narrow("p", "policy.yaml", &only_secrets)
            .unwrap_err();
        assert!(e.contains("reconciles ConfigMap"), "{e}");
        let get_only = Allow {
            verbs: vec![(("", "ConfigMap"), vec![Verb::Get])],
            ..Allow::all()
        };
        let e = writer().narrow("p", "policy.yaml", &get_only).unwrap_err();
        assert!(e.contains("get, list and watch"), "{e}");
        let mut w = manifest(kind("", "ConfigMap"));
        w.namespace = Some("other".into());
        let apps = Allow {
            namespaces: Some(vec!["apps".to_owned()]),
            ..Allow::all()
        };
        let e = Manifest::validate(w)
            .unwrap()
            .narrow("p", "policy.yaml", &apps)
            .unwrap_err();
        assert!(e.contains("namespace other"), "{e}");
    }
}
