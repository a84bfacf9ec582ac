//! What a reconcile is asked to do: the key and why it fires ([`Request`], [`Reason`]), the same
//! model the host's queue hands out and the WIT `request` record carries.

use crate::manifest::Kind;

/// An object of any kind, in a [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Namespace (`None` for cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// Why a reconcile fires (the WIT `reason` variant, `wit/reconciler.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The object appeared.
    Created,
    /// The object changed.
    Changed,
    /// The object was deleted.
    Deleted,
    /// An owned object changed.
    OwnedChanged(ObjectRef),
    /// A watched object changed.
    WatchedChanged(ObjectRef),
    /// A requested requeue.
    Requeue,
    /// A retry after a failure; attempt number.
    Retry(u32),
    /// Periodic resync.
    Resync,
}

/// The key to reconcile and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Why.
    pub reason: Reason,
}

impl Request {
    /// A request for `namespace/name` (`""` namespace = cluster-scoped).
    pub fn new(namespace: &str, name: &str, reason: Reason) -> Self {
        Self {
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            name: name.to_owned(),
            reason,
        }
    }

    /// `namespace/name`, or `name`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.kind, self.name),
            None => write!(f, "{} {}", self.kind.kind, self.name),
        }
    }
}

/// How logs and `kubewasm dev` say why a reconcile fired: `created`, `owned Pod web/a changed`,
/// `retry 3`...
impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created => f.write_str("created"),
            Self::Changed => f.write_str("changed"),
            Self::Deleted => f.write_str("deleted"),
            Self::OwnedChanged(o) => write!(f, "owned {o} changed"),
            Self::WatchedChanged(o) => write!(f, "watched {o} changed"),
            Self::Requeue => f.write_str("requeue"),
            Self::Retry(n) => write!(f, "retry {n}"),
            Self::Resync => f.write_str("resync"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_words() {
        let pod = ObjectRef {
            kind: Kind {
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
                plural: "pods".into(),
                namespaced: true,
            },
            namespace: Some("web".into()),
            name: "a".into(),
        };
        assert_eq!(
            Reason::OwnedChanged(pod).to_string(),
            "owned Pod web/a changed"
        );
        assert_eq!(Reason::Retry(3).to_string(), "retry 3");
        assert_eq!(Reason::Created.to_string(), "created");
    }
}
