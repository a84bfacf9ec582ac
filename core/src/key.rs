//! `ObjectKey`: the namespace/name that identifies an object in a store and a key in a work queue.

use std::fmt;

/// The identity of an object of a known kind: its namespace (`None` for cluster-scoped objects) and name.
///
/// Displays as `namespace/name`, or `name` when cluster-scoped, like client-go's `MetaNamespaceKeyFunc`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// A key for a namespaced object.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A key for a cluster-scoped object.
    pub fn cluster(name: impl Into<String>) -> Self {
        Self {
            namespace: None,
            name: name.into(),
        }
    }

    /// A key from optional parts as they come out of object metadata (an empty namespace means
    /// cluster-scoped).
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The namespace as a `&str`, `None` when cluster-scoped.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_displays_like_client_go_and_treats_empty_namespace_as_cluster_scope() {
        assert_eq!(ObjectKey::namespaced("ns", "a").to_string(), "ns/a");
        assert_eq!(ObjectKey::cluster("n1").to_string(), "n1");
        assert_eq!(ObjectKey::new(Some(""), "x"), ObjectKey::cluster("x"));
    }
}
