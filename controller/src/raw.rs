//! [`RawObject`]: a watched object kept as the JSON the API server sent, with only the metadata the
//! cache needs parsed out of it.
//!
//! Informers decode every listed and watched object. Decoding into a `DynamicObject` builds a
//! `serde_json::Value` tree of the whole object (every string and map allocated), and the cache
//! then serializes that tree again into its entry's JSON. A `RawObject` instead keeps the object's
//! bytes as received (`serde_json::value::RawValue`: validated, copied once) and parses only
//! `apiVersion`, `kind` and the metadata fields an [`Entry`](crate::Entry) indexes, skipping the
//! rest without allocating. The entry's JSON is then those bytes, with `metadata.managedFields`
//! cut out and `apiVersion`/`kind` added when missing (list items often lack them).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ApiResource, TypeMeta};
use kube::core::DynamicResourceScope;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A Kubernetes object of any kind, as the API server sent it. See the module docs.
///
/// Deserializing needs serde_json's own deserializer (as kube's list and watch decoding uses): the
/// bytes are captured as a [`RawValue`], which cannot be rebuilt from serde's buffered content. A
/// watch event therefore has to name its `type` before its `object`, as every Kubernetes API
/// server writes it.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// `apiVersion` and `kind`, when both are present.
    pub types: Option<TypeMeta>,
    /// The metadata the cache uses: name, namespace, uid, resourceVersion, generation, labels,
    /// annotations, ownerReferences, finalizers and deletionTimestamp. Other fields (notably
    /// `managedFields`) are left unset here but stay in [`RawObject::json`].
    pub metadata: ObjectMeta,
    json: Box<RawValue>,
    /// Where `"managedFields": [...]` is in `json`, with the comma that separates it from its
    /// neighbour: cutting this range leaves valid JSON.
    managed_fields: Option<Range<usize>>,
    api_version_missing: bool,
    kind_missing: bool,
}

/// What [`RawObject`] parses: everything else is skipped without allocating.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(borrow)]
    metadata: Option<Meta<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
    deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(borrow)]
    managed_fields: Option<&'a RawValue>,
}

impl RawObject {
    /// Parses an object from JSON text.
    ///
    /// # Errors
    /// When the text is not one JSON object, or its metadata has the wrong types.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Self::from_raw(RawValue::from_string(json.to_owned())?)
    }

    fn from_raw(json: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let text = json.get();
        if !text.starts_with('{') {
            return Err(serde_json::Error::custom(
                "a Kubernetes object must be a JSON object",
            ));
        }
        let head: Head<'_> = serde_json::from_str(text)?;
        let (api_version_missing, kind_missing) = (head.api_version.is_none(), head.kind.is_none());
        let types = match (head.api_version, head.kind) {
            (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
            _ => None,
        };
        let mut metadata = ObjectMeta::default();
        let mut managed_fields = None;
        if let Some(m) = head.metadata {
            managed_fields = m
                .managed_fields
                .and_then(|value| member_range(text, value.get(), "managedFields"));
            metadata = ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                generation: m.generation,
                labels: m.labels,
                annotations: m.annotations,
                owner_references: m.owner_references,
                finalizers: m.finalizers,
                deletion_timestamp: m.deletion_timestamp,
                ..ObjectMeta::default()
            };
        }
        Ok(Self {
            types,
            metadata,
            json,
            managed_fields,
            api_version_missing,
            kind_missing,
        })
    }

    /// The object's JSON as received.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The metadata, and the JSON to cache: as received, without `metadata.managedFields` unless
    /// `keep_managed_fields`, and with `apiVersion`/`kind` of `resource` added where missing.
    /// Moves the received bytes when there is nothing to change.
    pub(crate) fn into_cached(
        self,
        resource: &ApiResource,
        keep_managed_fields: bool,
    ) -> (ObjectMeta, Box<[u8]>) {
        let cut = self.managed_fields.clone().filter(|_| !keep_managed_fields);
        if cut.is_none() && !self.api_version_missing && !self.kind_missing {
            let text: Box<str> = self.json.into();
            return (self.metadata, text.into_boxed_bytes());
        }
        let json = self.edited(resource, cut);
        (self.metadata, json)
    }

    /// The JSON with `cut` cut out and the missing type fields added.
    fn edited(&self, resource: &ApiResource, cut: Option<Range<usize>>) -> Box<[u8]> {
        let text = self.json.get();
        let mut prefix = String::new();
        if self.api_version_missing {
            prefix.push_str("\"apiVersion\":");
            prefix.push_str(&serde_json::to_string(&resource.api_version).unwrap_or_default());
            prefix.push(',');
        }
        if self.kind_missing {
            prefix.push_str("\"kind\":");
            prefix.push_str(&serde_json::to_string(&resource.kind).unwrap_or_default());
            prefix.push(',');
        }
        if text[1..].trim_start().starts_with('}') {
            prefix.pop(); // `{}`: no member follows the added ones
        }
        let removed = cut.as_ref().map_or(0, |r| r.end - r.start);
        let mut out = Vec::with_capacity(text.len() + prefix.len() - removed);
        // `text` starts with `{` (checked when parsed).
        out.push(b'{');
        out.extend_from_slice(prefix.as_bytes());
        let body = &text.as_bytes()[1..];
        match cut {
            Some(range) => {
                out.extend_from_slice(&body[..range.start - 1]);
                out.extend_from_slice(&body[range.end - 1..]);
            }
            None => out.extend_from_slice(body),
        }
        out.into_boxed_slice()
    }
}

/// The byte range in `object` of the member whose value is the slice `value` (borrowed from
/// `object`) and whose key is `key`, plus one neighbouring comma, so that cutting it leaves valid
/// JSON. `None` when the key is not written plainly before the value (e.g. with escapes): the
/// member is then kept.
fn member_range(object: &str, value: &str, key: &str) -> Option<Range<usize>> {
    let bytes = object.as_bytes();
    let value_start = (value.as_ptr() as usize).checked_sub(object.as_ptr() as usize)?;
    let value_end = value_start + value.len();
    if value_end > bytes.len() {
        return None;
    }
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    // Back from the value: whitespace, ':', whitespace, then `"key"`.
    let mut i = value_start;
    while i > 0 && ws(bytes[i - 1]) {
        i -= 1;
    }
    i = i.checked_sub(1).filter(|&j| bytes[j] == b':')?;
    while i > 0 && ws(bytes[i - 1]) {
        i -= 1;
    }
    let key_start = i.checked_sub(key.len() + 2)?;
    let unquoted = bytes[key_start..i]
        .strip_prefix(b"\"")
        .and_then(|k| k.strip_suffix(b"\""));
    if unquoted != Some(key.as_bytes()) {
        return None;
    }
    // Take the comma before the member, or else the one after it (it is the first member).
    let mut before = key_start;
    while before > 0 && ws(bytes[before - 1]) {
        before -= 1;
    }
    if before > 0 && bytes[before - 1] == b',' {
        return Some(before - 1..value_end);
    }
    let mut after = value_end;
    while after < bytes.len() && ws(bytes[after]) {
        after += 1;
    }
    if bytes.get(after) == Some(&b',') {
        return Some(key_start..after + 1);
    }
    // The only member: cutting it leaves `{}`.
    Some(key_start..value_end)
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer).map_err(|e| {
            D::Error::custom(format_args!(
                "cannot keep the object's JSON as sent ({e}); in a watch event, \"type\" must come \
                 before \"object\", as Kubernetes API servers write it"
            ))
        })?;
        Self::from_raw(json).map_err(D::Error::custom)
    }
}

impl kube::Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::testing::pods;

    fn cached(text: &str, keep: bool) -> Value {
        let raw = RawObject::from_json(text).expect("parses");
        let (_, bytes) = raw.into_cached(&pods(), keep);
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&bytes));
        })
    }

    #[test]
    fn metadata_is_parsed_and_the_rest_is_kept_as_sent() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","uid":"u","resourceVersion":"7","generation":2,"labels":{"app":"web"},"annotations":{"a":"b"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"ru","controller":true}],"finalizers":["f"],"deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"nodeName":"n1","x":[1,2.5,null,{"y":"\u00e9"}]}}"#;
        let raw = RawObject::from_json(text).expect("parses");
        let m = &raw.metadata;
        assert_eq!(m.name.as_deref(), Some("p"));
        assert_eq!(m.namespace.as_deref(), Some("ns"));
        assert_eq!(m.uid.as_deref(), Some("u"));
        assert_eq!(m.resource_version.as_deref(), Some("7"));
        assert_eq!(m.generation, Some(2));
        assert_eq!(
            m.labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
        assert_eq!(m.annotations.as_ref().map(BTreeMap::len), Some(1));
        assert_eq!(
            m.owner_references.as_ref().map(|o| o[0].name.as_str()),
            Some("rs")
        );
        assert_eq!(m.finalizers.as_deref(), Some(&["f".to_owned()][..]));
        assert!(m.deletion_timestamp.is_some());
        assert_eq!(raw.types.as_ref().map(|t| t.kind.as_str()), Some("Pod"));
        let (_, bytes) = raw.into_cached(&pods(), false);
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            text,
            "nothing to change: moved as is"
        );
    }

    #[test]
    fn managed_fields_are_cut_wherever_they_stand_in_metadata() {
        let mf = r#"[{"manager":"kubectl","operation":"Apply","fieldsV1":{"f:metadata":{"f:labels":{".":{}}}}}]"#;
        for meta in [
            format!(r#"{{"name":"p","managedFields":{mf},"uid":"u"}}"#),
            format!(r#"{{"managedFields":{mf},"name":"p"}}"#),
            format!(r#"{{"name":"p","managedFields":{mf}}}"#),
            format!(r#"{{ "name" : "p" ,  "managedFields" :  {mf} , "uid": "u" }}"#),
            format!("{{\n  \"managedFields\": {mf},\n  \"name\": \"p\"\n}}"),
        ] {
            let text = format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{meta},"spec":{{"managedFields":1}}}}"#
            );
            let v = cached(&text, false);
            assert_eq!(v["metadata"]["name"], "p", "{meta}");
            assert!(v["metadata"].get("managedFields").is_none(), "{meta}");
            assert_eq!(
                v["spec"]["managedFields"], 1,
                "only metadata's is cut: {meta}"
            );
            let kept = cached(&text, true);
            assert_eq!(
                kept["metadata"]["managedFields"][0]["manager"], "kubectl",
                "{meta}"
            );
        }
        // The only member of metadata (no name: the entry refuses it later, but the JSON is valid).
        let v = cached(
            &format!(r#"{{"metadata":{{"managedFields":{mf}}}}}"#),
            false,
        );
        assert_eq!(v["metadata"], json!({}));
    }

    #[test]
    fn api_version_and_kind_are_added_when_missing() {
        let v = cached(
            r#"{"metadata":{"name":"p","managedFields":[]},"spec":{}}"#,
            false,
        );
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["metadata"], json!({"name": "p"}));
        let v = cached(r#"{"kind":"Pod","metadata":{"name":"p"}}"#, false);
        assert_eq!(
            (v["apiVersion"].as_str(), v["kind"].as_str()),
            (Some("v1"), Some("Pod"))
        );
        let raw =
            RawObject::from_json(r#"{"kind":"Pod","metadata":{"name":"p"}}"#).expect("parses");
        assert!(raw.types.is_none(), "types need both fields");
        assert_eq!(
            cached("{ }", false),
            json!({"apiVersion": "v1", "kind": "Pod"})
        );
    }

    #[test]
    fn an_escaped_key_is_kept_rather_than_cut_wrongly() {
        let v = cached(
            r#"{"metadata":{"name":"p","managed\u0046ields":[{"manager":"m"}]}}"#,
            false,
        );
        assert_eq!(v["metadata"]["managedFields"][0]["manager"], "m");
    }

    #[test]
    fn what_is_not_an_object_or_has_badly_typed_metadata_is_refused() {
        assert!(RawObject::from_json("[1]").is_err());
        assert!(RawObject::from_json(r#"{"metadata":{"name":3}}"#).is_err());
        assert!(RawObject::from_json(r#"{"metadata":{"labels":{"a":1}}}"#).is_err());
        assert!(RawObject::from_json("{").is_err());
    }

    #[test]
    fn a_watch_event_with_its_object_first_is_refused_with_the_reason() {
        let line = r#"{"object":{"metadata":{"name":"p"}},"type":"ADDED"}"#;
        let err = serde_json::from_str::<kube::api::WatchEvent<RawObject>>(line)
            .expect_err("serde buffers the object, and RawValue cannot be rebuilt from that");
        assert!(
            err.to_string()
                .contains("\"type\" must come before \"object\""),
            "{err}"
        );
        // Bookmarks and errors do not carry a RawObject: any order is fine.
        let bookmark = r#"{"object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"5"}},"type":"BOOKMARK"}"#;
        assert!(serde_json::from_str::<kube::api::WatchEvent<RawObject>>(bookmark).is_ok());
    }

    #[test]
    fn a_watch_event_decodes_into_a_raw_object() {
        let line = r#"{"type":"MODIFIED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","resourceVersion":"9"}}}"#;
        let event: kube::api::WatchEvent<RawObject> = serde_json::from_str(line).expect("event");
        let kube::api::WatchEvent::Modified(obj) = event else {
            panic!("modified")
        };
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("9"));
        assert!(obj.json().contains(r#""name":"p""#));
    }
}
