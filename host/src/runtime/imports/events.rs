//! `kubewasm:controller/events`: Kubernetes Events through the backend.

use super::super::api_error::ApiError;
use super::super::backend::{EventRecord, EventType};
use super::super::bindings::kubewasm::controller::events::{self as wit, Host};
use super::super::bindings::kubewasm::controller::types::Error;
use super::super::state::HostState;
use super::check_scope;

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
