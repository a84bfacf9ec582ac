//! [`Manifest`]: what a plugin reconciles, owns, watches, indexes and may do, declared in Rust.

use crate::bindings::exports::kubewasm::controller::reconciler as wit;
use crate::bindings::kubewasm::controller::types;
use crate::object::{Kind, Object};

/// A verb the plugin may use on a kind: [`get`](crate::get); [`list`](crate::list) and
/// [`list_by_index`](crate::list_by_index); `Watch` (keep an informer, implied by `Get`/`List`);
/// [`create`](crate::create); [`replace`](crate::replace) and
/// [`replace_status`](crate::replace_status) (`Update`); [`patch`](crate::patch),
/// [`patch_status`](crate::patch_status) and [`apply`](crate::apply) (`Patch`);
/// [`delete`](crate::delete). The same verbs the host checks (`kubewasm-core`).
pub use kubewasm_core::Verb;

/// How a change to a watched kind maps to keys of the reconciled kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMapping {
    /// Via the watched object's `ownerReferences` to the reconciled kind.
    OwnerReferences,
    /// The reconciled object with the same namespace and name.
    SameName,
    /// Every reconciled object in the watched object's namespace.
    Namespace,
    /// Every reconciled object.
    All,
    /// Reconciled objects whose declared `index` holds the value at `field` of the watched object.
    IndexLookup {
        /// An index declared on the reconciled kind.
        index: String,
        /// Dotted JSON path in the watched object, e.g. `metadata.name`.
        field: String,
    },
}

/// The plugin's declaration of everything it needs. The host grants exactly this.
///
/// The reconciled, owned and watched kinds may be read (`get`, `list`); every write and
/// every other kind needs [`Manifest::permit`].
///
/// ```
/// use k8s_openapi::api::core::v1::{ConfigMap, Pod};
/// use kubewasm_sdk::{Manifest, Verb};
///
/// let manifest = Manifest::reconcile::<ConfigMap>()
///     .owns::<Pod>()
///     .index::<Pod>("by-node", "spec.nodeName")
///     .permit::<ConfigMap>(&[Verb::Patch])
///     .permit::<Pod>(&[Verb::Create, Verb::Delete])
///     .concurrency(4);
/// # let _ = manifest;
/// ```
#[derive(Debug, Clone)]
pub struct Manifest {
    reconciles: (Kind, Option<String>, Option<String>),
    owns: Vec<Kind>,
    watches: Vec<(Kind, Option<String>, WatchMapping)>,
    indexes: Vec<(String, Kind, String)>,
    permissions: Vec<(Kind, Vec<Verb>)>,
    concurrency: u32,
}

impl Manifest {
    /// A plugin that reconciles objects of kind `T`, with concurrency 1.
    pub fn reconcile<T: Object>() -> Self {
        Self::reconcile_kind(Kind::of::<T>())
    }

    /// Like [`Manifest::reconcile`] with a kind given as a value.
    pub fn reconcile_kind(kind: Kind) -> Self {
        Self {
            reconciles: (kind, None, None),
            owns: Vec::new(),
            watches: Vec::new(),
            indexes: Vec::new(),
            permissions: Vec::new(),
            concurrency: 1,
        }
    }

    /// Only reconcile objects in `namespace`.
    #[must_use]
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.reconciles.1 = Some(namespace.into());
        self
    }

    /// Only reconcile objects matching a label selector (`"app=web"`).
    #[must_use]
    pub fn with_labels(mut self, selector: impl Into<String>) -> Self {
        self.reconciles.2 = Some(selector.into());
        self
    }

    /// Owns objects of kind `U`: a change to one reconciles the owner named in its
    /// `ownerReferences`.
    #[must_use]
    pub fn owns<U: Object>(mut self) -> Self {
        self.owns.push(Kind::of::<U>());
        self
    }

    /// Watches objects of kind `U` and maps their changes with `mapping`.
    #[must_use]
    pub fn watches<U: Object>(mut self, mapping: WatchMapping) -> Self {
        self.watches.push((Kind::of::<U>(), None, mapping));
        self
    }

    /// Like [`Manifest::watches`], only for objects matching a label selector.
    #[must_use]
    pub fn watches_with_labels<U: Object>(
        mut self,
        selector: impl Into<String>,
        mapping: WatchMapping,
    ) -> Self {
        self.watches
            .push((Kind::of::<U>(), Some(selector.into()), mapping));
        self
    }

    /// Declares an index `name` on kind `U` over the dotted JSON path `field`
    /// (e.g. `spec.nodeName`), for [`list_by_index`](crate::list_by_index).
    #[must_use]
    pub fn index<U: Object>(mut self, name: impl Into<String>, field: impl Into<String>) -> Self {
        self.indexes
            .push((name.into(), Kind::of::<U>(), field.into()));
        self
    }

    /// Grants `verbs` on kind `U`.
    #[must_use]
    pub fn permit<U: Object>(mut self, verbs: &[Verb]) -> Self {
        self.permissions.push((Kind::of::<U>(), verbs.to_vec()));
        self
    }

    /// How many keys may reconcile at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// The manifest as the host's validation sees it, for the fake host to validate and
    /// enforce with the host's own code.
    #[cfg(feature = "testing")]
    pub(crate) fn declaration(&self) -> kubewasm_core::Declaration {
        use kubewasm_core::{Declaration, MappingRef};
        let (kind, namespace, label_selector) = &self.reconciles;
        Declaration {
            reconciles: core_kind(kind),
            namespace: namespace.clone(),
            label_selector: label_selector.clone(),
            owns: self.owns.iter().map(core_kind).collect(),
            watches: self
                .watches
                .iter()
                .map(|(kind, selector, mapping)| {
                    let mapping = match mapping {
                        WatchMapping::OwnerReferences => MappingRef::OwnerReferences,
                        WatchMapping::SameName => MappingRef::SameName,
                        WatchMapping::Namespace => MappingRef::Namespace,
                        WatchMapping::All => MappingRef::All,
                        WatchMapping::IndexLookup { index, field } => MappingRef::IndexLookup {
                            index: index.clone(),
                            field: field.clone(),
                        },
                    };
                    (core_kind(kind), selector.clone(), mapping)
                })
                .collect(),
            indexes: self
                .indexes
                .iter()
                .map(|(name, kind, field)| (name.clone(), core_kind(kind), field.clone()))
                .collect(),
            permissions: self
                .permissions
                .iter()
                .map(|(kind, verbs)| (core_kind(kind), verbs.clone()))
                .collect(),
            concurrency: self.concurrency,
        }
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Manifest {
        let (kind, namespace, label_selector) = self.reconciles;
        wit::Manifest {
            reconciles: wit::Reconciles {
                kind: wit_kind(&kind),
                namespace,
                label_selector,
            },
            owns: self.owns.iter().map(wit_kind).collect(),
            watches: self
                .watches
                .into_iter()
                .map(|(kind, label_selector, mapping)| wit::Watch {
                    kind: wit_kind(&kind),
                    label_selector,
                    mapping: match mapping {
                        WatchMapping::OwnerReferences => wit::WatchMapping::OwnerReferences,
                        WatchMapping::SameName => wit::WatchMapping::SameName,
                        WatchMapping::Namespace => wit::WatchMapping::Namespace,
                        WatchMapping::All => wit::WatchMapping::All,
                        WatchMapping::IndexLookup { index, field } => {
                            wit::WatchMapping::IndexLookup(wit::IndexLookup { index, field })
                        }
                    },
                })
                .collect(),
            indexes: self
                .indexes
                .into_iter()
                .map(|(name, kind, field)| wit::Index {
                    name,
                    kind: wit_kind(&kind),
                    field,
                })
                .collect(),
            permissions: self
                .permissions
                .into_iter()
                .map(|(kind, verbs)| wit::Permission {
                    kind: wit_kind(&kind),
                    verbs: verbs.into_iter().map(wit_verb).collect(),
                })
                .collect(),
            concurrency: self.concurrency,
        }
    }
}

fn wit_kind(kind: &Kind) -> types::Kind {
    types::Kind {
        group: kind.group.to_owned(),
        version: kind.version.to_owned(),
        kind: kind.kind.to_owned(),
        plural: kind.plural.map(str::to_owned),
        namespaced: kind.namespaced,
    }
}

#[cfg(feature = "testing")]
fn core_kind(kind: &Kind) -> kubewasm_core::KindRef {
    kubewasm_core::KindRef {
        group: kind.group.to_owned(),
        version: kind.version.to_owned(),
        kind: kind.kind.to_owned(),
        plural: kind.plural.map(str::to_owned),
        namespaced: kind.namespaced,
    }
}

fn wit_verb(verb: Verb) -> wit::Verb {
    match verb {
        Verb::Get => wit::Verb::Get,
        Verb::List => wit::Verb::List,
        Verb::Watch => wit::Verb::Watch,
        Verb::Create => wit::Verb::Create,
        Verb::Update => wit::Verb::Update,
        Verb::Patch => wit::Verb::Patch,
        Verb::Delete => wit::Verb::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};

    #[test]
    fn the_builder_declares_every_part_of_the_wit_manifest() {
        let m = Manifest::reconcile::<ConfigMap>()
            .in_namespace("demo")
            .with_labels("app=web")
            .owns::<Pod>()
            .watches::<Node>(WatchMapping::IndexLookup {
                index: "by-node".into(),
                field: "metadata.name".into(),
            })
            .index::<ConfigMap>("by-node", "data.node")
            .permit::<Pod>(&[Verb::Create, Verb::Delete])
            .concurrency(3)
            .into_wit();
        assert_eq!(m.reconciles.kind.kind, "ConfigMap");
        assert_eq!(m.reconciles.kind.plural.as_deref(), Some("configmaps"));
        assert_eq!(m.reconciles.namespace.as_deref(), Some("demo"));
        assert_eq!(m.reconciles.label_selector.as_deref(), Some("app=web"));
        assert_eq!(m.owns[0].kind, "Pod");
        assert!(!m.watches[0].kind.namespaced);
        assert!(
            matches!(&m.watches[0].mapping, wit::WatchMapping::IndexLookup(l) if l.index == "by-node")
        );
        assert_eq!(m.indexes[0].field, "data.node");
        assert_eq!(
            m.permissions[0].verbs,
            vec![wit::Verb::Create, wit::Verb::Delete]
        );
        assert_eq!(m.concurrency, 3);
    }
}
