//! The plugin runtime: one wasmtime engine, plugins loaded from disk, one store per reconcile.
//!
//! - [`Runtime`] (`engine.rs`) owns the engine, the linker, the epoch ticker and the
//!   [`CompileCache`]; [`Runtime::load`] turns a `.wasm` file into a [`Plugin`].
//! - [`Plugin`] (`plugin.rs`) is a compiled component, its pre-instantiation and its
//!   validated [`Manifest`] (`manifest.rs`); [`Plugin::reconcile`] runs one reconcile.
//! - The WIT imports are served by one file each under `host/`, after checking the caller's
//!   manifest; they reach the cluster only through the [`Backend`] trait (`backend.rs`).
//! - `bindings.rs` is the only `bindgen!` call.
//!
//! Decisions, with figures from `benches/runtime.rs` (release build, this 2-core machine
//! shared with other builds, bench plugin ~1 MB, a 4.1 KB Pod):
//!
//! | what | figure | decision |
//! |---|---|---|
//! | fresh store + instance + no-op reconcile | 25 µs pooling, 30 µs on-demand | a fresh `Store` per reconcile from an `InstancePre` (no state leaks between reconciles, a fault drops only that store); pooling allocator on by default (`RuntimeConfig::pooling`) |
//! | keeping 1 MiB of each pooled memory resident | no-op rose to 62 µs | not used: a Rust guest's first MiB is mostly its (untouched) stack, so `memset` costs more than the page faults it saves |
//! | cache get of the Pod, raw bytes | +5.5 µs over no-op | objects cross as JSON bytes (`list<u8>`): one copy, no UTF-8 re-validation; cheap enough that no projection API is needed yet |
//! | same, decoded into k8s-openapi `Pod` in the guest | +33 µs (native serde_json: 15–17 µs) | decoding dominates; the SDK offers `get_raw`/`list_raw` for partial decodes |
//! | cache list of 1,000 Pods, raw | +1.9 ms (4 MB) | lists cross as one JSON array: one host-side concatenation and one guest allocation instead of 1,000 |
//! | same, decoded in the guest | +38–41 ms (native: 36–43 ms) | decode cost is the same in and out of wasm |
//! | load: cold compile / from the compile cache | 0.45–1.3 s / 2 ms | compiled components cached on disk (`CompileCache`) |
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
mod host;
mod manifest;
mod memory;
mod output;
mod plugin;
mod projection;
mod state;

pub use api_error::ApiError;
pub use backend::{Backend, EventRecord, EventType, PatchRequest, Subresource};
pub use compile_cache::{CompileCache, CompileCacheError};
pub use engine::{Runtime, RuntimeConfig, RuntimeError};
pub use kubewasm_controller::{FieldPath, FieldPathError, LabelSelector, SelectorError};
pub use manifest::{
    Index, Kind, Manifest, ManifestError, Reconciles, Verb, Verbs, Watch, WatchMapping,
    guess_plural,
};
pub use memory::MemoryBackend;
pub use plugin::{
    Action, LoadError, ObjectRef, Plugin, Reason, ReconcileError, Request, version_of,
};
pub use projection::{MAX_FIELDS, Projection, ProjectionError};
