//! [`Manifest`]: what a plugin reconciles, owns, watches, indexes and may do, declared in Rust.

use crate::bindings::exports::kubewasm::controller::reconciler as wit;
use crate::bindings::kubewasm::controller::types;
use crate::object::{CustomResourceExt, Kind, Object};

/// A verb the plugin may use on a kind: `Get` ([`Api::get`](crate::Api::get)); `List`
/// ([`Api::list`](crate::Api::list), [`keys`](crate::Api::keys), [`count`](crate::Api::count));
/// `Watch` (keep an informer, implied by `Get`/`List`); `Create`; `Update`
/// ([`replace`](crate::Api::replace) of the object, its status and scale); `Patch` (every
/// [`Patch`](crate::Patch), of the object, its status and scale); `Delete`. The same verbs the
/// host checks (`kubewasm-core`). The generated RBAC grants `update` and `patch` on
/// `<plural>`, `<plural>/status` and, for kinds that can have one, `<plural>/scale`.
pub use kubewasm_core::Verb;

/// How a change to a watched kind maps to keys of the reconciled kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchMapping {
    /// Via the watched object's `ownerReferences` to the reconciled kind.
    OwnerReferences,
    /// The reconciled object with the same namespace and name.
    SameName,
    /// Every reconciled object in the watched object's namespace.
    Namespace,
    /// Every reconciled object.
    All,
    /// Reconciled objects whose declared `index` holds the value at `field` of the watched
    /// object. The lookup is namespace-scoped: only reconciled objects in the watched object's
    /// namespace match, unless the watched or the reconciled kind is cluster-scoped (then
    /// every match counts).
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
    pub(crate) custom_resources: Vec<serde_json::Value>,
    reuse_instances: bool,
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
            custom_resources: Vec::new(),
            reuse_instances: false,
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

    /// Watches objects of kind `U`: a change to one reconciles the objects of the reconciled
    /// kind in its namespace whose `field` (a dotted JSON path, e.g. `spec.deployment`) equals
    /// the watched object's `watched_field` (e.g. `metadata.name`): "reconcile the
    /// ScaleSchedules that name this Deployment". Declares the index (named after `field`)
    /// that maps them; use [`Manifest::index`] with [`WatchMapping::IndexLookup`] to name it
    /// yourself or to share it with [`ListParams::index`](crate::ListParams::index).
    #[must_use]
    pub fn watches_by_field<U: Object>(
        mut self,
        field: impl Into<String>,
        watched_field: impl Into<String>,
    ) -> Self {
        let field = field.into();
        let kind = self.reconciles.0;
        if !self
            .indexes
            .iter()
            .any(|(name, k, f)| *name == field && *k == kind && *f == field)
        {
            self.indexes.push((field.clone(), kind, field.clone()));
        }
        let mapping = WatchMapping::IndexLookup {
            index: field,
            field: watched_field.into(),
        };
        self.watches.push((Kind::of::<U>(), None, mapping));
        self
    }

    /// Declares an index `name` on kind `U` over the dotted JSON path `field`
    /// (e.g. `spec.nodeName`), for [`ListParams::index`](crate::ListParams::index) and
    /// [`WatchMapping::IndexLookup`].
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

    /// Ships `K`'s CustomResourceDefinition in the manifest's `custom-resources`: the host
    /// learns the kind's plural and scope from it, `kubewasm plugin crd` prints it and
    /// `kubewasm dev` installs it. Declare the kind's use as usual (`reconcile`, `owns`,
    /// `permit`...); this only describes it.
    #[must_use]
    pub fn custom_resource<K: CustomResourceExt>(mut self) -> Self {
        self.custom_resources.push(K::crd());
        self
    }

    /// The CRDs added with [`Manifest::custom_resource`].
    pub fn custom_resources(&self) -> &[serde_json::Value] {
        &self.custom_resources
    }

    /// How many keys may reconcile at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// Asks the host to keep this plugin's instances between reconciles (off by default).
    ///
    /// Off, every reconcile starts from a fresh instance: nothing a reconcile leaves in
    /// memory (a `static`, a `thread_local!`, a leaked allocation) reaches the next. On, each
    /// worker keeps its instance and reuses it, which saves instantiating the component for
    /// every reconcile: a few microseconds for a Rust plugin, but most of the cost of a
    /// reconcile for plugins with a heavy runtime (about 0.9 ms for a Python one). State kept
    /// in globals then survives into later reconciles of other keys on the same worker, so
    /// turn it on only when the reconcile does not depend on starting clean. The host still
    /// starts a fresh instance after any fault (a trap or panic, the deadline, the memory
    /// cap) and for a new version of the plugin; the deadline, the memory cap and the log
    /// limits still apply to each reconcile.
    ///
    /// The SDK's fake host (`testing`) ignores it: its reconciles run in the test's process.
    #[must_use]
    pub fn reuse_instances(mut self, reuse: bool) -> Self {
        self.reuse_instances = reuse;
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
            custom_resources: self
                .custom_resources
                .iter()
                // A serde_json::Value always serializes.
                .map(|crd| serde_json::to_vec(crd).unwrap_or_default())
                .collect(),
            reuse_instances: self.reuse_instances,
        }
    }
}

fn wit_kind(kind: &Kind) -> types::Kind {
    types::Kind {
        group: kind.group.to_owned(),
        version: kind.version.to_owned(),
        kind: kind.kind.to_owned(),
    }
}

#[cfg(feature = "testing")]
fn core_kind(kind: &Kind) -> kubewasm_core::KindRef {
    kubewasm_core::KindRef {
        group: kind.group.to_owned(),
        version: kind.version.to_owned(),
        kind: kind.kind.to_owned(),
        plural: None,
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
        assert_eq!(m.reconciles.kind.version, "v1");
        assert_eq!(m.reconciles.namespace.as_deref(), Some("demo"));
        assert_eq!(m.reconciles.label_selector.as_deref(), Some("app=web"));
        assert_eq!(m.owns[0].kind, "Pod");
        assert_eq!(m.watches[0].kind.kind, "Node");
        assert!(
            matches!(&m.watches[0].mapping, wit::WatchMapping::IndexLookup(l) if l.index == "by-node")
        );
        assert_eq!(m.indexes[0].field, "data.node");
        assert_eq!(
            m.permissions[0].verbs,
            vec![wit::Verb::Create, wit::Verb::Delete]
        );
        assert_eq!(m.concurrency, 3);
        assert!(
            !m.reuse_instances,
            "instances are not kept unless asked for"
        );
    }

    #[test]
    fn reuse_instances_reaches_the_wit_manifest() {
        let m = Manifest::reconcile::<ConfigMap>()
            .reuse_instances(true)
            .into_wit();
        assert!(m.reuse_instances);
        let m = Manifest::reconcile::<ConfigMap>()
            .reuse_instances(true)
            .reuse_instances(false)
            .into_wit();
        assert!(!m.reuse_instances);
    }

    struct Widget;

    impl serde::Serialize for Widget {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_unit()
        }
    }

    impl<'de> serde::Deserialize<'de> for Widget {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Widget)
        }
    }

    impl Object for Widget {
        const GROUP: &'static str = "example.com";
        const VERSION: &'static str = "v1";
        const KIND: &'static str = "Widget";
        const NAMESPACED: bool = true;
        fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            unreachable!("not called")
        }
    }

    impl CustomResourceExt for Widget {
        fn crd() -> serde_json::Value {
            serde_json::json!({"kind": "CustomResourceDefinition", "spec": {"group": "example.com"}})
        }
    }

    #[test]
    fn a_custom_resource_ships_its_crd_as_json_in_the_wit_manifest() {
        let m = Manifest::reconcile::<Widget>()
            .custom_resource::<Widget>()
            .into_wit();
        assert_eq!(m.custom_resources.len(), 1);
        let crd: serde_json::Value = serde_json::from_slice(&m.custom_resources[0]).unwrap();
        assert_eq!(crd["spec"]["group"], "example.com");
        assert_eq!(m.reconciles.kind.kind, "Widget");
    }
}
