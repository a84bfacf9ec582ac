//! The fake host's patch semantics: merge (RFC 7386), JSON patch (RFC 6902), a simple
//! strategic merge, server-side apply as a merge, and the `scale` subresource's view of an
//! object.

use serde_json::{Map, Value};

use crate::data::PatchBody;
use crate::error::{Error, Result};
use crate::object::Kind;

/// Applies `sent` (the parsed body of `patch`) to `target`.
pub(super) fn apply_patch(target: &mut Value, patch: &PatchBody, sent: &Value) -> Result<()> {
    match patch {
        PatchBody::Merge(_) | PatchBody::Apply { .. } => {
            if !sent.is_object() {
                return Err(Error::Invalid(
                    "a merge patch must be a JSON object".to_owned(),
                ));
            }
            json_patch::merge(target, sent);
        }
        PatchBody::Json(_) => {
            let ops: json_patch::Patch = serde_json::from_value(sent.clone())
                .map_err(|e| Error::Invalid(format!("not a JSON patch: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        PatchBody::Strategic(_) => {
            if !sent.is_object() {
                return Err(Error::Invalid(
                    "a strategic merge patch must be a JSON object".to_owned(),
                ));
            }
            strategic_merge(target, sent, "")?;
        }
    }
    Ok(())
}

/// A strategic merge as the fake host models it: objects merge as in a merge patch; a list
/// whose patch elements are all objects with a `name` merges element by element by `name`
/// (containers, env, ports, volumes...); any other list is replaced. Patch directives
/// (`$patch`, `$retainKeys`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`) are
/// refused with [`Error::Invalid`]: the fake host does not model them.
fn strategic_merge(target: &mut Value, patch: &Value, at: &str) -> Result<()> {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return Ok(());
    };
    for (key, value) in patch {
        if key.starts_with('$') {
            return Err(Error::Invalid(format!(
                "the fake host does not support the strategic merge directive {key:?} (at \
                 {at:?}); test it against the real host"
            )));
        }
        let path = format!("{at}/{key}");
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(map.entry(key.clone()).or_insert(Value::Null), value, &path)?
            }
            Value::Array(items) if merges_by_name(items) => {
                let list = map
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !list.is_array() {
                    *list = Value::Array(Vec::new());
                }
                let Value::Array(list) = list else {
                    continue;
                };
                for item in items {
                    let name = item.get("name");
                    match list.iter_mut().find(|x| x.get("name") == name) {
                        Some(existing) => strategic_merge(existing, item, &path)?,
                        None => {
                            let mut fresh = Value::Object(Map::new());
                            strategic_merge(&mut fresh, item, &path)?;
                            list.push(fresh);
                        }
                    }
                }
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(())
}

fn merges_by_name(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").and_then(Value::as_str).is_some())
}

/// The `autoscaling/v1` `Scale` of `obj`: `spec.replicas` and `status.replicas`. A kind
/// without `spec` has no scale subresource ([`Error::NotFound`], as the API server answers).
pub(super) fn scale_of(kind: &Kind, obj: &Value) -> Result<Value> {
    let Some(spec) = obj.get("spec").and_then(Value::as_object) else {
        return Err(Error::NotFound(format!(
            "{} has no scale subresource (no spec)",
            kind.kind
        )));
    };
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let keep = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let mut scale_meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if !keep(k).is_null() {
            scale_meta.insert(k.into(), keep(k));
        }
    }
    Ok(serde_json::json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": scale_meta,
        "spec": {"replicas": spec.get("replicas").cloned().unwrap_or(Value::from(0))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(Value::from(0))},
    }))
}
