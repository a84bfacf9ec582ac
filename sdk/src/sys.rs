//! The one seam between the typed API and the host: every raw WIT call goes through here.
//!
//! Functions take SDK types ([`Kind`](crate::Kind), namespaces as `Option<&str>`, bytes) and
//! return SDK errors. In a `wasm32` build they call the host through the WIT imports; in a
//! native build (a plugin's `cargo test`) they call the fake host of [`crate::testing`]
//! installed on the current thread, or fail with [`Error::Internal`](crate::Error::Internal)
//! naming the fix.

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
pub(crate) use crate::testing::sys::*;

#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
pub(crate) use no_host::*;

/// The wall clock, to the second (as Kubernetes timestamps are).
#[cfg_attr(
    all(not(target_arch = "wasm32"), feature = "testing"),
    allow(dead_code)
)]
fn system_now() -> k8s_openapi::jiff::Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// The real host, through the WIT imports.
#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::bindings::kubewasm::controller::{cache, client, events, log, types};
    use crate::data::{DeleteParams, EventType, ListParams, Propagation};
    use crate::data::{EventRecord, ObjectKey, PatchBody, Subresource};
    use crate::error::Result;
    use crate::object::Kind;

    fn wit_kind(kind: &Kind) -> types::Kind {
        types::Kind {
            group: kind.group.to_owned(),
            version: kind.version.to_owned(),
            kind: kind.kind.to_owned(),
        }
    }

    fn params(namespace: Option<&str>, lp: &ListParams) -> cache::ListParams {
        cache::ListParams {
            namespace: namespace.map(str::to_owned),
            label_selector: lp.label_selector.clone(),
            field_selector: lp.field_selector.clone(),
            index: lp.index.as_ref().map(|(name, value)| cache::IndexQuery {
                name: name.clone(),
                value: value.clone(),
            }),
        }
    }

    fn field_list(fields: Option<&[&str]>) -> Option<Vec<String>> {
        fields.map(|f| f.iter().map(|f| (*f).to_owned()).collect())
    }

    fn sub(s: Option<Subresource>) -> Option<types::Subresource> {
        s.map(|s| match s {
            Subresource::Status => types::Subresource::Status,
            Subresource::Scale => types::Subresource::Scale,
        })
    }

    pub(crate) fn get(
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        fields: Option<&[&str]>,
    ) -> Result<Option<Vec<u8>>> {
        Ok(cache::get(
            &wit_kind(kind),
            namespace,
            name,
            field_list(fields).as_deref(),
        )?)
    }

    pub(crate) fn list(
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
        fields: Option<&[&str]>,
    ) -> Result<Vec<u8>> {
        Ok(cache::list(
            &wit_kind(kind),
            &params(namespace, lp),
            field_list(fields).as_deref(),
        )?)
    }

    pub(crate) fn keys(
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<Vec<ObjectKey>> {
        Ok(cache::keys(&wit_kind(kind), &params(namespace, lp))?
            .into_iter()
            .map(|k| ObjectKey {
                namespace: k.namespace,
                name: k.name,
            })
            .collect())
    }

    pub(crate) fn count(kind: &Kind, namespace: Option<&str>, lp: &ListParams) -> Result<u64> {
        Ok(cache::count(&wit_kind(kind), &params(namespace, lp))?)
    }

    pub(crate) fn create(kind: &Kind, namespace: Option<&str>, body: &[u8]) -> Result<Vec<u8>> {
        Ok(client::create(&wit_kind(kind), namespace, body)?)
    }

    pub(crate) fn replace(
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        body: &[u8],
        subresource: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        Ok(client::replace(
            &wit_kind(kind),
            namespace,
            name,
            body,
            sub(subresource),
        )?)
    }

    pub(crate) fn patch(
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch: PatchBody,
        subresource: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        let patch = match patch {
            PatchBody::Merge(b) => client::PatchBody::Merge(b),
            PatchBody::Json(b) => client::PatchBody::JsonPatch(b),
            PatchBody::Strategic(b) => client::PatchBody::StrategicMerge(b),
            PatchBody::Apply { body, force } => {
                client::PatchBody::Apply(client::ApplyPatch { body, force })
            }
        };
        Ok(client::patch(
            &wit_kind(kind),
            namespace,
            name,
            &patch,
            sub(subresource),
        )?)
    }

    pub(crate) fn delete(
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        dp: &DeleteParams,
    ) -> Result<()> {
        let options = client::DeleteOptions {
            propagation: dp.propagation.map(|p| match p {
                Propagation::Background => client::Propagation::Background,
                Propagation::Foreground => client::Propagation::Foreground,
                Propagation::Orphan => client::Propagation::Orphan,
            }),
            uid: dp.uid.clone(),
            resource_version: dp.resource_version.clone(),
        };
        Ok(client::delete(&wit_kind(kind), namespace, name, &options)?)
    }

    pub(crate) fn record_event(record: &EventRecord<'_>) -> Result<()> {
        let e = record.event;
        let event = events::Event {
            regarding: types::ObjectRef {
                kind: wit_kind(&record.kind),
                namespace: record.namespace.map(str::to_owned),
                name: record.name.to_owned(),
            },
            related: e.related.as_ref().map(|r| types::ObjectRef {
                kind: types::Kind {
                    group: r.group.clone(),
                    version: r.version.clone(),
                    kind: r.kind.clone(),
                },
                namespace: (!r.namespace.is_empty()).then(|| r.namespace.clone()),
                name: r.name.clone(),
            }),
            event_type: match e.event_type {
                EventType::Normal => events::EventType::Normal,
                EventType::Warning => events::EventType::Warning,
            },
            reason: e.reason.clone(),
            note: e.note.clone(),
            action: e.action.clone(),
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

    pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
        super::system_now()
    }
}

/// A native build without the `testing` feature: there is no host to call.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
mod no_host {
    use crate::data::{DeleteParams, ListParams};
    use crate::data::{EventRecord, ObjectKey, PatchBody, Subresource};
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

    pub(crate) fn get(
        _: &Kind,
        _: Option<&str>,
        _: &str,
        _: Option<&[&str]>,
    ) -> Result<Option<Vec<u8>>> {
        no_host()
    }
    pub(crate) fn list(
        _: &Kind,
        _: Option<&str>,
        _: &ListParams,
        _: Option<&[&str]>,
    ) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn keys(_: &Kind, _: Option<&str>, _: &ListParams) -> Result<Vec<ObjectKey>> {
        no_host()
    }
    pub(crate) fn count(_: &Kind, _: Option<&str>, _: &ListParams) -> Result<u64> {
        no_host()
    }
    pub(crate) fn create(_: &Kind, _: Option<&str>, _: &[u8]) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn replace(
        _: &Kind,
        _: Option<&str>,
        _: &str,
        _: &[u8],
        _: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn patch(
        _: &Kind,
        _: Option<&str>,
        _: &str,
        _: PatchBody,
        _: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        no_host()
    }
    pub(crate) fn delete(_: &Kind, _: Option<&str>, _: &str, _: &DeleteParams) -> Result<()> {
        no_host()
    }
    pub(crate) fn record_event(_: &EventRecord<'_>) -> Result<()> {
        no_host()
    }
    pub(crate) fn log(level: crate::data::Level, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
    pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
        super::system_now()
    }
}
