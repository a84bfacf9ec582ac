//! The fake host's in-memory cluster: objects, the lagging cache, writes with Kubernetes'
//! resourceVersion and finalizer rules, reads through the plugin's validated manifest.

use std::collections::{BTreeMap, VecDeque};

use kubewasm_core::{LabelSelector, Projection};
use serde_json::{Map, Value};

use super::{Call, RecordedEvent, Write};
use crate::data::Event;
use crate::data::Level;
use crate::data::PatchBody;
use crate::error::{Error, Result};
use crate::manifest::Verb;
use crate::object::Kind;

/// The frozen clock of the fake host.
const NOW: &str = "2000-01-01T00:00:00Z";

pub(super) type Objects = BTreeMap<(&'static str, &'static str), BTreeMap<(String, String), Value>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) manifest: Option<kubewasm_core::Manifest>,
    pub(super) objects: Objects,
    /// The cache snapshot reads see while cache lag is on.
    pub(super) cache: Option<Objects>,
    pub(super) versions: u64,
    pub(super) writes: Vec<Write>,
    pub(super) events: Vec<RecordedEvent>,
    pub(super) logs: Vec<(Level, String)>,
    pub(super) failures: VecDeque<(Call, Error)>,
}

pub(super) fn object_meta(value: &mut Value) -> Option<&mut Map<String, Value>> {
    let obj = value.as_object_mut()?;
    obj.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

pub(super) fn str_field(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub(super) fn fill_type(value: &mut Value, kind: &Kind) {
    if let Some(obj) = value.as_object_mut() {
        let api_version = if kind.group.is_empty() {
            kind.version.to_owned()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        obj.entry("apiVersion")
            .or_insert_with(|| Value::from(api_version));
        obj.entry("kind").or_insert_with(|| Value::from(kind.kind));
    }
}

fn parse(what: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("{what} is not JSON: {e}")))
}

/// The host's projection of `fields`, with its answer to a bad path.
fn projection(fields: &[&str]) -> Result<Projection> {
    Projection::new(fields).map_err(|e| Error::Invalid(e.to_string()))
}

/// Each of `items` projected, as JSON bytes.
fn project(projection: &Projection, items: &[&Value]) -> Result<Vec<Vec<u8>>> {
    items
        .iter()
        .map(|v| {
            projection
                .project(&encode(v))
                .map_err(|e| Error::Invalid(e.to_string()))
        })
        .collect()
}

fn projection_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

fn encode(value: &Value) -> Vec<u8> {
    // A serde_json::Value always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

impl State {
    fn check(&mut self, call: Call, kind: &Kind, verb: Option<Verb>) -> Result<()> {
        if let Some(i) = self
            .failures
            .iter()
            .position(|(c, _)| *c == call || *c == Call::Any)
            && let Some((_, error)) = self.failures.remove(i)
        {
            return Err(error);
        }
        let Some(manifest) = &self.manifest else {
            return Ok(());
        };
        match verb {
            Some(verb) => manifest.check(kind.group, kind.kind, verb),
            None => manifest.declared(kind.group, kind.kind),
        }
        .map(drop)
        .map_err(|denied| Error::Forbidden(denied.message().to_owned()))
    }

    fn reads(&self) -> &Objects {
        self.cache.as_ref().unwrap_or(&self.objects)
    }

    fn read_all(&self, kind: &Kind) -> impl Iterator<Item = (&(String, String), &Value)> {
        self.reads()
            .get(&(kind.group, kind.kind))
            .into_iter()
            .flat_map(BTreeMap::iter)
    }

    fn next_version(&mut self) -> String {
        self.versions += 1;
        self.versions.to_string()
    }

    fn current(&self, kind: &Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind.group, kind.kind))?
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    fn not_found(kind: &Kind, namespace: &str, name: &str) -> Error {
        Error::NotFound(format!("{} {namespace}/{name} not found", kind.kind))
    }

    /// Stores `value` as the new version of `namespace`/`name` (checking a sent
    /// resourceVersion against `expected`), applies finalizer semantics, returns it.
    fn store(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        mut value: Value,
        old: Option<&Value>,
    ) -> Result<Value> {
        let old_meta = old.and_then(|o| o.get("metadata"));
        if let Some(meta) = object_meta(&mut value) {
            if let (Some(sent), Some(current)) = (
                meta.get("resourceVersion").and_then(Value::as_str),
                old_meta
                    .and_then(|m| m.get("resourceVersion"))
                    .and_then(Value::as_str),
            ) && sent != current
            {
                return Err(Error::Conflict(format!(
                    "{} {namespace}/{name}: resourceVersion {sent} is stale (current {current})",
                    kind.kind
                )));
            }
            // Immutable fields keep their stored value.
            for key in ["uid", "creationTimestamp", "deletionTimestamp"] {
                if let Some(v) = old_meta.and_then(|m| m.get(key)) {
                    meta.insert(key.into(), v.clone());
                }
            }
        }
        fill_type(&mut value, kind);
        let rv = self.next_version();
        let meta = object_meta(&mut value)
            .ok_or_else(|| Error::Invalid(format!("{} body is not an object", kind.kind)))?;
        meta.insert("resourceVersion".into(), Value::from(rv));
        meta.insert("name".into(), Value::from(name));
        if !namespace.is_empty() {
            meta.insert("namespace".into(), Value::from(namespace));
        }
        let finalizers_left = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let deleting = meta.contains_key("deletionTimestamp");
        let objects = self.objects.entry((kind.group, kind.kind)).or_default();
        let key = (namespace.to_owned(), name.to_owned());
        if deleting && !finalizers_left {
            objects.remove(&key);
        } else {
            objects.insert(key, value.clone());
        }
        Ok(value)
    }

    fn record(&mut self, call: Call, kind: &Kind, namespace: &str, name: &str, body: Value) {
        self.writes.push(Write {
            call,
            kind: *kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            body,
        });
    }

    pub(super) fn create(&mut self, kind: &Kind, namespace: &str, body: &[u8]) -> Result<Vec<u8>> {
        self.check(Call::Create, kind, Some(Verb::Create))?;
        let mut value = parse("the object", body)?;
        let versions = self.versions + 1;
        let meta = object_meta(&mut value)
            .ok_or_else(|| Error::Invalid(format!("{} body is not an object", kind.kind)))?;
        let body_ns = str_field(meta, "namespace");
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(Error::Invalid(format!(
                "the body's namespace {body_ns:?} does not match {namespace:?}"
            )));
        }
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{versions:05}"),
                None => return Err(Error::Invalid(format!("{} has no name", kind.kind))),
            },
        };
        meta.insert("uid".into(), Value::from(format!("uid-{versions}")));
        meta.insert("creationTimestamp".into(), Value::from(NOW));
        if self.current(kind, namespace, &name).is_some() {
            return Err(Error::AlreadyExists(format!(
                "{} {namespace}/{name} already exists",
                kind.kind
            )));
        }
        let stored = self.store(kind, namespace, &name, value, None)?;
        self.record(Call::Create, kind, namespace, &name, parse("", body)?);
        Ok(encode(&stored))
    }

    pub(super) fn replace(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        body: &[u8],
        status: bool,
    ) -> Result<Vec<u8>> {
        let call = if status {
            Call::ReplaceStatus
        } else {
            Call::Replace
        };
        self.check(call, kind, Some(Verb::Update))?;
        let sent = parse("the object", body)?;
        let old = self
            .current(kind, namespace, name)
            .cloned()
            .ok_or_else(|| Self::not_found(kind, namespace, name))?;
        let new = if status {
            let mut new = old.clone();
            new["status"] = sent.get("status").cloned().unwrap_or(Value::Null);
            if let Some(rv) = sent.pointer("/metadata/resourceVersion") {
                new["metadata"]["resourceVersion"] = rv.clone();
            }
            new
        } else {
            sent.clone()
        };
        let stored = self.store(kind, namespace, name, new, Some(&old))?;
        self.record(call, kind, namespace, name, sent);
        Ok(encode(&stored))
    }

    pub(super) fn patch(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch: PatchBody,
        status: bool,
    ) -> Result<Vec<u8>> {
        let (call, body) = match &patch {
            PatchBody::Apply { body, .. } => (Call::Apply, body),
            PatchBody::Merge(b) | PatchBody::Json(b) if status => (Call::PatchStatus, b),
            PatchBody::Merge(b) | PatchBody::Json(b) => (Call::Patch, b),
        };
        self.check(call, kind, Some(Verb::Patch))?;
        let sent = parse("the patch", body)?;
        let old = self.current(kind, namespace, name).cloned();
        let mut new = match (&patch, &old) {
            (_, Some(old)) => old.clone(),
            (PatchBody::Apply { .. }, None) => Value::Object(Map::new()),
            (_, None) => return Err(Self::not_found(kind, namespace, name)),
        };
        // The stored version; a resourceVersion in the patch is checked by `store`.
        if let Some(meta) = object_meta(&mut new) {
            meta.remove("resourceVersion");
        }
        match &patch {
            PatchBody::Merge(_) | PatchBody::Apply { .. } => {
                let sent = if status {
                    serde_json::json!({"status": sent.get("status").cloned().unwrap_or(Value::Null)})
                } else {
                    sent.clone()
                };
                if !sent.is_object() {
                    return Err(Error::Invalid(
                        "a merge patch must be a JSON object".to_owned(),
                    ));
                }
                json_patch::merge(&mut new, &sent);
            }
            PatchBody::Json(_) => {
                let ops: json_patch::Patch = serde_json::from_value(sent.clone())
                    .map_err(|e| Error::Invalid(format!("not a JSON patch: {e}")))?;
                json_patch::patch(&mut new, &ops).map_err(|e| Error::Invalid(e.to_string()))?;
                if status {
                    let status_now = new.get("status").cloned();
                    new = old.clone().unwrap_or_default();
                    new["status"] = status_now.unwrap_or(Value::Null);
                }
            }
        }
        if old.is_none() {
            // A server-side apply that creates the object.
            let versions = self.versions + 1;
            if let Some(meta) = object_meta(&mut new) {
                meta.insert("uid".into(), Value::from(format!("uid-{versions}")));
                meta.insert("creationTimestamp".into(), Value::from(NOW));
            }
        }
        let stored = self.store(kind, namespace, name, new, old.as_ref())?;
        self.record(call, kind, namespace, name, sent);
        Ok(encode(&stored))
    }

    pub(super) fn delete(&mut self, kind: &Kind, namespace: &str, name: &str) -> Result<()> {
        self.check(Call::Delete, kind, Some(Verb::Delete))?;
        let old = self
            .current(kind, namespace, name)
            .cloned()
            .ok_or_else(|| Self::not_found(kind, namespace, name))?;
        let mut new = old.clone();
        if let Some(meta) = object_meta(&mut new) {
            meta.entry("deletionTimestamp")
                .or_insert_with(|| Value::from(NOW));
            meta.remove("resourceVersion");
        }
        // With finalizers left, `store` keeps it (marked); without, it removes it.
        self.store(kind, namespace, name, new, Some(&old))?;
        self.record(Call::Delete, kind, namespace, name, Value::Null);
        Ok(())
    }

    pub(super) fn get(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.check(Call::Get, kind, Some(Verb::Get))?;
        Ok(self
            .reads()
            .get(&(kind.group, kind.kind))
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .map(encode))
    }

    pub(super) fn list(&mut self, kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<u8>> {
        self.check(Call::List, kind, Some(Verb::List))?;
        let items = self.select(kind, namespace, selector)?;
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn select(&self, kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<&Value>> {
        // The host's parser and matcher, and its answer to a bad selector.
        let selector = LabelSelector::parse(selector).map_err(|e| Error::Invalid(e.to_string()))?;
        let no_labels = Map::new();
        Ok(self
            .read_all(kind)
            .filter(|((ns, _), v)| {
                let labels = v
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .unwrap_or(&no_labels);
                (namespace.is_empty() || ns == namespace) && selector.matches(labels)
            })
            .map(|(_, v)| v)
            .collect())
    }

    pub(super) fn get_fields(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        fields: &[&str],
    ) -> Result<Option<Vec<u8>>> {
        self.check(Call::Get, kind, Some(Verb::Get))?;
        let projection = projection(fields)?;
        self.reads()
            .get(&(kind.group, kind.kind))
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .map(|v| project(&projection, &[v]).map(|mut items| items.swap_remove(0)))
            .transpose()
    }

    pub(super) fn list_fields(
        &mut self,
        kind: &Kind,
        namespace: &str,
        selector: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        self.check(Call::List, kind, Some(Verb::List))?;
        let projection = projection(fields)?;
        let items = project(&projection, &self.select(kind, namespace, selector)?)?;
        Ok(projection_array(&items))
    }

    pub(super) fn list_by_index_fields(
        &mut self,
        kind: &Kind,
        index: &str,
        value: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        self.check(Call::ListByIndex, kind, Some(Verb::List))?;
        let projection = projection(fields)?;
        let items = project(&projection, &self.indexed(kind, index, value)?)?;
        Ok(projection_array(&items))
    }

    pub(super) fn list_by_index(
        &mut self,
        kind: &Kind,
        index: &str,
        value: &str,
    ) -> Result<Vec<u8>> {
        self.check(Call::ListByIndex, kind, Some(Verb::List))?;
        let items = self.indexed(kind, index, value)?;
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn indexed(&self, kind: &Kind, index: &str, value: &str) -> Result<Vec<&Value>> {
        let Some(manifest) = &self.manifest else {
            return Err(Error::Invalid(format!(
                "index {index:?}: FakeHost::new() has no manifest to declare indexes; \
                 use FakeHost::for_plugin::<YourPlugin>()"
            )));
        };
        let declared = manifest
            .declared(kind.group, kind.kind)
            .map_err(|denied| Error::Forbidden(denied.message().to_owned()))?;
        let index = manifest.index(declared, index).ok_or_else(|| {
            Error::Invalid(format!(
                "no index {index:?} is declared on {declared} in the manifest"
            ))
        })?;
        Ok(self
            .read_all(kind)
            .filter(|(_, v)| index.field.values_in_json(v).iter().any(|x| x == value))
            .map(|(_, v)| v)
            .collect())
    }

    pub(super) fn event(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        event: Event,
    ) -> Result<()> {
        self.check(Call::Event, kind, None)?;
        if name.is_empty() || event.reason.is_empty() {
            return Err(Error::Invalid(
                "an event needs an object name and a reason".into(),
            ));
        }
        self.events.push(RecordedEvent {
            kind: *kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            event,
        });
        Ok(())
    }
}
