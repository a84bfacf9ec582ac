//! `kubewasm:controller/cache`: reads from the backend's cache.

use super::super::api_error::ApiError;
use super::super::bindings::kubewasm::controller::cache::Host;
use super::super::bindings::kubewasm::controller::types::{Error, Kind};
use super::super::manifest::Verb;
use super::super::state::HostState;
use super::check_scope;
use crate::policy::object_namespace;
use kubewasm_controller::LabelSelector;
use kubewasm_core::{Projection, ProjectionError};

/// Joins objects into one JSON array: one copy, no re-serialization.
fn json_array(items: &[bytes::Bytes]) -> Vec<u8> {
    let len = items.iter().map(|b| b.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

impl HostState {
    fn cache_get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(self
            .cache_get_bytes(kind, namespace, name)?
            .map(|b| b.to_vec()))
    }

    fn cache_get_bytes(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<bytes::Bytes>, ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.check(&kind.group, &kind.kind, Verb::Get)?;
        check_scope(kind, namespace)?;
        manifest.check_namespace(kind, namespace, Verb::Get)?;
        self.backend.get(kind, namespace, name)
    }

    fn cache_list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(json_array(
            &self.cache_list_items(kind, namespace, selector)?,
        ))
    }

    fn cache_list_items(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<bytes::Bytes>, ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.check(&kind.group, &kind.kind, Verb::List)?;
        check_scope(kind, namespace)?;
        let selector = selector
            .map(LabelSelector::parse)
            .transpose()
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        // A policy that narrows namespaces turns "every namespace" into each allowed one.
        if namespace.is_none()
            && let Some(allowed) = manifest.read_namespaces(kind)
        {
            let mut items = Vec::new();
            for ns in allowed {
                items.extend(self.backend.list(kind, Some(ns), selector.as_ref())?);
            }
            return Ok(items);
        }
        manifest.check_namespace(kind, namespace, Verb::List)?;
        self.backend.list(kind, namespace, selector.as_ref())
    }

    fn cache_list_by_index(
        &self,
        kind: &Kind,
        index: &str,
        value: &str,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(json_array(
            &self.cache_list_by_index_items(kind, index, value)?,
        ))
    }

    fn cache_list_by_index_items(
        &self,
        kind: &Kind,
        index: &str,
        value: &str,
    ) -> Result<Vec<bytes::Bytes>, ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.check(&kind.group, &kind.kind, Verb::List)?;
        let index = manifest.index(kind, index).ok_or_else(|| {
            ApiError::Invalid(format!(
                "no index {index:?} is declared on {kind} in the manifest"
            ))
        })?;
        let mut items = self.backend.list_by_index(kind, index, value)?;
        if let Some(allowed) = manifest.read_namespaces(kind) {
            items.retain(|item| object_namespace(item).is_some_and(|ns| allowed.contains(&ns)));
        }
        Ok(items)
    }

    fn cache_get_fields(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        fields: &[String],
    ) -> Result<Option<Vec<u8>>, ApiError> {
        match self.cache_get_bytes(kind, namespace, name)? {
            Some(b) => self.project(fields, &[b], false).map(Some),
            None => check_fields(fields).map(|()| None),
        }
    }

    fn cache_list_fields(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: Option<&str>,
        fields: &[String],
    ) -> Result<Vec<u8>, ApiError> {
        let items = self.cache_list_items(kind, namespace, selector)?;
        self.project(fields, &items, true)
    }

    fn cache_list_by_index_fields(
        &self,
        kind: &Kind,
        index: &str,
        value: &str,
        fields: &[String],
    ) -> Result<Vec<u8>, ApiError> {
        let items = self.cache_list_by_index_items(kind, index, value)?;
        self.project(fields, &items, true)
    }

    /// Projects through the plugin's memo when it has one, else directly.
    fn project(
        &self,
        fields: &[String],
        items: &[bytes::Bytes],
        array: bool,
    ) -> Result<Vec<u8>, ApiError> {
        if items.is_empty() {
            check_fields(fields)?;
        }
        let out = match &self.projections {
            Some(memo) => memo.project(fields, items, array),
            None => Projection::new(fields).and_then(|p| match (array, items) {
                (false, [one]) => p.project(one),
                _ => p.project_array(items),
            }),
        };
        out.map_err(|e| match e {
            ProjectionError::Object(_) => ApiError::Internal(e.to_string()),
            _ => ApiError::Invalid(e.to_string()),
        })
    }
}

/// Validates field paths when there is nothing to project, so a bad path is `invalid`
/// whether or not objects were found.
fn check_fields(fields: &[String]) -> Result<(), ApiError> {
    Projection::new(fields)
        .map(drop)
        .map_err(|e| ApiError::Invalid(e.to_string()))
}

impl Host for HostState {
    fn get(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self
            .cache_get(&kind, namespace.as_deref(), &name)
            .map_err(Into::into))
    }

    fn list(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(self
            .cache_list(&kind, namespace.as_deref(), label_selector.as_deref())
            .map_err(Into::into))
    }

    fn list_by_index(
        &mut self,
        kind: Kind,
        index: String,
        value: String,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(self
            .cache_list_by_index(&kind, &index, &value)
            .map_err(Into::into))
    }

    fn get_fields(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        name: String,
        fields: Vec<String>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self
            .cache_get_fields(&kind, namespace.as_deref(), &name, &fields)
            .map_err(Into::into))
    }

    fn list_fields(
        &mut self,
        kind: Kind,
        namespace: Option<String>,
        label_selector: Option<String>,
        fields: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(self
            .cache_list_fields(
                &kind,
                namespace.as_deref(),
                label_selector.as_deref(),
                &fields,
            )
            .map_err(Into::into))
    }

    fn list_by_index_fields(
        &mut self,
        kind: Kind,
        index: String,
        value: String,
        fields: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(self
            .cache_list_by_index_fields(&kind, &index, &value, &fields)
            .map_err(Into::into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_cross_as_one_json_array() {
        let items = [
            bytes::Bytes::from_static(b"{\"a\":1}"),
            bytes::Bytes::from_static(b"{}"),
        ];
        assert_eq!(json_array(&items), b"[{\"a\":1},{}]");
        assert_eq!(json_array(&[]), b"[]");
    }
}
