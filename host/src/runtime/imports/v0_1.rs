//! `kubewasm:controller@0.1.0`'s imports: a thin adapter. Each call is converted to its
//! 0.2.0 form and served by the same code (`cache.rs`, `client.rs`, `events.rs`, `log.rs`),
//! so both versions check permissions and reach the backend identically.
//!
//! What 0.1.0 said differently: a kind carried its plural and scope (the host uses the
//! manifest's, resolved when the plugin loaded, as for 0.2.0); `list-by-index*` and
//! `*-fields` are `list`/`get` with an index or fields; `replace-status` and `patch(status)`
//! address the status subresource; `delete` propagates in the background.

use super::super::api_error::ApiError;
use super::super::bindings::v1::kubewasm::controller as old;
use super::super::bindings::v2::kubewasm::controller as new;
use super::super::state::HostState;

type Reply<T> = wasmtime::Result<Result<T, old::types::Error>>;

/// The 0.2.0 kind: group, version and kind (plural and scope come from the manifest).
pub(crate) fn kind(k: old::types::Kind) -> new::types::Kind {
    new::types::Kind {
        group: k.group,
        version: k.version,
        kind: k.kind,
    }
}

fn object_ref(r: old::types::ObjectRef) -> new::types::ObjectRef {
    new::types::ObjectRef {
        kind: kind(r.kind),
        namespace: r.namespace,
        name: r.name,
    }
}

/// A 0.2.0 error handed back to a 0.1.0 plugin (the cases are the same).
fn error(e: new::types::Error) -> old::types::Error {
    ApiError::from(e).into()
}

fn reply<T>(r: wasmtime::Result<Result<T, new::types::Error>>) -> Reply<T> {
    r.map(|r| r.map_err(error))
}

fn params(
    namespace: Option<String>,
    label_selector: Option<String>,
    index: Option<(String, String)>,
) -> new::cache::ListParams {
    new::cache::ListParams {
        namespace,
        label_selector,
        field_selector: None,
        index: index.map(|(name, value)| new::cache::IndexQuery { name, value }),
    }
}

impl old::types::Host for HostState {}

impl old::cache::Host for HostState {
    fn get(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
    ) -> Reply<Option<Vec<u8>>> {
        reply(new::cache::Host::get(self, kind(k), namespace, name, None))
    }

    fn list(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Reply<Vec<u8>> {
        let p = params(namespace, label_selector, None);
        reply(new::cache::Host::list(self, kind(k), p, None))
    }

    fn list_by_index(
        &mut self,
        k: old::types::Kind,
        index: String,
        value: String,
    ) -> Reply<Vec<u8>> {
        let p = params(None, None, Some((index, value)));
        reply(new::cache::Host::list(self, kind(k), p, None))
    }

    fn get_fields(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
        fields: Vec<String>,
    ) -> Reply<Option<Vec<u8>>> {
        reply(new::cache::Host::get(
            self,
            kind(k),
            namespace,
            name,
            Some(fields),
        ))
    }

    fn list_fields(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        label_selector: Option<String>,
        fields: Vec<String>,
    ) -> Reply<Vec<u8>> {
        let p = params(namespace, label_selector, None);
        reply(new::cache::Host::list(self, kind(k), p, Some(fields)))
    }

    fn list_by_index_fields(
        &mut self,
        k: old::types::Kind,
        index: String,
        value: String,
        fields: Vec<String>,
    ) -> Reply<Vec<u8>> {
        let p = params(None, None, Some((index, value)));
        reply(new::cache::Host::list(self, kind(k), p, Some(fields)))
    }
}

impl old::client::Host for HostState {
    async fn create(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        reply(new::client::Host::create(self, kind(k), namespace, body).await)
    }

    async fn replace(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        reply(new::client::Host::replace(self, kind(k), namespace, name, body, None).await)
    }

    async fn replace_status(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        let status = Some(new::types::Subresource::Status);
        reply(new::client::Host::replace(self, kind(k), namespace, name, body, status).await)
    }

    async fn patch(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
        patch: old::client::PatchBody,
        status: bool,
    ) -> Reply<Vec<u8>> {
        let patch = match patch {
            old::client::PatchBody::Merge(b) => new::client::PatchBody::Merge(b),
            old::client::PatchBody::JsonPatch(b) => new::client::PatchBody::JsonPatch(b),
            old::client::PatchBody::Apply(a) => {
                new::client::PatchBody::Apply(new::client::ApplyPatch {
                    body: a.body,
                    force: a.force,
                })
            }
        };
        let sub = status.then_some(new::types::Subresource::Status);
        reply(new::client::Host::patch(self, kind(k), namespace, name, patch, sub).await)
    }

    async fn delete(
        &mut self,
        k: old::types::Kind,
        namespace: Option<String>,
        name: String,
    ) -> Reply<()> {
        // 0.1.0 promised background propagation, not the kind's default.
        let options = new::client::DeleteOptions {
            propagation: Some(new::client::Propagation::Background),
            uid: None,
            resource_version: None,
        };
        reply(new::client::Host::delete(self, kind(k), namespace, name, options).await)
    }
}

impl old::events::Host for HostState {
    async fn record_event(&mut self, e: old::events::Event) -> Reply<()> {
        let event = new::events::Event {
            regarding: object_ref(e.regarding),
            related: None,
            event_type: match e.event_type {
                old::events::EventType::Normal => new::events::EventType::Normal,
                old::events::EventType::Warning => new::events::EventType::Warning,
            },
            reason: e.reason,
            note: e.note,
            action: e.action,
        };
        reply(new::events::Host::record_event(self, event).await)
    }
}

impl old::log::Host for HostState {
    fn log(&mut self, level: old::log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            old::log::Level::Trace => new::log::Level::Trace,
            old::log::Level::Debug => new::log::Level::Debug,
            old::log::Level::Info => new::log::Level::Info,
            old::log::Level::Warn => new::log::Level::Warn,
            old::log::Level::Error => new::log::Level::Error,
        };
        new::log::Host::log(self, level, message)
    }
}
