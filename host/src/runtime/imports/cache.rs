//! `kubewasm:controller/cache`: reads from the backend's cache.

use super::super::api_error::ApiError;
use super::super::backend::{IndexQuery, ListQuery};
use super::super::bindings::v2::kubewasm::controller::cache::{Host, ListParams, ObjectKey};
use super::super::bindings::v2::kubewasm::controller::types::{Error, Kind};
use super::super::manifest::{self, Manifest, Verb};
use super::super::state::HostState;
use super::check_scope;
use crate::policy::object_namespace;
use kubewasm_controller::LabelSelector;
use kubewasm_core::{FieldSelector, Projection, ProjectionError};

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

/// A list read, checked and parsed: the kind as declared, and one query per namespace asked
/// (one, or one per namespace a policy allows when every namespace was asked).
struct Selection<'m> {
    kind: &'m manifest::Kind,
    queries: Vec<ListQuery>,
    /// The namespaces a policy allows, to filter an index lookup that spans namespaces.
    allowed: Option<&'m [String]>,
}

/// Checks `list` on the kind and the namespace, and parses the selectors and the index.
fn select<'m>(
    manifest: &'m Manifest,
    kind: &Kind,
    params: &ListParams,
) -> Result<Selection<'m>, ApiError> {
    let kind = manifest.check(&kind.group, &kind.kind, Verb::List)?;
    let namespace = params.namespace.as_deref();
    check_scope(kind, namespace)?;
    let labels = params
        .label_selector
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let fields = params
        .field_selector
        .as_deref()
        .map(FieldSelector::parse)
        .transpose()
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let index = match &params.index {
        Some(q) => Some(IndexQuery {
            index: manifest
                .index(kind, &q.name)
                .ok_or_else(|| {
                    ApiError::Invalid(format!(
                        "no index {:?} is declared on {kind} in the manifest",
                        q.name
                    ))
                })?
                .clone(),
            value: q.value.clone(),
        }),
        None => None,
    };
    let query = ListQuery {
        namespace: namespace.map(str::to_owned),
        labels,
        fields,
        index,
    };
    // A policy that narrows namespaces turns "every namespace" into each allowed one.
    if namespace.is_none()
        && let Some(allowed) = manifest.read_namespaces(kind)
    {
        // An index lookup is answered once and filtered (one index read, not one per
        // namespace).
        if query.index.is_some() {
            return Ok(Selection {
                kind,
                queries: vec![query],
                allowed: Some(allowed),
            });
        }
        let queries = allowed
            .iter()
            .map(|ns| ListQuery {
                namespace: Some(ns.clone()),
                ..query.clone()
            })
            .collect();
        return Ok(Selection {
            kind,
            queries,
            allowed: None,
        });
    }
    manifest.check_namespace(kind, namespace, Verb::List)?;
    Ok(Selection {
        kind,
        queries: vec![query],
        allowed: None,
    })
}

impl HostState {
    /// `cache.get`, projected to `fields` when given.
    pub(crate) fn cache_get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        fields: Option<&[String]>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let manifest = self.manifest()?;
        let kind = manifest.check(&kind.group, &kind.kind, Verb::Get)?;
        check_scope(kind, namespace)?;
        manifest.check_namespace(kind, namespace, Verb::Get)?;
        let found = self.backend.get(kind, namespace, name)?;
        match (found, fields) {
            (Some(b), Some(fields)) => self.project(fields, &[b], false).map(Some),
            (None, Some(fields)) => check_fields(fields).map(|()| None),
            (found, None) => Ok(found.map(|b| b.to_vec())),
        }
    }

    /// `cache.list`: one JSON array, each object projected to `fields` when given.
    pub(crate) fn cache_list(
        &self,
        kind: &Kind,
        params: &ListParams,
        fields: Option<&[String]>,
    ) -> Result<Vec<u8>, ApiError> {
        let items = self.cache_list_items(kind, params)?;
        match fields {
            Some(fields) => self.project(fields, &items, true),
            None => Ok(json_array(&items)),
        }
    }

    fn cache_list_items(
        &self,
        kind: &Kind,
        params: &ListParams,
    ) -> Result<Vec<bytes::Bytes>, ApiError> {
        let manifest = self.manifest()?;
        let s = select(manifest, kind, params)?;
        let mut items = Vec::new();
        for q in &s.queries {
            items.extend(self.backend.list(s.kind, q)?);
        }
        if let Some(allowed) = s.allowed {
            items.retain(|item| object_namespace(item).is_some_and(|ns| allowed.contains(&ns)));
        }
        Ok(items)
    }

    /// `cache.keys`: the keys of the selected objects, without their bodies.
    pub(crate) fn cache_keys(
        &self,
        kind: &Kind,
        params: &ListParams,
    ) -> Result<Vec<kubewasm_core::ObjectKey>, ApiError> {
        let manifest = self.manifest()?;
        let s = select(manifest, kind, params)?;
        let mut keys = Vec::new();
        for q in &s.queries {
            keys.extend(self.backend.keys(s.kind, q)?);
        }
        if let Some(allowed) = s.allowed {
            keys.retain(|k| k.namespace.as_ref().is_some_and(|ns| allowed.contains(ns)));
        }
        Ok(keys)
    }

    /// `cache.count`: how many objects are selected.
    pub(crate) fn cache_count(&self, kind: &Kind, params: &ListParams) -> Result<u64, ApiError> {
        let manifest = self.manifest()?;
        let s = select(manifest, kind, params)?;
        if s.allowed.is_some() {
            // Counting needs each object's namespace: count the keys.
            return self.cache_keys(kind, params).map(|k| k.len() as u64);
        }
        let mut n = 0;
        for q in &s.queries {
            n += self.backend.count(s.kind, q)?;
        }
        Ok(n)
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
        fields: Option<Vec<String>>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self
            .cache_get(&kind, namespace.as_deref(), &name, fields.as_deref())
            .map_err(Into::into))
    }

    fn list(
        &mut self,
        kind: Kind,
        params: ListParams,
        fields: Option<Vec<String>>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(self
            .cache_list(&kind, &params, fields.as_deref())
            .map_err(Into::into))
    }

    fn keys(
        &mut self,
        kind: Kind,
        params: ListParams,
    ) -> wasmtime::Result<Result<Vec<ObjectKey>, Error>> {
        Ok(self
            .cache_keys(&kind, &params)
            .map(|keys| {
                keys.into_iter()
                    .map(|k| ObjectKey {
                        namespace: k.namespace,
                        name: k.name,
                    })
                    .collect()
            })
            .map_err(Into::into))
    }

    fn count(&mut self, kind: Kind, params: ListParams) -> wasmtime::Result<Result<u64, Error>> {
        Ok(self.cache_count(&kind, &params).map_err(Into::into))
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
