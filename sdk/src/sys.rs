//! The one seam between the typed API and the host: every raw WIT call goes through here.
//!
//! Functions take SDK types ([`Kind`], `&str`, bytes) and return SDK errors, so a native fake
//! host can later replace this module for unit tests without touching the typed layer.

use crate::bindings::kubewasm::controller::{cache, client, events, log, types};
use crate::error::Result;
use crate::object::Kind;

fn wit_kind(kind: &Kind) -> types::Kind {
    types::Kind {
        group: kind.group.to_owned(),
        version: kind.version.to_owned(),
        kind: kind.kind.to_owned(),
        plural: kind.plural.map(str::to_owned),
        namespaced: kind.namespaced,
    }
}

fn ns(namespace: &str) -> Option<String> {
    (!namespace.is_empty()).then(|| namespace.to_owned())
}

pub(crate) fn get(kind: &Kind, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
    Ok(cache::get(&wit_kind(kind), ns(namespace).as_deref(), name)?)
}

pub(crate) fn list(kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<u8>> {
    let selector = (!selector.is_empty()).then_some(selector);
    Ok(cache::list(
        &wit_kind(kind),
        ns(namespace).as_deref(),
        selector,
    )?)
}

pub(crate) fn list_by_index(kind: &Kind, index: &str, value: &str) -> Result<Vec<u8>> {
    Ok(cache::list_by_index(&wit_kind(kind), index, value)?)
}

pub(crate) fn create(kind: &Kind, namespace: &str, body: &[u8]) -> Result<Vec<u8>> {
    Ok(client::create(
        &wit_kind(kind),
        ns(namespace).as_deref(),
        body,
    )?)
}

pub(crate) fn replace(
    kind: &Kind,
    namespace: &str,
    name: &str,
    body: &[u8],
    status: bool,
) -> Result<Vec<u8>> {
    let k = wit_kind(kind);
    let n = ns(namespace);
    Ok(if status {
        client::replace_status(&k, n.as_deref(), name, body)?
    } else {
        client::replace(&k, n.as_deref(), name, body)?
    })
}

/// How a patch body is applied (mirrors the WIT `patch` variant).
pub(crate) enum PatchBody {
    Merge(Vec<u8>),
    Json(Vec<u8>),
    Apply { body: Vec<u8>, force: bool },
}

pub(crate) fn patch(
    kind: &Kind,
    namespace: &str,
    name: &str,
    patch: PatchBody,
    status: bool,
) -> Result<Vec<u8>> {
    let patch = match patch {
        PatchBody::Merge(b) => client::PatchBody::Merge(b),
        PatchBody::Json(b) => client::PatchBody::JsonPatch(b),
        PatchBody::Apply { body, force } => {
            client::PatchBody::Apply(client::ApplyPatch { body, force })
        }
    };
    Ok(client::patch(
        &wit_kind(kind),
        ns(namespace).as_deref(),
        name,
        &patch,
        status,
    )?)
}

pub(crate) fn delete(kind: &Kind, namespace: &str, name: &str) -> Result<()> {
    Ok(client::delete(
        &wit_kind(kind),
        ns(namespace).as_deref(),
        name,
    )?)
}

pub(crate) fn record_event(
    kind: &Kind,
    namespace: &str,
    name: &str,
    warning: bool,
    reason: &str,
    note: &str,
    action: &str,
) -> Result<()> {
    let event = events::Event {
        regarding: types::ObjectRef {
            kind: wit_kind(kind),
            namespace: ns(namespace),
            name: name.to_owned(),
        },
        event_type: if warning {
            events::EventType::Warning
        } else {
            events::EventType::Normal
        },
        reason: reason.to_owned(),
        note: note.to_owned(),
        action: action.to_owned(),
    };
    Ok(events::record_event(&event)?)
}

pub(crate) fn log(level: crate::log::Level, message: &str) {
    let level = match level {
        crate::log::Level::Trace => log::Level::Trace,
        crate::log::Level::Debug => log::Level::Debug,
        crate::log::Level::Info => log::Level::Info,
        crate::log::Level::Warn => log::Level::Warn,
        crate::log::Level::Error => log::Level::Error,
    };
    log::log(level, message);
}
