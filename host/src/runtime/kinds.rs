//! Where a kind's URL plural and scope come from for a `kubewasm:controller@0.2.0` plugin,
//! whose `kind` names only group, version and kind.
//!
//! When a plugin loads, each kind its manifest names is resolved, first found wins:
//! 1. the API server's discovery, through the [`KindResolver`] the runtime was given
//!    ([`RuntimeConfig::resolver`](super::RuntimeConfig::resolver); the host's is
//!    [`crate::cluster::DiscoveryResolver`]);
//! 2. a CRD in the manifest's `custom-resources` (its `spec.names.plural` and `spec.scope`);
//! 3. offline (no resolver: `kubewasm plugin check`, tests on the memory backend), a table of
//!    the built-in kinds whose plural is irregular or that are cluster-scoped;
//! 4. else the old guess ([`guess_plural`], namespaced), with a warning naming the kind, so a
//!    plugin whose CRD is installed later still loads.
//!
//! 0.1.0 plugins declare plural and scope themselves and are not resolved.

use std::collections::HashMap;
use std::fmt;

use futures::future::BoxFuture;
use serde_json::Value;

use kubewasm_core::guess_plural;

/// A kind's URL plural and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKind {
    /// The lowercase plural used in URLs and RBAC, e.g. `endpoints`.
    pub plural: String,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
}

/// Looks kinds up in a cluster's API discovery.
pub trait KindResolver: Send + Sync + fmt::Debug + 'static {
    /// The plural and scope the API server serves `kind` of `group`/`version` with.
    ///
    /// # Errors
    /// `Ok(None)` when the API server does not serve the kind (yet); `Err` with a message when
    /// discovery could not be asked (the caller falls back, with a warning).
    fn resolve<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
        kind: &'a str,
    ) -> BoxFuture<'a, Result<Option<ResolvedKind>, String>>;
}

/// A kind as a manifest names it: group, version, kind.
pub(crate) type KindName = (String, String, String);

/// Built-in kinds whose plural is not the guess, or which are cluster-scoped (kube 1.33).
const BUILTIN: &[(&str, &str, &str, bool)] = &[
    ("", "Endpoints", "endpoints", true),
    ("", "Namespace", "namespaces", false),
    ("", "Node", "nodes", false),
    ("", "PersistentVolume", "persistentvolumes", false),
    ("", "ComponentStatus", "componentstatuses", false),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("storage.k8s.io", "StorageClass", "storageclasses", false),
    ("storage.k8s.io", "CSIDriver", "csidrivers", false),
    ("storage.k8s.io", "CSINode", "csinodes", false),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("apiregistration.k8s.io", "APIService", "apiservices", false),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("node.k8s.io", "RuntimeClass", "runtimeclasses", false),
    ("networking.k8s.io", "IngressClass", "ingressclasses", false),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
];

/// The plural and scope a CRD gives `group`/`kind`, if one of `crds` defines it.
fn from_crds(crds: &[Value], group: &str, kind: &str) -> Option<ResolvedKind> {
    crds.iter().find_map(|crd| {
        let spec = crd.get("spec")?;
        if spec.get("group")?.as_str()? != group || spec.pointer("/names/kind")?.as_str()? != kind {
            return None;
        }
        Some(ResolvedKind {
            plural: spec.pointer("/names/plural")?.as_str()?.to_owned(),
            namespaced: spec.get("scope")?.as_str()? == "Namespaced",
        })
    })
}

/// Resolves every kind in `kinds` (see the module docs for the order), warning about each
/// one that had to be guessed.
pub(crate) async fn resolve(
    plugin: &str,
    resolver: Option<&dyn KindResolver>,
    crds: &[Value],
    kinds: impl IntoIterator<Item = KindName>,
) -> HashMap<KindName, ResolvedKind> {
    let mut out = HashMap::new();
    for name in kinds {
        if out.contains_key(&name) {
            continue;
        }
        let (group, version, kind) = &name;
        let mut why_not = None;
        if let Some(r) = resolver {
            match r.resolve(group, version, kind).await {
                Ok(Some(found)) => {
                    out.insert(name, found);
                    continue;
                }
                Ok(None) => {
                    why_not = Some("the API server does not serve it".to_owned());
                }
                Err(e) => why_not = Some(format!("API discovery failed: {e}")),
            }
        }
        if let Some(found) = from_crds(crds, group, kind) {
            out.insert(name, found);
            continue;
        }
        if resolver.is_none() {
            let builtin = BUILTIN
                .iter()
                .find(|(g, k, _, _)| g == group && k == kind)
                .map(|(_, _, plural, namespaced)| ResolvedKind {
                    plural: (*plural).to_owned(),
                    namespaced: *namespaced,
                });
            let builtin = builtin.or_else(|| {
                // Every other built-in kind (a Kubernetes group: "" or *.k8s.io) is namespaced
                // with the regular plural.
                (group.is_empty() || group.ends_with(".k8s.io") || is_plain_group(group)).then(
                    || ResolvedKind {
                        plural: guess_plural(kind),
                        namespaced: true,
                    },
                )
            });
            if let Some(found) = builtin {
                out.insert(name, found);
                continue;
            }
        }
        let guess = ResolvedKind {
            plural: guess_plural(kind),
            namespaced: true,
        };
        let qualified = if group.is_empty() {
            kind.clone()
        } else {
            format!("{kind}.{group}")
        };
        tracing::warn!(
            plugin,
            kind = %qualified,
            plural = %guess.plural,
            "plugin {plugin}: the plural and scope of {qualified} ({version}) are guessed \
             as {:?}, namespaced: {}{}; add its CustomResourceDefinition to the manifest's \
             custom-resources (or install it) so they are known",
            guess.plural,
            guess.namespaced,
            match &why_not {
                Some(w) => format!(" ({w})"),
                None => " (no API server to ask and no CRD in the manifest)".to_owned(),
            },
        );
        out.insert(name, guess);
    }
    out
}

/// The built-in API groups without a dot (`apps`, `batch`, `autoscaling`, `policy`).
fn is_plain_group(group: &str) -> bool {
    matches!(group, "apps" | "batch" | "autoscaling" | "policy")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(group: &str, kind: &str) -> KindName {
        (group.into(), "v1".into(), kind.into())
    }

    #[derive(Debug)]
    struct Served;

    impl KindResolver for Served {
        fn resolve<'a>(
            &'a self,
            _group: &'a str,
            _version: &'a str,
            kind: &'a str,
        ) -> BoxFuture<'a, Result<Option<ResolvedKind>, String>> {
            Box::pin(async move {
                Ok((kind == "Moose").then(|| ResolvedKind {
                    plural: "moose".into(),
                    namespaced: false,
                }))
            })
        }
    }

    fn crd() -> Value {
        serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "spec": {"group": "zoo.example.com", "scope": "Cluster",
                     "names": {"kind": "Goose", "plural": "geese"}}
        })
    }

    #[tokio::test]
    async fn discovery_wins_then_the_manifest_crds_then_the_guess() {
        let kinds = [
            name("zoo.example.com", "Moose"),
            name("zoo.example.com", "Goose"),
            name("zoo.example.com", "Ox"),
        ];
        let r = resolve("p", Some(&Served), &[crd()], kinds.clone()).await;
        assert_eq!(r[&kinds[0]].plural, "moose");
        assert!(!r[&kinds[0]].namespaced);
        assert_eq!(r[&kinds[1]].plural, "geese");
        assert!(!r[&kinds[1]].namespaced);
        assert_eq!(r[&kinds[2]].plural, "oxes");
        assert!(r[&kinds[2]].namespaced);
    }

    #[tokio::test]
    async fn offline_the_irregular_and_cluster_scoped_builtins_are_known() {
        let kinds = [
            name("", "Endpoints"),
            name("", "Node"),
            name("apps", "Deployment"),
        ];
        let r = resolve("p", None, &[], kinds.clone()).await;
        assert_eq!(r[&kinds[0]].plural, "endpoints");
        assert!(!r[&kinds[1]].namespaced);
        assert_eq!(r[&kinds[2]].plural, "deployments");
        assert!(r[&kinds[2]].namespaced);
    }

    /// Collects what `tracing` writes while the guard lives.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_guessed_kind_is_a_warning_naming_it_and_what_to_do() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let ox = name("zoo.example.com", "Ox");
        let r = resolve("zoo", Some(&Served), &[], [ox.clone()]).await;
        assert_eq!(r[&ox].plural, "oxes");
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        assert!(text.contains("WARN"), "{text}");
        for needle in [
            "plugin zoo: the plural and scope of Ox.zoo.example.com (v1) are guessed",
            "the API server does not serve it",
            "custom-resources",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from {text}");
        }
        // Resolved kinds are not warned about.
        let before = out.0.lock().len();
        resolve(
            "zoo",
            Some(&Served),
            &[],
            [name("zoo.example.com", "Moose")],
        )
        .await;
        assert_eq!(out.0.lock().len(), before);
    }
}
