//! `Entry`: one cached object, kept as ready-to-send compact JSON plus the parsed bits indexes need.

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;

use crate::raw::RawObject;
use kubewasm_core::{FieldPath, Labels, ObjectKey};

/// Why an object could not be turned into an [`Entry`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no `metadata.name`.
    #[error("{kind} object has no metadata.name")]
    NoName {
        /// The kind of the object.
        kind: String,
    },
    /// The object could not be serialized or parsed as JSON.
    #[error("failed to encode {kind} {key} as JSON: {source}")]
    Json {
        /// The kind of the object.
        kind: String,
        /// The object's key, or what is known of it.
        key: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// An owner reference, as needed to map owned objects to their owners' keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerRef {
    /// The owner's apiVersion (`apps/v1`).
    pub api_version: String,
    /// The owner's kind (`ReplicaSet`).
    pub kind: String,
    /// The owner's name (same namespace as the owned object).
    pub name: String,
    /// The owner's UID.
    pub uid: String,
    /// Whether this owner is the managing controller.
    pub controller: bool,
}

impl OwnerRef {
    /// The API group of the owner (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

/// The key of an object, which must have a name.
fn key_of(meta: &ObjectMeta, resource: &ApiResource) -> Result<ObjectKey, Error> {
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => Ok(ObjectKey::new(meta.namespace.as_deref(), n)),
        _ => Err(Error::NoName {
            kind: resource.kind.clone(),
        }),
    }
}

/// A cached object: its identity, the parts indexes and key mapping need, and the whole object as
/// compact JSON bytes, serialized once when the event arrived. Cloning the bytes is a reference count
/// increment, so a read hands them out without copying or re-serializing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    key: ObjectKey,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Labels,
    owners: Vec<OwnerRef>,
    json: Bytes,
}

impl Entry {
    /// Builds an entry from an object kept as the JSON the API server sent (what informers
    /// decode into), without decoding the whole object or serializing it again. The JSON is the received bytes, with `managedFields` cut
    /// out unless `keep_managed_fields` and `apiVersion`/`kind` added when missing.
    ///
    /// # Errors
    /// [`Error::NoName`] for an object without a name.
    pub fn from_raw(
        obj: RawObject,
        resource: &ApiResource,
        keep_managed_fields: bool,
    ) -> Result<Self, Error> {
        let key = key_of(&obj.metadata, resource)?;
        let (meta, json) = obj.into_cached(resource, keep_managed_fields);
        Ok(Self::new(key, &meta, Bytes::from(json)))
    }

    fn new(key: ObjectKey, meta: &ObjectMeta, json: Bytes) -> Self {
        Self {
            key,
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            labels: meta
                .labels
                .as_ref()
                .map(Labels::from_map)
                .unwrap_or_default(),
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(|o| OwnerRef {
                    api_version: o.api_version.clone(),
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    uid: o.uid.clone(),
                    controller: o.controller.unwrap_or(false),
                })
                .collect(),
            json,
        }
    }

    /// The object's namespace/name.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// The namespace, `None` when cluster-scoped.
    pub fn namespace(&self) -> Option<&str> {
        self.key.namespace()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// `metadata.ownerReferences`.
    pub fn owners(&self) -> &[OwnerRef] {
        &self.owners
    }

    /// The whole object as compact JSON. Cloning is cheap (reference counted).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The values of a field index's path in the cached JSON.
    pub fn field_values(&self, path: &FieldPath) -> Vec<String> {
        std::str::from_utf8(&self.json)
            .map_or_else(|_| Vec::new(), |text| path.values_in_text(text))
    }

    /// Approximate heap bytes held by this entry (JSON plus parsed parts), for memory figures.
    pub fn heap_size(&self) -> usize {
        let s = |x: &String| x.capacity();
        let o = |x: &Option<String>| x.as_ref().map_or(0, String::capacity);
        let labels = self.labels.heap_size();
        let owners: usize = self
            .owners
            .iter()
            .map(|r| {
                size_of::<OwnerRef>() + s(&r.api_version) + s(&r.kind) + s(&r.name) + s(&r.uid)
            })
            .sum();
        size_of::<Self>()
            + o(&self.key.namespace)
            + s(&self.key.name)
            + o(&self.uid)
            + o(&self.resource_version)
            + labels
            + owners
            + self.json.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::RawObject;
    use crate::testing::pods;

    fn pod() -> RawObject {
        RawObject::from_json(&json!({
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "ru", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"nodeName": "n1"}
        }).to_string())
        .expect("pod")
    }

    #[test]
    fn entry_keeps_compact_json_with_type_meta_and_without_managed_fields() {
        let e = Entry::from_raw(pod(), &pods(), false).expect("entry");
        let v: serde_json::Value = serde_json::from_slice(e.json()).expect("json");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["spec"]["nodeName"], "n1");
        assert!(v["metadata"].get("managedFields").is_none());
        assert!(!e.json().contains(&b'\n'), "compact JSON");
        assert_eq!(e.key(), &ObjectKey::namespaced("ns", "p"));
        assert_eq!((e.uid(), e.resource_version()), (Some("u"), Some("7")));
        assert_eq!(e.labels().get("app"), Some("web"));
        assert_eq!(e.owners()[0].group(), "apps");
        assert!(e.owners()[0].controller);
    }

    #[test]
    fn entry_keeps_managed_fields_when_asked() {
        let e = Entry::from_raw(pod(), &pods(), true).expect("entry");
        let v: serde_json::Value = serde_json::from_slice(e.json()).expect("json");
        assert_eq!(v["metadata"]["managedFields"][0]["manager"], "kubectl");
    }

    #[test]
    fn entry_rejects_an_object_without_a_name() {
        let o = RawObject::from_json(r#"{"metadata": {}}"#).expect("obj");
        let err = Entry::from_raw(o, &pods(), false).expect_err("no name");
        assert_eq!(err.to_string(), "Pod object has no metadata.name");
    }
}
