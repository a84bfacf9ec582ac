//! [`ApiError`]: the typed error of the WIT contract, on the host side.

use super::bindings::v1::kubewasm::controller::types::Error as WitErrorV1;
use super::bindings::v2::kubewasm::controller::types::Error as WitError;

/// The error a host call hands back to a plugin, and the error a plugin returns from
/// `reconcile`. One case per WIT `error` case; see `wit/types.wit` for when each happens.
///
/// Backends return it for reads and writes; it is converted to the WIT type at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A create of a name that is taken.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A stale resourceVersion (or a failed JSON-patch `test`).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The plugin's manifest does not allow the call.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A malformed request or an object the API server rejected.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The cache for the kind has not synced yet.
    #[error("not synced: {0}")]
    NotSynced(String),
    /// The API server is unreachable or overloaded.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A host failure.
    #[error("internal: {0}")]
    Internal(String),
    /// Anything else (plugins use it for their own failures).
    #[error("{0}")]
    Other(String),
}

impl From<ApiError> for WitError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) => Self::NotFound(m),
            ApiError::AlreadyExists(m) => Self::AlreadyExists(m),
            ApiError::Conflict(m) => Self::Conflict(m),
            ApiError::Forbidden(m) => Self::Forbidden(m),
            ApiError::Invalid(m) => Self::Invalid(m),
            ApiError::NotSynced(m) => Self::NotSynced(m),
            ApiError::Unavailable(m) => Self::Unavailable(m),
            ApiError::Internal(m) => Self::Internal(m),
            ApiError::Other(m) => Self::Other(m),
        }
    }
}

impl From<WitError> for ApiError {
    fn from(e: WitError) -> Self {
        match e {
            WitError::NotFound(m) => Self::NotFound(m),
            WitError::AlreadyExists(m) => Self::AlreadyExists(m),
            WitError::Conflict(m) => Self::Conflict(m),
            WitError::Forbidden(m) => Self::Forbidden(m),
            WitError::Invalid(m) => Self::Invalid(m),
            WitError::NotSynced(m) => Self::NotSynced(m),
            WitError::Unavailable(m) => Self::Unavailable(m),
            WitError::Internal(m) => Self::Internal(m),
            WitError::Other(m) => Self::Other(m),
        }
    }
}

impl From<ApiError> for WitErrorV1 {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) => Self::NotFound(m),
            ApiError::AlreadyExists(m) => Self::AlreadyExists(m),
            ApiError::Conflict(m) => Self::Conflict(m),
            ApiError::Forbidden(m) => Self::Forbidden(m),
            ApiError::Invalid(m) => Self::Invalid(m),
            ApiError::NotSynced(m) => Self::NotSynced(m),
            ApiError::Unavailable(m) => Self::Unavailable(m),
            ApiError::Internal(m) => Self::Internal(m),
            ApiError::Other(m) => Self::Other(m),
        }
    }
}

impl From<WitErrorV1> for ApiError {
    fn from(e: WitErrorV1) -> Self {
        match e {
            WitErrorV1::NotFound(m) => Self::NotFound(m),
            WitErrorV1::AlreadyExists(m) => Self::AlreadyExists(m),
            WitErrorV1::Conflict(m) => Self::Conflict(m),
            WitErrorV1::Forbidden(m) => Self::Forbidden(m),
            WitErrorV1::Invalid(m) => Self::Invalid(m),
            WitErrorV1::NotSynced(m) => Self::NotSynced(m),
            WitErrorV1::Unavailable(m) => Self::Unavailable(m),
            WitErrorV1::Internal(m) => Self::Internal(m),
            WitErrorV1::Other(m) => Self::Other(m),
        }
    }
}
