//! `Store`: the indexed cache of one informer, keyed by namespace/name, indexes kept current on every
//! change.
//!
//! Objects are kept as [`Entry`]s (compact JSON serialized once per event plus parsed metadata).
//! Indexes, all updated on add, update, delete and re-list:
//! * by namespace (also the primary map, so [`Store::get`] does not allocate),
//! * by label key and key=value (label-selector reads use it instead of a full scan),
//! * by owner UID,
//! * field indexes declared as [`FieldPath`]s, added at any time with backfill ([`Store::add_index`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kube::api::ApiResource;
use kubewasm_core::{FieldPath, LabelSelector, ObjectKey, Requirement};
use parking_lot::RwLock;

use crate::entry::{self, Entry};
use crate::raw::RawObject;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An incoming object could not be cached.
    #[error("failed to cache {kind} object: {source}")]
    Entry {
        /// The kind.
        kind: String,
        /// What was wrong with it.
        #[source]
        source: entry::Error,
    },
    /// [`Store::list_by_index`] named an index that was never declared.
    #[error("no index named {index:?} on {kind}")]
    NoSuchIndex {
        /// The kind.
        kind: String,
        /// The index name asked for.
        index: String,
    },
    /// [`Store::add_index`] reused a name for a different path.
    #[error("index {index:?} on {kind} already exists with path {existing}, not {requested}")]
    IndexConflict {
        /// The kind.
        kind: String,
        /// The index name.
        index: String,
        /// The path it has.
        existing: String,
        /// The path asked for.
        requested: String,
    },
}

/// How an apply, delete or re-list changed the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new object.
    Added(Arc<Entry>),
    /// An object changed; `old` is the previous cached state.
    Modified {
        /// The new state.
        new: Arc<Entry>,
        /// The previous state.
        old: Arc<Entry>,
    },
    /// An object was seen again with the same resourceVersion (re-list); nothing changed.
    Unchanged(Arc<Entry>),
    /// An object went away. `last` is its last known state (the final state from a watch DELETED
    /// event, or the cached one when a re-list no longer contains it); `cached` is what the store
    /// held, if anything.
    Deleted {
        /// Last known state.
        last: Arc<Entry>,
        /// What the store held before.
        cached: Option<Arc<Entry>>,
        /// True for a watch DELETED event (its object is the final state); false when a re-list found
        /// the object gone, so `last` is the cached state (client-go's `DeletedFinalStateUnknown`).
        final_state_known: bool,
    },
}

/// Sizes, for metrics and the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Objects cached.
    pub objects: usize,
    /// Sum of the objects' JSON sizes.
    pub json_bytes: usize,
    /// Approximate heap bytes held by the entries (JSON plus parsed metadata).
    pub entry_bytes: usize,
    /// Approximate heap bytes held by the maps and indexes.
    pub index_bytes: usize,
}

type Id = u32;
type IdSet = HashSet<Id>;

#[derive(Debug, Default)]
struct LabelKeyIndex {
    all: IdSet,
    by_value: HashMap<String, IdSet>,
}

#[derive(Debug)]
struct FieldIndex {
    path: FieldPath,
    by_value: HashMap<String, IdSet>,
    values: HashMap<Id, Vec<String>>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Option<Arc<Entry>>>,
    free: Vec<Id>,
    /// namespace ("" for cluster-scoped) -> name -> id. The primary map and the namespace index.
    by_namespace: HashMap<String, HashMap<String, Id>>,
    /// namespace -> ids, to intersect with label sets without touching entries.
    ns_ids: HashMap<String, IdSet>,
    by_label: HashMap<String, LabelKeyIndex>,
    by_owner: HashMap<String, IdSet>,
    fields: HashMap<String, FieldIndex>,
    len: usize,
    json_bytes: usize,
}

/// A listed object turned into its cache entry, with its values for the declared field indexes:
/// see [`Store::prepare`].
#[derive(Debug)]
pub struct Prepared {
    entry: Arc<Entry>,
    fields: Vec<(String, Vec<String>)>,
}

/// An object a [`Store`] can cache: a [`RawObject`] as the API server sent it (what informers
/// decode into: no full decode, no second serialization).
pub trait Cacheable {
    /// The values of a field index's path in this object.
    fn field_values(&self, path: &FieldPath) -> Vec<String>;

    /// The object's cache entry.
    ///
    /// # Errors
    /// [`entry::Error`](crate::EntryError) when the object has no name or cannot be serialized.
    fn into_entry(
        self,
        resource: &ApiResource,
        keep_managed_fields: bool,
    ) -> Result<Entry, entry::Error>;
}

impl Cacheable for RawObject {
    fn field_values(&self, path: &FieldPath) -> Vec<String> {
        path.values_in_text(self.json())
    }

    fn into_entry(
        self,
        resource: &ApiResource,
        keep_managed_fields: bool,
    ) -> Result<Entry, entry::Error> {
        Entry::from_raw(self, resource, keep_managed_fields)
    }
}

/// The values of index `name` for a prepared entry: those computed when it was prepared, or,
/// for an index declared since, read from the entry's JSON.
fn prepared_values(
    fields: &[(String, Vec<String>)],
    entry: &Entry,
    name: &str,
    path: &FieldPath,
) -> Vec<String> {
    match fields.iter().find(|(n, _)| n == name) {
        Some((_, values)) => values.clone(),
        None => entry.field_values(path),
    }
}

/// The cache of one informer. Cheap to clone; clones share the cache. Reads take a shared lock and
/// hand out `Arc<Entry>`s, so they never copy object bytes.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<RwLock<Inner>>,
    resource: Arc<ApiResource>,
    keep_managed_fields: bool,
}

impl Store {
    /// An empty store for objects of `resource`. `keep_managed_fields` keeps `metadata.managedFields`
    /// (dropped by default: 20-25% of cached bytes in real clusters, and rarely needed by reconcilers).
    pub fn new(resource: ApiResource, keep_managed_fields: bool) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner::default())),
            resource: Arc::new(resource),
            keep_managed_fields,
        }
    }

    /// The kind this store caches.
    pub fn resource(&self) -> &Arc<ApiResource> {
        &self.resource
    }

    fn entry(&self, obj: impl Cacheable) -> Result<Arc<Entry>, Error> {
        obj.into_entry(&self.resource, self.keep_managed_fields)
            .map(Arc::new)
            .map_err(|source| Error::Entry {
                kind: self.resource.kind.clone(),
                source,
            })
    }

    /// Adds or replaces an object (a watch ADDED/MODIFIED event). Builds its entry and index
    /// values outside the lock.
    ///
    /// # Errors
    /// [`Error::Entry`] if the object has no name or cannot be serialized; the store is unchanged.
    pub fn apply(&self, obj: impl Cacheable) -> Result<Change, Error> {
        let Prepared { entry, fields } = self.prepare(obj)?;
        let mut inner = self.inner.write();
        Ok(
            match inner.upsert(Arc::clone(&entry), |name, path| {
                prepared_values(&fields, &entry, name, path)
            }) {
                Some(old) => Change::Modified { new: entry, old },
                None => Change::Added(entry),
            },
        )
    }

    /// Removes an object (a watch DELETED event carrying its final state).
    ///
    /// # Errors
    /// [`Error::Entry`] if the object has no name; the store is unchanged.
    pub fn delete(&self, obj: impl Cacheable) -> Result<Change, Error> {
        let last = self.entry(obj)?;
        let cached = self.inner.write().remove(last.key());
        Ok(Change::Deleted {
            last,
            cached,
            final_state_known: true,
        })
    }

    /// Turns a listed object into its cache entry and its values for the declared field indexes,
    /// for [`Store::replace_prepared`]. An informer prepares each object of an initial list as it
    /// arrives, so a list of many objects never holds all their decoded trees at once (each
    /// decoded object is several times its JSON; the entry is about its JSON).
    ///
    /// # Errors
    /// [`Error::Entry`] if the object has no name or cannot be serialized.
    pub fn prepare(&self, obj: impl Cacheable) -> Result<Prepared, Error> {
        let fields = self
            .inner
            .read()
            .fields
            .iter()
            .map(|(name, idx)| (name.clone(), obj.field_values(&idx.path)))
            .collect();
        let entry = self.entry(obj)?;
        Ok(Prepared { entry, fields })
    }

    /// Replaces the whole content with a fresh list (the initial list, or a re-list after a 410 or a
    /// lost watch), atomically for readers. Objects whose resourceVersion did not change keep their
    /// entry and report [`Change::Unchanged`]; objects missing from the list are deleted.
    ///
    /// Objects that cannot be cached (no name) are skipped and returned as errors beside the changes.
    pub fn replace<O: Cacheable>(&self, objs: Vec<O>) -> (Vec<Change>, Vec<Error>) {
        let mut errors = Vec::new();
        let mut fresh = Vec::with_capacity(objs.len());
        for obj in objs {
            match self.prepare(obj) {
                Ok(p) => fresh.push(p),
                Err(e) => errors.push(e),
            }
        }
        (self.replace_prepared(fresh), errors)
    }

    /// [`Store::replace`] with objects already [prepared](Store::prepare).
    pub fn replace_prepared(&self, fresh: Vec<Prepared>) -> Vec<Change> {
        let mut changes = Vec::with_capacity(fresh.len());
        let mut inner = self.inner.write();
        let listed: HashSet<&ObjectKey> = fresh.iter().map(|p| p.entry.key()).collect();
        let gone: Vec<ObjectKey> = inner
            .entries()
            .filter(|e| !listed.contains(e.key()))
            .map(|e| e.key().clone())
            .collect();
        for key in gone {
            if let Some(last) = inner.remove(&key) {
                changes.push(Change::Deleted {
                    last: Arc::clone(&last),
                    cached: Some(last),
                    final_state_known: false,
                });
            }
        }
        for Prepared { entry, fields } in &fresh {
            let same = inner
                .get(entry.namespace(), entry.name())
                .filter(|old| {
                    old.resource_version().is_some()
                        && old.resource_version() == entry.resource_version()
                })
                .cloned();
            if let Some(old) = same {
                changes.push(Change::Unchanged(old));
                continue;
            }
            match inner.upsert(Arc::clone(entry), |name, path| {
                prepared_values(fields, entry, name, path)
            }) {
                Some(old) => changes.push(Change::Modified {
                    new: Arc::clone(entry),
                    old,
                }),
                None => changes.push(Change::Added(Arc::clone(entry))),
            }
        }
        changes
    }

    /// The object `namespace/name` (`namespace` `None` for cluster-scoped), if cached.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<Entry>> {
        self.inner.read().get(namespace, name).cloned()
    }

    /// The objects in `namespace` (all namespaces when `None`) that match `selector` (all when `None`).
    /// The namespace and the selector's `=`, `in` and exists requirements are answered by intersecting
    /// index sets (starting from the smallest); only a selector made solely of negative requirements
    /// (`!=`, `notin`, `!key`) over all namespaces scans. The order is unspecified (callers that need
    /// a stable order sort by key).
    pub fn list(
        &self,
        namespace: Option<&str>,
        selector: Option<&LabelSelector>,
    ) -> Vec<Arc<Entry>> {
        let inner = self.inner.read();
        let selector = selector.filter(|s| !s.selects_all());
        let Some(selector) = selector else {
            return match namespace {
                Some(ns) => inner.in_namespace(ns).cloned().collect(),
                None => inner.entries().cloned().collect(),
            };
        };
        // Positive requirements are answered by the index sets; only negative ones need the labels.
        let negatives = selector.requirements().iter().any(|e| {
            matches!(
                e,
                Requirement::NotEqual(..) | Requirement::NotIn(..) | Requirement::DoesNotExist(_)
            )
        });
        match inner.candidates(namespace, selector) {
            Some(ids) => ids
                .into_iter()
                .filter_map(|id| inner.slot(id))
                .filter(|e| !negatives || selector.matches(e.labels()))
                .cloned()
                .collect(),
            None => inner
                .entries()
                .filter(|e| selector.matches(e.labels()))
                .cloned()
                .collect(),
        }
    }

    /// The objects whose field index `index` holds `value`.
    ///
    /// # Errors
    /// [`Error::NoSuchIndex`] if no index of that name was declared.
    pub fn list_by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<Entry>>, Error> {
        let inner = self.inner.read();
        let idx = inner.fields.get(index).ok_or_else(|| Error::NoSuchIndex {
            kind: self.resource.kind.clone(),
            index: index.to_owned(),
        })?;
        Ok(idx
            .by_value
            .get(value)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.slot(*id))
            .cloned()
            .collect())
    }

    /// The objects that have an ownerReference with this owner UID.
    pub fn list_by_owner(&self, uid: &str) -> Vec<Arc<Entry>> {
        let inner = self.inner.read();
        inner
            .by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.slot(*id))
            .cloned()
            .collect()
    }

    /// Declares a field index `name` over `path`, computing it for every cached object (backfill).
    /// Declaring the same name and path again is a no-op, so every plugin can declare what it needs.
    ///
    /// # Errors
    /// [`Error::IndexConflict`] if `name` already indexes another path.
    pub fn add_index(&self, name: &str, path: FieldPath) -> Result<(), Error> {
        {
            let inner = self.inner.read();
            if let Some(existing) = inner.fields.get(name) {
                return if existing.path == path {
                    Ok(())
                } else {
                    Err(Error::IndexConflict {
                        kind: self.resource.kind.clone(),
                        index: name.to_owned(),
                        existing: existing.path.to_string(),
                        requested: path.to_string(),
                    })
                };
            }
        }
        // Compute the values outside the write lock (parsing every object takes a while at 100k);
        // then, under the lock, reuse them for entries that did not change meanwhile.
        let values_of = |entry: &Entry| entry.field_values(&path);
        let computed: HashMap<Id, (Arc<Entry>, Vec<String>)> = {
            let snapshot: Vec<(Id, Arc<Entry>)> = {
                let inner = self.inner.read();
                inner
                    .slots
                    .iter()
                    .enumerate()
                    .filter_map(|(id, slot)| {
                        Some((Id::try_from(id).ok()?, Arc::clone(slot.as_ref()?)))
                    })
                    .collect()
            };
            snapshot
                .into_iter()
                .map(|(id, entry)| {
                    let values = values_of(&entry);
                    (id, (entry, values))
                })
                .collect()
        };
        let mut inner = self.inner.write();
        if inner.fields.contains_key(name) {
            // Lost a race with another add_index of the same name: re-check under the write lock.
            drop(inner);
            return self.add_index(name, path);
        }
        let mut idx = FieldIndex {
            path: path.clone(),
            by_value: HashMap::new(),
            values: HashMap::new(),
        };
        for (id, slot) in inner.slots.iter().enumerate() {
            let Some(entry) = slot else { continue };
            let Ok(id) = Id::try_from(id) else { continue };
            let values = match computed.get(&id) {
                Some((seen, values)) if Arc::ptr_eq(seen, entry) => values.clone(),
                _ => values_of(entry),
            };
            idx.insert(id, values);
        }
        inner.fields.insert(name.to_owned(), idx);
        Ok(())
    }

    /// The declared field indexes: name and path.
    pub fn indexes(&self) -> Vec<(String, FieldPath)> {
        self.inner
            .read()
            .fields
            .iter()
            .map(|(n, i)| (n.clone(), i.path.clone()))
            .collect()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.inner.read().len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every cached object (unordered).
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.inner.read().entries().cloned().collect()
    }

    /// Sizes of the cache.
    pub fn stats(&self) -> StoreStats {
        let inner = self.inner.read();
        StoreStats {
            objects: inner.len,
            json_bytes: inner.json_bytes,
            entry_bytes: inner
                .entries()
                .map(|e| e.heap_size() + 2 * size_of::<usize>())
                .sum(),
            index_bytes: inner.index_bytes(),
        }
    }
}

impl FieldIndex {
    fn insert(&mut self, id: Id, mut values: Vec<String>) {
        values.sort_unstable();
        values.dedup();
        if values.is_empty() {
            return;
        }
        for v in &values {
            self.by_value.entry(v.clone()).or_default().insert(id);
        }
        self.values.insert(id, values);
    }

    fn remove(&mut self, id: Id) {
        for v in self.values.remove(&id).into_iter().flatten() {
            remove_from(&mut self.by_value, &v, id);
        }
    }
}

fn remove_from(map: &mut HashMap<String, IdSet>, key: &str, id: Id) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// Approximate heap bytes of a hashbrown table with `cap` slots of `slot` bytes.
fn table_bytes(cap: usize, slot: usize) -> usize {
    cap * (slot + 1)
}

impl Inner {
    fn slot(&self, id: Id) -> Option<&Arc<Entry>> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.slots.iter().flatten()
    }

    fn in_namespace<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a Arc<Entry>> + 'a {
        self.by_namespace
            .get(ns)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|id| self.slot(*id))
    }

    fn id(&self, namespace: Option<&str>, name: &str) -> Option<Id> {
        self.by_namespace
            .get(namespace.unwrap_or(""))
            .and_then(|m| m.get(name))
            .copied()
    }

    fn get(&self, namespace: Option<&str>, name: &str) -> Option<&Arc<Entry>> {
        self.id(namespace, name).and_then(|id| self.slot(id))
    }

    /// Inserts or replaces; returns the replaced entry. `values` gives the entry's values for a
    /// declared field index.
    fn upsert(
        &mut self,
        entry: Arc<Entry>,
        values: impl Fn(&str, &FieldPath) -> Vec<String>,
    ) -> Option<Arc<Entry>> {
        let (id, old) = match self.id(entry.namespace(), entry.name()) {
            Some(id) => {
                let old = self.slots[id as usize].take();
                if let Some(old) = &old {
                    self.unindex(id, old);
                }
                (id, old)
            }
            None => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        self.slots.push(None);
                        Id::try_from(self.slots.len() - 1).unwrap_or(Id::MAX)
                    }
                };
                let ns = entry.namespace().unwrap_or("");
                self.by_namespace
                    .entry(ns.to_owned())
                    .or_default()
                    .insert(entry.name().to_owned(), id);
                self.ns_ids.entry(ns.to_owned()).or_default().insert(id);
                self.len += 1;
                (id, None)
            }
        };
        self.index(id, &entry, values);
        self.json_bytes += entry.json().len();
        self.slots[id as usize] = Some(entry);
        old
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Arc<Entry>> {
        let ns = key.namespace().unwrap_or("");
        let names = self.by_namespace.get_mut(ns)?;
        let id = names.remove(&key.name)?;
        if names.is_empty() {
            self.by_namespace.remove(ns);
        }
        remove_from(&mut self.ns_ids, ns, id);
        let old = self.slots.get_mut(id as usize).and_then(Option::take)?;
        self.unindex(id, &old);
        self.free.push(id);
        self.len -= 1;
        Some(old)
    }

    fn index(&mut self, id: Id, entry: &Entry, values: impl Fn(&str, &FieldPath) -> Vec<String>) {
        for (k, v) in entry.labels().iter() {
            let idx = self.by_label.entry(k.to_owned()).or_default();
            idx.all.insert(id);
            idx.by_value.entry(v.to_owned()).or_default().insert(id);
        }
        for owner in entry.owners() {
            self.by_owner
                .entry(owner.uid.clone())
                .or_default()
                .insert(id);
        }
        for (name, idx) in &mut self.fields {
            let values = values(name, &idx.path);
            idx.insert(id, values);
        }
    }

    /// Removes `entry` (stored at `id`) from every index; the caller clears the slot.
    fn unindex(&mut self, id: Id, entry: &Entry) {
        self.json_bytes -= entry.json().len();
        for (k, v) in entry.labels().iter() {
            if let Some(idx) = self.by_label.get_mut(k) {
                idx.all.remove(&id);
                remove_from(&mut idx.by_value, v, id);
                if idx.all.is_empty() {
                    self.by_label.remove(k);
                }
            }
        }
        for owner in entry.owners() {
            remove_from(&mut self.by_owner, &owner.uid, id);
        }
        for idx in self.fields.values_mut() {
            idx.remove(id);
        }
    }

    /// Candidate ids for `selector` in `namespace` from the indexes: the ids of the smallest positive
    /// requirement (`=`, `in`, exists, or the namespace) that are also in every other positive
    /// requirement's sets, so no entry is touched to evaluate them. `None` when there is no positive
    /// requirement at all (no namespace and only `!=`, `notin`, `!key`): then a scan is needed.
    fn candidates(&self, namespace: Option<&str>, selector: &LabelSelector) -> Option<Vec<Id>> {
        // Each positive requirement as a union of id sets (the values of one key are disjoint).
        let mut groups: Vec<Vec<&IdSet>> = Vec::new();
        for expr in selector.requirements() {
            let sets: Vec<&IdSet> = match expr {
                Requirement::Equal(k, v) => self
                    .by_label
                    .get(k)
                    .and_then(|i| i.by_value.get(v))
                    .into_iter()
                    .collect(),
                Requirement::Exists(k) => {
                    self.by_label.get(k).map(|i| &i.all).into_iter().collect()
                }
                Requirement::In(k, values) => self
                    .by_label
                    .get(k)
                    .map(|i| values.iter().filter_map(|v| i.by_value.get(v)).collect())
                    .unwrap_or_default(),
                Requirement::NotEqual(..)
                | Requirement::NotIn(..)
                | Requirement::DoesNotExist(_) => {
                    continue;
                }
            };
            if sets.is_empty() {
                return Some(Vec::new());
            }
            groups.push(sets);
        }
        if let Some(ns) = namespace {
            match self.ns_ids.get(ns) {
                Some(set) => groups.push(vec![set]),
                None => return Some(Vec::new()),
            }
        }
        let size = |g: &Vec<&IdSet>| g.iter().map(|s| s.len()).sum::<usize>();
        let smallest = (0..groups.len()).min_by_key(|i| size(&groups[*i]))?;
        let first = groups.swap_remove(smallest);
        Some(
            first
                .into_iter()
                .flatten()
                .copied()
                .filter(|id| groups.iter().all(|g| g.iter().any(|s| s.contains(id))))
                .collect(),
        )
    }

    fn index_bytes(&self) -> usize {
        let id_set = |s: &IdSet| table_bytes(s.capacity(), size_of::<Id>());
        let str_map = |m: &HashMap<String, IdSet>| {
            table_bytes(m.capacity(), size_of::<(String, IdSet)>())
                + m.iter()
                    .map(|(k, s)| k.capacity() + id_set(s))
                    .sum::<usize>()
        };
        let slots = self.slots.capacity() * size_of::<Option<Arc<Entry>>>()
            + self.free.capacity() * size_of::<Id>();
        let namespaces = table_bytes(
            self.by_namespace.capacity(),
            size_of::<(String, HashMap<String, Id>)>(),
        ) + self
            .by_namespace
            .iter()
            .map(|(ns, m)| {
                ns.capacity()
                    + table_bytes(m.capacity(), size_of::<(String, Id)>())
                    + m.keys().map(String::capacity).sum::<usize>()
            })
            .sum::<usize>();
        let labels = table_bytes(
            self.by_label.capacity(),
            size_of::<(String, LabelKeyIndex)>(),
        ) + self
            .by_label
            .iter()
            .map(|(k, i)| k.capacity() + id_set(&i.all) + str_map(&i.by_value))
            .sum::<usize>();
        let owners = str_map(&self.by_owner) + str_map(&self.ns_ids);
        let fields: usize = self
            .fields
            .values()
            .map(|f| {
                str_map(&f.by_value)
                    + table_bytes(f.values.capacity(), size_of::<(Id, Vec<String>)>())
                    + f.values
                        .values()
                        .flatten()
                        .map(|v| v.capacity() + size_of::<String>())
                        .sum::<usize>()
            })
            .sum();
        slots + namespaces + labels + owners + fields
    }
}

#[cfg(test)]
mod tests;
