//! The in-memory object store: one resourceVersion counter, objects as serialized JSON, event history and
//! live change broadcast.
//!
//! Every write runs as a transaction under one lock ([`Store::write`]): the caller's closure sees the current
//! object and the resourceVersion the write will get, and returns what to store. Persistence can be added
//! behind this boundary (append each [`Change`] to a log and replay it at start) without touching the HTTP
//! layer.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;

/// One stored object: its JSON and what selectors need without parsing it.
#[derive(Debug)]
pub struct Stored {
    /// The serialized object: `apiVersion` and `kind` first (as kube-apiserver writes them),
    /// then the other fields in key order.
    pub json: Bytes,
    /// Where the fields after `apiVersion` and `kind` start in [`Stored::json`] (0 when the
    /// object lacks either, or has nothing else): `{` and `json[body_start..]` is the object as
    /// an item of a built-in kind's list, which kube-apiserver sends without them.
    pub body_start: usize,
    /// `metadata.labels`, if any.
    pub labels: Option<Box<serde_json::Map<String, Value>>>,
    /// `metadata.resourceVersion` as a number.
    pub rv: u64,
    /// `metadata.uid`.
    pub uid: Box<str>,
    /// The uids in `metadata.ownerReferences` (for the garbage collector's index).
    pub owners: Vec<Box<str>>,
}

impl Stored {
    /// Serializes `value` (whose metadata.resourceVersion is already `rv`).
    ///
    /// # Errors
    /// 500 if the value cannot be serialized (it always can for JSON values).
    pub fn from_value(value: &Value, rv: u64) -> Result<Stored, ApiError> {
        let (json, body_start) = serialize(value)
            .map_err(|e| ApiError::internal(format!("failed to serialize object: {e}")))?;
        let labels = value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .filter(|l| !l.is_empty())
            .map(|l| Box::new(l.clone()));
        let uid = value
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into();
        let owners = value
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("uid").and_then(Value::as_str))
            .map(Into::into)
            .collect();
        Ok(Stored {
            json: Bytes::from(json),
            body_start,
            labels,
            rv,
            uid,
            owners,
        })
    }

    /// The object without `apiVersion` and `kind`, as kube-apiserver sends the items of a
    /// built-in kind's list; `None` when it cannot be cut out of the stored bytes.
    pub fn list_item(&self) -> Option<(&[u8], &[u8])> {
        (self.body_start > 0).then(|| (&b"{"[..], &self.json[self.body_start..]))
    }

    /// Parses the stored JSON.
    ///
    /// # Errors
    /// 500 if the stored bytes are not JSON (they always are).
    pub fn value(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.json)
            .map_err(|e| ApiError::internal(format!("failed to decode stored object: {e}")))
    }
}

/// Serializes `value` with `apiVersion` and `kind` first, the other keys in order; returns
/// the bytes and where the other keys start (0 when there are none or `apiVersion`/`kind` are
/// missing).
fn serialize(value: &Value) -> serde_json::Result<(Vec<u8>, usize)> {
    let Some(map) = value.as_object() else {
        return Ok((serde_json::to_vec(value)?, 0));
    };
    let (Some(api_version), Some(kind)) = (map.get("apiVersion"), map.get("kind")) else {
        return Ok((serde_json::to_vec(value)?, 0));
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"apiVersion\":");
    serde_json::to_writer(&mut out, api_version)?;
    out.extend_from_slice(b",\"kind\":");
    serde_json::to_writer(&mut out, kind)?;
    let mut body_start = 0;
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        out.push(b',');
        if body_start == 0 {
            body_start = out.len();
        }
        serde_json::to_writer(&mut out, k)?;
        out.push(b':');
        serde_json::to_writer(&mut out, v)?;
    }
    out.push(b'}');
    Ok((out, body_start))
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// "ADDED", "MODIFIED", "DELETED".
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of the write.
    pub rv: u64,
    /// Storage key of the resource ("pods", "deployments.apps").
    pub key: Arc<str>,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for DELETED: the last state, with the delete's resourceVersion).
    pub object: Arc<Stored>,
    /// The object before the change, if any (selectors use it to turn "stopped matching" into DELETED).
    pub prev: Option<Arc<Stored>>,
}

/// What a write transaction decided.
pub enum WriteOp {
    /// Store this value (its metadata.resourceVersion must be the rv given to the closure).
    Put(Value),
    /// Remove the object; the value is its final state (with the rv given to the closure).
    Delete(Value),
    /// Change nothing (no-op update); the current object is returned.
    Noop,
    /// Dry run: store nothing, but return this value (and whether it would have been deleted).
    Discard {
        /// What would have been stored.
        value: Value,
        /// Whether the write would have deleted the object.
        deleted: bool,
    },
}

impl WriteOp {
    /// Turns a write into a [`WriteOp::Discard`] when `dry_run` is set.
    pub fn dry(self, dry_run: bool) -> WriteOp {
        match self {
            WriteOp::Put(value) if dry_run => WriteOp::Discard {
                value,
                deleted: false,
            },
            WriteOp::Delete(value) if dry_run => WriteOp::Discard {
                value,
                deleted: true,
            },
            other => other,
        }
    }
}

/// The result of a committed write.
pub struct WriteResult {
    /// The stored object after the write (for deletes: the final state).
    pub object: Arc<Stored>,
    /// Whether the object was deleted.
    pub deleted: bool,
    /// Whether anything changed.
    pub changed: bool,
}

type Objects = BTreeMap<(String, String), Arc<Stored>>;

/// Orders (namespace, name) pairs as their keys `namespace/name` sort.
fn key_order(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    fn key<'a>(ns: &'a str, name: &'a str) -> impl Iterator<Item = u8> + 'a {
        ns.bytes().chain(std::iter::once(b'/')).chain(name.bytes())
    }
    key(a.0, a.1).cmp(key(b.0, b.1))
}

/// Objects as (namespace, name, object), in key order.
pub type Listed = Vec<(String, String, Arc<Stored>)>;

/// A receiver of live changes.
pub type Changes = broadcast::Receiver<Arc<Change>>;

/// A consistent list snapshot kept for `continue` tokens.
pub struct Snapshot {
    /// The list's resourceVersion.
    pub rv: u64,
    /// The matching items, in key order.
    pub items: Arc<Vec<Arc<Stored>>>,
}

struct Inner {
    rv: u64,
    objects: HashMap<Arc<str>, Objects>,
    history: VecDeque<Arc<Change>>,
    /// Events with rv <= compacted are gone from history.
    compacted: u64,
    snapshots: HashMap<u64, (Instant, Arc<Snapshot>)>,
    next_snapshot: u64,
    /// uids of every stored object.
    live: HashSet<Box<str>>,
    /// owner uid -> objects naming it in ownerReferences.
    dependents: HashMap<Box<str>, HashSet<ObjectRef>>,
}

/// Where an object is stored: (storage key, namespace, name).
pub type ObjectRef = (Arc<str>, String, String);

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: RwLock<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    history_limit: usize,
}

/// Continue tokens stay valid this long (kube-apiserver: until etcd compacts, ~5 minutes).
const SNAPSHOT_TTL_SECS: u64 = 300;
/// At most this many list snapshots are kept at once; the oldest expire first.
const MAX_SNAPSHOTS: usize = 64;

impl Store {
    /// An empty store keeping `history_limit` events for watch resumption.
    pub fn new(history_limit: usize) -> Store {
        let (changes, _) = broadcast::channel(history_limit.clamp(1024, 65536));
        Store {
            inner: RwLock::new(Inner {
                rv: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                snapshots: HashMap::new(),
                next_snapshot: 1,
                live: HashSet::new(),
                dependents: HashMap::new(),
            }),
            changes,
            history_limit,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.inner.read().rv
    }

    /// One object.
    pub fn get(&self, key: &str, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        let inner = self.inner.read();
        inner
            .objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// All objects of a resource (in one namespace, or all), in key order, with the snapshot's rv.
    pub fn list(
        &self,
        key: &str,
        namespace: Option<&str>,
    ) -> (u64, Vec<(String, String, Arc<Stored>)>) {
        let inner = self.inner.read();
        let Some(objs) = inner.objects.get(key) else {
            return (inner.rv, Vec::new());
        };
        let items = match namespace {
            Some(ns) => objs
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|((n, name), o)| (n.clone(), name.clone(), o.clone()))
                .collect(),
            None => {
                let mut items: Vec<_> = objs
                    .iter()
                    .map(|((n, name), o)| (n.clone(), name.clone(), o.clone()))
                    .collect();
                // In the order of the keys `namespace/name`, as etcd lists them: a namespace that
                // another one's name starts with ("ns", "ns-b") sorts after it.
                items.sort_by(|a, b| key_order((&a.0, &a.1), (&b.0, &b.1)));
                items
            }
        };
        (inner.rv, items)
    }

    /// Runs a write transaction on one object. `f` gets the current object (if any) and the
    /// resourceVersion this write will have, and decides what to do.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn write<F>(
        &self,
        key: &str,
        namespace: &str,
        name: &str,
        f: F,
    ) -> Result<WriteResult, ApiError>
    where
        F: FnOnce(Option<&Arc<Stored>>, u64) -> Result<WriteOp, ApiError>,
    {
        let mut inner = self.inner.write();
        let next = inner.rv + 1;
        let id = (namespace.to_string(), name.to_string());
        let current = inner.objects.get(key).and_then(|m| m.get(&id)).cloned();
        let op = f(current.as_ref(), next)?;
        let (kind, value) = match op {
            WriteOp::Noop => {
                let object = current.ok_or_else(|| {
                    ApiError::internal("no-op write on an object that does not exist")
                })?;
                return Ok(WriteResult {
                    object,
                    deleted: false,
                    changed: false,
                });
            }
            WriteOp::Discard { value, deleted } => {
                return Ok(WriteResult {
                    object: Arc::new(Stored::from_value(&value, next)?),
                    deleted,
                    changed: false,
                });
            }
            WriteOp::Put(v) => (
                if current.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                },
                v,
            ),
            WriteOp::Delete(v) => (EventType::Deleted, v),
        };
        let stored = Arc::new(Stored::from_value(&value, next)?);
        inner.rv = next;
        let key_arc: Arc<str> = match inner.objects.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        let objs = inner.objects.entry(key_arc.clone()).or_default();
        if kind == EventType::Deleted {
            objs.remove(&id);
        } else {
            objs.insert(id, stored.clone());
        }
        let this: ObjectRef = (key_arc.clone(), namespace.to_string(), name.to_string());
        if let Some(prev) = &current {
            inner.live.remove(&prev.uid);
            for o in &prev.owners {
                if let Some(set) = inner.dependents.get_mut(o) {
                    set.remove(&this);
                    if set.is_empty() {
                        inner.dependents.remove(o);
                    }
                }
            }
        }
        if kind != EventType::Deleted {
            inner.live.insert(stored.uid.clone());
            for o in &stored.owners {
                inner
                    .dependents
                    .entry(o.clone())
                    .or_default()
                    .insert(this.clone());
            }
        }
        let change = Arc::new(Change {
            rv: next,
            key: key_arc,
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind,
            object: stored.clone(),
            prev: current,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        // Sent under the lock so every watcher sees changes in resourceVersion order.
        let _ = self.changes.send(change);
        Ok(WriteResult {
            object: stored,
            deleted: kind == EventType::Deleted,
            changed: true,
        })
    }

    /// Starts a watch from resourceVersion `from`: the changes after it that are still in history,
    /// and a receiver for live changes (no gap, no overlap).
    ///
    /// # Errors
    /// 410 Expired when changes after `from` are no longer in history.
    pub fn watch_from(&self, from: u64) -> Result<(Vec<Arc<Change>>, Changes), ApiError> {
        let inner = self.inner.read();
        if from < inner.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {from} ({})",
                inner.compacted + 1
            )));
        }
        let rx = self.changes.subscribe();
        let start = inner.history.partition_point(|c| c.rv <= from);
        let backlog = inner.history.range(start..).cloned().collect();
        Ok((backlog, rx))
    }

    /// A live receiver plus the current state of a resource at one resourceVersion (for watches from
    /// "now" that first send synthetic ADDED events).
    pub fn watch_with_state(&self, key: &str, namespace: Option<&str>) -> (u64, Listed, Changes) {
        let inner = self.inner.read();
        let rx = self.changes.subscribe();
        let items = match inner.objects.get(key) {
            None => Vec::new(),
            Some(objs) => objs
                .iter()
                .filter(|((n, _), _)| namespace.is_none_or(|ns| ns == n))
                .map(|((n, name), o)| (n.clone(), name.clone(), o.clone()))
                .collect(),
        };
        (inner.rv, items, rx)
    }

    /// A live receiver for changes after the current resourceVersion, which is returned with it.
    pub fn subscribe_now(&self) -> (u64, Changes) {
        let inner = self.inner.read();
        (inner.rv, self.changes.subscribe())
    }

    /// Objects whose ownerReferences name `owner_uid` and that have no other owner still stored (what
    /// the garbage collector deletes once `owner_uid` is gone).
    pub fn orphaned_dependents(&self, owner_uid: &str) -> Vec<ObjectRef> {
        let inner = self.inner.read();
        let Some(set) = inner.dependents.get(owner_uid) else {
            return Vec::new();
        };
        set.iter()
            .filter(|(key, ns, name)| {
                inner
                    .objects
                    .get(key)
                    .and_then(|m| m.get(&(ns.clone(), name.clone())))
                    .is_some_and(|o| o.owners.iter().all(|u| !inner.live.contains(u)))
            })
            .cloned()
            .collect()
    }

    /// Every stored object whose ownerReferences name `owner_uid`.
    pub fn dependents(&self, owner_uid: &str) -> Vec<ObjectRef> {
        let inner = self.inner.read();
        inner
            .dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets all history: watches from any older resourceVersion get 410, continue tokens expire.
    pub fn compact(&self) {
        let mut inner = self.inner.write();
        inner.compacted = inner.rv;
        inner.history.clear();
        inner.snapshots.clear();
    }

    /// Compacts past the current resourceVersion: one revision that no object holds is used up (as
    /// etcd's revision moves on a write to a key nobody watches) and the history up to it is forgotten,
    /// so resuming a watch from any resourceVersion sent so far gets 410. `then` runs under the lock,
    /// before any later write is committed.
    pub fn compact_past_now(&self, then: impl FnOnce()) {
        let mut inner = self.inner.write();
        inner.rv += 1;
        inner.compacted = inner.rv;
        inner.history.clear();
        inner.snapshots.clear();
        then();
    }

    /// Keeps a list snapshot for paging; returns its id.
    pub fn save_snapshot(&self, snapshot: Snapshot) -> u64 {
        let mut inner = self.inner.write();
        let now = Instant::now();
        inner
            .snapshots
            .retain(|_, (t, _)| now.duration_since(*t).as_secs() < SNAPSHOT_TTL_SECS);
        while inner.snapshots.len() >= MAX_SNAPSHOTS {
            let oldest = inner
                .snapshots
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    inner.snapshots.remove(&k);
                }
                None => break,
            }
        }
        let id = inner.next_snapshot;
        inner.next_snapshot += 1;
        inner.snapshots.insert(id, (now, Arc::new(snapshot)));
        id
    }

    /// A saved list snapshot, if it has not expired.
    pub fn snapshot(&self, id: u64) -> Option<Arc<Snapshot>> {
        let inner = self.inner.read();
        inner
            .snapshots
            .get(&id)
            .filter(|(t, _)| t.elapsed().as_secs() < SNAPSHOT_TTL_SECS)
            .map(|(_, s)| s.clone())
    }

    /// Forgets a finished snapshot.
    pub fn drop_snapshot(&self, id: u64) {
        self.inner.write().snapshots.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(store: &Store, name: &str) -> u64 {
        let r = store
            .write("configmaps", "default", name, |_, rv| {
                Ok(WriteOp::Put(
                    json!({"metadata": {"name": name, "resourceVersion": rv.to_string()}}),
                ))
            })
            .expect("write");
        r.object.rv
    }

    #[test]
    fn every_write_gets_a_strictly_greater_resource_version() {
        let store = Store::new(100);
        let a = put(&store, "a");
        let b = put(&store, "a");
        assert!(b > a);
        assert_eq!(store.current_rv(), b);
    }

    #[test]
    fn watch_from_an_old_version_replays_exactly_the_later_changes() {
        let store = Store::new(100);
        let a = put(&store, "a");
        put(&store, "b");
        put(&store, "c");
        let (backlog, _rx) = store.watch_from(a).expect("in history");
        let names: Vec<_> = backlog.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn history_beyond_the_limit_or_compacted_expires_with_410() {
        let store = Store::new(2);
        let a = put(&store, "a");
        put(&store, "b");
        put(&store, "c");
        put(&store, "d");
        assert_eq!(store.watch_from(a).err().map(|e| e.code), Some(410));
        let now = store.current_rv();
        assert!(store.watch_from(now - 1).is_ok());
        store.compact();
        assert_eq!(store.watch_from(now - 1).err().map(|e| e.code), Some(410));
        assert!(store.watch_from(now).is_ok());
    }

    #[test]
    fn compacting_past_now_expires_a_watch_from_the_current_version() {
        let store = Store::new(100);
        put(&store, "a");
        let now = store.current_rv();
        let mut ran = false;
        store.compact_past_now(|| ran = true);
        assert!(ran);
        assert_eq!(store.watch_from(now).err().map(|e| e.code), Some(410));
        assert!(store.watch_from(store.current_rv()).is_ok());
        let next = put(&store, "b");
        assert!(
            next > now + 1,
            "the next write gets a later resourceVersion"
        );
    }

    fn put_owned(store: &Store, name: &str, uid: &str, owners: &[&str]) {
        let refs: Vec<Value> = owners.iter().map(|o| json!({"uid": o})).collect();
        store
            .write("configmaps", "default", name, |_, rv| {
                Ok(WriteOp::Put(json!({"metadata": {
                    "name": name, "uid": uid, "resourceVersion": rv.to_string(), "ownerReferences": refs,
                }})))
            })
            .expect("write");
    }

    #[test]
    fn dependents_are_orphaned_only_when_no_owner_is_left() {
        let store = Store::new(100);
        put_owned(&store, "a", "uid-a", &[]);
        put_owned(&store, "b", "uid-b", &[]);
        put_owned(&store, "only-a", "uid-1", &["uid-a"]);
        put_owned(&store, "a-and-b", "uid-2", &["uid-a", "uid-b"]);
        // While "a" exists nothing is orphaned.
        assert!(store.orphaned_dependents("uid-a").is_empty());
        store
            .write("configmaps", "default", "a", |c, rv| {
                let mut v = c.expect("exists").value()?;
                v["metadata"]["resourceVersion"] = json!(rv.to_string());
                Ok(WriteOp::Delete(v))
            })
            .expect("delete");
        let names: Vec<String> = store
            .orphaned_dependents("uid-a")
            .into_iter()
            .map(|(_, _, n)| n)
            .collect();
        assert_eq!(names, ["only-a"]);
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let store = Store::new(10);
        put(&store, "a");
        let before = store.current_rv();
        let r = store.write("configmaps", "default", "a", |_, _| {
            Err(ApiError::bad_request("no"))
        });
        assert!(r.is_err());
        assert_eq!(store.current_rv(), before);
    }
}
