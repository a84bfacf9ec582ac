//! [`Object`]: what the SDK needs to know about a Kubernetes type, and [`Kind`], its runtime form.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Kubernetes object type the SDK can read and write.
///
/// Every k8s-openapi type with `ObjectMeta` (Pod, ConfigMap, Deployment, ...) implements it
/// already. For a custom resource, implement it on your serde struct:
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Default)]
/// #[serde(rename_all = "camelCase")]
/// struct Greeting {
///     api_version: String,
///     kind: String,
///     metadata: ObjectMeta,
///     spec: GreetingSpec,
/// }
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct GreetingSpec {
///     message: String,
/// }
///
/// impl kubewasm_sdk::Object for Greeting {
///     const GROUP: &'static str = "example.com";
///     const VERSION: &'static str = "v1";
///     const KIND: &'static str = "Greeting";
///     const PLURAL: Option<&'static str> = Some("greetings");
///     const NAMESPACED: bool = true;
///     fn meta(&self) -> &ObjectMeta {
///         &self.metadata
///     }
/// }
/// ```
pub trait Object: Serialize + DeserializeOwned {
    /// API group, `""` for core.
    const GROUP: &'static str;
    /// API version, e.g. `v1`.
    const VERSION: &'static str;
    /// Kind, e.g. `Pod`.
    const KIND: &'static str;
    /// URL plural, e.g. `pods`; `None` lets the host guess it (see the WIT `kind` record).
    const PLURAL: Option<&'static str> = None;
    /// Whether objects live in a namespace.
    const NAMESPACED: bool;

    /// The object's metadata (namespace and name are read from here by writes).
    fn meta(&self) -> &ObjectMeta;
}

/// Whether a k8s-openapi resource scope is namespaced. Implemented for k8s-openapi's scopes.
pub trait Scope {
    /// True for namespaced kinds.
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

impl<T> Object for T
where
    T: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned,
    T::Scope: Scope,
{
    const GROUP: &'static str = T::GROUP;
    const VERSION: &'static str = T::VERSION;
    const KIND: &'static str = T::KIND;
    const PLURAL: Option<&'static str> = Some(T::URL_PATH_SEGMENT);
    const NAMESPACED: bool = <T::Scope as Scope>::NAMESPACED;

    fn meta(&self) -> &ObjectMeta {
        k8s_openapi::Metadata::metadata(self)
    }
}

/// A kind as a value: the runtime form of an [`Object`] type's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group, `""` for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind name.
    pub kind: &'static str,
    /// URL plural, if known.
    pub plural: Option<&'static str>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Kind {
    /// The kind of `T`.
    pub const fn of<T: Object>() -> Self {
        Self {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            plural: T::PLURAL,
            namespaced: T::NAMESPACED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn k8s_openapi_types_carry_group_version_kind_plural_and_scope() {
        assert_eq!(
            Kind::of::<Pod>(),
            Kind {
                group: "",
                version: "v1",
                kind: "Pod",
                plural: Some("pods"),
                namespaced: true
            }
        );
        assert_eq!(Kind::of::<Deployment>().group, "apps");
        assert!(!Kind::of::<Node>().namespaced);
    }
}
