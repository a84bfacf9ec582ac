//! [`MemoryBackend`]: a [`Backend`] on an in-memory map, for tests and benchmarks.
//!
//! It behaves like a small API server: resourceVersions, `already-exists`, `not-found`,
//! optimistic-concurrency `conflict`, merge and JSON patches, status and scale subresources,
//! delete preconditions, and it keeps the Events recorded. Server-side apply is approximated
//! as create-or-merge, a strategic merge patch as a merge patch whose lists of objects merge
//! by `name`; deletes have no garbage collector (propagation is ignored).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::api_error::ApiError;
use super::backend::{Backend, DeleteOptions, EventRecord, ListQuery, PatchRequest, Subresource};
use super::manifest::Kind;

type Objects = BTreeMap<(String, String), Stored>;

/// One object: the bytes reads hand out, and the parsed form selectors and indexes look at
/// (so a filtered list never re-parses every object).
#[derive(Debug)]
struct Stored {
    bytes: Bytes,
    value: Value,
}

impl Stored {
    fn new(bytes: Bytes, value: Value) -> Self {
        Self { bytes, value }
    }

    fn parse(bytes: Bytes) -> Self {
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self { bytes, value }
    }
}

/// An in-memory cluster: objects by kind, namespace and name, kept as JSON bytes.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    kinds: RwLock<HashMap<(String, String), Objects>>,
    revision: AtomicU64,
    events: Mutex<Vec<EventRecord>>,
}

fn kind_key(kind: &Kind) -> (String, String) {
    (kind.group.clone(), kind.kind.clone())
}

fn obj_key(namespace: Option<&str>, name: &str) -> (String, String) {
    (namespace.unwrap_or_default().to_owned(), name.to_owned())
}

/// An object's labels, for selector matching.
fn labels(object: &Value) -> std::collections::BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::Invalid("the body is not a JSON object".into())),
        Err(e) => Err(ApiError::Invalid(format!("the body is not JSON: {e}"))),
    }
}

fn encode(v: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("failed to encode an object: {e}")))
}

fn meta(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    let obj = v.as_object_mut().expect("callers pass JSON objects");
    let m = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !m.is_object() {
        *m = Value::Object(Default::default());
    }
    m.as_object_mut().expect("just made an object")
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

impl MemoryBackend {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_revision(&self) -> String {
        (self.revision.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }

    /// Stores `object` (a JSON object with `metadata.name`, and `metadata.namespace` for a
    /// namespaced kind), replacing any previous one, with a fresh resourceVersion and a uid.
    /// Returns the stored bytes.
    ///
    /// # Errors
    /// [`ApiError::Invalid`] when `object` has no name.
    pub fn insert(&self, kind: &Kind, mut object: Value) -> Result<Bytes, ApiError> {
        if !object.is_object() {
            return Err(ApiError::Invalid("the object is not a JSON object".into()));
        }
        let name = str_at(&object, "/metadata/name")
            .ok_or_else(|| ApiError::Invalid("the object has no metadata.name".into()))?
            .to_owned();
        let namespace = str_at(&object, "/metadata/namespace").map(str::to_owned);
        let rv = self.next_revision();
        let m = meta(&mut object);
        m.insert("resourceVersion".into(), Value::String(rv.clone()));
        m.entry("uid")
            .or_insert_with(|| Value::String(format!("uid-{rv}")));
        let bytes = encode(&object)?;
        self.kinds
            .write()
            .entry(kind_key(kind))
            .or_default()
            .insert(
                obj_key(namespace.as_deref(), &name),
                Stored::new(bytes.clone(), object),
            );
        Ok(bytes)
    }

    /// Stores ready-made JSON bytes as they are (no resourceVersion bump): fast seeding for
    /// benchmarks.
    pub fn insert_raw(&self, kind: &Kind, namespace: Option<&str>, name: &str, bytes: Bytes) {
        self.kinds
            .write()
            .entry(kind_key(kind))
            .or_default()
            .insert(obj_key(namespace, name), Stored::parse(bytes));
    }

    /// The stored object, decoded.
    pub fn object(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        let bytes = self
            .kinds
            .read()
            .get(&kind_key(kind))?
            .get(&obj_key(namespace, name))?
            .bytes
            .clone();
        serde_json::from_slice(&bytes).ok()
    }

    /// Every Event recorded so far, oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        self.events.lock().clone()
    }

    fn current(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let kinds = self.kinds.read();
        let stored = kinds
            .get(&kind_key(kind))
            .and_then(|objs| objs.get(&obj_key(namespace, name)))
            .ok_or_else(|| {
                ApiError::NotFound(format!("{kind} {} not found", display(namespace, name)))
            })?;
        parse(&stored.bytes)
    }

    /// Writes `new` over the current object if its resourceVersion is still `expected_rv`.
    fn commit(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        expected_rv: Option<&str>,
        mut new: Value,
    ) -> Result<Bytes, ApiError> {
        let mut kinds = self.kinds.write();
        let objs = kinds.entry(kind_key(kind)).or_default();
        let key = obj_key(namespace, name);
        let Some(old) = objs.get(&key) else {
            return Err(ApiError::NotFound(format!(
                "{kind} {} not found",
                display(namespace, name)
            )));
        };
        let old = parse(&old.bytes)?;
        let current_rv = str_at(&old, "/metadata/resourceVersion").unwrap_or_default();
        if let Some(expected) = expected_rv
            && expected != current_rv
        {
            return Err(ApiError::Conflict(format!(
                "{kind} {}: resourceVersion {expected} is stale (current {current_rv})",
                display(namespace, name)
            )));
        }
        if !new.is_object() {
            return Err(ApiError::Invalid(format!(
                "{kind} {}: the result is not a JSON object",
                display(namespace, name)
            )));
        }
        let rv = self.next_revision();
        let uid = old.pointer("/metadata/uid").cloned();
        let m = meta(&mut new);
        m.insert("resourceVersion".into(), Value::String(rv));
        m.insert("name".into(), Value::String(name.to_owned()));
        if let Some(ns) = namespace {
            m.insert("namespace".into(), Value::String(ns.to_owned()));
        }
        if let Some(uid) = uid {
            m.insert("uid".into(), uid);
        }
        let bytes = encode(&new)?;
        objs.insert(key, Stored::new(bytes.clone(), new));
        Ok(bytes)
    }
}

fn display(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// Main-resource writes keep the stored status; status writes change only the status; scale
/// writes (of a `Scale` body) change only `spec.replicas`.
fn merge_subresource(old: &Value, mut new: Value, subresource: Subresource) -> Value {
    match subresource {
        Subresource::Main => {
            if let Some(obj) = new.as_object_mut() {
                match old.get("status") {
                    Some(s) => obj.insert("status".into(), s.clone()),
                    None => obj.remove("status"),
                };
            }
            new
        }
        Subresource::Status => {
            let mut out = old.clone();
            if let (Some(obj), Some(s)) = (out.as_object_mut(), new.get_mut("status")) {
                obj.insert("status".into(), s.take());
            }
            out
        }
        Subresource::Scale => {
            let mut out = old.clone();
            if let Some(replicas) = new.pointer("/spec/replicas")
                && let Some(obj) = out.as_object_mut()
            {
                let spec = obj
                    .entry("spec")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(spec) = spec.as_object_mut() {
                    spec.insert("replicas".into(), replicas.clone());
                }
            }
            out
        }
    }
}

/// The `autoscaling/v1` `Scale` of an object: its `spec.replicas` and `status.replicas`.
fn scale_of(object: &Value) -> Value {
    let meta = |k: &str| object.pointer(&format!("/metadata/{k}")).cloned();
    serde_json::json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "resourceVersion": meta("resourceVersion"),
            "uid": meta("uid"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(Value::from(0))},
        "status": {"replicas": object.pointer("/status/replicas").cloned().unwrap_or(Value::from(0))},
    })
}

/// What a write hands back: the object, or its `Scale` for a scale write.
fn reply(stored: Bytes, subresource: Subresource) -> Result<Bytes, ApiError> {
    if subresource != Subresource::Scale {
        return Ok(stored);
    }
    encode(&scale_of(&parse(&stored)?))
}

/// A strategic merge patch, approximated: a merge patch (RFC 7386) in which a list of objects
/// that all have a `name` merges element by element by that name (how the API server merges
/// `containers`, `env`, `ports`...), and `$`-directives are skipped.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    for (k, pv) in p {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        match t.get_mut(k) {
            Some(tv) if tv.is_object() && pv.is_object() => strategic_merge(tv, pv),
            Some(Value::Array(tl)) if named(tl) && pv.as_array().is_some_and(|pl| named(pl)) => {
                for pe in pv.as_array().into_iter().flatten() {
                    match tl.iter_mut().find(|te| te.get("name") == pe.get("name")) {
                        Some(te) => strategic_merge(te, pe),
                        None => tl.push(pe.clone()),
                    }
                }
            }
            _ => {
                t.insert(k.clone(), pv.clone());
            }
        }
    }
}

/// A list whose elements are all objects with a `name`.
fn named(list: &[Value]) -> bool {
    list.iter().all(|e| e.get("name").is_some())
}

impl Backend for MemoryBackend {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        Ok(self
            .kinds
            .read()
            .get(&kind_key(kind))
            .and_then(|o| o.get(&obj_key(namespace, name)))
            .map(|s| s.bytes.clone()))
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        let kinds = self.kinds.read();
        let Some(objs) = kinds.get(&kind_key(kind)) else {
            return Ok(Vec::new());
        };
        let namespace = query.namespace.as_deref();
        let in_scope: Box<dyn Iterator<Item = (&(String, String), &Stored)>> = match namespace {
            Some(ns) => Box::new(
                objs.range((ns.to_owned(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
            None => Box::new(objs.iter()),
        };
        let mut out = Vec::new();
        for ((ns, _), stored) in in_scope {
            if let Some(q) = &query.index
                && !q
                    .index
                    .field
                    .values_in_json(&stored.value)
                    .contains(&q.value)
            {
                continue;
            }
            let ns = Some(ns.as_str()).filter(|n| !n.is_empty());
            if query.matches(ns, &labels(&stored.value), &stored.bytes) {
                out.push(stored.bytes.clone());
            }
        }
        Ok(out)
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let mut obj = parse(&body)?;
            if kind.namespaced != namespace.is_some() {
                return Err(ApiError::Invalid(format!(
                    "{kind} is {} but the namespace is {}",
                    if kind.namespaced {
                        "namespaced"
                    } else {
                        "cluster-scoped"
                    },
                    if namespace.is_some() {
                        "set"
                    } else {
                        "missing"
                    }
                )));
            }
            if let (Some(ns), Some(body_ns)) = (namespace, str_at(&obj, "/metadata/namespace"))
                && ns != body_ns
            {
                return Err(ApiError::Invalid(format!(
                    "the body's namespace {body_ns} does not match {ns}"
                )));
            }
            let name = match (
                str_at(&obj, "/metadata/name"),
                str_at(&obj, "/metadata/generateName"),
            ) {
                (Some(n), _) if !n.is_empty() => n.to_owned(),
                (_, Some(prefix)) => {
                    format!("{prefix}{}", self.revision.load(Ordering::Relaxed) + 1)
                }
                _ => {
                    return Err(ApiError::Invalid(format!(
                        "{kind}: metadata.name is required"
                    )));
                }
            };
            let rv = self.next_revision();
            let m = meta(&mut obj);
            m.insert("name".into(), Value::String(name.clone()));
            if let Some(ns) = namespace {
                m.insert("namespace".into(), Value::String(ns.to_owned()));
            }
            m.insert("resourceVersion".into(), Value::String(rv.clone()));
            m.insert("uid".into(), Value::String(format!("uid-{rv}")));
            let bytes = encode(&obj)?;
            let mut kinds = self.kinds.write();
            let objs = kinds.entry(kind_key(kind)).or_default();
            let key = obj_key(namespace, &name);
            if objs.contains_key(&key) {
                return Err(ApiError::AlreadyExists(format!(
                    "{kind} {} already exists",
                    display(namespace, &name)
                )));
            }
            objs.insert(key, Stored::new(bytes.clone(), obj));
            Ok(bytes)
        })
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let new = parse(&body)?;
            if let Some(body_name) = str_at(&new, "/metadata/name")
                && body_name != name
            {
                return Err(ApiError::Invalid(format!(
                    "the body's name {body_name} does not match {name}"
                )));
            }
            let expected = str_at(&new, "/metadata/resourceVersion").map(str::to_owned);
            let old = self.current(kind, namespace, name)?;
            let new = merge_subresource(&old, new, subresource);
            let stored = self.commit(kind, namespace, name, expected.as_deref(), new)?;
            reply(stored, subresource)
        })
    }

    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        Box::pin(async move {
            let old = match self.current(kind, namespace, name) {
                Ok(old) => old,
                Err(ApiError::NotFound(_)) if matches!(patch, PatchRequest::Apply { .. }) => {
                    let PatchRequest::Apply { body, .. } = patch else {
                        unreachable!()
                    };
                    return self.create(kind, namespace, body).await;
                }
                Err(e) => return Err(e),
            };
            let rv = str_at(&old, "/metadata/resourceVersion").map(str::to_owned);
            // A scale patch applies to the object's `Scale`, then writes its replicas back.
            let mut new = match subresource {
                Subresource::Scale => scale_of(&old),
                _ => old.clone(),
            };
            match &patch {
                PatchRequest::Merge(body) | PatchRequest::Apply { body, .. } => {
                    let patch = parse(body)?;
                    json_patch::merge(&mut new, &patch);
                }
                PatchRequest::StrategicMerge(body) => {
                    let patch = parse(body)?;
                    strategic_merge(&mut new, &patch);
                }
                PatchRequest::Json(body) => {
                    let ops: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
                        ApiError::Invalid(format!("the JSON patch is malformed: {e}"))
                    })?;
                    // kube-apiserver answers 422 to any op that fails, a failed `test` included.
                    json_patch::patch(&mut new, &ops)
                        .map_err(|e| ApiError::Invalid(e.to_string()))?;
                }
            }
            let new = merge_subresource(&old, new, subresource);
            let stored = self.commit(kind, namespace, name, rv.as_deref(), new)?;
            reply(stored, subresource)
        })
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let mut kinds = self.kinds.write();
            let objs = kinds.get_mut(&kind_key(kind));
            let key = obj_key(namespace, name);
            let Some(stored) = objs.as_ref().and_then(|o| o.get(&key)) else {
                return Err(ApiError::NotFound(format!(
                    "{kind} {} not found",
                    display(namespace, name)
                )));
            };
            for (what, pointer, expected) in [
                ("uid", "/metadata/uid", &options.uid),
                (
                    "resourceVersion",
                    "/metadata/resourceVersion",
                    &options.resource_version,
                ),
            ] {
                let current = str_at(&stored.value, pointer).unwrap_or_default();
                if let Some(expected) = expected
                    && expected != current
                {
                    return Err(ApiError::Conflict(format!(
                        "{kind} {}: precondition failed: {what} is {current}, not {expected}",
                        display(namespace, name)
                    )));
                }
            }
            if let Some(objs) = objs {
                objs.remove(&key);
            }
            Ok(())
        })
    }

    fn record_event(&self, event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        self.events.lock().push(event);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::IndexQuery;
    use super::super::manifest::Index;
    use super::*;
    use kubewasm_controller::LabelSelector;
    use kubewasm_core::FieldSelector;
    use kubewasm_core::ObjectKey;
    use serde_json::json;

    fn cm() -> Kind {
        Kind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        }
    }

    fn body(v: Value) -> Bytes {
        Bytes::from(serde_json::to_vec(&v).unwrap())
    }

    #[tokio::test]
    async fn create_then_create_again_is_already_exists() {
        let b = MemoryBackend::new();
        let obj = json!({"metadata": {"name": "a"}});
        b.create(&cm(), Some("ns"), body(obj.clone()))
            .await
            .unwrap();
        let e = b.create(&cm(), Some("ns"), body(obj)).await.unwrap_err();
        assert!(matches!(e, ApiError::AlreadyExists(_)), "{e}");
    }

    #[tokio::test]
    async fn replace_with_a_stale_resource_version_is_a_conflict() {
        let b = MemoryBackend::new();
        let stored = b
            .insert(&cm(), json!({"metadata": {"name": "a", "namespace": "ns"}}))
            .unwrap();
        let mut v: Value = serde_json::from_slice(&stored).unwrap();
        b.replace(&cm(), Some("ns"), "a", body(v.clone()), Subresource::Main)
            .await
            .unwrap();
        v["data"] = json!({"k": "v"});
        let e = b
            .replace(&cm(), Some("ns"), "a", body(v), Subresource::Main)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Conflict(_)), "{e}");
    }

    #[tokio::test]
    async fn writes_to_missing_objects_are_not_found() {
        let b = MemoryBackend::new();
        let e = b
            .delete(&cm(), Some("ns"), "nope", DeleteOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::NotFound(_)));
        let e = b
            .patch(
                &cm(),
                Some("ns"),
                "nope",
                PatchRequest::Merge(body(json!({}))),
                Subresource::Main,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::NotFound(_)));
    }

    #[tokio::test]
    async fn merge_and_json_patches_change_the_object_and_bump_its_version() {
        let b = MemoryBackend::new();
        b.insert(
            &cm(),
            json!({"metadata": {"name": "a", "namespace": "ns"}, "data": {"x": "1"}}),
        )
        .unwrap();
        b.patch(
            &cm(),
            Some("ns"),
            "a",
            PatchRequest::Merge(body(json!({"data": {"y": "2"}}))),
            Subresource::Main,
        )
        .await
        .unwrap();
        let ops = json!([{"op": "test", "path": "/data/x", "value": "1"}, {"op": "remove", "path": "/data/x"}]);
        b.patch(
            &cm(),
            Some("ns"),
            "a",
            PatchRequest::Json(body(ops.clone())),
            Subresource::Main,
        )
        .await
        .unwrap();
        let v = b.object(&cm(), Some("ns"), "a").unwrap();
        assert_eq!(v["data"], json!({"y": "2"}));
        assert_eq!(v["metadata"]["resourceVersion"], "3");
        let e = b
            .patch(
                &cm(),
                Some("ns"),
                "a",
                PatchRequest::Json(body(ops)),
                Subresource::Main,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Invalid(_)), "{e}");
    }

    #[tokio::test]
    async fn writes_that_would_leave_no_object_are_invalid_and_change_nothing() {
        let b = MemoryBackend::new();
        b.insert(
            &cm(),
            json!({"metadata": {"name": "a", "namespace": "ns"}, "data": {"x": "1"}}),
        )
        .unwrap();
        let attempts = [
            PatchRequest::Merge(body(json!("text"))),
            PatchRequest::Merge(body(json!([1]))),
            PatchRequest::Json(body(json!([{"op": "replace", "path": "", "value": 3}]))),
        ];
        for patch in attempts {
            let e = b
                .patch(&cm(), Some("ns"), "a", patch, Subresource::Main)
                .await
                .unwrap_err();
            assert!(matches!(e, ApiError::Invalid(_)), "{e}");
        }
        let e = b
            .replace(&cm(), Some("ns"), "a", body(json!([1])), Subresource::Main)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Invalid(_)), "{e}");
        let v = b.object(&cm(), Some("ns"), "a").unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "1");
    }

    #[tokio::test]
    async fn lists_filter_by_namespace_labels_and_index() {
        let b = MemoryBackend::new();
        for (ns, name, app) in [("a", "1", "web"), ("a", "2", "db"), ("b", "3", "web")] {
            b.insert(
                &cm(),
                json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}}),
            )
            .unwrap();
        }
        let len = |q: ListQuery| b.list(&cm(), &q).unwrap().len();
        assert_eq!(len(ListQuery::namespace(Some("a"))), 2);
        assert_eq!(len(ListQuery::default()), 3);
        let labels = Some(LabelSelector::parse("app=web").unwrap());
        assert_eq!(
            len(ListQuery {
                labels: labels.clone(),
                ..ListQuery::default()
            }),
            2
        );
        let fields = Some(FieldSelector::parse("metadata.name!=1").unwrap());
        assert_eq!(
            len(ListQuery {
                labels,
                fields,
                ..ListQuery::default()
            }),
            1
        );
        let index = IndexQuery {
            index: Index {
                name: "by-app".into(),
                kind: cm(),
                field: super::super::FieldPath::parse("metadata.labels.app").unwrap(),
            },
            value: "web".into(),
        };
        let by_index = |namespace: Option<&str>| ListQuery {
            index: Some(index.clone()),
            ..ListQuery::namespace(namespace)
        };
        assert_eq!(len(by_index(None)), 2);
        assert_eq!(len(by_index(Some("b"))), 1);
        let keys = b.keys(&cm(), &by_index(Some("b"))).unwrap();
        assert_eq!(keys, vec![ObjectKey::namespaced("b", "3")]);
        assert_eq!(b.count(&cm(), &by_index(None)).unwrap(), 2);
    }

    #[tokio::test]
    async fn a_delete_with_a_stale_precondition_is_a_conflict_and_keeps_the_object() {
        let b = MemoryBackend::new();
        b.insert(&cm(), json!({"metadata": {"name": "a", "namespace": "ns"}}))
            .unwrap();
        let stale = DeleteOptions {
            uid: Some("someone-else".into()),
            ..DeleteOptions::default()
        };
        let e = b.delete(&cm(), Some("ns"), "a", stale).await.unwrap_err();
        assert!(
            matches!(e, ApiError::Conflict(ref m) if m.contains("uid")),
            "{e}"
        );
        let current = DeleteOptions {
            resource_version: Some("1".into()),
            ..DeleteOptions::default()
        };
        b.delete(&cm(), Some("ns"), "a", current).await.unwrap();
        assert!(b.object(&cm(), Some("ns"), "a").is_none());
    }

    #[tokio::test]
    async fn scale_writes_change_only_the_replicas_and_answer_a_scale() {
        let b = MemoryBackend::new();
        b.insert(
            &cm(),
            json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"replicas": 1, "x": 1}}),
        )
        .unwrap();
        let scale = b
            .patch(
                &cm(),
                Some("ns"),
                "a",
                PatchRequest::Merge(body(json!({"spec": {"replicas": 3}}))),
                Subresource::Scale,
            )
            .await
            .unwrap();
        let scale: Value = serde_json::from_slice(&scale).unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 3);
        let v = b.object(&cm(), Some("ns"), "a").unwrap();
        assert_eq!(v["spec"], json!({"replicas": 3, "x": 1}));
    }

    #[tokio::test]
    async fn a_strategic_merge_patch_merges_lists_of_named_objects_by_name() {
        let b = MemoryBackend::new();
        b.insert(
            &cm(),
            json!({"metadata": {"name": "a", "namespace": "ns"},
                   "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]}}),
        )
        .unwrap();
        let patch = json!({"spec": {"containers": [{"name": "app", "image": "a:2"}]}});
        b.patch(
            &cm(),
            Some("ns"),
            "a",
            PatchRequest::StrategicMerge(body(patch)),
            Subresource::Main,
        )
        .await
        .unwrap();
        let v = b.object(&cm(), Some("ns"), "a").unwrap();
        assert_eq!(
            v["spec"]["containers"],
            json!([{"name": "app", "image": "a:2"}, {"name": "side", "image": "s:1"}])
        );
    }

    #[tokio::test]
    async fn status_writes_touch_only_the_status() {
        let b = MemoryBackend::new();
        b.insert(
            &cm(),
            json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"x": 1}}),
        )
        .unwrap();
        let new = json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"ok": true}});
        b.replace(&cm(), Some("ns"), "a", body(new), Subresource::Status)
            .await
            .unwrap();
        let v = b.object(&cm(), Some("ns"), "a").unwrap();
        assert_eq!(v["spec"]["x"], 1);
        assert_eq!(v["status"]["ok"], true);
    }
}
