//! `kubewasm:controller/client`: writes through the backend's API client.

use std::sync::Arc;

use bytes::Bytes;

use super::super::api_error::ApiError;
use super::super::backend::{Backend, PatchRequest, Subresource};
use super::super::bindings::kubewasm::controller::client::{Host, PatchBody};
use super::super::bindings::kubewasm::controller::types::{Error, Kind};
use super::super::manifest::{self, Verb};
use super::super::state::HostState;
use super::check_scope;

type Reply<T> = wasmtime::Result<Result<T, Error>>;

impl HostState {
    /// The permission check, done before any await so that the write future owns everything
    /// it uses (the store's data is not `Sync` and must not be borrowed across an await).
    fn writable(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        verb: Verb,
    ) -> Result<(Arc<dyn Backend>, manifest::Kind), ApiError> {
        let kind = self.manifest()?.check(kind, verb)?;
        check_scope(kind, namespace)?;
        Ok((self.backend.clone(), kind.clone()))
    }
}

async fn replace_any(
    target: Result<(Arc<dyn Backend>, manifest::Kind), ApiError>,
    namespace: Option<String>,
    name: String,
    body: Vec<u8>,
    subresource: Subresource,
) -> Reply<Vec<u8>> {
    let (backend, kind) = match target {
        Ok(t) => t,
        Err(e) => return Ok(Err(e.into())),
    };
    let out = backend
        .replace(
            &kind,
            namespace.as_deref(),
            &name,
            Bytes::from(body),
            subresource,
        )
        .await;
    Ok(out.map(|b| b.to_vec()).map_err(Into::into))
}

impl Host for HostState {
    async fn create(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        let (backend, kind) = match self.writable(&kind, namespace.as_deref(), Verb::Create) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        let out = backend
            .create(&kind, namespace.as_deref(), Bytes::from(body))
            .await;
        Ok(out.map(|b| b.to_vec()).map_err(Into::into))
    }

    async fn replace(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        let target = self.writable(&kind, namespace.as_deref(), Verb::Update);
        replace_any(target, namespace, name, body, Subresource::Main).await
    }

    async fn replace_status(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        let target = self.writable(&kind, namespace.as_deref(), Verb::Update);
        replace_any(target, namespace, name, body, Subresource::Status).await
    }

    async fn patch(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        patch: PatchBody,
        status: bool,
    ) -> Reply<Vec<u8>> {
        let (backend, kind) = match self.writable(&kind, namespace.as_deref(), Verb::Patch) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        let request = match patch {
            PatchBody::Merge(b) => PatchRequest::Merge(Bytes::from(b)),
            PatchBody::JsonPatch(b) => PatchRequest::Json(Bytes::from(b)),
            PatchBody::Apply(a) => PatchRequest::Apply {
                body: Bytes::from(a.body),
                force: a.force,
                field_manager: format!("kubewasm-{}", self.plugin),
            },
        };
        let sub = if status {
            Subresource::Status
        } else {
            Subresource::Main
        };
        let out = backend
            .patch(&kind, namespace.as_deref(), &name, request, sub)
            .await;
        Ok(out.map(|b| b.to_vec()).map_err(Into::into))
    }

    async fn delete(&mut self, kind: Kind, namespace: Option<String>, name: String) -> Reply<()> {
        let (backend, kind) = match self.writable(&kind, namespace.as_deref(), Verb::Delete) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(backend
            .delete(&kind, namespace.as_deref(), &name)
            .await
            .map_err(Into::into))
    }
}
