//! Narrowing a [`Manifest`] by an operator's policy ([`crate::policy`]): the intersection made
//! once at load, and the cheap per-call namespace checks that use what it precomputed.

use std::sync::Arc;

use super::{ApiError, Grant, Kind, Manifest, Verb, Verbs, wit_types};

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

impl Manifest {
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

    /// `forbidden` naming the policy when it (not the manifest) took `verb` away on `kind`.
    #[cold]
    pub(super) fn removed_by_policy(
        &self,
        kind: &wit_types::Kind,
        verb: Option<Verb>,
    ) -> Option<ApiError> {
        self.narrowing
            .as_ref()?
            .removed(&kind.group, &kind.kind, verb)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{kind, manifest};
    use super::*;
    use crate::runtime::bindings::exports::kubewasm::controller::reconciler as wit;
    use std::fmt;

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
}
