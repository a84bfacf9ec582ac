//! The one seam between the typed API and the host: every raw WIT call goes through here.
//!
//! Functions take SDK types ([`Kind`], `&str`, bytes) and return SDK errors. In a
//! `wasm32` build they call the host through the WIT imports; in a native build (a plugin's
//! `cargo test`) they call the fake host of [`crate::testing`] installed on the current
//! thread, or fail with [`Error::Internal`](crate::Error::Internal) naming the fix.

pub(crate) use crate::data::PatchBody;

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
pub(crate) use crate::testing::sys::*;

#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
pub(crate) use no_host::*;

/// The real host, through the WIT imports.
#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::PatchBody;
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

    fn field_list(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|f| (*f).to_owned()).collect()
    }

    pub(crate) fn get_fields(
        kind: &Kind,
        namespace: &str,
        name: &str,
        fields: &[&str],
    ) -> Result<Option<Vec<u8>>> {
        Ok(cache::get_fields(
            &wit_kind(kind),
            ns(namespace).as_deref(),
            name,
            &field_list(fields),
        )?)
    }

    pub(crate) fn list_fields(
        kind: &Kind,
        namespace: &str,
        selector: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        let selector = (!selector.is_empty()).then_some(selector);
        Ok(cache::list_fields(
            &wit_kind(kind),
            ns(namespace).as_deref(),
            selector,
            &field_list(fields),
        )?)
    }

    pub(crate) fn list_by_index_fields(
        kind: &Kind,
        index: &str,
        value: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        Ok(cache::list_by_index_fields(
            &wit_kind(kind),
            index,
            value,
            &field_list(fields),
        )?)
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

    pub(crate) fn log(level: crate::data::Level, message: &str) {
        let level = match level {
            crate::data::Level::Trace => log::Level::Trace,
            crate::data::Level::Debug => log::Level::Debug,
            crate::data::Level::Info => log::Level::Info,
            crate::data::Level::Warn => log::Level::Warn,
            crate::data::Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }
}

/// A native build without the `testing` feature: there is no host to call.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
mod no_host {
    use super::PatchBody;
    use crate::error::{Error, Result};
    use crate::object::Kind;

    fn no_host<T>() -> Result<T> {
        Err(Error::Internal(
            "no kubewasm host: this is a native build; build the plugin for wasm32-wasip2, or \
             in tests enable the kubewasm-sdk feature `testing` and create a \
             kubewasm_sdk::testing::FakeHost"
                .into(),
        ))
    }

    pub(crate) fn get(_: &Kind, _: &str, _: &str) -> Result<Option<Vec<u8>>> {
        no_host()
    }
    pub(crate) fn list(_: &Kind, _: &str, _: &str) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn list_by_index(_: &Kind, _: &str, _: &str) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn get_fields(_: &Kind, _: &str, _: &str, _: &[&str]) -> Result<Option<Vec<u8>>> {
        no_host()
    }
    pub(crate) fn list_fields(_: &Kind, _: &str, _: &str, _: &[&str]) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn list_by_index_fields(_: &Kind, _: &str, _: &str, _: &[&str]) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn create(_: &Kind, _: &str, _: &[u8]) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn replace(_: &Kind, _: &str, _: &str, _: &[u8], _: bool) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn patch(_: &Kind, _: &str, _: &str, _: PatchBody, _: bool) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn delete(_: &Kind, _: &str, _: &str) -> Result<()> {
        no_host()
    }
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_event(
        _: &Kind,
        _: &str,
        _: &str,
        _: bool,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<()> {
        no_host()
    }
    pub(crate) fn log(level: crate::data::Level, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
}
