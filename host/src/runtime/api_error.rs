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

/// The conversions between [`ApiError`] and a WIT version's `error`: the same cases, case by
/// case, for each version's generated type.
macro_rules! wit_error_conversions {
    ($($wit:ident),+) => {$(
        impl From<ApiError> for $wit {
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

        impl From<$wit> for ApiError {
            fn from(e: $wit) -> Self {
                match e {
                    $wit::NotFound(m) => Self::NotFound(m),
                    $wit::AlreadyExists(m) => Self::AlreadyExists(m),
                    $wit::Conflict(m) => Self::Conflict(m),
                    $wit::Forbidden(m) => Self::Forbidden(m),
                    $wit::Invalid(m) => Self::Invalid(m),
                    $wit::NotSynced(m) => Self::NotSynced(m),
                    $wit::Unavailable(m) => Self::Unavailable(m),
                    $wit::Internal(m) => Self::Internal(m),
                    $wit::Other(m) => Self::Other(m),
                }
            }
        }
    )+};
}

wit_error_conversions!(WitError, WitErrorV1);
