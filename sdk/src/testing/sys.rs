//! The native side of the `sys` seam: every raw call goes to the [`FakeHost`](super::FakeHost)
//! installed on the current thread.

use super::{HOST, State};
use crate::data::Event;
use crate::data::PatchBody;
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

pub(crate) fn get(kind: &Kind, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
    with(|s| s.get(kind, namespace, name))
}

pub(crate) fn list(kind: &Kind, namespace: &str, selector: &str) -> Result<Vec<u8>> {
    with(|s| s.list(kind, namespace, selector))
}

pub(crate) fn list_by_index(kind: &Kind, index: &str, value: &str) -> Result<Vec<u8>> {
    with(|s| s.list_by_index(kind, index, value))
}

pub(crate) fn get_fields(
    kind: &Kind,
    namespace: &str,
    name: &str,
    fields: &[&str],
) -> Result<Option<Vec<u8>>> {
    with(|s| s.get_fields(kind, namespace, name, fields))
}

pub(crate) fn list_fields(
    kind: &Kind,
    namespace: &str,
    selector: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    with(|s| s.list_fields(kind, namespace, selector, fields))
}

pub(crate) fn list_by_index_fields(
    kind: &Kind,
    index: &str,
    value: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    with(|s| s.list_by_index_fields(kind, index, value, fields))
}

pub(crate) fn create(kind: &Kind, namespace: &str, body: &[u8]) -> Result<Vec<u8>> {
    with(|s| s.create(kind, namespace, body))
}

pub(crate) fn replace(
    kind: &Kind,
    namespace: &str,
    name: &str,
    body: &[u8],
    status: bool,
) -> Result<Vec<u8>> {
    with(|s| s.replace(kind, namespace, name, body, status))
}

pub(crate) fn patch(
    kind: &Kind,
    namespace: &str,
    name: &str,
    patch: PatchBody,
    status: bool,
) -> Result<Vec<u8>> {
    with(|s| s.patch(kind, namespace, name, patch, status))
}

pub(crate) fn delete(kind: &Kind, namespace: &str, name: &str) -> Result<()> {
    with(|s| s.delete(kind, namespace, name))
}

pub(crate) fn record_event(
    kind: &Kind,
    namespace: &str,
    name: &str,
    warning: bool,
    reason: &str,
    note: &str,
    action: &str,
) -> Result<()> {
    let event = Event {
        warning,
        reason: reason.to_owned(),
        note: note.to_owned(),
        action: action.to_owned(),
    };
    with(|s| s.event(kind, namespace, name, event))
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
