//! The manifest a component exports, as the host reads it: the WIT record turned into
//! [`kubewasm_core::Declaration`] and validated by [`Manifest::validate`] (one model and one
//! validation for the host and the SDK's fake host), and the model's refusals turned into the
//! plugin's `forbidden` errors.

use std::collections::HashMap;

use super::api_error::ApiError;
use super::bindings::v1::exports::kubewasm::controller::reconciler as v1;
use super::bindings::v1::kubewasm::controller::types as v1_types;
use super::bindings::v2::exports::kubewasm::controller::reconciler as v2;
use super::bindings::v2::kubewasm::controller::types as v2_types;
use super::kinds::{KindName, ResolvedKind};

pub use kubewasm_core::manifest::{
    Declaration, Denied, Index, Kind, KindRef, Manifest, ManifestError, MappingRef, Reconciles,
    Verb, Verbs, Watch, WatchMapping, custom_resources, guess_plural,
};

/// Validates a 0.1.0 manifest: its kinds carry their plural (or it is guessed) and scope.
///
/// The record is converted into a 0.2.0 one, and each kind's plural and scope into what
/// [`from_v2`] takes from discovery, so both versions go through one conversion.
///
/// # Errors
/// [`ManifestError`] listing every problem (see [`Manifest::validate`]).
pub fn from_v1(m: v1::Manifest) -> Result<Manifest, ManifestError> {
    let mut resolved = HashMap::new();
    let mut kind = |k: v1_types::Kind| {
        let name = (k.group.clone(), k.version.clone(), k.kind.clone());
        resolved.entry(name).or_insert_with(|| ResolvedKind {
            plural: k.plural.unwrap_or_else(|| guess_plural(&k.kind)),
            namespaced: k.namespaced,
        });
        v2_types::Kind {
            group: k.group,
            version: k.version,
            kind: k.kind,
        }
    };
    let verb = |v: v1::Verb| match v {
        v1::Verb::Get => v2::Verb::Get,
        v1::Verb::List => v2::Verb::List,
        v1::Verb::Watch => v2::Verb::Watch,
        v1::Verb::Create => v2::Verb::Create,
        v1::Verb::Update => v2::Verb::Update,
        v1::Verb::Patch => v2::Verb::Patch,
        v1::Verb::Delete => v2::Verb::Delete,
    };
    let mapping = |m: v1::WatchMapping| match m {
        v1::WatchMapping::OwnerReferences => v2::WatchMapping::OwnerReferences,
        v1::WatchMapping::SameName => v2::WatchMapping::SameName,
        v1::WatchMapping::Namespace => v2::WatchMapping::Namespace,
        v1::WatchMapping::All => v2::WatchMapping::All,
        v1::WatchMapping::IndexLookup(l) => v2::WatchMapping::IndexLookup(v2::IndexLookup {
            index: l.index,
            field: l.field,
        }),
    };
    let m = v2::Manifest {
        reconciles: v2::Reconciles {
            kind: kind(m.reconciles.kind),
            namespace: m.reconciles.namespace,
            label_selector: m.reconciles.label_selector,
        },
        owns: m.owns.into_iter().map(&mut kind).collect(),
        watches: m
            .watches
            .into_iter()
            .map(|w| v2::Watch {
                kind: kind(w.kind),
                label_selector: w.label_selector,
                mapping: mapping(w.mapping),
            })
            .collect(),
        indexes: m
            .indexes
            .into_iter()
            .map(|i| v2::Index {
                name: i.name,
                kind: kind(i.kind),
                field: i.field,
            })
            .collect(),
        permissions: m
            .permissions
            .into_iter()
            .map(|p| v2::Permission {
                kind: kind(p.kind),
                verbs: p.verbs.into_iter().map(verb).collect(),
            })
            .collect(),
        concurrency: m.concurrency,
        custom_resources: Vec::new(),
        reuse_instances: false,
    };
    from_v2(m, &resolved)
}

/// Every kind a 0.2.0 manifest names, to resolve before [`from_v2`].
pub(crate) fn v2_kinds(m: &v2::Manifest) -> Vec<KindName> {
    let name = |k: &v2_types::Kind| (k.group.clone(), k.version.clone(), k.kind.clone());
    let mut out = vec![name(&m.reconciles.kind)];
    out.extend(m.owns.iter().map(name));
    out.extend(m.watches.iter().map(|w| name(&w.kind)));
    out.extend(m.indexes.iter().map(|i| name(&i.kind)));
    out.extend(m.permissions.iter().map(|p| name(&p.kind)));
    out
}

/// Validates a 0.2.0 manifest, with the plural and scope of each kind from `resolved`
/// (see `kinds.rs`).
///
/// # Errors
/// [`ManifestError`] listing every problem (see [`Manifest::validate`]).
pub(crate) fn from_v2(
    m: v2::Manifest,
    resolved: &HashMap<KindName, ResolvedKind>,
) -> Result<Manifest, ManifestError> {
    let kind = |k: v2_types::Kind| {
        let r = resolved.get(&(k.group.clone(), k.version.clone(), k.kind.clone()));
        KindRef {
            plural: r.map(|r| r.plural.clone()),
            namespaced: r.is_none_or(|r| r.namespaced),
            group: k.group,
            version: k.version,
            kind: k.kind,
        }
    };
    let verb = |v: v2::Verb| match v {
        v2::Verb::Get => Verb::Get,
        v2::Verb::List => Verb::List,
        v2::Verb::Watch => Verb::Watch,
        v2::Verb::Create => Verb::Create,
        v2::Verb::Update => Verb::Update,
        v2::Verb::Patch => Verb::Patch,
        v2::Verb::Delete => Verb::Delete,
    };
    let mapping = |m: v2::WatchMapping| match m {
        v2::WatchMapping::OwnerReferences => MappingRef::OwnerReferences,
        v2::WatchMapping::SameName => MappingRef::SameName,
        v2::WatchMapping::Namespace => MappingRef::Namespace,
        v2::WatchMapping::All => MappingRef::All,
        v2::WatchMapping::IndexLookup(l) => MappingRef::IndexLookup {
            index: l.index,
            field: l.field,
        },
    };
    Manifest::validate(Declaration {
        reconciles: kind(m.reconciles.kind),
        namespace: m.reconciles.namespace,
        label_selector: m.reconciles.label_selector,
        owns: m.owns.into_iter().map(kind).collect(),
        watches: m
            .watches
            .into_iter()
            .map(|w| (kind(w.kind), w.label_selector, mapping(w.mapping)))
            .collect(),
        indexes: m
            .indexes
            .into_iter()
            .map(|i| (i.name, kind(i.kind), i.field))
            .collect(),
        permissions: m
            .permissions
            .into_iter()
            .map(|p| (kind(p.kind), p.verbs.into_iter().map(verb).collect()))
            .collect(),
        concurrency: m.concurrency,
    })
}

impl From<Denied> for ApiError {
    /// The plugin's `forbidden`. A denial by the operator's policy is also logged, so the
    /// operator sees what a plugin tried.
    fn from(d: Denied) -> Self {
        if let Denied::Policy {
            plugin,
            policy,
            message,
        } = &d
        {
            tracing::warn!(
                target: "kubewasm::policy",
                plugin = %plugin,
                policy = %policy,
                "denied by the policy: {message}"
            );
        }
        ApiError::Forbidden(d.message().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(group: &str, kind: &str) -> v2_types::Kind {
        v2_types::Kind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn a_wit_manifest_becomes_the_shared_model_with_every_part_and_resolved_kinds() {
        let m = v2::Manifest {
            reconciles: v2::Reconciles {
                kind: k("", "Pod"),
                namespace: Some("apps".into()),
                label_selector: Some("app=web".into()),
            },
            owns: vec![k("", "ConfigMap")],
            watches: vec![v2::Watch {
                kind: k("", "Node"),
                label_selector: None,
                mapping: v2::WatchMapping::IndexLookup(v2::IndexLookup {
                    index: "by-node".into(),
                    field: "metadata.name".into(),
                }),
            }],
            indexes: vec![v2::Index {
                name: "by-node".into(),
                kind: k("", "Pod"),
                field: "spec.nodeName".into(),
            }],
            permissions: vec![v2::Permission {
                kind: k("", "Endpoints"),
                verbs: vec![v2::Verb::Create, v2::Verb::Delete],
            }],
            concurrency: 3,
            custom_resources: vec![],
            reuse_instances: false,
        };
        let mut resolved = HashMap::new();
        for (kind, plural, namespaced) in [
            ("Pod", "pods", true),
            ("ConfigMap", "configmaps", true),
            ("Node", "nodes", false),
            ("Endpoints", "endpoints", true),
        ] {
            resolved.insert(
                (String::new(), "v1".to_owned(), kind.to_owned()),
                ResolvedKind {
                    plural: plural.into(),
                    namespaced,
                },
            );
        }
        assert_eq!(v2_kinds(&m).len(), 5);
        let m = from_v2(m, &resolved).expect("valid");
        assert_eq!(m.reconciles.namespace.as_deref(), Some("apps"));
        assert_eq!(m.owns[0].plural, "configmaps");
        assert!(!m.watches[0].kind.namespaced);
        assert!(matches!(
            m.watches[0].mapping,
            WatchMapping::IndexLookup { .. }
        ));
        assert_eq!(m.concurrency, 3);
        let endpoints = m.check("", "Endpoints", Verb::Delete).unwrap();
        assert_eq!(endpoints.plural, "endpoints");
        let e: ApiError = m.check("", "Secret", Verb::Get).unwrap_err().into();
        assert!(
            matches!(e, ApiError::Forbidden(ref m) if m.contains("Secret")),
            "{e}"
        );
    }
}
