//! [`Api`]: typed reads (from the host's cache) and writes (to the API server) of one kind in
//! one scope, the [`Patch`] a write sends, and [`event`].

use std::marker::PhantomData;

use k8s_openapi::api::autoscaling::v1::Scale;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::{
    DeleteParams, Event, EventRecord, ListParams, ObjectKey, PatchBody, Subresource,
};
use crate::error::{Error, Result};
use crate::object::{Kind, Object};
use crate::sys;

/// Reads and writes of kind `K` in one scope: one namespace ([`Api::namespaced`]) or every
/// namespace, which is the only scope of a cluster-scoped kind ([`Api::all`]).
///
/// Reads come from the host's informer cache: eventually consistent (even behind your own
/// writes), never a round trip to the API server. Decide from what you read and write
/// idempotently. Writes go to the API server and return the object as stored. Every call is
/// checked against the plugin's [`Manifest`](crate::Manifest): an undeclared kind or verb
/// answers [`Error::Forbidden`].
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
/// use k8s_openapi::api::core::v1::{ConfigMap, Node};
/// use kubewasm_sdk::{Api, ListParams, Patch};
/// use serde_json::json;
///
/// let cms = Api::<ConfigMap>::namespaced("demo");
/// let Some(cm) = cms.get("settings")? else {
///     return Ok(()); // gone: nothing to do
/// };
/// let patch = Patch::merge(json!({"metadata": {"labels": {"checked": "true"}}}))?;
/// let cm = cms.patch("settings", &patch)?;
/// assert_eq!(cm.metadata.labels.unwrap()["checked"], "true");
///
/// let everywhere = Api::<ConfigMap>::all().list(&ListParams::default().labels("checked"))?;
/// let nodes = Api::<Node>::all().count(&ListParams::default())?; // a cluster-scoped kind
/// assert_eq!((everywhere.len(), nodes), (1, 0));
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// `Api::namespaced` on a cluster-scoped kind does not compile:
///
/// ```compile_fail
/// let nodes = kubewasm_sdk::Api::<k8s_openapi::api::core::v1::Node>::namespaced("demo");
/// ```
pub struct Api<K> {
    namespace: Option<String>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            namespace: self.namespace.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Object> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("kind", &K::KIND)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Decodes the JSON the host sent into `T`; `what` names it in the error (built only on failure).
///
/// The bytes are checked as UTF-8 once, then parsed as text, so serde_json does not check every
/// string it copies out again: a Pod decodes about 15% faster than with `from_slice`. Bytes that
/// are not UTF-8 go through `from_slice`, whose error says where.
fn decode<T: DeserializeOwned>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    parsed.map_err(|e| Error::Decode(format!("{}: {e}", what())))
}

fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Other(format!("failed to encode {what}: {e}")))
}

impl<K: Object> Api<K> {
    /// Objects of `K` in `namespace`. `K` must be namespaced (a compile error otherwise);
    /// an empty `namespace` makes every call answer [`Error::Invalid`].
    pub fn namespaced(namespace: impl Into<String>) -> Self {
        const {
            assert!(
                K::NAMESPACED,
                "Api::namespaced needs a namespaced kind: use Api::all for a cluster-scoped kind"
            );
        }
        Self {
            namespace: Some(namespace.into()),
            kind: PhantomData,
        }
    }

    /// Objects of `K` in every namespace (a namespaced kind), or the objects of a
    /// cluster-scoped kind. Calls that name one object of a namespaced kind (`get`, `patch`,
    /// `delete`...) need a namespace: on this `Api` they answer [`Error::Invalid`] (`create`
    /// takes the body's `metadata.namespace`).
    pub fn all() -> Self {
        Self {
            namespace: None,
            kind: PhantomData,
        }
    }

    /// `namespace` `""` = [`Api::all`], else [`Api::namespaced`], without the compile-time
    /// check: for the deprecated free functions, whose `""` meant "cluster-scoped" or
    /// "every namespace".
    pub(crate) fn scoped(namespace: &str) -> Self {
        Self {
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            kind: PhantomData,
        }
    }

    /// The namespace this `Api` reads and writes in; `None` for every namespace (or a
    /// cluster-scoped kind).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn kind() -> Kind {
        Kind::of::<K>()
    }

    /// The namespace of a call that names one object.
    fn ns_for(&self, name: &str) -> Result<Option<&str>> {
        match self.namespace.as_deref() {
            Some("") => Err(Error::Invalid(format!(
                "{} {name:?}: Api::namespaced(\"\") names no namespace",
                K::KIND
            ))),
            Some(ns) if K::NAMESPACED => Ok(Some(ns)),
            Some(ns) => Err(Error::Invalid(format!(
                "{} is cluster-scoped: {name:?} has no namespace (not {ns:?})",
                K::KIND
            ))),
            None if K::NAMESPACED => Err(Error::Invalid(format!(
                "{} {name:?}: Api::all() of a namespaced kind names no namespace; use \
                 Api::namespaced",
                K::KIND
            ))),
            None => Ok(None),
        }
    }

    /// The namespace of a list-shaped call.
    fn ns_for_list(&self) -> Result<Option<&str>> {
        match self.namespace.as_deref() {
            Some("") => Err(Error::Invalid(format!(
                "{}: Api::namespaced(\"\") names no namespace; use Api::all for every namespace",
                K::KIND
            ))),
            Some(ns) if !K::NAMESPACED => Err(Error::Invalid(format!(
                "{} is cluster-scoped: it has no namespace {ns:?}",
                K::KIND
            ))),
            ns => Ok(ns),
        }
    }

    /// Reads one object from the cache; `Ok(None)` when it is not there.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the manifest grants no `get` on `K`, [`Error::NotSynced`]
    /// before the cache synced, [`Error::Decode`] when the object does not decode as `K`.
    pub fn get(&self, name: &str) -> Result<Option<K>> {
        self.get_raw(name)?
            .map(|b| decode(&b, || format!("{} {name}", K::KIND)))
            .transpose()
    }

    /// Like [`Api::get`] but returns the JSON bytes undecoded.
    ///
    /// # Errors
    /// As [`Api::get`], minus decoding.
    pub fn get_raw(&self, name: &str) -> Result<Option<Vec<u8>>> {
        sys::get(&Self::kind(), self.ns_for(name)?, name, None)
    }

    /// Reads one object with only `fields` set (plus `apiVersion`, `kind` and
    /// `metadata.name`, `namespace`, `resourceVersion`, `uid`), decoded into `T`: `K` itself
    /// (every other field at its default) or a small struct of your own. `Ok(None)` when the
    /// object is not there.
    ///
    /// The host copies just those fields out of the cached object, so the plugin receives
    /// and decodes a few hundred bytes instead of the whole object. A field is a dotted path:
    /// `spec.nodeName`, `metadata.labels` (a whole object), `metadata.labels[app]` or
    /// `metadata.labels['app.kubernetes.io/name']` (one key), `spec.containers.image` (an
    /// array keeps the rest of the path in each element). At most 128 fields.
    ///
    /// ```
    /// # let host = kubewasm_sdk::testing::FakeHost::new();
    /// # host.seed_json::<Pod>(serde_json::json!({"metadata": {"namespace": "demo", "name": "web-1",
    /// #     "annotations": {"big": "..."}}, "spec": {"nodeName": "node-a"}, "status": {"phase": "Running"}}));
    /// use k8s_openapi::api::core::v1::Pod;
    /// use kubewasm_sdk::Api;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Placed {
    ///     spec: Spec,
    /// }
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Spec {
    ///     node_name: Option<String>,
    /// }
    ///
    /// let pods = Api::<Pod>::namespaced("demo");
    /// let placed: Option<Placed> = pods.get_fields("web-1", &["spec.nodeName"])?;
    /// assert_eq!(placed.unwrap().spec.node_name.as_deref(), Some("node-a"));
    /// let pod: Option<Pod> = pods.get_fields("web-1", &["status.phase"])?;
    /// assert_eq!(pod.unwrap().metadata.annotations, None); // not asked for
    /// # Ok::<(), kubewasm_sdk::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Api::get`], plus [`Error::Invalid`] for a bad field path.
    pub fn get_fields<T: DeserializeOwned>(
        &self,
        name: &str,
        fields: &[&str],
    ) -> Result<Option<T>> {
        sys::get(&Self::kind(), self.ns_for(name)?, name, Some(fields))?
            .map(|b| decode(&b, || format!("{} {name} (projected)", K::KIND)))
            .transpose()
    }

    /// Like [`Api::get_fields`] but returns the projected JSON undecoded: decode it into a
    /// type that borrows from the bytes to skip copying strings.
    ///
    /// # Errors
    /// As [`Api::get_fields`], minus decoding.
    pub fn get_fields_raw(&self, name: &str, fields: &[&str]) -> Result<Option<Vec<u8>>> {
        sys::get(&Self::kind(), self.ns_for(name)?, name, Some(fields))
    }

    /// Lists the objects of `K` in this `Api`'s scope that `lp` selects, in no particular
    /// order.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `list` on `K` (or an index on another kind),
    /// [`Error::Invalid`] for a bad selector or an undeclared index, [`Error::NotSynced`],
    /// [`Error::Decode`] when an object does not decode.
    pub fn list(&self, lp: &ListParams) -> Result<Vec<K>> {
        decode(&self.list_raw(lp)?, || format!("a list of {}", K::KIND))
    }

    /// Like [`Api::list`] but returns the JSON array undecoded.
    ///
    /// # Errors
    /// As [`Api::list`], minus decoding.
    pub fn list_raw(&self, lp: &ListParams) -> Result<Vec<u8>> {
        sys::list(&Self::kind(), self.ns_for_list()?, lp, None)
    }

    /// Like [`Api::list`], each object holding only `fields` (see [`Api::get_fields`]) and
    /// decoded into `T`.
    ///
    /// # Errors
    /// As [`Api::list`], plus [`Error::Invalid`] for a bad field path.
    pub fn list_fields<T: DeserializeOwned>(
        &self,
        lp: &ListParams,
        fields: &[&str],
    ) -> Result<Vec<T>> {
        let bytes = sys::list(&Self::kind(), self.ns_for_list()?, lp, Some(fields))?;
        decode(&bytes, || format!("a list of {} (projected)", K::KIND))
    }

    /// Like [`Api::list_fields`] but returns the projected JSON array undecoded.
    ///
    /// # Errors
    /// As [`Api::list_fields`], minus decoding.
    pub fn list_fields_raw(&self, lp: &ListParams, fields: &[&str]) -> Result<Vec<u8>> {
        sys::list(&Self::kind(), self.ns_for_list()?, lp, Some(fields))
    }

    /// The keys (namespace and name) of the objects `lp` selects, without their bodies.
    ///
    /// # Errors
    /// As [`Api::list`], minus decoding.
    pub fn keys(&self, lp: &ListParams) -> Result<Vec<ObjectKey>> {
        sys::keys(&Self::kind(), self.ns_for_list()?, lp)
    }

    /// How many objects `lp` selects.
    ///
    /// # Errors
    /// As [`Api::list`], minus decoding.
    pub fn count(&self, lp: &ListParams) -> Result<u64> {
        sys::count(&Self::kind(), self.ns_for_list()?, lp)
    }

    /// Creates `obj` in this `Api`'s namespace (an `Api::all()` of a namespaced kind uses
    /// `obj`'s `metadata.namespace`); returns it as stored. Set an owner reference on what
    /// you create so its changes reconcile the owner ([`Manifest::owns`](crate::Manifest::owns))
    /// and Kubernetes deletes it with the owner.
    ///
    /// ```
    /// # let _host = kubewasm_sdk::testing::FakeHost::new();
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    /// use kubewasm_sdk::{Api, Error};
    ///
    /// let cm = ConfigMap {
    ///     metadata: ObjectMeta { name: Some("generated".into()), ..ObjectMeta::default() },
    ///     ..ConfigMap::default()
    /// };
    /// match Api::<ConfigMap>::namespaced("demo").create(&cm) {
    ///     Ok(_) | Err(Error::AlreadyExists(_)) => {} // idempotent
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), kubewasm_sdk::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `create`, [`Error::AlreadyExists`], [`Error::Invalid`]
    /// (also when the body's namespace is not this `Api`'s).
    pub fn create(&self, obj: &K) -> Result<K> {
        let body_ns = obj.meta().namespace.as_deref().filter(|n| !n.is_empty());
        let namespace = match (self.namespace.as_deref(), body_ns) {
            (Some(ns), Some(b)) if ns != b => {
                return Err(Error::Invalid(format!(
                    "{}: the body's namespace {b:?} is not the Api's {ns:?}",
                    K::KIND
                )));
            }
            (Some(ns), _) => Some(ns),
            (None, b) if K::NAMESPACED => Some(b.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: Api::all().create needs metadata.namespace (or use Api::namespaced)",
                    K::KIND
                ))
            })?),
            (None, _) => None,
        };
        if !K::NAMESPACED && namespace.is_some() {
            return Err(Error::Invalid(format!("{} is cluster-scoped", K::KIND)));
        }
        let out = sys::create(&Self::kind(), namespace, &encode(K::KIND, obj)?)?;
        decode(&out, || format!("{} (created)", K::KIND))
    }

    /// Replaces the object `name` with `obj` (PUT). A `metadata.resourceVersion` in `obj`
    /// makes it conditional: [`Error::Conflict`] when someone wrote since.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `update`, [`Error::NotFound`], [`Error::Conflict`],
    /// [`Error::Invalid`].
    pub fn replace(&self, name: &str, obj: &K) -> Result<K> {
        self.replace_sub(name, &encode(K::KIND, obj)?, None)
    }

    /// Replaces the status subresource of `name` with `obj`'s `status` (the rest of `obj` is
    /// ignored).
    ///
    /// # Errors
    /// As [`Api::replace`].
    pub fn replace_status(&self, name: &str, obj: &K) -> Result<K> {
        self.replace_sub(name, &encode(K::KIND, obj)?, Some(Subresource::Status))
    }

    fn replace_sub(&self, name: &str, body: &[u8], sub: Option<Subresource>) -> Result<K> {
        let out = sys::replace(&Self::kind(), self.ns_for(name)?, name, body, sub)?;
        decode(&out, || format!("{} {name}", K::KIND))
    }

    /// Patches the object `name`; returns it as stored.
    ///
    /// ```
    /// # let host = kubewasm_sdk::testing::FakeHost::new();
    /// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use kubewasm_sdk::{Api, Patch};
    /// use serde_json::json;
    ///
    /// let cms = Api::<ConfigMap>::namespaced("demo");
    /// let cm = cms.patch("settings", &Patch::merge(json!({"data": {"k": "v"}}))?)?;
    /// assert_eq!(cm.data.unwrap()["k"], "v");
    /// # Ok::<(), kubewasm_sdk::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `patch`, [`Error::NotFound`] (except for
    /// [`Patch::Apply`], which creates), [`Error::Conflict`] (an apply conflict),
    /// [`Error::Invalid`] (also a failed JSON patch `test` op, as kube-apiserver answers).
    pub fn patch(&self, name: &str, patch: &Patch) -> Result<K> {
        let out = sys::patch(&Self::kind(), self.ns_for(name)?, name, patch.body()?, None)?;
        decode(&out, || format!("{} {name}", K::KIND))
    }

    /// Patches the status subresource of `name` (only `status` changes).
    ///
    /// # Errors
    /// As [`Api::patch`].
    pub fn patch_status(&self, name: &str, patch: &Patch) -> Result<K> {
        let out = sys::patch(
            &Self::kind(),
            self.ns_for(name)?,
            name,
            patch.body()?,
            Some(Subresource::Status),
        )?;
        decode(&out, || format!("{} {name}", K::KIND))
    }

    /// Patches the scale subresource of `name` (an `autoscaling/v1` `Scale`, e.g.
    /// `{"spec": {"replicas": 3}}`); returns the `Scale`.
    ///
    /// # Errors
    /// As [`Api::patch`]; [`Error::NotFound`] also for a kind without a scale subresource.
    pub fn patch_scale(&self, name: &str, patch: &Patch) -> Result<Scale> {
        let out = sys::patch(
            &Self::kind(),
            self.ns_for(name)?,
            name,
            patch.body()?,
            Some(Subresource::Scale),
        )?;
        decode(&out, || format!("the Scale of {} {name}", K::KIND))
    }

    /// Deletes the object `name`. An object with `metadata.finalizers` is only marked
    /// (`metadata.deletionTimestamp`) until its finalizers are removed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete`, [`Error::NotFound`], [`Error::Conflict`] when a
    /// precondition of `dp` failed.
    pub fn delete(&self, name: &str, dp: &DeleteParams) -> Result<()> {
        sys::delete(&Self::kind(), self.ns_for(name)?, name, dp)
    }

    /// Records `event` about the object `name` of this `Api` (useful when you no longer hold
    /// the object, e.g. after a delete; else [`event`]).
    ///
    /// # Errors
    /// As [`event`].
    pub fn event(&self, name: &str, event: &Event) -> Result<()> {
        sys::record_event(&EventRecord {
            kind: Self::kind(),
            namespace: self.ns_for(name)?,
            name,
            event,
        })
    }
}

/// A patch to send with [`Api::patch`], [`Api::patch_status`] or [`Api::patch_scale`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Patch {
    /// A JSON merge patch (RFC 7386): the fields to set, `null` to remove.
    Merge(serde_json::Value),
    /// A JSON patch (RFC 6902): an array of `{"op": ..., "path": ..., "value": ...}`.
    Json(serde_json::Value),
    /// A Kubernetes strategic merge patch: lists merge by their key (containers by `name`,
    /// ...). Built-in kinds only; a custom resource answers [`Error::Invalid`].
    Strategic(serde_json::Value),
    /// Server-side apply of the fields this plugin manages (a partial object with
    /// `apiVersion` and `kind`), with the plugin's field manager (`kubewasm-<plugin>`).
    /// Creates the object when it is missing. `force` takes fields over from other
    /// managers instead of failing with [`Error::Conflict`].
    Apply {
        /// The applied (partial) object.
        body: serde_json::Value,
        /// Take conflicting fields over.
        force: bool,
    },
}

impl Patch {
    /// A merge patch from any serializable value (e.g. `serde_json::json!({...})`).
    ///
    /// # Errors
    /// [`Error::Decode`] when `value` does not serialize.
    pub fn merge(value: impl Serialize) -> Result<Self> {
        Ok(Self::Merge(serde_json::to_value(value)?))
    }

    /// A strategic merge patch from any serializable value.
    ///
    /// # Errors
    /// [`Error::Decode`] when `value` does not serialize.
    pub fn strategic(value: impl Serialize) -> Result<Self> {
        Ok(Self::Strategic(serde_json::to_value(value)?))
    }

    /// A server-side apply of `obj` (without `force`; see [`Patch::force`]). `apiVersion`
    /// and `kind` are filled in from `K` when `obj` leaves them out.
    ///
    /// # Errors
    /// [`Error::Decode`] when `obj` does not serialize.
    pub fn apply<K: Object>(obj: &K) -> Result<Self> {
        let mut body = serde_json::to_value(obj)?;
        if let Some(map) = body.as_object_mut() {
            let kind = Kind::of::<K>();
            for (key, value) in [("apiVersion", kind.api_version()), ("kind", K::KIND.into())] {
                let missing = map
                    .get(key)
                    .and_then(serde_json::Value::as_str)
                    .is_none_or(str::is_empty);
                if missing {
                    map.insert(key.to_owned(), value.into());
                }
            }
        }
        Ok(Self::Apply { body, force: false })
    }

    /// An apply patch that takes conflicting fields over; other patches are unchanged.
    #[must_use]
    pub fn force(self) -> Self {
        match self {
            Self::Apply { body, .. } => Self::Apply { body, force: true },
            other => other,
        }
    }

    pub(crate) fn body(&self) -> Result<PatchBody> {
        Ok(match self {
            Self::Merge(v) => PatchBody::Merge(encode("merge patch", v)?),
            Self::Json(v) => PatchBody::Json(encode("json patch", v)?),
            Self::Strategic(v) => PatchBody::Strategic(encode("strategic merge patch", v)?),
            Self::Apply { body, force } => PatchBody::Apply {
                body: encode("apply patch", body)?,
                force: *force,
            },
        })
    }
}

/// Records `event` about `obj` (its kind must be in the manifest). The host aggregates
/// repeats: the same event (object, type, reason, action and note) within a few minutes
/// updates one Event's count instead of creating another.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "settings"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::{Api, Event};
///
/// if let Some(cm) = Api::<ConfigMap>::namespaced("demo").get("settings")? {
///     kubewasm_sdk::event(&cm, &Event::warning("Invalid", "data.replicas is not a number"))?;
/// }
/// # assert_eq!(host.events().len(), 1);
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// [`Error::Forbidden`] for a kind the manifest does not mention, [`Error::Invalid`] when
/// `obj` has no name.
pub fn event<K: Object>(obj: &K, event: &Event) -> Result<()> {
    let meta = obj.meta();
    let name = meta
        .name
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", K::KIND)))?;
    sys::record_event(&EventRecord {
        kind: Kind::of::<K>(),
        namespace: meta.namespace.as_deref().filter(|n| !n.is_empty()),
        name,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn decode_reads_json_text_and_names_the_object_when_it_fails() {
        let pod: Pod = decode(
            br#"{"metadata": {"name": "web-1", "labels": {"app": "w\u00e9b"}}}"#,
            || unreachable!("the context is only built for an error"),
        )
        .expect("decodes");
        assert_eq!(pod.metadata.labels.unwrap()["app"], "wéb");

        let Err(Error::Decode(m)) = decode::<Pod>(br#"{"metadata": 7}"#, || "Pod web-1".into())
        else {
            panic!("a decode error");
        };
        assert!(m.starts_with("Pod web-1: invalid type"), "{m}");

        // Not UTF-8: an error that says so, not a panic.
        let Err(Error::Decode(m)) = decode::<Pod>(b"{\"metadata\": {\"name\": \"\xff\"}}", || {
            "Pod web-1".into()
        }) else {
            panic!("a decode error");
        };
        assert!(m.starts_with("Pod web-1: invalid unicode"), "{m}");
    }
}
