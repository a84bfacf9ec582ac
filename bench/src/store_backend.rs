//! [`StoreBackend`]: a plugin backend answering reads from real informer stores, as the host's
//! own backend does, so a plugin's cache reads can be called in a loop.
//!
//! The host's `ClusterBackend` is built by the manager for each plugin and is not public; its
//! reads are `store.get/list/list_by_index` returning each entry's JSON bytes (a reference-count
//! bump). This backend does exactly that over informers acquired from the same
//! [`InformerFactory`](kubewasm_controller::InformerFactory) type against the embedded API
//! server. Writes are refused: the cache scenarios only read.

use std::collections::HashMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use kubewasm::runtime::{
    ApiError, Backend, EventRecord, Index, Kind, LabelSelector, PatchRequest, Subresource,
};
use kubewasm_controller::InformerHandle;

/// Reads from informer stores keyed by `(group, kind)`.
#[derive(Debug, Default)]
pub struct StoreBackend {
    informers: HashMap<(String, String), InformerHandle>,
}

impl StoreBackend {
    /// Serves reads of `kind` from `informer`'s store.
    #[must_use]
    pub fn with(mut self, kind: &Kind, informer: InformerHandle) -> Self {
        self.informers
            .insert((kind.group.clone(), kind.kind.clone()), informer);
        self
    }

    fn store(&self, kind: &Kind) -> Result<&kubewasm_controller::Store, ApiError> {
        let informer = self
            .informers
            .get(&(kind.group.clone(), kind.kind.clone()))
            .ok_or_else(|| ApiError::Internal(format!("the bench keeps no cache of {kind}")))?;
        if !informer.has_synced() {
            return Err(ApiError::NotSynced(format!(
                "the cache of {kind} has not finished its initial list"
            )));
        }
        Ok(informer.store())
    }
}

fn refused<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, ApiError>> {
    Box::pin(async {
        Err(ApiError::Forbidden(
            "the benchmark's cache backend only reads".into(),
        ))
    })
}

impl Backend for StoreBackend {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        Ok(self
            .store(kind)?
            .get(namespace.filter(|_| kind.namespaced), name)
            .map(|e| e.json().clone()))
    }

    fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Bytes>, ApiError> {
        Ok(self
            .store(kind)?
            .list(namespace.filter(|_| kind.namespaced), selector)
            .into_iter()
            .map(|e| e.json().clone())
            .collect())
    }

    fn list_by_index(
        &self,
        kind: &Kind,
        index: &Index,
        value: &str,
    ) -> Result<Vec<Bytes>, ApiError> {
        // The host names a store index after its field path, as here.
        self.store(kind)?
            .list_by_index(&index.field.canonical(), value)
            .map(|entries| entries.into_iter().map(|e| e.json().clone()).collect())
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    fn create<'a>(
        &'a self,
        _: &'a Kind,
        _: Option<&'a str>,
        _: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        refused()
    }

    fn replace<'a>(
        &'a self,
        _: &'a Kind,
        _: Option<&'a str>,
        _: &'a str,
        _: Bytes,
        _: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        refused()
    }

    fn patch<'a>(
        &'a self,
        _: &'a Kind,
        _: Option<&'a str>,
        _: &'a str,
        _: PatchRequest,
        _: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        refused()
    }

    fn delete<'a>(
        &'a self,
        _: &'a Kind,
        _: Option<&'a str>,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        refused()
    }

    fn record_event(&self, _: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        refused()
    }
}
