//! [`RecordingBackend`]: a [`Backend`] that passes every call to the one it wraps and keeps the
//! call, its arguments and its answer, in order, as recording [`Call`]s.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use kubewasm_core::recording::{self as rec, Answer, Call};
use parking_lot::Mutex;
use serde_json::Value;

use super::convert;
use crate::runtime::{
    ApiError, Backend, DeleteOptions, EventRecord, Kind, ListQuery, ObjectKey, PatchRequest,
    Subresource,
};

/// Wraps a backend and records every call made through it.
pub struct RecordingBackend {
    inner: Arc<dyn Backend>,
    calls: Mutex<Vec<Call>>,
    /// Keep Secrets' data (`--record-secrets`); redacted otherwise.
    secrets: bool,
}

impl RecordingBackend {
    /// Records the calls made to `inner`; Secrets' `data`/`stringData` redacted unless
    /// `secrets`.
    pub fn new(inner: Arc<dyn Backend>, secrets: bool) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
            secrets,
        }
    }

    /// The calls recorded so far, in order, leaving none behind.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock())
    }

    fn push(&self, call: Call) {
        self.calls.lock().push(call);
    }

    /// An object's JSON as a value, redacted when it is a Secret and secrets are not kept.
    fn object(&self, kind: &rec::Kind, bytes: &[u8]) -> Value {
        let mut value = serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
        if kind.is_secret() && !self.secrets {
            rec::redact_secret(&mut value);
        }
        value
    }

    fn answer(&self, kind: &rec::Kind, r: &Result<Bytes, ApiError>) -> Answer<Value> {
        match r {
            Ok(b) => Answer::Ok(self.object(kind, b)),
            Err(e) => Answer::Error(convert::error(e)),
        }
    }
}

fn unit(r: &Result<(), ApiError>) -> Answer<()> {
    match r {
        Ok(()) => Answer::Ok(()),
        Err(e) => Answer::Error(convert::error(e)),
    }
}

impl Backend for RecordingBackend {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        let result = self.inner.get(kind, namespace, name);
        let k = rec::Kind::from(kind);
        let answer = match &result {
            Ok(found) => Answer::Ok(found.as_ref().map(|b| self.object(&k, b))),
            Err(e) => Answer::Error(convert::error(e)),
        };
        self.push(Call::Get {
            kind: k,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            result: answer,
        });
        result
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        let result = self.inner.list(kind, query);
        let k = rec::Kind::from(kind);
        let answer = match &result {
            Ok(items) => Answer::Ok(items.iter().map(|b| self.object(&k, b)).collect()),
            Err(e) => Answer::Error(convert::error(e)),
        };
        self.push(Call::List {
            kind: k,
            query: convert::query(query),
            result: answer,
        });
        result
    }

    fn keys(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<ObjectKey>, ApiError> {
        let result = self.inner.keys(kind, query);
        let answer = match &result {
            Ok(keys) => Answer::Ok(
                keys.iter()
                    .map(|k| rec::Key {
                        namespace: k.namespace.clone(),
                        name: k.name.clone(),
                    })
                    .collect(),
            ),
            Err(e) => Answer::Error(convert::error(e)),
        };
        self.push(Call::Keys {
            kind: kind.into(),
            query: convert::query(query),
            result: answer,
        });
        result
    }

    fn count(&self, kind: &Kind, query: &ListQuery) -> Result<u64, ApiError> {
        let result = self.inner.count(kind, query);
        let answer = match &result {
            Ok(n) => Answer::Ok(*n),
            Err(e) => Answer::Error(convert::error(e)),
        };
        self.push(Call::Count {
            kind: kind.into(),
            query: convert::query(query),
            result: answer,
        });
        result
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        async move {
            let k = rec::Kind::from(kind);
            let sent = self.object(&k, &body);
            let result = self.inner.create(kind, namespace, body).await;
            self.push(Call::Create {
                result: self.answer(&k, &result),
                kind: k,
                namespace: namespace.map(str::to_owned),
                body: sent,
            });
            result
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        async move {
            let k = rec::Kind::from(kind);
            let sent = self.object(&k, &body);
            let result = self
                .inner
                .replace(kind, namespace, name, body, subresource)
                .await;
            self.push(Call::Replace {
                result: self.answer(&k, &result),
                kind: k,
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                subresource: convert::subresource(subresource),
                body: sent,
            });
            result
        }
        .boxed()
    }

    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        async move {
            let k = rec::Kind::from(kind);
            let sent = self.object(&k, patch.body());
            let (patch_type, field_manager, force) = convert::patch_kind(&patch);
            let result = self
                .inner
                .patch(kind, namespace, name, patch, subresource)
                .await;
            self.push(Call::Patch {
                result: self.answer(&k, &result),
                kind: k,
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                subresource: convert::subresource(subresource),
                patch_type,
                field_manager,
                force,
                body: sent,
            });
            result
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            let recorded = convert::delete_options(&options);
            let result = self.inner.delete(kind, namespace, name, options).await;
            self.push(Call::Delete {
                kind: kind.into(),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                options: recorded,
                result: unit(&result),
            });
            result
        }
        .boxed()
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        async move {
            let recorded = convert::event(&event);
            let result = self.inner.record_event(event).await;
            self.push(Call::Event {
                event: recorded,
                result: unit(&result),
            });
            result
        }
        .boxed()
    }

    fn log(&self, level: tracing::Level, message: &str) {
        self.push(Call::Log {
            level: level.as_str().to_ascii_lowercase(),
            message: message.to_owned(),
        });
        self.inner.log(level, message);
    }

    // A crash a layer inside asks for (a perturbation test's) still happens when recording.
    fn abort_reason(&self) -> Option<String> {
        self.inner.abort_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::MemoryBackend;
    use serde_json::json;

    fn kind(group: &str, version: &str, kind: &str, plural: &str) -> Kind {
        Kind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
        }
    }

    fn secret() -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"namespace": "demo", "name": "creds"},
               "data": {"password": "aHVudGVyMg=="}})
    }

    #[tokio::test]
    async fn secrets_read_and_written_are_redacted_unless_kept() {
        let secrets = kind("", "v1", "Secret", "secrets");
        for keep in [false, true] {
            let memory = Arc::new(MemoryBackend::new());
            memory.insert(&secrets, secret()).unwrap();
            let backend = RecordingBackend::new(memory.clone(), keep);
            let read = backend
                .get(&secrets, Some("demo"), "creds")
                .unwrap()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&read).contains("aHVudGVyMg=="),
                "the plugin still gets the real data"
            );
            backend.list(&secrets, &ListQuery::default()).unwrap();
            let patch =
                PatchRequest::Merge(Bytes::from_static(br#"{"stringData": {"token": "t0ken"}}"#));
            backend
                .patch(&secrets, Some("demo"), "creds", patch, Subresource::Main)
                .await
                .unwrap();
            let text = serde_json::to_string(&backend.take_calls()).unwrap();
            assert_eq!(text.contains("aHVudGVyMg=="), keep, "{text}");
            assert_eq!(text.contains("t0ken"), keep, "{text}");
            assert_eq!(
                text.contains(rec::REDACTED_DATA),
                !keep,
                "redacted values are marked: {text}"
            );
        }
    }

    #[tokio::test]
    async fn every_call_is_kept_in_order_with_its_answer() {
        let cms = kind("", "v1", "ConfigMap", "configmaps");
        let memory = Arc::new(MemoryBackend::new());
        let backend = RecordingBackend::new(memory, false);
        assert_eq!(backend.get(&cms, Some("demo"), "a").unwrap(), None);
        let body = Bytes::from(
            json!({"metadata": {"namespace": "demo", "name": "a"}, "data": {"k": "v"}}).to_string(),
        );
        backend
            .create(&cms, Some("demo"), body.clone())
            .await
            .unwrap();
        let again = backend.create(&cms, Some("demo"), body).await;
        assert!(matches!(again, Err(ApiError::AlreadyExists(_))));
        backend.log(tracing::Level::INFO, "hello");
        let calls = backend.take_calls();
        assert!(matches!(
            &calls[0],
            Call::Get {
                result: Answer::Ok(None),
                ..
            }
        ));
        let Call::Create { body, result, .. } = &calls[1] else {
            panic!("{calls:?}")
        };
        assert_eq!(body["data"]["k"], "v", "ConfigMap data is not redacted");
        assert!(result.ok().is_some());
        assert!(matches!(
            &calls[2],
            Call::Create { result: Answer::Error(e), .. } if e.code == "already-exists"
        ));
        assert_eq!(
            calls[3],
            Call::Log {
                level: "info".into(),
                message: "hello".into()
            }
        );
    }
}
