//! The plugin runtime: one wasmtime engine, plugins loaded from disk, one store per reconcile
//! (a fresh one, or one the plugin asked to keep).
//!
//! - [`Runtime`] (`engine.rs`) owns the engine, the linker, the epoch ticker and the
//!   [`CompileCache`].
//! - [`Plugin`] (`plugin.rs`) is a compiled component, its pre-instantiation and its
//!   validated [`Manifest`] (the model in `kubewasm-core`; `manifest.rs` reads the WIT record);
//!   [`Runtime::load`] (beside it) turns the bytes of a component into one (reading files is
//!   the loader's job: `crate::loader::load_file`); [`Plugin::reconcile`] runs one reconcile.
//!   A 0.2.0 manifest's `reuse-instances` ([`Plugin::reuses_instances`]) makes the plugin keep
//!   its instances between reconciles (`kept.rs`); `state.rs` holds what a store carries and
//!   what is reset for each reconcile on a kept one.
//! - Two versions of the contract load: `kubewasm:controller@0.2.0` (`wit/`) and the frozen
//!   `@0.1.0` (`wit/0.1.0/`). [`Runtime::load`] reads which `reconciler` interface the
//!   component exports ([`WitVersion`]) and instantiates it with that version's bindings; a
//!   component exporting neither is refused naming what it exports. 0.1.0's manifest, request
//!   (`request.rs`, for both versions) and action are converted to the host's types (its `requeue-after` is milliseconds, 0.2.0's
//!   a duration in nanoseconds).
//! - A 0.2.0 kind names no plural or scope: `kinds.rs` resolves them when the plugin loads,
//!   from [`RuntimeConfig::resolver`] (the cluster's discovery in `kubewasm run`/`dev`), then
//!   the manifest's `custom-resources` ([`Plugin::custom_resources`]), else a table of built-in
//!   kinds offline, else a guess with a warning. The resolved [`Kind`] carries them as before.
//! - The WIT imports are served by one file each under `imports/`, after checking the caller's
//!   manifest; they reach the cluster only through the [`Backend`] trait (`backend.rs`). They
//!   implement 0.2.0; `imports/v0_1.rs` serves 0.1.0's imports by converting each call and
//!   running the same code. List-shaped reads take a [`ListQuery`] (namespace, label and
//!   [`FieldSelector`]s evaluated on the cached objects, a declared index); `keys` and `count`
//!   never copy object bodies.
//! - `bindings.rs` holds the only `bindgen!` calls, one per WIT version.
//!
//! Decisions, with figures from `benches/runtime.rs` (release build, this 2-core machine
//! shared with four other builds, so ±30%; bench plugin ~1 MB, a 4.1 KB Pod):
//!
//! | what | figure | decision |
//! |---|---|---|
//! | fresh store + instance + no-op reconcile | 8–10 µs pooling (26–37 µs when pooled memory was unmapped on reset), 30–50 µs on-demand | a fresh `Store` per reconcile from an `InstancePre`, never reused unless the plugin asks (next row): no state leaks between keys, a fault drops only that store, and at ~10 µs it is not what limits throughput. Pooling on by default; `RuntimeConfig::pool_keep_resident` (8 MiB) + `PAGEMAP_SCAN` reset only the pages a reconcile dirtied, with `memset`, instead of unmapping them (no page faults or TLB shootdowns next time); the bench plugin's `fresh` op and a test prove memory is still reset |
//! | Python (componentize-py, ~18 MB) no-op reconcile: fresh instance / kept instance | 0.93 ms / 10 µs (`BENCH_PYTHON=only`; dev build with wasmtime at opt-level 3: 1.8 ms / 25 µs); the Rust no-op with the flag off stays 9.3–10.2 µs | opt-in `reuse-instances` in the 0.2.0 manifest (`kept.rs`): each worker keeps its `Store` + instance (at most `concurrency` idle), per reconcile it gets the reconcile's backend, a deadline re-armed from now, a fresh log budget and emptied stdout/stderr (`output::Capture`, since the guest keeps the stream it opened); any fault (trap, deadline, memory cap, even a growth refused that the guest survived) drops it; a new version has its own pool; with pooling an idle kept store holds its slot, so a failed instantiation releases every plugin's idle ones and retries. Off by default, since globals then survive across keys; the labeler opts in |
//! | cache get of the Pod, raw bytes | +1.3–2 µs over no-op | objects cross as JSON bytes (`list<u8>`): one copy, no UTF-8 re-validation |
//! | same, decoded into k8s-openapi `Pod` in the guest | +21–30 µs (native serde_json: 13–19 µs) | decoding dominates; hence projections |
//! | get projected to 5 fields (`get` with `fields`) + decoded | +4–16 µs; host-side projection 2.8 µs, ~0.2 µs from the memo | `fields` on `get`/`list` (0.1.0's `get-fields`/`list-fields`/`list-by-index-fields`): one streaming serde pass over the cached bytes (skip with `IgnoredAny`, copy subtrees as `RawValue`), memoised per plugin by source buffer (`ProjectionCache`) |
//! | list of 1,000 Pods, raw / decoded / projected + decoded / projected into a small struct | 1.0–1.7 ms / 30–34 ms (native 31 ms) / 1.9–3.2 ms / 1.5–1.8 ms | lists cross as one JSON array (one host concatenation, one guest allocation); decode speed in wasm is about native |
//! | plugin profile `codegen-units = 1` + `lto` | no faster decode (±5%), cold compile 0.5–0.9 s -> 1.9–2.6 s, plugin build 5 s -> 2.5 min | not used (`codegen-units = 4`, no LTO) |
//! | load: cold compile / from the compile cache | 0.5–1.3 s / 2–3 ms | compiled components cached on disk (`CompileCache`) |
//!
//! Deadlines use epoch interruption (a ticker thread, 1 ms granularity; a guest still computing
//! yields its thread at every tick) plus a slightly longer tokio timeout for time spent waiting in
//! host calls; the memory cap is a `ResourceLimiter` that remembers it refused a growth, so the
//! trap that follows is reported as the cap.

mod api_error;
mod backend;
mod bindings;
mod compile_cache;
mod engine;
mod imports;
mod kept;
mod kinds;
mod manifest;
mod memory;
mod output;
mod plugin;
mod projection;
mod request;
mod state;

pub use api_error::ApiError;
pub(crate) use backend::key_of;
pub use backend::{
    Backend, DeleteOptions, EventRecord, EventType, IndexQuery, ListQuery, PatchRequest,
    Propagation, Subresource,
};
pub use compile_cache::{CompileCache, CompileCacheError};
pub use engine::{Runtime, RuntimeConfig, RuntimeError};
pub use kinds::{KindResolver, ResolvedKind};
pub use kubewasm_core::{
    FieldPath, FieldPathError, FieldSelector, FieldSelectorError, LabelSelector, MAX_FIELDS,
    ObjectKey, ObjectRef, Projection, ProjectionError, Reason, Request, SelectorError,
};
pub use manifest::{
    Declaration, Denied, Index, Kind, KindRef, Manifest, ManifestError, MappingRef, Reconciles,
    Verb, Verbs, Watch, WatchMapping, guess_plural,
};
pub use memory::MemoryBackend;
pub use plugin::{Action, Blame, LoadError, Plugin, ReconcileError, WitVersion, version_of};
