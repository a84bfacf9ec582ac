//! The Kubernetes model every part of kubewasm shares, written once: the host's informers and
//! runtime, the embedded API server and the SDK's fake host all use these, so a selector, a
//! field path, a projection or a manifest means the same everywhere.
//!
//! - [`LabelSelector`] (`selector.rs`): the label selector syntax, its structured form and
//!   matching; [`Labels`]/[`LabelSource`] (`labels.rs`): what selectors match.
//! - [`FieldPath`] (`field_path.rs`): paths such as `spec.nodeName` for indexes and lookups.
//! - [`FieldSelector`] (`field_selector.rs`): `path=value`/`path!=value` terms on any field
//!   path, as the cache's list calls take them.
//! - [`Projection`] (`projection.rs`): copying only some fields out of an object's JSON.
//! - [`ObjectKey`] (`key.rs`): namespace/name of an object; [`Request`]/[`Reason`]/[`ObjectRef`]
//!   (`request.rs`): the key a reconcile is asked for and why it fires.
//! - [`recording`]: the format `kubewasm --record` writes and `kubewasm replay` and the SDK's
//!   fake host read back.
//! - [`Manifest`] (`manifest/`): a plugin's declaration validated, its permission checks, and
//!   its narrowing by an operator's policy.
//!
//! Nothing here does I/O, and nothing depends on more than serde, so the crate also builds for
//! `wasm32-wasip2`.

mod field_path;
mod field_selector;
mod key;
mod labels;
pub mod manifest;
mod projection;
pub mod recording;
mod request;
mod selector;

pub use field_path::{Error as FieldPathError, FieldPath};
pub use field_selector::{FieldSelector, FieldSelectorError};
pub use key::ObjectKey;
pub use labels::{LabelSource, Labels};
pub use manifest::{
    Allowance, Declaration, Denied, Index, Kind, KindRef, Manifest, ManifestError, MappingRef,
    Reconciles, Verb, Verbs, Watch, WatchMapping, guess_plural,
};
pub use projection::{MAX_FIELDS, Projection, ProjectionError};
pub use request::{ObjectRef, Reason, Request};
pub use selector::{
    Error as SelectorError, LabelSelector, Requirement, is_dns_subdomain, is_label_key,
    is_label_value,
};
