//! The error every SDK call returns, one case per WIT `error` case.

use crate::bindings::kubewasm::controller::types::Error as WitError;

/// What went wrong in a host call, or in the plugin itself.
///
/// The cases mirror the WIT `error` variant; each message is human-readable. Returning any
/// `Error` from [`Plugin::reconcile`](crate::Plugin::reconcile) fails the reconcile and the
/// host retries the key with exponential backoff.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "x"}}));
/// # host.fail_next(kubewasm_sdk::testing::Call::Patch, kubewasm_sdk::Error::Conflict("stale".into()));
/// use std::time::Duration;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::{Action, Api, Error, Patch};
///
/// let patch = Patch::merge(serde_json::json!({"data": {"k": "v"}}))?;
/// let action = match Api::<ConfigMap>::namespaced("demo").patch("x", &patch) {
///     Ok(_) => Action::done(),
///     // Someone else wrote first: try again soon, quietly (no error in the log).
///     Err(Error::Conflict(_)) => Action::requeue(Duration::from_secs(1)),
///     Err(e) => return Err(e), // the host retries with backoff
/// };
/// # assert_eq!(action.requeue_after(), Some(Duration::from_secs(1)));
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist (writes to a missing object).
    NotFound(String),
    /// `create` of a name that is taken.
    AlreadyExists(String),
    /// The `resourceVersion` sent with a write is stale: re-read and retry (or requeue).
    Conflict(String),
    /// The manifest does not declare this kind, verb or index.
    Forbidden(String),
    /// The request is malformed or the API server rejected the object.
    Invalid(String),
    /// The host's cache for this kind has not synced yet.
    NotSynced(String),
    /// The API server could not be reached or is overloaded.
    Unavailable(String),
    /// A host failure the plugin cannot fix.
    Internal(String),
    /// JSON that does not decode into the type asked for (an object read from the host, or
    /// your own `serde_json` call with `?`). Returned from `reconcile`, it reaches the host as
    /// `other` with a message that starts with `decode:`.
    Decode(String),
    /// Any other failure, including the plugin's own.
    Other(String),
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A plugin-side failure with a message.
    pub fn other(message: impl std::fmt::Display) -> Self {
        Self::Other(message.to_string())
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// A failed decode with a message.
    pub fn decode(message: impl std::fmt::Display) -> Self {
        Self::Decode(message.to_string())
    }

    /// True for [`Error::Forbidden`].
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Forbidden(_))
    }

    /// The message, without the case.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::Conflict(m)
            | Self::Forbidden(m)
            | Self::Invalid(m)
            | Self::NotSynced(m)
            | Self::Unavailable(m)
            | Self::Internal(m)
            | Self::Decode(m)
            | Self::Other(m) => m,
        }
    }

    fn case(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not found",
            Self::AlreadyExists(_) => "already exists",
            Self::Conflict(_) => "conflict",
            Self::Forbidden(_) => "forbidden",
            Self::Invalid(_) => "invalid",
            Self::NotSynced(_) => "not synced",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Decode(_) => "decode",
            Self::Other(_) => "error",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.case(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Decode(format!("json: {e}"))
    }
}

impl From<WitError> for Error {
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

impl From<Error> for WitError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => Self::NotFound(m),
            Error::AlreadyExists(m) => Self::AlreadyExists(m),
            Error::Conflict(m) => Self::Conflict(m),
            Error::Forbidden(m) => Self::Forbidden(m),
            Error::Invalid(m) => Self::Invalid(m),
            Error::NotSynced(m) => Self::NotSynced(m),
            Error::Unavailable(m) => Self::Unavailable(m),
            Error::Internal(m) => Self::Internal(m),
            Error::Decode(m) => Self::Other(format!("decode: {m}")),
            Error::Other(m) => Self::Other(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_case_and_the_message() {
        let e = Error::Forbidden("pods: verb delete not declared".into());
        assert_eq!(e.to_string(), "forbidden: pods: verb delete not declared");
        assert!(e.is_forbidden());
    }

    #[test]
    fn every_case_survives_a_round_trip_through_the_wit_error() {
        let all = [
            Error::NotFound("a".into()),
            Error::AlreadyExists("b".into()),
            Error::Conflict("c".into()),
            Error::Forbidden("d".into()),
            Error::Invalid("e".into()),
            Error::NotSynced("f".into()),
            Error::Unavailable("g".into()),
            Error::Internal("h".into()),
            Error::Other("i".into()),
        ];
        for e in all {
            assert_eq!(Error::from(WitError::from(e.clone())), e);
        }
    }

    #[test]
    fn a_decode_error_crosses_as_other_saying_decode() {
        let e: Error = serde_json::from_slice::<u32>(b"\"x\"").unwrap_err().into();
        assert!(matches!(e, Error::Decode(_)), "{e}");
        let WitError::Other(m) = WitError::from(Error::decode("Pod demo/x: missing field `spec`"))
        else {
            panic!("not other")
        };
        assert_eq!(m, "decode: Pod demo/x: missing field `spec`");
    }

    struct FailsToDecode;

    impl crate::Plugin for FailsToDecode {
        fn manifest() -> crate::Manifest {
            crate::Manifest::reconcile::<k8s_openapi::api::core::v1::ConfigMap>()
        }
        fn reconcile(_: crate::Request) -> Result<crate::Action> {
            let n: u32 = serde_json::from_str("\"three\"")?;
            Ok(crate::Action::requeue(std::time::Duration::from_secs(
                n.into(),
            )))
        }
    }

    #[test]
    fn a_decode_error_returned_from_reconcile_reaches_the_host_as_other_saying_decode() {
        use crate::bindings::exports::kubewasm::controller::reconciler as wit;
        let request = wit::Request {
            namespace: Some("demo".into()),
            name: "x".into(),
            reason: wit::Reason::Changed,
        };
        match crate::__private::reconcile::<FailsToDecode>(request) {
            Err(WitError::Other(m)) => assert!(m.starts_with("decode: json: invalid type"), "{m}"),
            other => panic!("expected other, got {other:?}"),
        }
    }
}
