//! The core [`Request`] as each WIT version's `reconciler.request` (a 0.1.0 kind carries its
//! plural and scope).

use kubewasm_core::{ObjectRef, Reason, Request};

use super::bindings::{v1, v2};

/// The 0.2.0 request for a core one.
pub(crate) fn request_v2(r: Request) -> v2::exports::kubewasm::controller::reconciler::Request {
    use v2::exports::kubewasm::controller::reconciler::Reason as R;
    use v2::kubewasm::controller::types as t;
    let object = |r: ObjectRef| t::ObjectRef {
        kind: t::Kind {
            group: r.kind.group,
            version: r.kind.version,
            kind: r.kind.kind,
        },
        namespace: r.namespace,
        name: r.name,
    };
    v2::exports::kubewasm::controller::reconciler::Request {
        namespace: r.namespace,
        name: r.name,
        reason: match r.reason {
            Reason::Created => R::Created,
            Reason::Changed => R::Changed,
            Reason::Deleted => R::Deleted,
            Reason::OwnedChanged(o) => R::OwnedChanged(object(o)),
            Reason::WatchedChanged(o) => R::WatchedChanged(object(o)),
            Reason::Requeue => R::Requeue,
            Reason::Retry(n) => R::Retry(n),
            Reason::Resync => R::Resync,
        },
    }
}

/// The 0.1.0 request for a core one (its kinds carry their plural and scope).
pub(crate) fn request_v1(r: Request) -> v1::exports::kubewasm::controller::reconciler::Request {
    use v1::exports::kubewasm::controller::reconciler::Reason as R;
    use v1::kubewasm::controller::types as t;
    let object = |r: ObjectRef| t::ObjectRef {
        kind: t::Kind {
            group: r.kind.group,
            version: r.kind.version,
            kind: r.kind.kind,
            plural: Some(r.kind.plural),
            namespaced: r.kind.namespaced,
        },
        namespace: r.namespace,
        name: r.name,
    };
    v1::exports::kubewasm::controller::reconciler::Request {
        namespace: r.namespace,
        name: r.name,
        reason: match r.reason {
            Reason::Created => R::Created,
            Reason::Changed => R::Changed,
            Reason::Deleted => R::Deleted,
            Reason::OwnedChanged(o) => R::OwnedChanged(object(o)),
            Reason::WatchedChanged(o) => R::WatchedChanged(object(o)),
            Reason::Requeue => R::Requeue,
            Reason::Retry(n) => R::Retry(n),
            Reason::Resync => R::Resync,
        },
    }
}
