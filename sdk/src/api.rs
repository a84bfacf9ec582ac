//! Typed reads (from the host's cache) and writes (to the API server).
//!
//! Namespaces are `&str`; `""` means "cluster-scoped" for a single object and
//! "every namespace" for a list, as in client-go.

use crate::data::Event;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::object::{Kind, Object};
use crate::sys::{self, PatchBody};

fn decode<T: Object>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Other(format!("failed to decode {}: {e}", T::KIND)))
}

fn decode_list<T: Object>(bytes: &[u8]) -> Result<Vec<T>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Other(format!("failed to decode a list of {}: {e}", T::KIND)))
}

fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Other(format!("failed to encode {what}: {e}")))
}

fn name_of<T: Object>(obj: &T) -> Result<(&str, &str)> {
    let meta = obj.meta();
    let name = meta
        .name
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", T::KIND)))?;
    Ok((meta.namespace.as_deref().unwrap_or(""), name))
}

/// Reads one object from the cache; `Ok(None)` when it is not there.
///
/// The cache may lag behind the API server (even behind your own writes): decide from what
/// you read, and write idempotently.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
///
/// let Some(cm) = kubewasm_sdk::get::<ConfigMap>("demo", "settings")? else {
///     return Ok(()); // gone: nothing to do
/// };
/// assert_eq!(cm.metadata.name.as_deref(), Some("settings"));
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] when the manifest grants no `get` on `T`, [`Error::NotSynced`]
/// before the cache synced, [`Error::Other`] when the object does not decode as `T`.
pub fn get<T: Object>(namespace: &str, name: &str) -> Result<Option<T>> {
    match sys::get(&Kind::of::<T>(), namespace, name)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Like [`get`] but returns the JSON bytes undecoded: decode only what you need
/// (e.g. into a small struct with just the fields you read) to save time on large objects.
///
/// # Errors
/// As [`get`], minus decoding.
pub fn get_raw<T: Object>(namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
    sys::get(&Kind::of::<T>(), namespace, name)
}

/// Lists objects of `T` from the cache. `namespace` `""` = every namespace; `selector` is a
/// Kubernetes label selector (`"app=web,tier!=db"`), `""` = everything.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<Pod>(serde_json::json!({"metadata": {"namespace": "demo", "name": "web-1", "labels": {"app": "web"}}}));
/// use k8s_openapi::api::core::v1::Pod;
///
/// let web: Vec<Pod> = kubewasm_sdk::list("demo", "app=web")?;
/// let everywhere: Vec<Pod> = kubewasm_sdk::list("", "")?;
/// assert_eq!((web.len(), everywhere.len()), (1, 1));
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] without `list` on `T`, [`Error::Invalid`] for a bad selector,
/// [`Error::NotSynced`], [`Error::Other`] when an object does not decode.
pub fn list<T: Object>(namespace: &str, selector: &str) -> Result<Vec<T>> {
    let bytes = sys::list(&Kind::of::<T>(), namespace, selector)?;
    decode_list::<T>(&bytes)
}

/// Like [`list`] but returns the JSON array undecoded.
///
/// # Errors
/// As [`list`], minus decoding.
pub fn list_raw<T: Object>(namespace: &str, selector: &str) -> Result<Vec<u8>> {
    sys::list(&Kind::of::<T>(), namespace, selector)
}

/// Lists objects of `T` whose declared index `index` has the value `value`
/// (see [`Manifest::index`](crate::Manifest::index)).
///
/// # Errors
/// [`Error::Forbidden`] without `list` on `T`, [`Error::Invalid`] for an undeclared index.
pub fn list_by_index<T: Object>(index: &str, value: &str) -> Result<Vec<T>> {
    let bytes = sys::list_by_index(&Kind::of::<T>(), index, value)?;
    decode_list::<T>(&bytes)
}

/// Like [`list_by_index`] but returns the JSON array undecoded.
///
/// # Errors
/// As [`list_by_index`], minus decoding.
pub fn list_by_index_raw<T: Object>(index: &str, value: &str) -> Result<Vec<u8>> {
    sys::list_by_index(&Kind::of::<T>(), index, value)
}

/// Reads one object from the cache with only `fields` set (plus `apiVersion`, `kind` and
/// `metadata.name`, `namespace`, `resourceVersion`, `uid`); `Ok(None)` when it is not there.
///
/// The host copies just those fields out of the stored object, so the plugin receives and
/// decodes a few hundred bytes instead of the whole object: use it when you read a handful
/// of fields of a large object. Every other field is left at its default (`None`, empty).
///
/// A field is a dotted path: `spec.nodeName`, `metadata.labels` (a whole object),
/// `metadata.labels[app]` or `metadata.labels['app.kubernetes.io/name']` (one key),
/// `spec.containers.image` (an array keeps the rest of the path in each element).
/// At most 128 fields.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<Pod>(serde_json::json!({"metadata": {"namespace": "demo", "name": "web-1",
/// #     "annotations": {"big": "..."}}, "spec": {"nodeName": "node-a"}, "status": {"phase": "Running"}}));
/// use k8s_openapi::api::core::v1::Pod;
///
/// let Some(pod) = kubewasm_sdk::get_fields::<Pod>("demo", "web-1", &["spec.nodeName", "status.phase"])? else {
///     return Ok(());
/// };
/// let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
/// assert_eq!(node, Some("node-a"));
/// assert_eq!(pod.metadata.name.as_deref(), Some("web-1")); // identity is always there
/// assert_eq!(pod.metadata.annotations, None); // not asked for
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// As [`get`], plus [`Error::Invalid`] for a bad field path.
pub fn get_fields<T: Object>(namespace: &str, name: &str, fields: &[&str]) -> Result<Option<T>> {
    match sys::get_fields(&Kind::of::<T>(), namespace, name, fields)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Like [`get_fields`] but returns the projected JSON bytes undecoded.
///
/// # Errors
/// As [`get_fields`], minus decoding.
pub fn get_fields_raw<T: Object>(
    namespace: &str,
    name: &str,
    fields: &[&str],
) -> Result<Option<Vec<u8>>> {
    sys::get_fields(&Kind::of::<T>(), namespace, name, fields)
}

/// Like [`list`], with each object holding only `fields` (see [`get_fields`]).
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<Pod>(serde_json::json!({"metadata": {"namespace": "demo", "name": "web-1",
/// #     "labels": {"app": "web"}}, "spec": {"nodeName": "node-a"}}));
/// use k8s_openapi::api::core::v1::Pod;
///
/// let pods: Vec<Pod> = kubewasm_sdk::list_fields("demo", "app=web", &["spec.nodeName"])?;
/// assert_eq!(pods[0].spec.as_ref().and_then(|s| s.node_name.as_deref()), Some("node-a"));
/// assert_eq!(pods[0].metadata.labels, None);
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// As [`list`], plus [`Error::Invalid`] for a bad field path.
pub fn list_fields<T: Object>(namespace: &str, selector: &str, fields: &[&str]) -> Result<Vec<T>> {
    let bytes = sys::list_fields(&Kind::of::<T>(), namespace, selector, fields)?;
    decode_list::<T>(&bytes)
}

/// Like [`list_fields`] but returns the projected JSON array undecoded: decode it into a
/// small struct of your own to skip building full k8s-openapi objects.
///
/// # Errors
/// As [`list_fields`], minus decoding.
pub fn list_fields_raw<T: Object>(
    namespace: &str,
    selector: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    sys::list_fields(&Kind::of::<T>(), namespace, selector, fields)
}

/// Like [`list_by_index_fields`] but returns the projected JSON array undecoded.
///
/// # Errors
/// As [`list_by_index_fields`], minus decoding.
pub fn list_by_index_fields_raw<T: Object>(
    index: &str,
    value: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    sys::list_by_index_fields(&Kind::of::<T>(), index, value, fields)
}

/// Like [`list_by_index`], with each object holding only `fields` (see [`get_fields`]).
///
/// # Errors
/// As [`list_by_index`], plus [`Error::Invalid`] for a bad field path.
pub fn list_by_index_fields<T: Object>(
    index: &str,
    value: &str,
    fields: &[&str],
) -> Result<Vec<T>> {
    let bytes = sys::list_by_index_fields(&Kind::of::<T>(), index, value, fields)?;
    decode_list::<T>(&bytes)
}

/// Creates `obj` in its `metadata.namespace`; returns it as stored.
///
/// Set an owner reference on what you create so its changes reconcile the owner
/// ([`Manifest::owns`](crate::Manifest::owns)) and Kubernetes deletes it with the owner.
///
/// ```
/// # let _host = kubewasm_sdk::testing::FakeHost::new();
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// let cm = ConfigMap {
///     metadata: ObjectMeta {
///         namespace: Some("demo".into()),
///         name: Some("generated".into()),
///         ..ObjectMeta::default()
///     },
///     ..ConfigMap::default()
/// };
/// match kubewasm_sdk::create(&cm) {
///     Ok(_) | Err(kubewasm_sdk::Error::AlreadyExists(_)) => {} // idempotent
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] without `create`, [`Error::AlreadyExists`], [`Error::Invalid`].
pub fn create<T: Object>(obj: &T) -> Result<T> {
    let namespace = obj.meta().namespace.as_deref().unwrap_or("");
    let out = sys::create(&Kind::of::<T>(), namespace, &encode(T::KIND, obj)?)?;
    decode(&out)
}

/// Replaces `obj` (named by its metadata). A `metadata.resourceVersion` makes it conditional.
///
/// # Errors
/// [`Error::Forbidden`] without `update`, [`Error::NotFound`], [`Error::Conflict`],
/// [`Error::Invalid`].
pub fn replace<T: Object>(obj: &T) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    let out = sys::replace(
        &Kind::of::<T>(),
        namespace,
        name,
        &encode(T::KIND, obj)?,
        false,
    )?;
    decode(&out)
}

/// Replaces the status subresource of `obj`.
///
/// # Errors
/// As [`replace`].
pub fn replace_status<T: Object>(obj: &T) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    let out = sys::replace(
        &Kind::of::<T>(),
        namespace,
        name,
        &encode(T::KIND, obj)?,
        true,
    )?;
    decode(&out)
}

/// A patch to send with [`patch`] or [`patch_status`].
#[derive(Debug, Clone)]
pub enum Patch {
    /// A JSON merge patch (RFC 7386): the fields to set, `null` to remove.
    Merge(serde_json::Value),
    /// A JSON patch (RFC 6902): an array of `{"op": ..., "path": ..., "value": ...}`.
    Json(serde_json::Value),
}

impl Patch {
    /// A merge patch from any serializable value (e.g. `serde_json::json!({...})`).
    ///
    /// # Errors
    /// [`Error::Other`] when `value` does not serialize.
    pub fn merge(value: impl Serialize) -> Result<Self> {
        Ok(Self::Merge(serde_json::to_value(value)?))
    }

    fn body(&self) -> Result<PatchBody> {
        Ok(match self {
            Self::Merge(v) => PatchBody::Merge(encode("merge patch", v)?),
            Self::Json(v) => PatchBody::Json(encode("json patch", v)?),
        })
    }
}

/// Patches an object of kind `T`; returns it as stored.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::Patch;
/// use serde_json::json;
///
/// let patch = Patch::merge(json!({"metadata": {"labels": {"checked": "true"}}}))?;
/// let cm: ConfigMap = kubewasm_sdk::patch("demo", "settings", &patch)?;
/// assert_eq!(cm.metadata.labels.unwrap()["checked"], "true");
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] without `patch`, [`Error::NotFound`], [`Error::Conflict`] (a failed
/// `test` op), [`Error::Invalid`].
pub fn patch<T: Object>(namespace: &str, name: &str, patch: &Patch) -> Result<T> {
    let out = sys::patch(&Kind::of::<T>(), namespace, name, patch.body()?, false)?;
    decode(&out)
}

/// Patches the status subresource of an object of kind `T`.
///
/// # Errors
/// As [`patch`].
pub fn patch_status<T: Object>(namespace: &str, name: &str, patch: &Patch) -> Result<T> {
    let out = sys::patch(&Kind::of::<T>(), namespace, name, patch.body()?, true)?;
    decode(&out)
}

/// Server-side applies `obj` (the fields this plugin manages; include `apiVersion` and
/// `kind`) with the plugin's field manager. `force` takes fields over from other managers.
///
/// # Errors
/// [`Error::Forbidden`] without `patch`, [`Error::Conflict`] on a field-manager conflict
/// when `force` is false, [`Error::Invalid`].
pub fn apply<T: Object>(obj: &T, force: bool) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    let body = PatchBody::Apply {
        body: encode(T::KIND, obj)?,
        force,
    };
    let out = sys::patch(&Kind::of::<T>(), namespace, name, body, false)?;
    decode(&out)
}

/// Deletes an object of kind `T`. An object with `metadata.finalizers` is only marked
/// (`metadata.deletionTimestamp`) until its finalizers are removed.
///
/// # Errors
/// [`Error::Forbidden`] without `delete`, [`Error::NotFound`].
pub fn delete<T: Object>(namespace: &str, name: &str) -> Result<()> {
    sys::delete(&Kind::of::<T>(), namespace, name)
}

/// Records `event` about `obj` (its kind must be in the manifest).
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::Event;
///
/// if let Some(cm) = kubewasm_sdk::get::<ConfigMap>("demo", "settings")? {
///     kubewasm_sdk::event(&cm, &Event::warning("Invalid", "data.replicas is not a number"))?;
/// }
/// # assert_eq!(host.events().len(), 1);
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] for a kind the manifest does not mention, [`Error::Invalid`] when
/// `obj` has no name.
pub fn event<T: Object>(obj: &T, event: &Event) -> Result<()> {
    let (namespace, name) = name_of(obj)?;
    event_for::<T>(namespace, name, event)
}

/// Records `event` about the object of kind `T` named `namespace`/`name`
/// (useful after a delete, when you no longer hold the object).
///
/// # Errors
/// As [`event`].
pub fn event_for<T: Object>(namespace: &str, name: &str, event: &Event) -> Result<()> {
    sys::record_event(
        &Kind::of::<T>(),
        namespace,
        name,
        event.warning,
        &event.reason,
        &event.note,
        &event.action,
    )
}
