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
//! thread); every SDK call made on that thread ([`Api`](crate::Api)'s reads and writes,
//! [`event`](crate::event), [`log`](crate::log)...) is served by it until it is dropped. Seed
//! objects, run a reconcile, then inspect the objects, the writes, the events and the logs:
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubewasm_sdk::testing::{Call, FakeHost};
//! use kubewasm_sdk::{Action, Api, Manifest, Patch, Plugin, Request, Result, Verb};
//!
//! struct Stamp;
//!
//! impl Plugin for Stamp {
//!     fn manifest() -> Manifest {
//!         Manifest::reconcile::<ConfigMap>().permit::<ConfigMap>(&[Verb::Patch])
//!     }
//!     fn reconcile(req: Request) -> Result<Action> {
//!         let patch = Patch::merge(serde_json::json!({"metadata": {"labels": {"seen": "yes"}}}))?;
//!         Api::<ConfigMap>::namespaced(&req.namespace).patch(&req.name, &patch)?;
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
//! - **Manifest**: [`FakeHost::for_plugin`] validates the plugin's manifest with the host's
//!   own rules (`kubewasm-core`; an invalid one panics with every problem, as the host would
//!   refuse to load it) and enforces it as the host does (undeclared kind or verb:
//!   [`Error::Forbidden`]; undeclared index: [`Error::Invalid`]). [`FakeHost::new`] allows
//!   every call, but [`FakeHost::reconcile`] still validates the manifest of the plugin it runs.
//! - **Scope**: a namespace for a cluster-scoped kind, an empty namespace, or no namespace when
//!   naming one object of a namespaced kind answer [`Error::Invalid`], as the host does.
//! - **Cache**: reads see every write at once, unless [`FakeHost::set_cache_lag`] is on: then
//!   reads see a snapshot that only [`FakeHost::sync`] refreshes (as after a real write, when
//!   the informer has not caught up yet). Use it to test that your reconcile is idempotent.
//! - **Writes**: every write gets a new `metadata.resourceVersion` (a counter); `create` also
//!   sets `uid`, `namespace` and, from `generateName`, a name. A write carrying a stale
//!   `resourceVersion` fails with [`Error::Conflict`]. `replace` stores the body as sent;
//!   status writes change only `status`; scale writes (`patch_scale`) change only
//!   `spec.replicas` and answer an `autoscaling/v1` `Scale` (a kind without `spec` answers
//!   [`Error::NotFound`]). Merge and JSON patches follow RFC 7386 and RFC 6902 (a merge
//!   patch must be an object; a failed `test` is [`Error::Invalid`], as kube-apiserver
//!   answers 422). **Strategic merge is simplified**: objects merge as in a merge patch, a
//!   list whose patch elements all have a `name` merges by `name` (containers, env, ports,
//!   volumes...), other lists are replaced; directives (`$patch`, `$retainKeys`,
//!   `$setElementOrder`...) answer [`Error::Invalid`], and so does a strategic patch of a
//!   custom resource the manifest defines. **Server-side apply is a merge patch** that
//!   creates the object when missing: no field ownership, no removal of fields you stopped
//!   applying, no conflicts (inject one with [`FakeHost::fail_next`]).
//! - **Deletes and finalizers**: deleting an object with `metadata.finalizers` only sets
//!   `metadata.deletionTimestamp`; the object goes once a write empties its finalizers.
//!   `uid` and `resourceVersion` preconditions answer [`Error::Conflict`] when they fail;
//!   the propagation is recorded but there is no garbage collection of owned objects, no
//!   defaulting, no validation, no admission.
//! - **Reads**: label selectors, field selectors (`path=value`, `path!=value`, any dotted
//!   path, a missing path reads as `""`, as the host evaluates them), index lookups (which
//!   need [`FakeHost::for_plugin`], as indexes are declared in the manifest), `keys` and
//!   `count`.
//! - **Events** are aggregated as the host does: the same object, type, reason, action and
//!   note recorded again increments [`RecordedEvent::count`] instead of adding an event.
//! - **No queue**: nothing reconciles by itself. You call [`FakeHost::reconcile`]; owned and
//!   watched kinds are not mapped to keys, and a returned requeue is only returned.
//! - **Time** is frozen: timestamps are `2000-01-01T00:00:00Z` (also the `lastTransitionTime`
//!   of the [`conditions`](crate::conditions) helpers).
//! - **The host's own rules**: the manifest, label selectors (`k=v`, `k!=v`, `k`, `!k`,
//!   `k in (a,b)`, `k notin (a,b)`), index field paths and projections are validated, matched
//!   and applied by the same code the host runs (`kubewasm-core`), with the same errors.
//!
//! A recording made by the host (`--record`) replays on the fake host with [`replay`]: a
//! recorded incident becomes a regression test (see `docs/recording.md`).
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
use crate::object::CustomResourceExt;
use crate::object::{Kind, Object};
use crate::reconcile::{Action, Plugin, Reason, Request};

mod cluster;
mod patch;
mod replay;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use cluster::{State, fill_type, object_meta, str_field};
pub use replay::{Replay, ReplayError, ReplayedReconcile, replay, replay_recording};

/// A host call, to filter [`FakeHost::writes`] and to target [`FakeHost::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// [`Api::get`](crate::Api::get), `get_raw`, `get_fields`.
    Get,
    /// [`Api::list`](crate::Api::list), `list_raw`, `list_fields` without an index.
    List,
    /// A list with [`ListParams::index`](crate::ListParams::index).
    ListByIndex,
    /// [`Api::keys`](crate::Api::keys).
    Keys,
    /// [`Api::count`](crate::Api::count).
    Count,
    /// [`Api::create`](crate::Api::create).
    Create,
    /// [`Api::replace`](crate::Api::replace).
    Replace,
    /// [`Api::replace_status`](crate::Api::replace_status).
    ReplaceStatus,
    /// A replace of the scale subresource.
    ReplaceScale,
    /// [`Api::patch`](crate::Api::patch) with a merge, JSON or strategic merge patch.
    Patch,
    /// [`Api::patch_status`](crate::Api::patch_status) (any patch type).
    PatchStatus,
    /// [`Api::patch_scale`](crate::Api::patch_scale) (any patch type).
    PatchScale,
    /// [`Api::patch`](crate::Api::patch) with [`Patch::Apply`](crate::Patch::Apply).
    Apply,
    /// [`Api::delete`](crate::Api::delete).
    Delete,
    /// [`event`](crate::event), [`Api::event`](crate::Api::event).
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
    /// What the plugin sent: the object, or the patch; for a delete, its options
    /// (`propagation`, `uid`, `resourceVersion`).
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
    /// The event (with its related object, as last recorded).
    pub event: Event,
    /// How many times it was recorded: the host aggregates repeats of the same object, type,
    /// reason, action and note into one Event.
    pub count: u32,
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
    /// or malformed kind, a bad selector or field path, a duplicate index, an index or an
    /// index-lookup watch naming an undeclared index, a malformed custom resource
    /// definition, concurrency outside 1..=1024): the message lists every problem.
    pub fn for_plugin<P: Plugin>() -> Self {
        let (manifest, custom_kinds) = validate::<P>();
        Self::install(State {
            manifest: Some(manifest),
            custom_kinds,
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
    pub fn seed_json<T: Object>(&self, value: Value) -> &Self {
        self.seed_kind(Kind::of::<T>(), value)
    }

    /// [`FakeHost::seed_json`] with the kind given as a value (replay seeds any kind it finds
    /// in a recording).
    fn seed_kind(&self, kind: Kind, mut value: Value) -> &Self {
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
    ///
    /// # Panics
    /// When the real host would refuse to load `P` (see [`FakeHost::for_plugin`]), even on a
    /// [`FakeHost::new`], which does not enforce the manifest.
    pub fn reconcile_request<P: Plugin>(&self, request: Request) -> Result<Action> {
        if self.state.borrow().manifest.is_none() {
            validate::<P>();
        }
        HOST.with(|h| *h.borrow_mut() = Some(self.state.clone()));
        P::reconcile(request)
    }

    /// Puts the CRD of `K` in the fake cluster's knowledge: a strategic merge patch of `K`
    /// then answers [`Error::Invalid`], as the API server answers for custom resources.
    /// [`FakeHost::for_plugin`] does this for every CRD in the manifest.
    pub fn custom_resource<K: CustomResourceExt>(&self) -> &Self {
        self.state
            .borrow_mut()
            .custom_kinds
            .push((K::GROUP.to_owned(), K::KIND.to_owned()));
        self
    }
}

/// Validates `P`'s manifest with the host's rules (`kubewasm-core`, including its
/// `custom-resources`); returns it and the custom kinds it defines.
fn validate<P: Plugin>() -> (kubewasm_core::Manifest, Vec<(String, String)>) {
    let declared = P::manifest();
    let crds: Vec<Vec<u8>> = declared
        .custom_resources()
        .iter()
        .map(|crd| serde_json::to_vec(crd).unwrap_or_default())
        .collect();
    let manifest = kubewasm_core::Manifest::validate(declared.declaration());
    let crds = kubewasm_core::manifest::custom_resources(&crds);
    let (manifest, crds) = match (manifest, crds) {
        (Ok(m), Ok(c)) => (m, c),
        (m, c) => {
            let problems: Vec<String> = [m.err(), c.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| e.problems)
                .collect();
            let error = kubewasm_core::ManifestError { problems };
            panic!("the host would refuse to load this plugin: {error}")
        }
    };
    let custom_kinds = crds
        .iter()
        .filter_map(|crd| {
            let group = crd.pointer("/spec/group")?.as_str()?;
            let kind = crd.pointer("/spec/names/kind")?.as_str()?;
            Some((group.to_owned(), kind.to_owned()))
        })
        .collect();
    (manifest, custom_kinds)
}
