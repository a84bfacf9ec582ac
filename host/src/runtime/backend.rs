//! [`Backend`]: what the WIT imports reach after the permission check — reads from a cache,
//! writes to an API client.
//!
//! The host's informer store and kube client implement it in production;
//! [`MemoryBackend`](super::MemoryBackend) implements it on a map for tests.

use bytes::Bytes;
use futures::future::BoxFuture;

use super::api_error::ApiError;
use super::manifest::{Index, Kind};
use kubewasm_controller::LabelSelector;

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// The `status` subresource.
    Status,
}

/// A patch, with its content type decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchRequest {
    /// JSON merge patch (RFC 7386).
    Merge(Bytes),
    /// JSON patch (RFC 6902).
    Json(Bytes),
    /// Server-side apply.
    Apply {
        /// The applied configuration (JSON).
        body: Bytes,
        /// Take over conflicting fields.
        force: bool,
        /// The field manager, `kubewasm-<plugin>`.
        field_manager: String,
    },
}

/// Normal or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A normal event.
    Normal,
    /// A warning.
    Warning,
}

/// A Kubernetes Event to record (`events.k8s.io/v1` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Kind of the object the event is about.
    pub kind: Kind,
    /// Its namespace (`None` for cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Normal or warning.
    pub event_type: EventType,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable note.
    pub note: String,
    /// What was done; may be empty.
    pub action: String,
    /// `kubewasm/<plugin>`.
    pub reporting_controller: String,
}

/// Reads from a cache and writes to an API server, on behalf of plugins.
///
/// Reads are synchronous (a cache lookup) and return each object as ready-to-send JSON
/// [`Bytes`]; writes are async (an API call) and return the stored object. Every call has
/// already passed the manifest check: the backend only does the work.
pub trait Backend: Send + Sync + 'static {
    /// One object, or `None`.
    ///
    /// # Errors
    /// [`ApiError::NotSynced`] before the kind's cache synced.
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError>;

    /// Objects of `kind` in `namespace` (every namespace when `None`) matching `selector`.
    ///
    /// # Errors
    /// As [`Backend::get`].
    fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Bytes>, ApiError>;

    /// Objects of `kind` whose `index` holds `value`.
    ///
    /// # Errors
    /// As [`Backend::get`].
    fn list_by_index(
        &self,
        kind: &Kind,
        index: &Index,
        value: &str,
    ) -> Result<Vec<Bytes>, ApiError>;

    /// Creates an object.
    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>>;

    /// Replaces an object or its status.
    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>>;

    /// Patches an object or its status.
    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>>;

    /// Deletes an object.
    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// Records an Event.
    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>>;
}
