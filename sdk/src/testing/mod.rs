//! A fake host for unit tests: run your [`Plugin::reconcile`] natively, in a plain
//! `cargo test`, against an in-memory cluster.
//!
//! Enable it in the plugin crate's dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! kubewasm-sdk = { path = "...", features = ["testing"] }
//! ```
//!
//! A [`FakeHost`] installs itself on the current thread (each `#[test]` runs on its own
//! thread); every SDK call made on that thread ([`get`](crate::get), [`patch`](crate::patch),
//! [`event`](crate::event), [`log`](crate::log)...) is served by it until it is dropped. Seed
//! objects, run a reconcile, then inspect the objects, the writes, the events and the logs:
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubewasm_sdk::testing::{Call, FakeHost};
//! use kubewasm_sdk::{Action, Manifest, Patch, Plugin, Request, Result, Verb};
//!
//! struct Stamp;
//!
//! impl Plugin for Stamp {
//!     fn manifest() -> Manifest {
//!         Manifest::reconcile::<ConfigMap>().permit::<ConfigMap>(&[Verb::Patch])
//!     }
//!     fn reconcile(req: Request) -> Result<Action> {
//!         let patch = Patch::merge(serde_json::json!({"metadata": {"labels": {"seen": "yes"}}}))?;
//!         kubewasm_sdk::patch::<ConfigMap>(&req.namespace, &req.name, &patch)?;
//!         Ok(Action::done())
//!     }
//! }
//!
//! let host = FakeHost::for_plugin::<Stamp>();
//! host.seed_json::<ConfigMap>(serde_json::json!({
//!     "metadata": {"namespace": "demo", "name": "settings"}
//! }));
//! assert_eq!(host.reconcile::<Stamp>("demo", "settings"), Ok(Action::done()));
//! let cm: ConfigMap = host.object("demo", "settings").unwrap();
//! assert_eq!(cm.metadata.labels.unwrap()["seen"], "yes");
//! assert_eq!(host.writes()[0].call, Call::Patch);
//!
//! // Inject a failure: the next patch answers `conflict`.
//! host.fail_next(Call::Patch, kubewasm_sdk::Error::Conflict("stale".into()));
//! assert!(host.reconcile::<Stamp>("demo", "settings").unwrap_err().is_conflict());
//! ```
//!
//! # How it differs from the real host
//!
//! It is a small model, not an API server; what it does:
//! - **Manifest**: [`FakeHost::for_plugin`] enforces the plugin's manifest as the host does
//!   (undeclared kind, verb or index: [`Error::Forbidden`]); [`FakeHost::new`] allows everything.
//! - **Cache**: reads see every write at once, unless [`FakeHost::set_cache_lag`] is on: then
//!   reads see a snapshot that only [`FakeHost::sync`] refreshes (as after a real write, when
//!   the informer has not caught up yet). Use it to test that your reconcile is idempotent.
//! - **Writes**: every write gets a new `metadata.resourceVersion` (a counter); `create` also
//!   sets `uid`, `namespace` and, from `generateName`, a name. A write carrying a stale
//!   `resourceVersion` fails with [`Error::Conflict`]. `replace` stores the body as sent;
//!   `replace_status` and `patch_status` change only `status`. Merge and JSON patches follow
//!   RFC 7386 and RFC 6902 (a failed `test` is a conflict). **Server-side apply is a merge
//!   patch** that creates the object when missing: no field ownership, no removal of fields
//!   you stopped applying, no conflicts (inject one with [`FakeHost::fail_next`]).
//! - **Deletes and finalizers**: deleting an object with `metadata.finalizers` only sets
//!   `metadata.deletionTimestamp`; the object goes once a write empties its finalizers.
//!   No garbage collection of owned objects, no defaulting, no validation, no admission.
//! - **No queue**: nothing reconciles by itself. You call [`FakeHost::reconcile`]; owned and
//!   watched kinds are not mapped to keys, and a returned requeue is only returned.
//! - **Time** is frozen: timestamps are `2000-01-01T00:00:00Z`.
//! - Label selectors support `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`.
//!
//! Against the real host and the embedded API server, test the built component instead
//! (see `docs/writing-plugins.md`, "Testing").

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::api::Event;
use crate::error::{Error, Result};
use crate::log::Level;
use crate::manifest::{Manifest, Verb};
use crate::object::{Kind, Object};
use crate::reconcile::{Action, Plugin, Reason, Request};
use crate::sys::PatchBody;

mod projection;
mod selector;
pub(crate) mod sys;

use projection::Projection;
use selector::{Selector, field_path, index_values};

/// The frozen clock of the fake host.
const NOW: &str = "2000-01-01T00:00:00Z";

/// A host call, to filter [`FakeHost::writes`] and to target [`FakeHost::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// [`get`](crate::get), [`get_raw`](crate::get_raw), [`get_fields`](crate::get_fields).
    Get,
    /// [`list`](crate::list), [`list_raw`](crate::list_raw), [`list_fields`](crate::list_fields).
    List,
    /// [`list_by_index`](crate::list_by_index), [`list_by_index_raw`](crate::list_by_index_raw),
    /// [`list_by_index_fields`](crate::list_by_index_fields).
    ListByIndex,
    /// [`create`](crate::create).
    Create,
    /// [`replace`](crate::replace).
    Replace,
    /// [`replace_status`](crate::replace_status).
    ReplaceStatus,
    /// [`patch`](crate::patch) with a merge or JSON patch.
    Patch,
    /// [`patch_status`](crate::patch_status).
    PatchStatus,
    /// [`apply`](crate::apply).
    Apply,
    /// [`delete`](crate::delete).
    Delete,
    /// [`event`](crate::event), [`event_for`](crate::event_for).
    Event,
    /// Matches any call (only for [`FakeHost::fail_next`]).
    Any,
}

/// One write the plugin made, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// Which call.
    pub call: Call,
    /// The kind written.
    pub kind: Kind,
    /// Namespace, `""` for cluster-scoped.
    pub namespace: String,
    /// Name (for `create` with `generateName`, the generated one).
    pub name: String,
    /// What the plugin sent: the object, or the patch; `null` for a delete.
    pub body: Value,
}

/// One Event the plugin recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Kind of the object the event is about.
    pub kind: Kind,
    /// Its namespace, `""` for cluster-scoped.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The event.
    pub event: Event,
}

type Objects = BTreeMap<(&'static str, &'static str), BTreeMap<(String, String), Value>>;

#[derive(Default)]
struct State {
    manifest: Option<Manifest>,
    objects: Objects,
    /// The cache snapshot reads see while cache lag is on.
    cache: Option<Objects>,
    versions: u64,
    writes: Vec<Write>,
    events: Vec<RecordedEvent>,
    logs: Vec<(Level, String)>,
    failures: VecDeque<(Call, Error)>,
}

thread_local! {
    static HOST: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// An in-memory cluster and host for one test thread. See the [module docs](self).
///
/// Creating one installs it on the current thread (replacing any other); dropping it
/// uninstalls it.
pub struct FakeHost {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("FakeHost")
            .field(
                "objects",
                &s.objects.values().map(BTreeMap::len).sum::<usize>(),
            )
            .field("writes", &s.writes.len())
            .finish_non_exhaustive()
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            if h.as_ref().is_some_and(|s| Rc::ptr_eq(s, &self.state)) {
                *h = None;
            }
        });
    }
}

impl FakeHost {
    /// A fake host that allows every call (no manifest checks).
    pub fn new() -> Self {
        Self::install(State::default())
    }

    /// A fake host that enforces `P`'s manifest, as the real host does: an undeclared kind,
    /// verb or index answers [`Error::Forbidden`].
    pub fn for_plugin<P: Plugin>() -> Self {
        Self::install(State {
            manifest: Some(P::manifest()),
            ..State::default()
        })
    }

    fn install(state: State) -> Self {
        let state = Rc::new(RefCell::new(state));
        HOST.with(|h| *h.borrow_mut() = Some(state.clone()));
        Self { state }
    }

    /// Puts `obj` in the cluster (and the cache), as if it existed before the test. Sets a
    /// `resourceVersion` and `uid` when it has none.
    ///
    /// # Panics
    /// When `obj` does not serialize to an object with a `metadata.name` (a broken fixture).
    pub fn seed<T: Object>(&self, obj: &T) -> &Self {
        let value = serde_json::to_value(obj).expect("a seeded object serializes");
        self.seed_json::<T>(value)
    }

    /// Like [`FakeHost::seed`] from JSON; `apiVersion` and `kind` are filled in when missing.
    ///
    /// # Panics
    /// When `value` is not an object with a `metadata.name`.
    pub fn seed_json<T: Object>(&self, mut value: Value) -> &Self {
        let kind = Kind::of::<T>();
        let mut s = self.state.borrow_mut();
        let (namespace, name) = {
            let meta = object_meta(&mut value).expect("a seeded object is a JSON object");
            let name = meta
                .get("name")
                .and_then(Value::as_str)
                .expect("a seeded object has metadata.name")
                .to_owned();
            (str_field(meta, "namespace"), name)
        };
        fill_type(&mut value, &kind);
        s.versions += 1;
        let rv = s.versions;
        if let Some(meta) = object_meta(&mut value) {
            meta.entry("resourceVersion")
                .or_insert_with(|| Value::from(rv.to_string()));
            meta.entry("uid")
                .or_insert_with(|| Value::from(format!("uid-{rv}")));
        }
        let key = (kind.group, kind.kind);
        s.objects
            .entry(key)
            .or_default()
            .insert((namespace.clone(), name.clone()), value.clone());
        if let Some(cache) = &mut s.cache {
            cache
                .entry(key)
                .or_default()
                .insert((namespace, name), value);
        }
        self
    }

    /// The object `namespace`/`name` as the cluster holds it now (not the lagging cache).
    ///
    /// # Panics
    /// When the stored JSON does not decode as `T`.
    pub fn object<T: Object>(&self, namespace: &str, name: &str) -> Option<T> {
        let kind = Kind::of::<T>();
        let s = self.state.borrow();
        let value = s
            .objects
            .get(&(kind.group, kind.kind))?
            .get(&(namespace.to_owned(), name.to_owned()))?;
        Some(serde_json::from_value(value.clone()).expect("the stored object decodes"))
    }

    /// Every object of kind `T` in the cluster now, ordered by namespace and name.
    ///
    /// # Panics
    /// When a stored object does not decode as `T`.
    pub fn objects<T: Object>(&self) -> Vec<T> {
        let kind = Kind::of::<T>();
        let s = self.state.borrow();
        s.objects
            .get(&(kind.group, kind.kind))
            .map(|m| {
                m.values()
                    .map(|v| serde_json::from_value(v.clone()).expect("the stored object decodes"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.state.borrow().writes.clone()
    }

    /// Every Event recorded so far, in order.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.state.borrow().events.clone()
    }

    /// Every log line so far, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }

    /// Forgets the writes, events and logs recorded so far (the objects stay).
    pub fn clear_records(&self) {
        let mut s = self.state.borrow_mut();
        s.writes.clear();
        s.events.clear();
        s.logs.clear();
    }

    /// Makes the next call of kind `call` ([`Call::Any`]: the next call of any kind) fail with
    /// `error` instead of running. Queued failures are used in order.
    pub fn fail_next(&self, call: Call, error: Error) {
        self.state.borrow_mut().failures.push_back((call, error));
    }

    /// With `lag` on, reads see a snapshot of the cluster taken now and refreshed only by
    /// [`FakeHost::sync`], like an informer cache that has not seen your writes yet.
    pub fn set_cache_lag(&self, lag: bool) {
        let mut s = self.state.borrow_mut();
        s.cache = lag.then(|| s.objects.clone());
    }

    /// Brings the lagging cache up to date (no effect when cache lag is off).
    pub fn sync(&self) {
        let mut s = self.state.borrow_mut();
        if s.cache.is_some() {
            s.cache = Some(s.objects.clone());
        }
    }

    /// Runs `P::reconcile` for `namespace`/`name` with [`Reason::Changed`].
    ///
    /// # Errors
    /// Whatever the reconcile returns.
    pub fn reconcile<P: Plugin>(&self, namespace: &str, name: &str) -> Result<Action> {
        self.reconcile_request::<P>(Request {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            reason: Reason::Changed,
        })
    }

    /// Runs `P::reconcile` with a request of your own (e.g. another [`Reason`]).
    ///
    /// # Errors
    /// Whatever the reconcile returns.
    pub fn reconcile_request<P: Plugin>(&self, request: Request) -> Result<Action> {
        HOST.with(|h| *h.borrow_mut() = Some(self.state.clone()));
        P::reconcile(request)
    }
}

fn object_meta(value: &mut Value) -> Option<&mut Map<String, Value>> {
    let obj = value.as_object_mut()?;
    obj.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

fn str_field(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn fill_type(value: &mut Value, kind: &Kind) {
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
        let grants = manifest.grants();
        let Some((_, verbs)) = grants
            .iter()
            .find(|(k, _)| k.group == kind.group && k.kind == kind.kind)
        else {
            return Err(Error::Forbidden(format!(
                "the manifest does not declare kind {}",
                kind.kind
            )));
        };
        match verb {
            Some(verb) if !verbs.contains(&verb) => Err(Error::Forbidden(format!(
                "the manifest does not grant {verb:?} on {}",
                kind.kind
            ))),
            _ => Ok(()),
        }
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

    fn create(&mut self, kind: &Kind, namespace: &str, body: &[u8]) -> Result<Vec<u8>> {
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

    fn replace(
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

    fn patch(
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
                json_patch::merge(&mut new, &sent);
            }
            PatchBody::Json(_) => {
                let ops: json_patch::Patch = serde_json::from_value(sent.clone())
                    .map_err(|e| Error::Invalid(format!("not a JSON patch: {e}")))?;
                json_patch::patch(&mut new, &ops).map_err(|e| match e.kind {
                    json_patch::PatchErrorKind::TestFailed => Error::Conflict(e.to_string()),
                    _ => Error::Invalid(e.to_string()),
                })?;
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

    fn delete(&mut self, kind: &Kind, namespace: &str, name: &str) -> Result<()> {
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

    fn get(&mut self, kind: &Kind, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
        self.check(Call::Get, kind, Some(Verb::Get))?;
        Ok(self
            .reads()
            .get(&(kind.group, kind.kind))
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .map(encode))
    }

    fn list(&mut self, kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<u8>> {
        self.check(Call::List, kind, Some(Verb::List))?;
        let items = self.select(kind, namespace, selector)?;
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn select(&self, kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<&Value>> {
        let selector = Selector::parse(selector)?;
        Ok(self
            .read_all(kind)
            .filter(|((ns, _), v)| (namespace.is_empty() || ns == namespace) && selector.matches(v))
            .map(|(_, v)| v)
            .collect())
    }

    fn get_fields(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        fields: &[&str],
    ) -> Result<Option<Vec<u8>>> {
        self.check(Call::Get, kind, Some(Verb::Get))?;
        let projection = Projection::new(fields)?;
        Ok(self
            .reads()
            .get(&(kind.group, kind.kind))
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .map(|v| encode(&projection.apply(v))))
    }

    fn list_fields(
        &mut self,
        kind: &Kind,
        namespace: &str,
        selector: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        self.check(Call::List, kind, Some(Verb::List))?;
        let projection = Projection::new(fields)?;
        let items: Vec<Value> = self
            .select(kind, namespace, selector)?
            .into_iter()
            .map(|v| projection.apply(v))
            .collect();
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn list_by_index_fields(
        &mut self,
        kind: &Kind,
        index: &str,
        value: &str,
        fields: &[&str],
    ) -> Result<Vec<u8>> {
        self.check(Call::ListByIndex, kind, Some(Verb::List))?;
        let projection = Projection::new(fields)?;
        let items: Vec<Value> = self
            .indexed(kind, index, value)?
            .into_iter()
            .map(|v| projection.apply(v))
            .collect();
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn list_by_index(&mut self, kind: &Kind, index: &str, value: &str) -> Result<Vec<u8>> {
        self.check(Call::ListByIndex, kind, Some(Verb::List))?;
        let items = self.indexed(kind, index, value)?;
        Ok(serde_json::to_vec(&items).unwrap_or_default())
    }

    fn indexed(&self, kind: &Kind, index: &str, value: &str) -> Result<Vec<&Value>> {
        let field = match &self.manifest {
            Some(m) => m
                .index_field(kind, index)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "no index {index:?} is declared on {} in the manifest",
                        kind.kind
                    ))
                })?
                .to_owned(),
            None => {
                return Err(Error::Invalid(format!(
                    "index {index:?}: FakeHost::new() has no manifest to declare indexes; \
                     use FakeHost::for_plugin::<YourPlugin>()"
                )));
            }
        };
        let path = field_path(&field);
        Ok(self
            .read_all(kind)
            .filter(|(_, v)| index_values(v, &path).iter().any(|x| x == value))
            .map(|(_, v)| v)
            .collect())
    }

    fn event(&mut self, kind: &Kind, namespace: &str, name: &str, event: Event) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Manifest, Patch, WatchMapping};
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
    use serde_json::json;

    fn cm(ns: &str, name: &str, labels: Value) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "labels": labels}, "data": {"a": "1"}})
    }

    struct Limited;

    impl Plugin for Limited {
        fn manifest() -> Manifest {
            Manifest::reconcile::<ConfigMap>()
                .watches::<Node>(WatchMapping::IndexLookup {
                    index: "by-node".into(),
                    field: "metadata.name".into(),
                })
                .index::<ConfigMap>("by-node", "metadata.labels[kubewasm.dev/node]")
                .permit::<ConfigMap>(&[Verb::Patch])
        }
        fn reconcile(_: Request) -> Result<Action> {
            Ok(Action::done())
        }
    }

    #[test]
    fn writes_are_visible_to_reads_at_once_without_cache_lag() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
        crate::patch::<ConfigMap>("a", "x", &patch).unwrap();
        let read = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
        assert_eq!(read.data.unwrap().len(), 2);
    }

    #[test]
    fn with_cache_lag_reads_see_the_old_object_until_sync() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        host.set_cache_lag(true);
        let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
        let written: ConfigMap = crate::patch("a", "x", &patch).unwrap();
        assert_eq!(written.data.unwrap().len(), 2);
        let stale = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
        assert_eq!(stale.data.unwrap().len(), 1);
        host.sync();
        let fresh = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
        assert_eq!(fresh.data.unwrap().len(), 2);
    }

    #[test]
    fn a_stale_resource_version_is_a_conflict() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        let mut old = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
        crate::patch::<ConfigMap>(
            "a",
            "x",
            &Patch::merge(json!({"data": {"b": "2"}})).unwrap(),
        )
        .unwrap();
        old.data = None;
        let err = crate::replace(&old).unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert_eq!(host.writes().len(), 1, "a failed write is not recorded");
    }

    #[test]
    fn deleting_an_object_with_finalizers_marks_it_until_they_are_removed() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(json!({"metadata": {
            "namespace": "a", "name": "x", "finalizers": ["example.com/cleanup"]}}));
        crate::delete::<ConfigMap>("a", "x").unwrap();
        let marked: ConfigMap = host.object("a", "x").expect("kept while finalizers remain");
        assert!(marked.metadata.deletion_timestamp.is_some());
        let patch = Patch::Json(json!([{"op": "remove", "path": "/metadata/finalizers"}]));
        crate::patch::<ConfigMap>("a", "x", &patch).unwrap();
        assert!(host.object::<ConfigMap>("a", "x").is_none());
        assert!(
            crate::delete::<ConfigMap>("a", "x")
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn the_manifest_is_enforced_for_undeclared_kinds_and_verbs() {
        let host = FakeHost::for_plugin::<Limited>();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        assert!(crate::get::<ConfigMap>("a", "x").unwrap().is_some());
        assert!(crate::get::<Secret>("a", "x").unwrap_err().is_forbidden());
        assert!(
            crate::delete::<ConfigMap>("a", "x")
                .unwrap_err()
                .is_forbidden()
        );
        assert!(
            crate::list::<Node>("", "").is_ok(),
            "watched kinds are readable"
        );
        let event = Event::normal("Seen", "hello");
        assert!(
            crate::event_for::<Pod>("a", "p", &event)
                .unwrap_err()
                .is_forbidden()
        );
        crate::event_for::<ConfigMap>("a", "x", &event).unwrap();
        assert_eq!(host.events()[0].event.reason, "Seen");
    }

    #[test]
    fn list_filters_by_namespace_and_label_selector() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "web", json!({"app": "web", "tier": "front"})));
        host.seed_json::<ConfigMap>(cm("a", "db", json!({"app": "db"})));
        host.seed_json::<ConfigMap>(cm("b", "web", json!({"app": "web"})));
        let names = |ns: &str, sel: &str| -> Vec<String> {
            crate::list::<ConfigMap>(ns, sel)
                .unwrap()
                .into_iter()
                .map(|c| {
                    format!(
                        "{}/{}",
                        c.metadata.namespace.unwrap(),
                        c.metadata.name.unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(names("", ""), ["a/db", "a/web", "b/web"]);
        assert_eq!(names("a", ""), ["a/db", "a/web"]);
        assert_eq!(names("", "app=web"), ["a/web", "b/web"]);
        assert_eq!(names("", "app in (db, web),tier"), ["a/web"]);
        assert_eq!(names("", "app!=web"), ["a/db"]);
        assert_eq!(names("", "!tier,app notin (db)"), ["b/web"]);
        assert!(matches!(
            crate::list::<ConfigMap>("", "app in web"),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn list_by_index_uses_the_index_declared_in_the_manifest() {
        let host = FakeHost::for_plugin::<Limited>();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({"kubewasm.dev/node": "n1"})));
        host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));
        let on_n1 = crate::list_by_index::<ConfigMap>("by-node", "n1").unwrap();
        assert_eq!(on_n1.len(), 1);
        assert_eq!(on_n1[0].metadata.name.as_deref(), Some("x"));
        let err = crate::list_by_index::<ConfigMap>("by-zone", "z").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
    }

    #[test]
    fn projected_reads_keep_only_the_asked_fields_and_follow_the_manifest() {
        let host = FakeHost::for_plugin::<Limited>();
        let mut x = cm("a", "x", json!({"kubewasm.dev/node": "n1", "other": "o"}));
        x["data"] = json!({"k": "v", "big": "not wanted"});
        host.seed_json::<ConfigMap>(x);
        host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));

        let got = crate::get_fields::<ConfigMap>("a", "x", &["data.k"])
            .unwrap()
            .unwrap();
        assert_eq!(got.data, Some([("k".to_owned(), "v".to_owned())].into()));
        assert_eq!(got.metadata.name.as_deref(), Some("x"));
        assert!(
            got.metadata.resource_version.is_some(),
            "identity is always kept"
        );
        assert_eq!(got.metadata.labels, None);
        assert_eq!(
            crate::get_fields::<ConfigMap>("a", "none", &["data"]).unwrap(),
            None
        );

        let labelled = crate::list_fields::<ConfigMap>(
            "a",
            "kubewasm.dev/node=n1",
            &["metadata.labels[other]"],
        )
        .unwrap();
        assert_eq!(labelled.len(), 1);
        assert_eq!(
            labelled[0].metadata.labels,
            Some([("other".to_owned(), "o".to_owned())].into())
        );
        let on_n2 = crate::list_by_index_fields::<ConfigMap>("by-node", "n2", &["data"]).unwrap();
        assert_eq!(on_n2.len(), 1);
        assert_eq!(on_n2[0].metadata.name.as_deref(), Some("y"));

        let bad = crate::get_fields::<ConfigMap>("a", "x", &["data..k"]).unwrap_err();
        assert!(matches!(bad, Error::Invalid(_)), "{bad}");
        let forbidden = crate::list_fields::<Pod>("", "", &["metadata.name"]).unwrap_err();
        assert!(matches!(forbidden, Error::Forbidden(_)), "{forbidden}");
        host.fail_next(Call::List, Error::NotSynced("later".into()));
        assert_eq!(
            crate::list_fields::<ConfigMap>("a", "", &["data"]).unwrap_err(),
            Error::NotSynced("later".into()),
            "projected reads fail like the plain call they mirror"
        );
    }

    #[test]
    fn an_injected_failure_hits_the_next_matching_call_once() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        host.fail_next(Call::Patch, Error::Unavailable("down".into()));
        assert!(
            crate::get::<ConfigMap>("a", "x").is_ok(),
            "other calls are unaffected"
        );
        let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
        let err = crate::patch::<ConfigMap>("a", "x", &patch).unwrap_err();
        assert_eq!(err, Error::Unavailable("down".into()));
        assert!(crate::patch::<ConfigMap>("a", "x", &patch).is_ok());
        host.fail_next(Call::Any, Error::NotFound("gone".into()));
        assert!(
            crate::get::<ConfigMap>("a", "x")
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn apply_creates_a_missing_object_and_merges_into_an_existing_one() {
        let host = FakeHost::new();
        let desired: ConfigMap = serde_json::from_value(cm("a", "x", json!({"k": "v"}))).unwrap();
        let created = crate::apply(&desired, false).unwrap();
        assert!(created.metadata.uid.is_some());
        host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "y"},
            "data": {"keep": "me"}}));
        let mut y = desired.clone();
        y.metadata.name = Some("y".into());
        let merged = crate::apply(&y, true).unwrap();
        let data = merged.data.unwrap();
        assert_eq!((data["keep"].as_str(), data["a"].as_str()), ("me", "1"));
        assert_eq!(
            host.writes()
                .iter()
                .filter(|w| w.call == Call::Apply)
                .count(),
            2
        );
    }

    #[test]
    fn a_failed_json_patch_test_is_a_conflict_and_changes_nothing() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
        let patch = Patch::Json(json!([
            {"op": "add", "path": "/data/b", "value": "2"},
            {"op": "test", "path": "/data/a", "value": "not 1"}
        ]));
        assert!(
            crate::patch::<ConfigMap>("a", "x", &patch)
                .unwrap_err()
                .is_conflict()
        );
        assert_eq!(
            host.object::<ConfigMap>("a", "x")
                .unwrap()
                .data
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn create_refuses_a_taken_name_and_generates_names() {
        let host = FakeHost::new();
        let mut obj: ConfigMap = serde_json::from_value(cm("a", "x", json!({}))).unwrap();
        crate::create(&obj).unwrap();
        assert!(matches!(crate::create(&obj), Err(Error::AlreadyExists(_))));
        obj.metadata.name = None;
        obj.metadata.generate_name = Some("gen-".into());
        let made = crate::create(&obj).unwrap();
        assert!(made.metadata.name.unwrap().starts_with("gen-"));
        assert_eq!(host.objects::<ConfigMap>().len(), 2);
    }

    #[test]
    fn status_writes_change_only_the_status() {
        let host = FakeHost::new();
        host.seed_json::<Pod>(json!({"metadata": {"namespace": "a", "name": "p"},
            "spec": {"nodeName": "n1", "containers": []}}));
        let patch =
            Patch::merge(json!({"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}}))
                .unwrap();
        let pod: Pod = crate::patch_status("a", "p", &patch).unwrap();
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("n1"));
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    }

    #[test]
    fn logs_are_recorded_and_a_dropped_host_leaves_no_host_behind() {
        let host = FakeHost::new();
        crate::log::info("hello");
        assert_eq!(host.logs(), [(Level::Info, "hello".to_owned())]);
        drop(host);
        let err = crate::get::<ConfigMap>("a", "x").unwrap_err();
        assert!(err.message().contains("FakeHost"), "{err}");
    }
}
