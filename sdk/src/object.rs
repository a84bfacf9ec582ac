//! [`Object`]: what the SDK needs to know about a Kubernetes type, [`Kind`], its runtime
//! form, and [`CustomResourceExt`], the CustomResourceDefinition of a custom kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Kubernetes object type the SDK can read and write.
///
/// Every k8s-openapi type with `ObjectMeta` (Pod, ConfigMap, Deployment, ...) implements it
/// already. For a custom resource, implement it on your serde struct (and
/// [`CustomResourceExt`] to ship its CRD in the manifest):
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
    /// Ignored: `kubewasm:controller@0.2.0` kinds carry no plural (the host resolves it from
    /// discovery, or from the CRD in the manifest's `custom-resources`).
    #[deprecated(
        note = "ignored since kubewasm:controller@0.2.0: the host resolves plurals from discovery or from Manifest::custom_resource"
    )]
    const PLURAL: Option<&'static str> = None;
    /// Whether objects live in a namespace. [`Api::namespaced`](crate::Api::namespaced) on a
    /// kind where this is `false` does not compile.
    const NAMESPACED: bool;

    /// The object's metadata (namespace and name are read from here by writes).
    fn meta(&self) -> &ObjectMeta;
}

/// A custom kind whose CustomResourceDefinition the plugin ships in its manifest
/// ([`Manifest::custom_resource`](crate::Manifest::custom_resource)): the host learns the
/// kind's plural and scope from it before the API server serves the kind, `kubewasm plugin crd`
/// prints it and `kubewasm dev` installs it.
///
/// ```
/// # use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Greeting { metadata: ObjectMeta }
/// # impl kubewasm_sdk::Object for Greeting {
/// #     const GROUP: &'static str = "example.com";
/// #     const VERSION: &'static str = "v1";
/// #     const KIND: &'static str = "Greeting";
/// #     const NAMESPACED: bool = true;
/// #     fn meta(&self) -> &ObjectMeta { &self.metadata }
/// # }
/// use serde_json::json;
///
/// impl kubewasm_sdk::CustomResourceExt for Greeting {
///     fn crd() -> serde_json::Value {
///         json!({
///             "apiVersion": "apiextensions.k8s.io/v1",
///             "kind": "CustomResourceDefinition",
///             "metadata": {"name": "greetings.example.com"},
///             "spec": {
///                 "group": "example.com",
///                 "names": {"kind": "Greeting", "plural": "greetings", "singular": "greeting"},
///                 "scope": "Namespaced",
///                 "versions": [{"name": "v1", "served": true, "storage": true,
///                     "schema": {"openAPIV3Schema": {"type": "object",
///                         "x-kubernetes-preserve-unknown-fields": true}}}]
///             }
///         })
///     }
/// }
/// ```
pub trait CustomResourceExt: Object {
    /// The kind's CustomResourceDefinition (`apiextensions.k8s.io/v1`) as JSON.
    fn crd() -> serde_json::Value;
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
    /// Namespaced or cluster-scoped (not sent to the host, which learns it from discovery;
    /// the fake host and [`Api`](crate::Api) use it).
    pub namespaced: bool,
}

impl Kind {
    /// The kind of `T`.
    pub const fn of<T: Object>() -> Self {
        Self {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            namespaced: T::NAMESPACED,
        }
    }

    /// `apiVersion` as objects spell it: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn k8s_openapi_types_carry_group_version_kind_and_scope() {
        assert_eq!(
            Kind::of::<Pod>(),
            Kind {
                group: "",
                version: "v1",
                kind: "Pod",
                namespaced: true
            }
        );
        assert_eq!(Kind::of::<Deployment>().api_version(), "apps/v1");
        assert!(!Kind::of::<Node>().namespaced);
    }
}
