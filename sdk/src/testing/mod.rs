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
//!   RFC 7386 and RFC 6902 (a merge patch must be an object; a failed `test` is
//!   [`Error::Invalid`], as kube-apiserver answers 422). **Server-side apply is a merge
//!   patch** that creates the object when missing: no field ownership, no removal of fields
//!   you stopped applying, no conflicts (inject one with [`FakeHost::fail_next`]).
//! - **Deletes and finalizers**: deleting an object with `metadata.finalizers` only sets
//!   `metadata.deletionTimestamp`; the object goes once a write empties its finalizers.
//!   No garbage collection of owned objects, no defaulting, no validation, no admission.
//! - **No queue**: nothing reconciles by itself. You call [`FakeHost::reconcile`]; owned and
//!   watched kinds are not mapped to keys, and a returned requeue is only returned.
//! - **Time** is frozen: timestamps are `2000-01-01T00:00:00Z`.
//! - **The host's own rules**: the manifest, label selectors (`k=v`, `k!=v`, `k`, `!k`,
//!   `k in (a,b)`, `k notin (a,b)`), index field paths and projections are validated, matched
//!   and applied by the same code the host runs (`kubewasm-core`), with the same errors.
//!
//! Against the real host and the embedded API server, test the built component instead
//! (see `docs/writing-plugins.md`, "Testing").

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use crate::data::Event;
use crate::data::Level;
use crate::error::{Error, Result};
use crate::object::{Kind, Object};
use crate::reconcile::{Action, Plugin, Reason, Request};

mod cluster;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use cluster::{State, fill_type, object_meta, str_field};

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

    /// A fake host that enforces `P`'s manifest with the host's own checks: an undeclared
    /// kind or verb answers [`Error::Forbidden`], an undeclared index [`Error::Invalid`].
    ///
    /// # Panics
    /// When the real host would refuse to load `P` because its manifest is invalid (an empty
    /// or malformed kind, a bad selector or field path, a duplicate or dangling index,
    /// concurrency outside 1..=1024): the message lists every problem.
    pub fn for_plugin<P: Plugin>() -> Self {
        let manifest = kubewasm_core::Manifest::validate(P::manifest().declaration())
            .unwrap_or_else(|e| panic!("the host would refuse to load this plugin: {e}"));
        Self::install(State {
            manifest: Some(manifest),
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
