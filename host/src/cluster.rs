//! [`ClusterBackend`]: what a plugin's WIT imports reach in production — reads from the shared
//! informer stores, writes through a `kube::Client` to the API server.

use std::collections::HashMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResourceList, MicroTime, ObjectMeta};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kubewasm_controller::InformerHandle;
use kubewasm_core::ObjectKey;
use serde_json::value::RawValue;

use crate::runtime::{
    ApiError, Backend, DeleteOptions, EventRecord, EventType, Index, Kind, KindResolver, ListQuery,
    PatchRequest, Propagation, ResolvedKind, Subresource,
};

/// A plugin's view of the cluster. Every call has already passed the plugin's manifest check.
///
/// Reads are answered from the informers the plugin declared (each object as the JSON bytes the
/// store keeps, so a read is a reference-count bump and one copy into the guest); before an
/// informer has synced its reads fail with [`ApiError::NotSynced`]. Writes go to the API server;
/// their effects reach the cache through the watch, so a read right after a write may still
/// see the old object (cache lag, as with client-go's cache-backed client).
pub struct ClusterBackend {
    client: kube::Client,
    /// The informer of each kind the plugin may read, keyed by `(group, kind)`: versions do not
    /// matter for the manifest check either.
    informers: HashMap<(String, String), InformerHandle>,
    /// `reportingInstance` of the Events this plugin records.
    reporting_instance: String,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend")
            .field("kinds", &self.informers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ClusterBackend {
    /// A backend that answers reads of each kind from its informer (shared, already acquired;
    /// reads fail with [`ApiError::NotSynced`] until it has synced), writes through `client`,
    /// and records Events as `reporting_instance`. The manager builds one per plugin from the
    /// plugin's manifest; the calls reaching it have passed the manifest check.
    pub fn new<'k>(
        client: kube::Client,
        informers: impl IntoIterator<Item = (&'k Kind, InformerHandle)>,
        reporting_instance: String,
    ) -> Self {
        Self {
            client,
            informers: informers
                .into_iter()
                .map(|(kind, informer)| (kind_key(kind), informer))
                .collect(),
            reporting_instance,
        }
    }

    /// The store of `kind`, once its informer has synced.
    fn store(&self, kind: &Kind) -> Result<&kubewasm_controller::Store, ApiError> {
        // A scan of the few cached kinds: no key to allocate on this per-read path.
        let informer = self
            .informers
            .iter()
            .find(|((group, name), _)| *group == kind.group && *name == kind.kind)
            .map(|(_, informer)| informer)
            .ok_or_else(|| {
                // The manifest check passed, so the host failed to start an informer it needed.
                ApiError::Internal(format!("the host keeps no cache of {kind}"))
            })?;
        if !informer.has_synced() {
            return Err(ApiError::NotSynced(format!(
                "the cache of {kind} has not finished its initial list"
            )));
        }
        Ok(informer.store())
    }

    /// The cached entries `query` selects: the index or the store's namespace and label
    /// indexes narrow first, then the remaining filters look at each candidate.
    fn entries(
        &self,
        kind: &Kind,
        query: &ListQuery,
    ) -> Result<Vec<std::sync::Arc<kubewasm_controller::Entry>>, ApiError> {
        let store = self.store(kind)?;
        let namespace = query.namespace.as_deref().filter(|_| kind.namespaced);
        let mut entries = match &query.index {
            Some(q) => {
                let mut found = store
                    .list_by_index(&store_index_name(&q.index), &q.value)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                found.retain(|e| {
                    namespace.is_none_or(|ns| e.namespace() == Some(ns))
                        && query
                            .labels
                            .as_ref()
                            .is_none_or(|sel| sel.matches(e.labels()))
                });
                found
            }
            None => store.list(namespace, query.labels.as_ref()),
        };
        if let Some(fields) = &query.fields {
            entries.retain(|e| fields.matches_json(e.json()));
        }
        Ok(entries)
    }

    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<Bytes, ApiError> {
        self.client
            .request_text(request)
            .await
            .map(|text| Bytes::from(text.into_bytes()))
            .map_err(api_error)
    }
}

/// The URL path of a kind's collection, e.g. `/apis/apps/v1/namespaces/web/deployments`.
///
/// # Errors
/// [`ApiError::Invalid`] when a namespaced kind has no namespace, or a cluster-scoped one has one.
fn collection_path(kind: &Kind, namespace: Option<&str>) -> Result<String, ApiError> {
    let mut path = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    match (kind.namespaced, namespace) {
        (true, Some(ns)) if !ns.is_empty() => {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        (true, _) => {
            return Err(ApiError::Invalid(format!(
                "{kind} is namespaced: a namespace is required"
            )));
        }
        (false, Some(ns)) if !ns.is_empty() => {
            return Err(ApiError::Invalid(format!(
                "{kind} is cluster-scoped: namespace {ns:?} must not be given"
            )));
        }
        (false, _) => {}
    }
    path.push('/');
    path.push_str(&kind.plural);
    Ok(path)
}

fn collection(kind: &Kind, namespace: Option<&str>) -> Result<kube::core::Request, ApiError> {
    collection_path(kind, namespace).map(kube::core::Request::new)
}

fn raw(body: &Bytes) -> Result<&RawValue, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::Invalid(format!("the body is not UTF-8: {e}")))?;
    serde_json::from_str::<&RawValue>(text)
        .map_err(|e| ApiError::Invalid(format!("the body is not JSON: {e}")))
}

fn build_error(e: kube::core::request::Error) -> ApiError {
    ApiError::Invalid(format!("failed to build the request: {e}"))
}

/// Maps a kube client error to the WIT error a plugin handles.
pub(crate) fn api_error(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                404 => ApiError::NotFound(message),
                409 if status.reason == "AlreadyExists" => ApiError::AlreadyExists(message),
                409 => ApiError::Conflict(message),
                400 | 415 | 422 => ApiError::Invalid(message),
                // RBAC or admission said no: not the manifest check, but the plugin can fix
                // neither; the message says which.
                403 => ApiError::Forbidden(format!("the API server refused: {message}")),
                408 | 429 | 500..=599 => ApiError::Unavailable(message),
                code => ApiError::Internal(format!("unexpected API response {code}: {message}")),
            }
        }
        other => ApiError::Unavailable(format!("the API server could not be reached: {other}")),
    }
}

impl Backend for ClusterBackend {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        Ok(self
            .store(kind)?
            .get(namespace.filter(|_| kind.namespaced), name)
            .map(|e| e.json().clone()))
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        Ok(self
            .entries(kind, query)?
            .into_iter()
            .map(|e| e.json().clone())
            .collect())
    }

    fn keys(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<ObjectKey>, ApiError> {
        Ok(self
            .entries(kind, query)?
            .into_iter()
            .map(|e| e.key().clone())
            .collect())
    }

    fn count(&self, kind: &Kind, query: &ListQuery) -> Result<u64, ApiError> {
        Ok(self.entries(kind, query)?.len() as u64)
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let request = collection(kind, namespace)?
                .create(&PostParams::default(), body.to_vec())
                .map_err(build_error)?;
            self.send(request).await
        })
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let url = collection(kind, namespace)?;
            let pp = PostParams::default();
            let request = match subresource.path() {
                None => url.replace(name, &pp, body.to_vec()),
                Some(sub) => url.replace_subresource(sub, name, &pp, body.to_vec()),
            }
            .map_err(build_error)?;
            self.send(request).await
        })
    }

    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let (params, body) = match &patch {
                PatchRequest::Merge(b) => (PatchParams::default(), Patch::Merge(raw(b)?)),
                PatchRequest::StrategicMerge(b) => {
                    (PatchParams::default(), Patch::Strategic(raw(b)?))
                }
                PatchRequest::Json(b) => {
                    // Sent as is: the server validates the operations.
                    let mut path = collection_path(kind, namespace)?;
                    path.push('/');
                    path.push_str(name);
                    if let Some(sub) = subresource.path() {
                        path.push('/');
                        path.push_str(sub);
                    }
                    let request = http::Request::patch(path)
                        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                        .body(b.to_vec())
                        .map_err(|e| {
                            ApiError::Invalid(format!("failed to build the request: {e}"))
                        })?;
                    return self.send(request).await;
                }
                PatchRequest::Apply {
                    body,
                    force,
                    field_manager,
                } => {
                    let mut params = PatchParams::apply(field_manager);
                    params.force = *force;
                    (params, Patch::Apply(raw(body)?))
                }
            };
            let url = collection(kind, namespace)?;
            let request = match subresource.path() {
                None => url.patch(name, &params, &body),
                Some(sub) => url.patch_subresource(sub, name, &params, &body),
            }
            .map_err(build_error)?;
            self.send(request).await
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let preconditions = (options.uid.is_some() || options.resource_version.is_some())
                .then_some(Preconditions {
                    uid: options.uid,
                    resource_version: options.resource_version,
                });
            let params = DeleteParams {
                propagation_policy: options.propagation.map(|p| match p {
                    Propagation::Background => PropagationPolicy::Background,
                    Propagation::Foreground => PropagationPolicy::Foreground,
                    Propagation::Orphan => PropagationPolicy::Orphan,
                }),
                preconditions,
                ..DeleteParams::default()
            };
            let request = collection(kind, namespace)?
                .delete(name, &params)
                .map_err(build_error)?;
            self.send(request).await.map(drop)
        })
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            // Cluster-scoped objects' events go to `default`, as kube's event recorders do.
            let namespace = event
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            // The object's uid lets `kubectl describe` find the event; take it from the cache.
            let cached = self
                .informers
                .get(&kind_key(&event.kind))
                .and_then(|informer| {
                    informer
                        .store()
                        .get(event.namespace.as_deref(), &event.name)
                });
            let action = if event.action.is_empty() {
                event.reason.clone()
            } else {
                event.action.clone()
            };
            let now = jiff::Timestamp::now();
            let body = Event {
                metadata: ObjectMeta {
                    name: Some(event_name(&event.name, now)),
                    namespace: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                event_time: Some(MicroTime(now)),
                action: Some(action),
                reason: Some(event.reason),
                note: Some(event.note),
                type_: Some(
                    match event.event_type {
                        EventType::Normal => "Normal",
                        EventType::Warning => "Warning",
                    }
                    .to_owned(),
                ),
                reporting_controller: Some(event.reporting_controller),
                reporting_instance: Some(self.reporting_instance.clone()),
                regarding: Some(ObjectReference {
                    api_version: Some(event.kind.api_version()),
                    kind: Some(event.kind.kind.clone()),
                    namespace: event.namespace.clone(),
                    name: Some(event.name.clone()),
                    uid: cached.as_ref().and_then(|e| e.uid().map(str::to_owned)),
                    resource_version: cached
                        .as_ref()
                        .and_then(|e| e.resource_version().map(str::to_owned)),
                    field_path: None,
                }),
                related: event.related.map(|r| ObjectReference {
                    api_version: Some(r.kind.api_version()),
                    kind: Some(r.kind.kind),
                    namespace: r.namespace,
                    name: Some(r.name),
                    ..ObjectReference::default()
                }),
                ..Event::default()
            };
            // A repeat of a recent Event patches that Event's `series` instead of creating
            // another (crate::event_series).
            let series = crate::event_series::EventSeries::global();
            crate::event_series::record(series, body, now, |request| self.send(request)).await
        })
    }
}

/// Resolves a plugin's kinds from the API server's discovery (`GET /api/<version>` or
/// `/apis/<group>/<version>`): the plural and scope the cluster serves each kind with. The
/// runtime asks it when a `kubewasm:controller@0.2.0` plugin loads
/// ([`RuntimeConfig::resolver`](crate::runtime::RuntimeConfig::resolver)).
#[derive(Clone)]
pub struct DiscoveryResolver {
    client: kube::Client,
}

impl DiscoveryResolver {
    /// A resolver asking the API server `client` talks to.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl std::fmt::Debug for DiscoveryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryResolver").finish_non_exhaustive()
    }
}

impl KindResolver for DiscoveryResolver {
    fn resolve<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
        kind: &'a str,
    ) -> BoxFuture<'a, Result<Option<ResolvedKind>, String>> {
        Box::pin(async move {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let request = http::Request::get(&path)
                .body(Vec::new())
                .map_err(|e| format!("failed to build GET {path}: {e}"))?;
            match self.client.request::<APIResourceList>(request).await {
                // Subresources (`pods/status`) share the kind; the resource itself has no `/`.
                Ok(list) => Ok(list
                    .resources
                    .into_iter()
                    .find(|r| r.kind == kind && !r.name.contains('/'))
                    .map(|r| ResolvedKind {
                        plural: r.name,
                        namespaced: r.namespaced,
                    })),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
                Err(e) => Err(format!("GET {path}: {e}")),
            }
        })
    }
}

/// An Event's name as client-go's recorder makes it: `<object>.<unix nanoseconds in hex>`
/// (a `generateName` of `<object>.` is refused: a prefix may not end in a dot). A long object
/// name is cut so the whole stays within the 253 characters a name may have.
fn event_name(object: &str, at: jiff::Timestamp) -> String {
    let suffix = format!(".{:x}", at.as_nanosecond());
    let keep = 253usize.saturating_sub(suffix.len());
    let head = object.get(..keep.min(object.len())).unwrap_or(object);
    format!("{}{suffix}", head.trim_end_matches(['.', '-']))
}

/// The name of a plugin index in the shared store: its field path. Two plugins declaring the
/// same path share one index, and two different paths never collide, whatever the plugins
/// named them.
pub(crate) fn store_index_name(index: &Index) -> String {
    index.field.canonical()
}

/// A kind as kube's [`kube::api::ApiResource`].
pub(crate) fn api_resource(kind: &Kind) -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: kind.group.clone(),
        version: kind.version.clone(),
        api_version: kind.api_version(),
        kind: kind.kind.clone(),
        plural: kind.plural.clone(),
    }
}

/// Shared so the manager and the backend agree on the key of a kind.
pub(crate) fn kind_key(kind: &Kind) -> (String, String) {
    (kind.group.clone(), kind.kind.clone())
}

#[cfg(test)]
mod tests {
    use super::event_name;

    #[test]
    fn an_event_is_named_after_its_object_and_the_time_in_hex_like_client_gos() {
        let at = jiff::Timestamp::from_nanosecond(0x1234_abcd).unwrap();
        assert_eq!(event_name("cache", at), "cache.1234abcd");
    }

    #[test]
    fn a_long_object_name_is_cut_so_the_event_name_stays_valid() {
        let at = jiff::Timestamp::from_nanosecond(0x1_8000_0000_0000_0000).unwrap();
        let name = event_name(&format!("{}.x", "a".repeat(260)), at);
        assert_eq!(name.len(), 253);
        assert!(name.ends_with(".18000000000000000"));
    }
}
