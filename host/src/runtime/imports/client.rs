//! `kubewasm:controller/client`: writes through the backend's API client.

use std::sync::Arc;

use bytes::Bytes;

use super::super::api_error::ApiError;
use super::super::backend::{Backend, DeleteOptions, PatchRequest, Propagation, Subresource};
use super::super::bindings::v2::kubewasm::controller::client::{
    DeleteOptions as WitDeleteOptions, Host, PatchBody, Propagation as WitPropagation,
};
use super::super::bindings::v2::kubewasm::controller::types::{
    Error, Kind, Subresource as WitSubresource,
};
use super::super::manifest::{self, Verb};
use super::super::state::HostState;
use super::check_scope;

type Reply<T> = wasmtime::Result<Result<T, Error>>;

/// Largest write body the host sends: the Kubernetes API server's own request limit (3 MiB).
/// A bigger body fails at once as `invalid`, naming its size, without a round trip.
pub(crate) const MAX_WRITE_BODY: usize = 3 << 20;

/// `invalid` when `body` is over [`MAX_WRITE_BODY`].
fn check_body(body: &[u8]) -> Result<(), ApiError> {
    if body.len() > MAX_WRITE_BODY {
        return Err(ApiError::Invalid(format!(
            "the request body is {} bytes, over the API server's limit of {MAX_WRITE_BODY} bytes; \
             nothing was sent",
            body.len()
        )));
    }
    Ok(())
}

impl HostState {
    /// The permission check, done before any await so that the write future owns everything
    /// it uses (the store's data is not `Sync` and must not be borrowed across an await).
    fn writable(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        verb: Verb,
    ) -> Result<(Arc<dyn Backend>, manifest::Kind), ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.check(&kind.group, &kind.kind, verb)?;
        check_scope(kind, namespace)?;
        manifest.check_namespace(kind, namespace, verb)?;
        Ok((self.backend.clone(), kind.clone()))
    }
}

/// A write's answer for the plugin, unless the backend aborts the reconcile after it
/// ([`Backend::abort_reason`]): then the plugin traps.
fn answer<T>(backend: &dyn Backend, out: Result<T, ApiError>) -> Reply<T> {
    match backend.abort_reason() {
        Some(why) => Err(wasmtime::Error::msg(format!(
            "reconcile aborted by the host after a write: {why}"
        ))),
        None => Ok(out.map_err(Into::into)),
    }
}

/// The host's subresource for the WIT one.
fn subresource(s: Option<WitSubresource>) -> Subresource {
    match s {
        None => Subresource::Main,
        Some(WitSubresource::Status) => Subresource::Status,
        Some(WitSubresource::Scale) => Subresource::Scale,
    }
}

impl Host for HostState {
    async fn create(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        body: Vec<u8>,
    ) -> Reply<Vec<u8>> {
        let target = self
            .writable(&kind, namespace.as_deref(), Verb::Create)
            .and_then(|t| check_body(&body).map(|()| t));
        let (backend, kind) = match target {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        let out = backend
            .create(&kind, namespace.as_deref(), Bytes::from(body))
            .await;
        answer(&*backend, out.map(|b| b.to_vec()))
    }

    async fn replace(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        body: Vec<u8>,
        sub: Option<WitSubresource>,
    ) -> Reply<Vec<u8>> {
        let target = self
            .writable(&kind, namespace.as_deref(), Verb::Update)
            .and_then(|t| check_body(&body).map(|()| t));
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
                subresource(sub),
            )
            .await;
        answer(&*backend, out.map(|b| b.to_vec()))
    }

    async fn patch(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        patch: PatchBody,
        sub: Option<WitSubresource>,
    ) -> Reply<Vec<u8>> {
        let (backend, kind) = match self.writable(&kind, namespace.as_deref(), Verb::Patch) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        let request = match patch {
            PatchBody::Merge(b) => PatchRequest::Merge(Bytes::from(b)),
            PatchBody::JsonPatch(b) => PatchRequest::Json(Bytes::from(b)),
            PatchBody::StrategicMerge(b) => PatchRequest::StrategicMerge(Bytes::from(b)),
            PatchBody::Apply(a) => PatchRequest::Apply {
                body: Bytes::from(a.body),
                force: a.force,
                field_manager: format!("kubewasm-{}", self.plugin),
            },
        };
        if let Err(e) = check_body(request.body()) {
            return Ok(Err(e.into()));
        }
        let out = backend
            .patch(
                &kind,
                namespace.as_deref(),
                &name,
                request,
                subresource(sub),
            )
            .await;
        answer(&*backend, out.map(|b| b.to_vec()))
    }

    async fn delete(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        options: WitDeleteOptions,
    ) -> Reply<()> {
        let (backend, kind) = match self.writable(&kind, namespace.as_deref(), Verb::Delete) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.into())),
        };
        let options = DeleteOptions {
            propagation: options.propagation.map(|p| match p {
                WitPropagation::Background => Propagation::Background,
                WitPropagation::Foreground => Propagation::Foreground,
                WitPropagation::Orphan => Propagation::Orphan,
            }),
            uid: options.uid,
            resource_version: options.resource_version,
        };
        let out = backend
            .delete(&kind, namespace.as_deref(), &name, options)
            .await;
        answer(&*backend, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_over_the_api_server_limit_is_invalid_and_names_its_size() {
        assert_eq!(check_body(&vec![b' '; MAX_WRITE_BODY]), Ok(()));
        let err = check_body(&vec![b' '; MAX_WRITE_BODY + 1]).unwrap_err();
        assert!(matches!(err, ApiError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("3145729 bytes"), "{err}");
    }
}
