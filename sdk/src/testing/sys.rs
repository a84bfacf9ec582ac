//! The native side of the `sys` seam: every raw call goes to the [`FakeHost`](super::FakeHost)
//! installed on the current thread.

use super::{HOST, State};
use crate::data::{DeleteParams, EventRecord, ListParams, ObjectKey, PatchBody, Subresource};
use crate::error::{Error, Result};
use crate::object::Kind;

fn with<T>(f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
    let state = HOST.with(|h| h.borrow().clone()).ok_or_else(|| {
        Error::Internal(
            "no kubewasm host on this thread: create a kubewasm_sdk::testing::FakeHost \
             before calling the SDK in a native test"
                .into(),
        )
    })?;
    let mut state = state.borrow_mut();
    f(&mut state)
}

pub(crate) fn get(
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    fields: Option<&[&str]>,
) -> Result<Option<Vec<u8>>> {
    with(|s| s.get(kind, namespace, name, fields))
}

pub(crate) fn list(
    kind: &Kind,
    namespace: Option<&str>,
    lp: &ListParams,
    fields: Option<&[&str]>,
) -> Result<Vec<u8>> {
    with(|s| s.list(kind, namespace, lp, fields))
}

pub(crate) fn keys(
    kind: &Kind,
    namespace: Option<&str>,
    lp: &ListParams,
) -> Result<Vec<ObjectKey>> {
    with(|s| s.keys(kind, namespace, lp))
}

pub(crate) fn count(kind: &Kind, namespace: Option<&str>, lp: &ListParams) -> Result<u64> {
    with(|s| s.count(kind, namespace, lp))
}

pub(crate) fn create(kind: &Kind, namespace: Option<&str>, body: &[u8]) -> Result<Vec<u8>> {
    with(|s| s.create(kind, namespace, body))
}

pub(crate) fn replace(
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    body: &[u8],
    sub: Option<Subresource>,
) -> Result<Vec<u8>> {
    with(|s| s.replace(kind, namespace, name, body, sub))
}

pub(crate) fn patch(
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    patch: PatchBody,
    sub: Option<Subresource>,
) -> Result<Vec<u8>> {
    with(|s| s.patch(kind, namespace, name, patch, sub))
}

pub(crate) fn delete(
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    dp: &DeleteParams,
) -> Result<()> {
    with(|s| s.delete(kind, namespace, name, dp))
}

pub(crate) fn record_event(record: &EventRecord<'_>) -> Result<()> {
    with(|s| s.event(record))
}

pub(crate) fn log(level: crate::data::Level, message: &str) {
    let logged = with(|s| {
        s.logs.push((level, message.to_owned()));
        Ok(())
    });
    if logged.is_err() {
        eprintln!("[{level:?}] {message}");
    }
}

/// The fake host's frozen clock (`2000-01-01T00:00:00Z`).
pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
    super::cluster::NOW
        .parse()
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}
