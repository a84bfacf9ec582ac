//! The host's types to the recording's (`kubewasm_core::recording`) and back.

use kubewasm_core::recording as rec;

use crate::runtime::{
    Action, ApiError, DeleteOptions, EventRecord, EventType, ListQuery, PatchRequest, Propagation,
    ReconcileError, Subresource,
};

/// An error's WIT case name and message.
pub fn error(e: &ApiError) -> rec::ApiError {
    let (code, message) = match e {
        ApiError::NotFound(m) => ("not-found", m),
        ApiError::AlreadyExists(m) => ("already-exists", m),
        ApiError::Conflict(m) => ("conflict", m),
        ApiError::Forbidden(m) => ("forbidden", m),
        ApiError::Invalid(m) => ("invalid", m),
        ApiError::NotSynced(m) => ("not-synced", m),
        ApiError::Unavailable(m) => ("unavailable", m),
        ApiError::Internal(m) => ("internal", m),
        ApiError::Other(m) => ("other", m),
    };
    rec::ApiError {
        code: code.into(),
        message: message.clone(),
    }
}

/// A recorded error as the host's (an unknown case is `other`).
pub fn api_error(e: &rec::ApiError) -> ApiError {
    let m = e.message.clone();
    match e.code.as_str() {
        "not-found" => ApiError::NotFound(m),
        "already-exists" => ApiError::AlreadyExists(m),
        "conflict" => ApiError::Conflict(m),
        "forbidden" => ApiError::Forbidden(m),
        "invalid" => ApiError::Invalid(m),
        "not-synced" => ApiError::NotSynced(m),
        "unavailable" => ApiError::Unavailable(m),
        "internal" => ApiError::Internal(m),
        _ => ApiError::Other(m),
    }
}

/// A list-shaped read's selection, as text.
pub fn query(q: &ListQuery) -> rec::Query {
    rec::Query {
        namespace: q.namespace.clone(),
        labels: q.labels.as_ref().map(ToString::to_string),
        fields: q.fields.as_ref().map(ToString::to_string),
        index: q.index.as_ref().map(|i| i.index.name.clone()),
        value: q.index.as_ref().map(|i| i.value.clone()),
    }
}

pub fn subresource(s: Subresource) -> rec::Subresource {
    match s {
        Subresource::Main => rec::Subresource::Main,
        Subresource::Status => rec::Subresource::Status,
        Subresource::Scale => rec::Subresource::Scale,
    }
}

/// A patch's type, field manager and force flag as a recording holds them.
pub fn patch_kind(p: &PatchRequest) -> (rec::PatchType, Option<String>, bool) {
    match p {
        PatchRequest::Merge(_) => (rec::PatchType::Merge, None, false),
        PatchRequest::Json(_) => (rec::PatchType::Json, None, false),
        PatchRequest::StrategicMerge(_) => (rec::PatchType::StrategicMerge, None, false),
        PatchRequest::Apply {
            force,
            field_manager,
            ..
        } => (rec::PatchType::Apply, Some(field_manager.clone()), *force),
    }
}

pub fn delete_options(o: &DeleteOptions) -> rec::DeleteOptions {
    rec::DeleteOptions {
        propagation: o.propagation.map(|p| {
            match p {
                Propagation::Background => "background",
                Propagation::Foreground => "foreground",
                Propagation::Orphan => "orphan",
            }
            .into()
        }),
        uid: o.uid.clone(),
        resource_version: o.resource_version.clone(),
    }
}

pub fn event(e: &EventRecord) -> rec::EventCall {
    rec::EventCall {
        regarding: rec::ObjectRef {
            kind: (&e.kind).into(),
            namespace: e.namespace.clone(),
            name: e.name.clone(),
        },
        related: e.related.as_ref().map(Into::into),
        event_type: match e.event_type {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
        .into(),
        reason: e.reason.clone(),
        note: e.note.clone(),
        action: e.action.clone(),
    }
}

/// How a reconcile ended.
pub fn outcome(result: &Result<Action, ReconcileError>) -> rec::Outcome {
    match result {
        Ok(Action::Done) => rec::Outcome::Done,
        Ok(Action::RequeueAfter(after)) => rec::Outcome::RequeueAfter {
            ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        },
        Err(ReconcileError::Plugin { error: e, .. }) => rec::Outcome::Error { error: error(e) },
        Err(e) => rec::Outcome::Failed {
            failure: match e {
                ReconcileError::Trap { .. } => "trap",
                ReconcileError::Deadline { .. } => "deadline",
                ReconcileError::MemoryCap { .. } => "memory-cap",
                _ => "instantiate",
            }
            .into(),
            message: e.to_string(),
        },
    }
}
