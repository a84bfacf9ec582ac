//! `kubewasm:controller/events`: Kubernetes Events through the backend.

use super::super::api_error::ApiError;
use super::super::backend::{EventRecord, EventType};
use super::super::bindings::v2::kubewasm::controller::events::{self as wit, Host};
use super::super::bindings::v2::kubewasm::controller::types::{self as wit_types, Error};
use super::super::state::HostState;
use super::check_scope;
use kubewasm_core::ObjectRef;

impl HostState {
    fn event_record(&self, e: wit::Event) -> Result<EventRecord, ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.declared(&e.regarding.kind.group, &e.regarding.kind.kind)?;
        check_scope(kind, e.regarding.namespace.as_deref())?;
        // The Event is written in the object's namespace, `default` for a cluster-scoped one.
        manifest
            .check_event_namespace(kind, e.regarding.namespace.as_deref().unwrap_or("default"))?;
        if e.reason.is_empty() || e.regarding.name.is_empty() {
            return Err(ApiError::Invalid(
                "an event needs a reason and an object name".into(),
            ));
        }
        Ok(EventRecord {
            kind: kind.clone(),
            namespace: e.regarding.namespace,
            name: e.regarding.name,
            related: e.related.map(|r| related(manifest, r)),
            event_type: match e.event_type {
                wit::EventType::Normal => EventType::Normal,
                wit::EventType::Warning => EventType::Warning,
            },
            reason: e.reason,
            note: e.note,
            action: e.action,
            reporting_controller: format!("kubewasm/{}", self.plugin),
        })
    }
}

/// The `related` object of an Event: its kind as the manifest declares it when it does (the
/// resolved plural and scope), else as the plugin named it (an Event only needs its
/// apiVersion and kind).
fn related(manifest: &super::super::manifest::Manifest, r: wit_types::ObjectRef) -> ObjectRef {
    let kind = match manifest.declared(&r.kind.group, &r.kind.kind) {
        Ok(k) => k.clone(),
        Err(_) => super::super::manifest::Kind {
            plural: super::super::manifest::guess_plural(&r.kind.kind),
            namespaced: r.namespace.is_some(),
            group: r.kind.group,
            version: r.kind.version,
            kind: r.kind.kind,
        },
    };
    ObjectRef {
        kind,
        namespace: r.namespace,
        name: r.name,
    }
}

impl Host for HostState {
    async fn record_event(&mut self, event: wit::Event) -> wasmtime::Result<Result<(), Error>> {
        let record = match self.event_record(event) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.into())),
        };
        let backend = self.backend.clone();
        Ok(backend.record_event(record).await.map_err(Into::into))
    }
}
