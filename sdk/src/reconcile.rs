//! The [`Plugin`] trait a plugin implements, and the [`Request`] and [`Action`] of a reconcile.

use std::time::Duration;

use crate::bindings::exports::kubewasm::controller::reconciler as wit;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::object::{Kind, Object};

/// A reconciler. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// What the plugin needs. Called once when the host loads the plugin.
    fn manifest() -> Manifest;

    /// Brings the world in line with the object named by `request`. Must be idempotent: the
    /// cache is eventually consistent and the same key may be reconciled many times.
    ///
    /// # Errors
    /// Any error fails this reconcile; the host retries the key with exponential backoff.
    fn reconcile(request: Request) -> Result<Action>;
}

/// Which object to reconcile and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Namespace of the object, `""` for a cluster-scoped kind.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Why the reconcile fired.
    pub reason: Reason,
}

/// Why a reconcile fired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The object appeared (also at startup).
    Created,
    /// The object changed.
    Changed,
    /// The object was deleted.
    Deleted,
    /// An owned object changed.
    OwnedChanged(ObjectRef),
    /// A watched object changed.
    WatchedChanged(ObjectRef),
    /// A previous reconcile asked for a requeue.
    Requeue,
    /// A previous reconcile failed; attempt number (1 = first retry).
    Retry(u32),
    /// Periodic resync.
    Resync,
}

/// Names an object of any kind (in a [`Reason`], or an [`Event`](crate::Event)'s related object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind name.
    pub kind: String,
    /// Namespace, `""` for cluster-scoped.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `obj` (its kind, and namespace and name from its metadata).
    pub fn of<K: Object>(obj: &K) -> Self {
        let meta = obj.meta();
        Self {
            group: K::GROUP.to_owned(),
            version: K::VERSION.to_owned(),
            kind: K::KIND.to_owned(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// True when this refers to kind `k`.
    pub fn is(&self, k: &Kind) -> bool {
        self.group == k.group && self.kind == k.kind
    }
}

/// What to do after a successful reconcile.
///
/// ```
/// use std::time::Duration;
/// use kubewasm_sdk::Action;
///
/// let wait_for_change = Action::done();
/// let poll = Action::requeue(Duration::from_secs(30)); // e.g. waiting on something external
/// assert_eq!(poll.requeue_after(), Some(Duration::from_secs(30)));
/// assert_eq!(wait_for_change.requeue_after(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(Option<Duration>);

impl Action {
    /// Nothing until the next change.
    pub const fn done() -> Self {
        Self(None)
    }

    /// Reconcile this key again after `after`.
    pub const fn requeue(after: Duration) -> Self {
        Self(Some(after))
    }

    /// The requeue delay, if any.
    pub const fn requeue_after(&self) -> Option<Duration> {
        self.0
    }
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Self {
        let obj = |o: crate::bindings::kubewasm::controller::types::ObjectRef| ObjectRef {
            group: o.kind.group,
            version: o.kind.version,
            kind: o.kind.kind,
            namespace: o.namespace.unwrap_or_default(),
            name: o.name,
        };
        Self {
            namespace: r.namespace.unwrap_or_default(),
            name: r.name,
            reason: match r.reason {
                wit::Reason::Created => Reason::Created,
                wit::Reason::Changed => Reason::Changed,
                wit::Reason::Deleted => Reason::Deleted,
                wit::Reason::OwnedChanged(o) => Reason::OwnedChanged(obj(o)),
                wit::Reason::WatchedChanged(o) => Reason::WatchedChanged(obj(o)),
                wit::Reason::Requeue => Reason::Requeue,
                wit::Reason::Retry(n) => Reason::Retry(n),
                wit::Reason::Resync => Reason::Resync,
            },
        }
    }
}

impl From<Action> for wit::Action {
    fn from(a: Action) -> Self {
        match a.0 {
            None => wit::Action::Done,
            Some(d) => wit::Action::RequeueAfter(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_crosses_as_nanoseconds_and_done_as_done() {
        assert!(matches!(
            wit::Action::from(Action::done()),
            wit::Action::Done
        ));
        let requeue = wit::Action::from(Action::requeue(Duration::from_secs(2)));
        assert!(matches!(requeue, wit::Action::RequeueAfter(2_000_000_000)));
        let forever = wit::Action::from(Action::requeue(Duration::MAX));
        assert!(matches!(forever, wit::Action::RequeueAfter(u64::MAX)));
        assert_eq!(
            Action::requeue(Duration::from_millis(5)).requeue_after(),
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn a_cluster_scoped_request_has_an_empty_namespace() {
        let r = Request::from(wit::Request {
            namespace: None,
            name: "n1".into(),
            reason: wit::Reason::Retry(3),
        });
        assert_eq!(
            r,
            Request {
                namespace: String::new(),
                name: "n1".into(),
                reason: Reason::Retry(3)
            }
        );
    }
}
