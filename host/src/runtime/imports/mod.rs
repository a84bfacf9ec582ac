//! The host side of the WIT imports, one file per interface of `kubewasm:controller@0.2.0`,
//! plus `v0_1.rs`, which serves the 0.1.0 imports by converting each call to 0.2.0. Each import checks the
//! calling plugin's manifest first: an undeclared kind, verb or index is handed back to the
//! plugin as `forbidden` (or `invalid` for an unknown index), never a trap.

mod cache;
mod client;
mod events;
mod log;
mod v0_1;

use super::api_error::ApiError;
use super::bindings::v2::kubewasm::controller::types;
use super::manifest::{Kind, Manifest};
use super::state::HostState;

impl types::Host for HostState {}

impl HostState {
    /// The manifest, or `forbidden` while the manifest itself is being read.
    pub(crate) fn manifest(&self) -> Result<&Manifest, ApiError> {
        self.manifest.as_deref().ok_or_else(|| {
            ApiError::Forbidden("host calls are not available while the manifest is read".into())
        })
    }
}

/// Checks the namespace argument against the kind's scope.
pub(crate) fn check_scope(kind: &Kind, namespace: Option<&str>) -> Result<(), ApiError> {
    match (kind.namespaced, namespace) {
        (false, Some(ns)) => Err(ApiError::Invalid(format!(
            "{kind} is cluster-scoped but namespace {ns:?} was given"
        ))),
        (_, Some("")) => Err(ApiError::Invalid(
            "the namespace is empty (omit it instead)".into(),
        )),
        _ => Ok(()),
    }
}
