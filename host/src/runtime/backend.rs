//! [`Backend`]: what the WIT imports reach after the permission check — reads from a cache,
//! writes to an API client.
//!
//! The host's informer store and kube client implement it in production;
//! [`MemoryBackend`](super::MemoryBackend) implements it on a map for tests. Its shape follows
//! `kubewasm:controller@0.2.0` (`wit/`); the 0.1.0 imports are served by the same calls.

use bytes::Bytes;
use futures::future::BoxFuture;

use super::api_error::ApiError;
use super::manifest::{Index, Kind};
use kubewasm_controller::LabelSelector;
use kubewasm_core::{FieldSelector, LabelSource, ObjectKey, ObjectRef};

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// The `status` subresource.
    Status,
    /// The `scale` subresource (an `autoscaling/v1` `Scale`).
    Scale,
}

impl Subresource {
    /// The URL segment, `None` for the object itself.
    pub fn path(self) -> Option<&'static str> {
        match self {
            Self::Main => None,
            Self::Status => Some("status"),
            Self::Scale => Some("scale"),
        }
    }
}

/// A patch, with its content type decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchRequest {
    /// JSON merge patch (RFC 7386).
    Merge(Bytes),
    /// JSON patch (RFC 6902).
    Json(Bytes),
    /// Kubernetes strategic merge patch (built-in kinds only; the API server refuses it for
    /// custom resources).
    StrategicMerge(Bytes),
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

impl PatchRequest {
    /// The body sent, whatever the patch type.
    pub fn body(&self) -> &Bytes {
        match self {
            Self::Merge(b) | Self::Json(b) | Self::StrategicMerge(b) => b,
            Self::Apply { body, .. } => body,
        }
    }
}

/// What happens to the objects a deleted object owns (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete now; the garbage collector deletes dependents afterwards.
    Background,
    /// The object stays until its dependents are gone.
    Foreground,
    /// Dependents stay; their owner references are removed.
    Orphan,
}

/// How to delete: propagation and preconditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `None` = the kind's default.
    pub propagation: Option<Propagation>,
    /// Delete only while the object has this uid (else [`ApiError::Conflict`]).
    pub uid: Option<String>,
    /// Delete only while the object has this resourceVersion (else [`ApiError::Conflict`]).
    pub resource_version: Option<String>,
}

/// A lookup in a declared index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexQuery {
    /// The index, as the manifest declared it.
    pub index: Index,
    /// The value looked up.
    pub value: String,
}

/// Which objects of a kind a list-shaped read selects (the WIT `list-params`, parsed). Every
/// filter given must match.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this namespace; `None` = every namespace.
    pub namespace: Option<String>,
    /// Only objects whose labels match.
    pub labels: Option<LabelSelector>,
    /// Only objects whose fields match.
    pub fields: Option<FieldSelector>,
    /// Only objects whose declared index holds a value.
    pub index: Option<IndexQuery>,
}

impl ListQuery {
    /// Every object in `namespace` (every namespace when `None`).
    pub fn namespace(namespace: Option<&str>) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            ..Self::default()
        }
    }

    /// Whether an object (its namespace, labels and JSON text) passes the namespace, label
    /// and field filters. Backends whose stores answer some filters with indexes check the
    /// rest with it; the index filter is the backend's to answer.
    pub fn matches<L: LabelSource + ?Sized>(
        &self,
        namespace: Option<&str>,
        labels: &L,
        json: &[u8],
    ) -> bool {
        if let Some(ns) = &self.namespace
            && namespace != Some(ns.as_str())
        {
            return false;
        }
        if let Some(sel) = &self.labels
            && !sel.matches(labels)
        {
            return false;
        }
        self.fields.as_ref().is_none_or(|f| f.matches_json(json))
    }
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
    /// A second object the event is about (`related`), e.g. the Pod of a Deployment's event.
    pub related: Option<ObjectRef>,
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

    /// The objects of `kind` that `query` selects, in no particular order.
    ///
    /// # Errors
    /// As [`Backend::get`]; [`ApiError::Invalid`] for an index the backend does not keep.
    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError>;

    /// The keys of the objects `query` selects. The default reads them from [`Backend::list`]'s
    /// objects; backends that keep keys apart from bodies answer without touching the JSON.
    ///
    /// # Errors
    /// As [`Backend::list`].
    fn keys(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<ObjectKey>, ApiError> {
        self.list(kind, query)?
            .iter()
            .map(|b| key_of(b))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::Internal(format!("a cached {kind} has no metadata.name")))
    }

    /// How many objects `query` selects. The default counts [`Backend::list`]'s objects (a
    /// reference-count bump each, no copy).
    ///
    /// # Errors
    /// As [`Backend::list`].
    fn count(&self, kind: &Kind, query: &ListQuery) -> Result<u64, ApiError> {
        Ok(self.list(kind, query)?.len() as u64)
    }

    /// Creates an object.
    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>>;

    /// Replaces an object or one of its subresources.
    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>>;

    /// Patches an object or one of its subresources.
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
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// Records an Event.
    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>>;

    /// Told each plugin log line the host logged (within the reconcile's log budget; lines past
    /// it are not passed on). The default ignores it: the line is already in the host's log. A
    /// backend that wraps another should forward it, so a recorder outside sees it too.
    fn log(&self, level: tracing::Level, message: &str) {
        let _ = (level, message);
    }

    /// Asked by the write imports after each write (create, replace, patch, delete): `Some`
    /// makes the import trap the plugin with that reason instead of answering, so the
    /// reconcile ends right after a write that reached the server — how a perturbation test
    /// crashes a reconcile ([`crate::perturb`]). The default never aborts; a backend that wraps
    /// another should forward it.
    fn abort_reason(&self) -> Option<String> {
        None
    }
}

/// The key of an object given as JSON: `metadata.namespace` and `metadata.name`.
pub(crate) fn key_of(json: &[u8]) -> Option<ObjectKey> {
    #[derive(serde::Deserialize)]
    struct Meta {
        namespace: Option<String>,
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Meta,
    }
    let o: Object = serde_json::from_slice(json).ok()?;
    Some(ObjectKey {
        namespace: o.metadata.namespace,
        name: o.metadata.name,
    })
}
