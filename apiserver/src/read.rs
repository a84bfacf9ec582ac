//! GET and LIST: single objects, lists with selectors and consistent pagination, and Table output.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::events;
use crate::printers::{self, IncludeObject, TableOptions};
use crate::registry::{ResourceType, View};
use crate::request::Req;
use crate::response::{bytes_response, json_response};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::AppState;
use crate::store::{Snapshot, Stored};

/// The object's JSON as served at `ty`'s version (objects of multi-version CRDs are stored once and
/// served at every version with the apiVersion rewritten, like a CRD with conversion strategy None).
pub fn output(ty: &ResourceType, stored: &Stored) -> ApiResult<Bytes> {
    output_with(&OutputVersion::new(ty), stored)
}

/// The apiVersion objects are served at, with the JSON prefix that shows a stored object already has it.
pub struct OutputVersion {
    api_version: String,
    prefix: String,
    ty: Option<ResourceType>,
}

impl OutputVersion {
    /// For objects served at `ty`'s version.
    pub fn new(ty: &ResourceType) -> OutputVersion {
        let api_version = ty.api_version();
        // Stored objects are serialized with apiVersion first (see `Stored::from_value`).
        let prefix = format!("{{\"apiVersion\":\"{api_version}\"");
        OutputVersion {
            api_version,
            prefix,
            // Only converted views need the type at output time.
            ty: (ty.view != View::Native).then(|| ty.clone()),
        }
    }
}

impl OutputVersion {
    /// True when `stored` is served as it is stored (no conversion, the same apiVersion).
    fn is_native(&self, stored: &Stored) -> bool {
        self.ty.is_none() && stored.json.starts_with(self.prefix.as_bytes())
    }
}

/// `json` (an object) without its `apiVersion` and `kind`.
fn without_type(json: &[u8]) -> ApiResult<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(json)
        .map_err(|e| ApiError::internal(format!("failed to decode object: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    serde_json::to_vec(&v)
        .map_err(|e| ApiError::internal(format!("failed to serialize object: {e}")))
}

/// [`output`] with the version computed once (lists and watches).
pub fn output_with(version: &OutputVersion, stored: &Stored) -> ApiResult<Bytes> {
    if let Some(ty) = &version.ty {
        let v = events::into_view(ty, stored.value()?);
        return serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(format!("failed to serialize object: {e}")));
    }
    if stored.json.starts_with(version.prefix.as_bytes()) {
        return Ok(stored.json.clone());
    }
    let mut v = stored.value()?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "apiVersion".into(),
            Value::String(version.api_version.clone()),
        );
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("failed to serialize object: {e}")))
}

/// Parsed label and field selectors of a request.
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// From `labelSelector` / `fieldSelector`.
    ///
    /// # Errors
    /// 400 for invalid selectors.
    pub fn from_request(r: &Req) -> ApiResult<Selectors> {
        Ok(Selectors {
            labels: LabelSelector::parse(r.query.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(
                r.query.get("fieldSelector").unwrap_or(""),
                &r.ty.storage_key(),
            )?,
        })
    }

    /// Whether every object matches.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether the stored object matches.
    pub fn matches(&self, namespace: &str, name: &str, obj: &Stored) -> bool {
        if !self.labels.matches(obj.labels.as_deref()) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        if self.fields.only_metadata() {
            return self.fields.matches(name, namespace, None);
        }
        let v = obj.value().ok();
        self.fields.matches(name, namespace, v.as_ref())
    }
}

/// GET of one object.
///
/// # Errors
/// 404 if it does not exist.
pub fn get(state: &AppState, r: &Req) -> ApiResult<Response> {
    let name = r.path.name.as_deref().unwrap_or_default();
    let ns = r.path.namespace.as_deref().unwrap_or("");
    let stored = state
        .store
        .get(&r.ty.storage_key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&r.ty.group, &r.ty.resource, name))?;
    if r.wants_metadata() {
        return Ok(json_response(
            StatusCode::OK,
            &partial_metadata(&stored.value()?),
        ));
    }
    if r.wants_table() {
        let opts = table_options(r)?;
        let rv = stored.rv.to_string();
        return Ok(json_response(
            StatusCode::OK,
            &printers::table(&r.ty, &rv, &[stored.value()?], opts),
        ));
    }
    Ok(bytes_response(StatusCode::OK, output(&r.ty, &stored)?))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    /// Snapshot id.
    s: u64,
    /// Offset of the next item.
    o: usize,
    /// The list's resourceVersion.
    rv: u64,
}

fn parse_limit(r: &Req) -> ApiResult<Option<usize>> {
    match r.query.get("limit") {
        None | Some("") => Ok(None),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n <= 0 => Ok(None),
            Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid limit {l:?}: must be a non-negative integer"
            ))),
        },
    }
}

/// Checks `resourceVersion`/`resourceVersionMatch` of a list against what the store can serve.
fn check_list_rv(r: &Req, current: u64) -> ApiResult<()> {
    let rv = r.query.get("resourceVersion").unwrap_or("");
    let rv_match = r.query.get("resourceVersionMatch").unwrap_or("");
    if rv.is_empty() && !rv_match.is_empty() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            vec![Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
                field: "resourceVersionMatch".into(),
            }],
        ));
    }
    if rv.is_empty() || rv == "0" {
        if !rv_match.is_empty() && rv_match != "NotOlderThan" {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"{rv_match}\" is forbidden for resourceVersion \"{rv}\""
            )));
        }
        return Ok(());
    }
    let n: u64 = rv.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid resourceVersion {rv:?}: must be an integer"
        ))
    })?;
    match rv_match {
        "" | "NotOlderThan" => {
            if n > current {
                return Err(ApiError::new(
                    504,
                    "Timeout",
                    format!("Too large resource version: {n}, current: {current}"),
                ));
            }
            Ok(())
        }
        "Exact" if n == current => Ok(()),
        "Exact" => Err(ApiError::expired(format!(
            "too old resource version: {n} ({current}); this server keeps no list history, use resourceVersionMatch=NotOlderThan"
        ))),
        other => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

/// LIST with selectors, `limit`/`continue` paging from one snapshot, and Table output.
///
/// # Errors
/// 400 for bad selectors, limits or tokens; 410 for expired continue tokens.
pub fn list(state: &AppState, r: &Req) -> ApiResult<Response> {
    let selectors = Selectors::from_request(r)?;
    if r.wants_table() {
        table_options(r)?;
    }
    let limit = parse_limit(r)?;
    // resourceVersion=0 is served from kube-apiserver's watch cache, which ignores the limit.
    let limit = limit.filter(|_| r.query.get("resourceVersion") != Some("0"));
    let key = r.ty.storage_key();
    let (snapshot_id, offset, snapshot) = match r.query.get("continue").filter(|c| !c.is_empty()) {
        Some(_)
            if r.query
                .get("resourceVersion")
                .is_some_and(|rv| !rv.is_empty() && rv != "0") =>
        {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        Some(token) => {
            let t: ContinueToken = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: malformed token")
                })?;
            let snap = state.store.snapshot(t.s).filter(|s| s.rv == t.rv).ok_or_else(|| {
                ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                )
            })?;
            (Some(t.s), t.o, snap)
        }
        None => {
            let (rv, items) = state.store.list(&key, r.path.namespace.as_deref());
            check_list_rv(r, rv)?;
            let items: Vec<Arc<Stored>> = if selectors.is_empty() {
                items.into_iter().map(|(_, _, o)| o).collect()
            } else {
                items
                    .into_iter()
                    .filter(|(ns, name, o)| selectors.matches(ns, name, o))
                    .map(|(_, _, o)| o)
                    .collect()
            };
            let snap = Arc::new(Snapshot {
                rv,
                items: Arc::new(items),
            });
            (None, 0, snap)
        }
    };
    let total = snapshot.items.len();
    let start = offset.min(total);
    let end = match limit {
        Some(l) => start.saturating_add(l).min(total),
        None => total,
    };
    let page = &snapshot.items[start..end];
    let mut continue_token = None;
    if end < total {
        let id = match snapshot_id {
            Some(id) => id,
            None => state.store.save_snapshot(Snapshot {
                rv: snapshot.rv,
                items: snapshot.items.clone(),
            }),
        };
        let t = ContinueToken {
            s: id,
            o: end,
            rv: snapshot.rv,
        };
        let raw = serde_json::to_vec(&t).unwrap_or_default();
        continue_token = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
    } else if let Some(id) = snapshot_id {
        state.store.drop_snapshot(id);
    }
    let rv = snapshot.rv.to_string();
    if r.wants_table() {
        let opts = table_options(r)?;
        let values: Vec<Value> = page.iter().filter_map(|o| o.value().ok()).collect();
        let mut t = printers::table(&r.ty, &rv, &values, opts);
        if let Some(c) = &continue_token {
            t["metadata"]["continue"] = json!(c);
            t["metadata"]["remainingItemCount"] = json!(total - end);
        }
        return Ok(json_response(StatusCode::OK, &t));
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = &continue_token {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(total - end);
    }
    if r.wants_metadata() {
        let items: Vec<Value> = page
            .iter()
            .filter_map(|o| o.value().ok())
            .map(|v| partial_metadata(&v))
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items,
            }),
        ));
    }
    let head = format!(
        "{{\"apiVersion\":\"{}\",\"kind\":\"{}List\",\"metadata\":{},\"items\":[",
        r.ty.api_version(),
        r.ty.kind,
        meta
    );
    let size: usize = page.iter().map(|o| o.json.len() + 1).sum::<usize>() + head.len() + 2;
    let mut buf = BytesMut::with_capacity(size);
    buf.put_slice(head.as_bytes());
    let version = OutputVersion::new(&r.ty);
    for (i, o) in page.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        // kube-apiserver sends the items of a built-in kind's list without apiVersion and
        // kind (a custom resource's items keep them).
        match o
            .list_item()
            .filter(|_| r.ty.builtin && version.is_native(o))
        {
            Some((open, rest)) => {
                buf.put_slice(open);
                buf.put_slice(rest);
            }
            None if r.ty.builtin => buf.put_slice(&without_type(&output_with(&version, o)?)?),
            None => buf.put_slice(&output_with(&version, o)?),
        }
    }
    buf.put_slice(b"]}");
    Ok(bytes_response(StatusCode::OK, buf.freeze()))
}

/// An object reduced to its metadata, as a meta.k8s.io/v1 PartialObjectMetadata.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The Table options of a request (`includeObject`; every table of a get or list has headers).
///
/// # Errors
/// 400 for an unknown `includeObject`.
pub fn table_options(r: &Req) -> ApiResult<TableOptions> {
    Ok(TableOptions {
        include: IncludeObject::parse(r.query.get("includeObject"))?,
        headers: true,
    })
}
