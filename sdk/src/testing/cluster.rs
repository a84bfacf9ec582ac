//! The fake host's in-memory cluster: objects, the lagging cache, writes with Kubernetes'
//! resourceVersion, precondition and finalizer rules, reads through the plugin's validated
//! manifest.

use std::collections::{BTreeMap, VecDeque};

use kubewasm_core::{FieldSelector, LabelSelector, Projection};
use serde_json::{Map, Value};

use super::patch::{apply_patch, scale_of};
use super::{Call, RecordedEvent, Write};
use crate::data::{
    DeleteParams, EventRecord, Level, ListParams, ObjectKey, PatchBody, Subresource,
};
use crate::error::{Error, Result};
use crate::manifest::Verb;
use crate::object::Kind;

/// The frozen clock of the fake host.
pub(super) const NOW: &str = "2000-01-01T00:00:00Z";

pub(super) type Objects = BTreeMap<(&'static str, &'static str), BTreeMap<(String, String), Value>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) manifest: Option<kubewasm_core::Manifest>,
    /// `(group, kind)` of the custom resources the manifest defines (strategic merge patches
    /// of them are refused, as the API server does).
    pub(super) custom_kinds: Vec<(String, String)>,
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
        obj.entry("apiVersion")
            .or_insert_with(|| Value::from(kind.api_version()));
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

fn project_one(projection: &Projection, item: &Value) -> Result<Vec<u8>> {
    projection
        .project(&encode(item))
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn encode(value: &Value) -> Vec<u8> {
    // A serde_json::Value always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The namespace key of the fake cluster: `""` for a cluster-scoped object.
fn ns_key(namespace: Option<&str>) -> String {
    namespace.unwrap_or_default().to_owned()
}

/// The host's answer to a namespace that does not fit the kind's scope.
fn check_scope(kind: &Kind, namespace: Option<&str>, one_object: bool) -> Result<()> {
    match (kind.namespaced, namespace) {
        (false, Some(ns)) => Err(Error::Invalid(format!(
            "{} is cluster-scoped but namespace {ns:?} was given",
            kind.kind
        ))),
        (_, Some("")) => Err(Error::Invalid(
            "the namespace is empty (omit it instead)".into(),
        )),
        (true, None) if one_object => Err(Error::Invalid(format!(
            "{} is namespaced: name the object's namespace",
            kind.kind
        ))),
        _ => Ok(()),
    }
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
        if namespace.is_empty() {
            Error::NotFound(format!("{} {name} not found", kind.kind))
        } else {
            Error::NotFound(format!("{} {namespace}/{name} not found", kind.kind))
        }
    }

    /// Stores `value` as the new version of `namespace`/`name` (checking a sent
    /// resourceVersion against the stored one), applies finalizer semantics, returns it.
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

    pub(super) fn create(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>> {
        self.check(Call::Create, kind, Some(Verb::Create))?;
        check_scope(kind, namespace, true)?;
        let namespace = ns_key(namespace);
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
        meta.remove("resourceVersion");
        if self.current(kind, &namespace, &name).is_some() {
            return Err(Error::AlreadyExists(format!(
                "{} {namespace}/{name} already exists",
                kind.kind
            )));
        }
        let stored = self.store(kind, &namespace, &name, value, None)?;
        self.record(Call::Create, kind, &namespace, &name, parse("", body)?);
        Ok(encode(&stored))
    }

    pub(super) fn replace(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        body: &[u8],
        sub: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        let call = match sub {
            None => Call::Replace,
            Some(Subresource::Status) => Call::ReplaceStatus,
            Some(Subresource::Scale) => Call::ReplaceScale,
        };
        self.check(call, kind, Some(Verb::Update))?;
        check_scope(kind, namespace, true)?;
        let namespace = ns_key(namespace);
        let sent = parse("the object", body)?;
        let old = self
            .current(kind, &namespace, name)
            .cloned()
            .ok_or_else(|| Self::not_found(kind, &namespace, name))?;
        let new = match sub {
            None => sent.clone(),
            Some(Subresource::Status) => {
                let mut new = old.clone();
                new["status"] = sent.get("status").cloned().unwrap_or(Value::Null);
                if let Some(rv) = sent.pointer("/metadata/resourceVersion") {
                    new["metadata"]["resourceVersion"] = rv.clone();
                }
                new
            }
            Some(Subresource::Scale) => {
                let mut new = old.clone();
                scale_of(kind, &old)?;
                new["spec"]["replicas"] = sent
                    .pointer("/spec/replicas")
                    .cloned()
                    .unwrap_or(Value::from(0));
                if let Some(rv) = sent.pointer("/metadata/resourceVersion") {
                    new["metadata"]["resourceVersion"] = rv.clone();
                }
                new
            }
        };
        let stored = self.store(kind, &namespace, name, new, Some(&old))?;
        self.record(call, kind, &namespace, name, sent);
        Ok(encode(&match sub {
            Some(Subresource::Scale) => scale_of(kind, &stored)?,
            _ => stored,
        }))
    }

    pub(super) fn patch(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch: PatchBody,
        sub: Option<Subresource>,
    ) -> Result<Vec<u8>> {
        let call = match (&patch, sub) {
            (_, Some(Subresource::Status)) => Call::PatchStatus,
            (_, Some(Subresource::Scale)) => Call::PatchScale,
            (PatchBody::Apply { .. }, None) => Call::Apply,
            (_, None) => Call::Patch,
        };
        self.check(call, kind, Some(Verb::Patch))?;
        check_scope(kind, namespace, true)?;
        let namespace = ns_key(namespace);
        let body = match &patch {
            PatchBody::Merge(b)
            | PatchBody::Json(b)
            | PatchBody::Strategic(b)
            | PatchBody::Apply { body: b, .. } => b,
        };
        let sent = parse("the patch", body)?;
        if matches!(patch, PatchBody::Strategic(_))
            && self
                .custom_kinds
                .iter()
                .any(|(g, k)| g == kind.group && k == kind.kind)
        {
            return Err(Error::Invalid(format!(
                "strategic merge patches are not supported for custom resources ({}); use a \
                 merge, JSON or apply patch",
                kind.kind
            )));
        }
        let old = self.current(kind, &namespace, name).cloned();
        let old = match (&patch, old, sub) {
            (_, Some(old), _) => Some(old),
            (PatchBody::Apply { .. }, None, None) => None,
            (_, None, _) => return Err(Self::not_found(kind, &namespace, name)),
        };
        let mut new = match (sub, &old) {
            (Some(Subresource::Scale), Some(old)) => scale_of(kind, old)?,
            (_, Some(old)) => old.clone(),
            (_, None) => Value::Object(Map::new()),
        };
        // The patch applies to the stored object, resourceVersion included (so a JSON patch
        // can `test` it); a resourceVersion the patch changed is checked by `store`.
        apply_patch(&mut new, &patch, &sent)?;
        let new = match (sub, &old) {
            (Some(Subresource::Status), Some(old)) => {
                let mut only_status = old.clone();
                only_status["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                copy_resource_version(&new, &mut only_status);
                only_status
            }
            (Some(Subresource::Scale), Some(old)) => {
                let mut scaled = old.clone();
                scaled["spec"]["replicas"] = new
                    .pointer("/spec/replicas")
                    .cloned()
                    .unwrap_or(Value::from(0));
                copy_resource_version(&new, &mut scaled);
                scaled
            }
            (_, None) => {
                // A server-side apply that creates the object.
                let versions = self.versions + 1;
                if let Some(meta) = object_meta(&mut new) {
                    meta.insert("uid".into(), Value::from(format!("uid-{versions}")));
                    meta.insert("creationTimestamp".into(), Value::from(NOW));
                }
                new
            }
            _ => new,
        };
        let stored = self.store(kind, &namespace, name, new, old.as_ref())?;
        self.record(call, kind, &namespace, name, sent);
        Ok(encode(&match sub {
            Some(Subresource::Scale) => scale_of(kind, &stored)?,
            _ => stored,
        }))
    }

    pub(super) fn delete(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        dp: &DeleteParams,
    ) -> Result<()> {
        self.check(Call::Delete, kind, Some(Verb::Delete))?;
        check_scope(kind, namespace, true)?;
        let namespace = ns_key(namespace);
        let old = self
            .current(kind, &namespace, name)
            .cloned()
            .ok_or_else(|| Self::not_found(kind, &namespace, name))?;
        for (field, expected) in [("uid", &dp.uid), ("resourceVersion", &dp.resource_version)] {
            let actual = old
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str);
            if let Some(expected) = expected
                && actual != Some(expected.as_str())
            {
                return Err(Error::Conflict(format!(
                    "{} {namespace}/{name}: precondition failed: {field} is {}, not {expected}",
                    kind.kind,
                    actual.unwrap_or("unset")
                )));
            }
        }
        let mut new = old.clone();
        if let Some(meta) = object_meta(&mut new) {
            meta.entry("deletionTimestamp")
                .or_insert_with(|| Value::from(NOW));
            meta.remove("resourceVersion");
        }
        // With finalizers left, `store` keeps it (marked); without, it removes it.
        self.store(kind, &namespace, name, new, Some(&old))?;
        let options = serde_json::json!({
            "propagation": dp.propagation.map(|p| format!("{p:?}")),
            "uid": dp.uid,
            "resourceVersion": dp.resource_version,
        });
        self.record(Call::Delete, kind, &namespace, name, options);
        Ok(())
    }

    pub(super) fn get(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        fields: Option<&[&str]>,
    ) -> Result<Option<Vec<u8>>> {
        self.check(Call::Get, kind, Some(Verb::Get))?;
        check_scope(kind, namespace, true)?;
        let projection = fields.map(projection).transpose()?;
        let found = self
            .reads()
            .get(&(kind.group, kind.kind))
            .and_then(|m| m.get(&(ns_key(namespace), name.to_owned())));
        match (found, projection) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(encode(v))),
            (Some(v), Some(p)) => project_one(&p, v).map(Some),
        }
    }

    /// The call a list-shaped read counts as, for [`Call`] filters.
    fn list_call(lp: &ListParams, call: Call) -> Call {
        match (call, &lp.index) {
            (Call::List, Some(_)) => Call::ListByIndex,
            _ => call,
        }
    }

    /// The objects `lp` selects in `namespace` (every namespace when `None`), with the
    /// host's parsers and its answers to bad selectors and undeclared indexes.
    fn select(
        &mut self,
        call: Call,
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<Vec<(&(String, String), &Value)>> {
        self.check(Self::list_call(lp, call), kind, Some(Verb::List))?;
        check_scope(kind, namespace, false)?;
        let labels = lp
            .label_selector
            .as_deref()
            .map(LabelSelector::parse)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let fields = lp
            .field_selector
            .as_deref()
            .map(FieldSelector::parse)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let index = match &lp.index {
            None => None,
            Some((index, value)) => {
                let Some(manifest) = &self.manifest else {
                    return Err(Error::Invalid(format!(
                        "index {index:?}: FakeHost::new() has no manifest to declare indexes; \
                         use FakeHost::for_plugin::<YourPlugin>()"
                    )));
                };
                let declared = manifest
                    .declared(kind.group, kind.kind)
                    .map_err(|denied| Error::Forbidden(denied.message().to_owned()))?;
                let found = manifest.index(declared, index).ok_or_else(|| {
                    Error::Invalid(format!(
                        "no index {index:?} is declared on {declared} in the manifest"
                    ))
                })?;
                Some((found.field.clone(), value.clone()))
            }
        };
        let no_labels = Map::new();
        Ok(self
            .reads()
            .get(&(kind.group, kind.kind))
            .into_iter()
            .flat_map(BTreeMap::iter)
            .filter(|((ns, _), v)| {
                let object_labels = v
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .unwrap_or(&no_labels);
                namespace.is_none_or(|n| n == ns)
                    && labels.as_ref().is_none_or(|l| l.matches(object_labels))
                    && fields.as_ref().is_none_or(|f| f.matches_value(v))
                    && index
                        .as_ref()
                        .is_none_or(|(field, value)| field.values_in_json(v).contains(value))
            })
            .collect())
    }

    pub(super) fn list(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
        fields: Option<&[&str]>,
    ) -> Result<Vec<u8>> {
        let projection = fields.map(projection).transpose();
        let items = self.select(Call::List, kind, namespace, lp)?;
        match projection? {
            None => Ok(
                serde_json::to_vec(&items.iter().map(|(_, v)| v).collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
            Some(p) => {
                let projected = items
                    .iter()
                    .map(|(_, v)| project_one(&p, v))
                    .collect::<Result<Vec<_>>>()?;
                Ok(join_array(&projected))
            }
        }
    }

    pub(super) fn keys(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<Vec<ObjectKey>> {
        Ok(self
            .select(Call::Keys, kind, namespace, lp)?
            .into_iter()
            .map(|((ns, name), _)| ObjectKey {
                namespace: (!ns.is_empty()).then(|| ns.clone()),
                name: name.clone(),
            })
            .collect())
    }

    pub(super) fn count(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<u64> {
        let n = self.select(Call::Count, kind, namespace, lp)?.len();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    pub(super) fn event(&mut self, record: &EventRecord<'_>) -> Result<()> {
        let kind = record.kind;
        self.check(Call::Event, &kind, None)?;
        check_scope(&kind, record.namespace, true)?;
        let event = record.event;
        if record.name.is_empty() || event.reason.is_empty() {
            return Err(Error::Invalid(
                "an event needs an object name and a reason".into(),
            ));
        }
        if let Some(related) = &event.related
            && (related.kind.is_empty() || related.name.is_empty())
        {
            return Err(Error::Invalid(
                "an event's related object needs a kind and a name".into(),
            ));
        }
        let namespace = ns_key(record.namespace);
        // The host aggregates repeats of the same event (regarding, type, reason, action
        // and note) into one Event with a count.
        let repeat = self.events.iter_mut().find(|e| {
            e.kind == kind
                && e.namespace == namespace
                && e.name == record.name
                && e.event.event_type == event.event_type
                && e.event.reason == event.reason
                && e.event.action == event.action
                && e.event.note == event.note
        });
        match repeat {
            Some(e) => {
                e.count += 1;
                e.event.related.clone_from(&event.related);
            }
            None => self.events.push(RecordedEvent {
                kind,
                namespace,
                name: record.name.to_owned(),
                event: event.clone(),
                count: 1,
            }),
        }
        Ok(())
    }
}

/// The resourceVersion of `from` (absent when `from` has none) on `to`.
fn copy_resource_version(from: &Value, to: &mut Value) {
    let rv = from.pointer("/metadata/resourceVersion").cloned();
    if let Some(meta) = object_meta(to) {
        match rv {
            Some(rv) => meta.insert("resourceVersion".into(), rv),
            None => meta.remove("resourceVersion"),
        };
    }
}

fn join_array(items: &[Vec<u8>]) -> Vec<u8> {
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
