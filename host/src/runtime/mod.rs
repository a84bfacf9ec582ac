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
//! Decisions (measured on this 2-core machine; see `docs/writing-plugins.md` for the
//! plugin-facing ones): objects cross as JSON bytes (`list<u8>`), lists as one JSON array;
//! a fresh `Store` per reconcile from an `InstancePre`; epoch interruption for deadlines.

mod api_error;
mod backend;
mod bindings;
mod compile_cache;
mod engine;
mod field_path;
mod host;
mod manifest;
mod memory;
mod output;
mod plugin;
mod selector;
mod state;

pub use api_error::ApiError;
pub use backend::{Backend, EventRecord, EventType, PatchRequest, Subresource};
pub use compile_cache::{CompileCache, CompileCacheError};
pub use engine::{Runtime, RuntimeConfig, RuntimeError};
pub use field_path::{FieldPath, FieldPathError};
pub use manifest::{
    Index, Kind, Manifest, ManifestError, Reconciles, Verb, Verbs, Watch, WatchMapping,
    guess_plural,
};
pub use memory::MemoryBackend;
pub use plugin::{Action, LoadError, ObjectRef, Plugin, Reason, ReconcileError, Request};
pub use selector::{Requirement, Selector, SelectorError};
