//! The manifest a component exports, as the host reads it: the WIT record turned into
//! [`kubewasm_core::Declaration`] and validated by [`Manifest::validate`] (one model and one
//! validation for the host and the SDK's fake host), and the model's refusals turned into the
//! plugin's `forbidden` errors.

use super::api_error::ApiError;
use super::bindings::exports::kubewasm::controller::reconciler as wit;
use super::bindings::kubewasm::controller::types as wit_types;

pub use kubewasm_core::manifest::{
    Declaration, Denied, Index, Kind, KindRef, Manifest, ManifestError, MappingRef, Reconciles,
    Verb, Verbs, Watch, WatchMapping, guess_plural,
};

/// Validates the manifest a plugin exported.
///
/// # Errors
/// [`ManifestError`] listing every problem (see [`Manifest::validate`]).
pub fn from_wit(m: wit::Manifest) -> Result<Manifest, ManifestError> {
    Manifest::validate(declaration(m))
}

fn kind(k: wit_types::Kind) -> KindRef {
    KindRef {
        group: k.group,
        version: k.version,
        kind: k.kind,
        plural: k.plural,
        namespaced: k.namespaced,
    }
}

fn verb(v: wit::Verb) -> Verb {
    match v {
        wit::Verb::Get => Verb::Get,
        wit::Verb::List => Verb::List,
        wit::Verb::Watch => Verb::Watch,
        wit::Verb::Create => Verb::Create,
        wit::Verb::Update => Verb::Update,
        wit::Verb::Patch => Verb::Patch,
        wit::Verb::Delete => Verb::Delete,
    }
}

/// The WIT manifest as plain data.
fn declaration(m: wit::Manifest) -> Declaration {
    Declaration {
        reconciles: kind(m.reconciles.kind),
        namespace: m.reconciles.namespace,
        label_selector: m.reconciles.label_selector,
        owns: m.owns.into_iter().map(kind).collect(),
        watches: m
            .watches
            .into_iter()
            .map(|w| {
                let mapping = match w.mapping {
                    wit::WatchMapping::OwnerReferences => MappingRef::OwnerReferences,
                    wit::WatchMapping::SameName => MappingRef::SameName,
                    wit::WatchMapping::Namespace => MappingRef::Namespace,
                    wit::WatchMapping::All => MappingRef::All,
                    wit::WatchMapping::IndexLookup(l) => MappingRef::IndexLookup {
                        index: l.index,
                        field: l.field,
                    },
                };
                (kind(w.kind), w.label_selector, mapping)
            })
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
    }
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

    fn k(group: &str, kind: &str) -> wit_types::Kind {
        wit_types::Kind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: None,
            namespaced: true,
        }
    }

    #[test]
    fn a_wit_manifest_becomes_the_shared_model_with_every_part() {
        let m = from_wit(wit::Manifest {
            reconciles: wit::Reconciles {
                kind: k("", "Pod"),
                namespace: Some("apps".into()),
                label_selector: Some("app=web".into()),
            },
            owns: vec![k("", "ConfigMap")],
            watches: vec![wit::Watch {
                kind: wit_types::Kind {
                    namespaced: false,
                    ..k("", "Node")
                },
                label_selector: None,
                mapping: wit::WatchMapping::IndexLookup(wit::IndexLookup {
                    index: "by-node".into(),
                    field: "metadata.name".into(),
                }),
            }],
            indexes: vec![wit::Index {
                name: "by-node".into(),
                kind: k("", "Pod"),
                field: "spec.nodeName".into(),
            }],
            permissions: vec![wit::Permission {
                kind: k("", "ConfigMap"),
                verbs: vec![wit::Verb::Create, wit::Verb::Delete],
            }],
            concurrency: 3,
        })
        .expect("valid");
        assert_eq!(m.reconciles.namespace.as_deref(), Some("apps"));
        assert_eq!(m.owns[0].plural, "configmaps");
        assert!(matches!(
            m.watches[0].mapping,
            WatchMapping::IndexLookup { .. }
        ));
        assert_eq!(m.concurrency, 3);
        assert!(m.check("", "ConfigMap", Verb::Delete).is_ok());
        let e: ApiError = m.check("", "Secret", Verb::Get).unwrap_err().into();
        assert!(
            matches!(e, ApiError::Forbidden(ref m) if m.contains("Secret")),
            "{e}"
        );
    }
}
