//! `Mapper`: turns informer events into the keys a plugin reconciles (own kind, owned kinds through
//! ownerReferences, watched kinds through a declared mapping), and queues them.
//!
//! The mapping is described with plain types ([`Mapping`], [`WatchMapping`], [`MapBy`]); the host
//! builds them from a plugin's manifest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::ApiResource;
use kubewasm_core::{FieldPath, LabelSelector, ObjectKey};
use parking_lot::Mutex;

use crate::entry::Entry;
use crate::event::{EventType, ObjectEvent};
use crate::queue::{Priority, Reason, Via, WorkQueue};
use crate::store::Store;

/// A kind, by API group and kind name (versions do not matter for matching owner references).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKind {
    /// API group, `""` for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl GroupKind {
    /// A group and kind.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// The group and kind of an API resource.
    pub fn of(resource: &ApiResource) -> Self {
        Self::new(resource.group.clone(), resource.kind.clone())
    }

    fn matches(&self, resource: &ApiResource) -> bool {
        self.group == resource.group && self.kind == resource.kind
    }
}

/// A kind the plugin owns: events on its objects queue their owners' keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedKind {
    /// The owned kind.
    pub kind: GroupKind,
    /// Follow only the ownerReference marked `controller: true` (controller-runtime's default).
    pub controller_only: bool,
}

/// How the objects of a watched kind lead to primary keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapBy {
    /// The watched object's `ownerReferences` that name an object of the reconciled kind (any
    /// reference, not only the controller one).
    OwnerReferences,
    /// The primary with the watched object's namespace and name, if it exists.
    SameName,
    /// Every primary in the watched object's namespace; for a watched Namespace, every primary in
    /// that namespace; for another cluster-scoped watched kind, every primary.
    Namespace,
    /// Every primary (e.g. a cluster-wide settings object changed).
    All,
    /// The watched object carries a label selector at `path` (a `key: value` map such as a Service's
    /// `spec.selector`, or a `matchLabels`/`matchExpressions` selector): every primary in the object's
    /// namespace that it selects. Uses the primary store's label index.
    ObjectSelectsPrimaries {
        /// Where the selector is in the watched object.
        path: FieldPath,
    },
    /// Primaries carry a label selector at `path` (same forms): every primary in the watched object's
    /// namespace whose selector matches the object's labels (e.g. a PodDisruptionBudget primary and
    /// watched Pods). Parses the primaries' selectors, so prefer the other forms for large kinds.
    PrimariesSelectObject {
        /// Where the selector is in the primaries.
        path: FieldPath,
    },
    /// Primaries whose field index `index` holds one of the values found at `value_from` in the watched
    /// object (e.g. index `spec.nodeName` of Pods, value `metadata.name` of a Node). Restricted to
    /// the watched object's namespace when it has one.
    Index {
        /// The name of a field index declared on the primary store.
        index: String,
        /// Where the lookup values are in the watched object.
        value_from: FieldPath,
    },
}

/// A watched kind and how its objects map to primary keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchMapping {
    /// A name for the mapping, kept in the key's [`Reason`] (`Via::Mapping`).
    pub name: Arc<str>,
    /// The watched kind.
    pub kind: GroupKind,
    /// The rule.
    pub map_by: MapBy,
}

/// Everything a plugin declared about which events lead to which of its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The kind the plugin reconciles (its keys are objects of this kind).
    pub reconciles: GroupKind,
    /// Whether the reconciled kind is cluster-scoped (owner keys then have no namespace).
    pub cluster_scoped: bool,
    /// Kinds the plugin owns.
    pub owns: Vec<OwnedKind>,
    /// Other kinds the plugin watches.
    pub watches: Vec<WatchMapping>,
}

/// A key to queue and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedKey {
    /// The primary key.
    pub key: ObjectKey,
    /// Why.
    pub reason: Reason,
    /// Low for initial-list items, high for live events.
    pub priority: Priority,
}

/// Applies a [`Mapping`] to events, reading the primary kind's store for label and index lookups.
#[derive(Clone, Debug)]
pub struct Mapper {
    mapping: Arc<Mapping>,
    primaries: Store,
    /// Parsed selectors of primaries for [`MapBy::PrimariesSelectObject`], by path then key, valid
    /// while the primary's resourceVersion is unchanged: each primary is parsed once per change,
    /// not once per watched event.
    selectors: Arc<Mutex<HashMap<String, HashMap<ObjectKey, CachedSelector>>>>,
}

#[derive(Debug)]
struct CachedSelector {
    resource_version: Option<String>,
    selector: Option<Arc<LabelSelector>>,
}

impl Mapper {
    /// A mapper over `primaries`, the store of the reconciled kind.
    pub fn new(mapping: Mapping, primaries: Store) -> Self {
        Self {
            mapping: Arc::new(mapping),
            primaries,
            selectors: Arc::default(),
        }
    }

    /// The store of the reconciled kind.
    pub fn primaries(&self) -> &Store {
        &self.primaries
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The keys `event` leads to (deduplicated, unordered).
    pub fn keys(&self, event: &ObjectEvent) -> Vec<MappedKey> {
        // controller-runtime's priority queue: what a list found (the first list, a re-list) waits
        // behind live events.
        let priority = match event.event_type {
            EventType::InitialListItem => Priority::Low,
            _ if event.from_list => Priority::Low,
            EventType::Added | EventType::Modified | EventType::Deleted => Priority::High,
        };
        let kind: Arc<str> = Arc::from(event.resource.kind.as_str());
        let reason = |via: Via| Reason::Event {
            kind: Arc::clone(&kind),
            event: event.event_type,
            object: event.object.key().clone(),
            via,
        };
        let mut out: Vec<MappedKey> = Vec::new();
        let mut push = |key: ObjectKey, via: Via| {
            if !out.iter().any(|m| m.key == key) {
                out.push(MappedKey {
                    key,
                    reason: reason(via),
                    priority,
                });
            }
        };
        let m = &*self.mapping;
        if m.reconciles.matches(&event.resource) {
            push(event.object.key().clone(), Via::Own);
        }
        for owned in m.owns.iter().filter(|o| o.kind.matches(&event.resource)) {
            // On an update, both the old and new owners must hear about it (an ownerReference that was
            // removed still concerns the former owner).
            let entries = std::iter::once(&event.object).chain(event.old.as_ref());
            for entry in entries {
                for owner in entry.owners() {
                    if owner.kind == m.reconciles.kind
                        && owner.group() == m.reconciles.group
                        && (owner.controller || !owned.controller_only)
                    {
                        let ns = if m.cluster_scoped {
                            None
                        } else {
                            entry.namespace()
                        };
                        push(ObjectKey::new(ns, &owner.name), Via::Owner);
                    }
                }
            }
        }
        for watch in m.watches.iter().filter(|w| w.kind.matches(&event.resource)) {
            let entries = std::iter::once(&event.object).chain(event.old.as_ref());
            for entry in entries {
                for key in self.watch_keys(watch, entry) {
                    push(key, Via::Mapping(Arc::clone(&watch.name)));
                }
            }
        }
        out
    }

    fn watch_keys(&self, watch: &WatchMapping, entry: &Entry) -> Vec<ObjectKey> {
        let map_by = &watch.map_by;
        let ns = entry.namespace();
        let cluster_scoped = self.mapping.cluster_scoped;
        let keys = |entries: Vec<Arc<Entry>>| entries.iter().map(|e| e.key().clone()).collect();
        match map_by {
            MapBy::OwnerReferences => {
                let m = &*self.mapping;
                entry
                    .owners()
                    .iter()
                    .filter(|o| o.kind == m.reconciles.kind && o.group() == m.reconciles.group)
                    .map(|o| ObjectKey::new(if cluster_scoped { None } else { ns }, &o.name))
                    .collect()
            }
            MapBy::SameName => {
                let key_ns = if cluster_scoped { None } else { ns };
                self.primaries
                    .get(key_ns, entry.name())
                    .map(|p| vec![p.key().clone()])
                    .unwrap_or_default()
            }
            MapBy::Namespace => {
                let is_namespace = watch.kind.group.is_empty() && watch.kind.kind == "Namespace";
                match (ns, is_namespace) {
                    (Some(ns), _) => keys(self.primaries.list(Some(ns), None)),
                    (None, true) => keys(self.primaries.list(Some(entry.name()), None)),
                    (None, false) => keys(self.primaries.snapshot()),
                }
            }
            MapBy::All => keys(self.primaries.snapshot()),
            MapBy::ObjectSelectsPrimaries { path } => {
                let Some(selector) = selector_at(path, &json_of(entry)) else {
                    return Vec::new();
                };
                if selector.selects_all() {
                    // An empty selector selects nothing for Services and most owners; do not fan out.
                    return Vec::new();
                }
                self.primaries
                    .list(ns, Some(&selector))
                    .iter()
                    .map(|e| e.key().clone())
                    .collect()
            }
            MapBy::PrimariesSelectObject { path } => {
                let primaries = self.primaries.list(ns, None);
                let mut cache = self.selectors.lock();
                let total = self.primaries.len();
                let by_key = cache.entry(path.as_str().to_owned()).or_default();
                if by_key.len() > 2 * total + 64 {
                    // Forget deleted primaries now and then.
                    by_key.retain(|k, _| self.primaries.get(k.namespace(), &k.name).is_some());
                }
                primaries
                    .iter()
                    .filter(|p| {
                        let fresh = by_key
                            .get(p.key())
                            .is_some_and(|c| c.resource_version.as_deref() == p.resource_version());
                        if !fresh {
                            let selector = selector_at(path, &json_of(p)).map(Arc::new);
                            by_key.insert(
                                p.key().clone(),
                                CachedSelector {
                                    resource_version: p.resource_version().map(str::to_owned),
                                    selector,
                                },
                            );
                        }
                        by_key
                            .get(p.key())
                            .and_then(|c| c.selector.as_ref())
                            .is_some_and(|s| !s.selects_all() && s.matches(entry.labels()))
                    })
                    .map(|p| p.key().clone())
                    .collect()
            }
            MapBy::Index { index, value_from } => {
                let mut keys = Vec::new();
                for value in values_of(value_from, entry) {
                    match self.primaries.list_by_index(index, &value) {
                        Ok(found) => keys.extend(
                            found
                                .iter()
                                .filter(|p| cluster_scoped || ns.is_none() || p.namespace() == ns)
                                .map(|p| p.key().clone()),
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "mapping names an index the primary store lacks");
                            return Vec::new();
                        }
                    }
                }
                keys
            }
        }
    }

    /// Queues the keys of `event` into `queue`.
    pub fn enqueue(&self, event: &ObjectEvent, queue: &WorkQueue<ObjectKey>) {
        for m in self.keys(event) {
            queue.add_with_priority(m.key, m.reason, m.priority);
        }
    }

    /// Reads `events` (e.g. the merged subscriptions of the primary, owned and watched informers) and
    /// queues their keys until the stream ends or the queue shuts down.
    pub async fn run(self, events: impl Stream<Item = ObjectEvent>, queue: WorkQueue<ObjectKey>) {
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            if queue.is_shutting_down() {
                return;
            }
            self.enqueue(&event, &queue);
        }
    }
}

/// Every `interval`, queues every cached primary at low priority with [`Reason::Resync`] (client-go's
/// resync period), until the queue shuts down. The first resync happens one interval from now.
pub async fn resync(primaries: Store, queue: WorkQueue<ObjectKey>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if queue.is_shutting_down() {
            return;
        }
        for entry in primaries.snapshot() {
            queue.add_with_priority(entry.key().clone(), Reason::Resync, Priority::Low);
        }
    }
}

fn json_of(entry: &Entry) -> serde_json::Value {
    serde_json::from_slice(entry.json()).unwrap_or(serde_json::Value::Null)
}

/// Values at `path` in `entry`, answered from parsed metadata where possible (no JSON parse).
fn values_of(path: &FieldPath, entry: &Entry) -> Vec<String> {
    match path.segments() {
        [m, f] if m == "metadata" && f == "name" => vec![entry.name().to_owned()],
        [m, f] if m == "metadata" && f == "namespace" => {
            entry.namespace().map(str::to_owned).into_iter().collect()
        }
        [m, f] if m == "metadata" && f == "uid" => {
            entry.uid().map(str::to_owned).into_iter().collect()
        }
        [m, l, k] if m == "metadata" && l == "labels" => entry
            .labels()
            .get(k)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        _ => path.values_in_json(&json_of(entry)),
    }
}

/// A selector at `path`: either a plain label map or a structured `LabelSelector`.
fn selector_at(path: &FieldPath, doc: &serde_json::Value) -> Option<LabelSelector> {
    let mut v = doc;
    for seg in path.segments() {
        v = v.get(seg.as_str())?;
    }
    if v.get("matchLabels").is_some() || v.get("matchExpressions").is_some() {
        return LabelSelector::from_json(v).ok();
    }
    let map: BTreeMap<String, String> = serde_json::from_value(v.clone()).ok()?;
    Some(LabelSelector::from_map(&map))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version,
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn obj(v: serde_json::Value) -> crate::RawObject {
        crate::RawObject::from_json(&v.to_string()).expect("object")
    }

    fn entry(resource: &ApiResource, v: serde_json::Value) -> Arc<Entry> {
        Arc::new(Entry::from_raw(obj(v), resource, false).expect("entry"))
    }

    fn event(
        resource: &ApiResource,
        t: EventType,
        o: Arc<Entry>,
        old: Option<Arc<Entry>>,
    ) -> ObjectEvent {
        ObjectEvent {
            resource: Arc::new(resource.clone()),
            event_type: t,
            object: o,
            old,
            final_state_unknown: false,
            from_list: t == EventType::InitialListItem,
        }
    }

    fn keys(m: &Mapper, e: &ObjectEvent) -> Vec<String> {
        let mut k: Vec<String> = m.keys(e).into_iter().map(|k| k.key.to_string()).collect();
        k.sort();
        k
    }

    fn deployments() -> ApiResource {
        ar("apps", "v1", "Deployment", "deployments")
    }

    fn mapper(watches: Vec<WatchMapping>) -> (Mapper, Store) {
        let store = Store::new(deployments(), false);
        store
            .add_index("node", FieldPath::parse("spec.nodeName").expect("path"))
            .expect("index");
        for (name, labels, sel, node) in [
            (
                "web",
                json!({"app": "web"}),
                json!({"matchLabels": {"app": "web"}}),
                "n1",
            ),
            (
                "api",
                json!({"app": "api"}),
                json!({"matchLabels": {"app": "api"}}),
                "n2",
            ),
        ] {
            store
                .apply(obj(
                    json!({"metadata": {"name": name, "namespace": "ns", "labels": labels, "resourceVersion": "1"},
                                  "spec": {"selector": sel, "nodeName": node}}),
                ))
                .expect("apply");
        }
        let mapping = Mapping {
            reconciles: GroupKind::new("apps", "Deployment"),
            cluster_scoped: false,
            owns: vec![OwnedKind {
                kind: GroupKind::new("apps", "ReplicaSet"),
                controller_only: true,
            }],
            watches,
        };
        (Mapper::new(mapping, store.clone()), store)
    }

    fn rs(name: &str, owners: serde_json::Value) -> Arc<Entry> {
        entry(
            &ar("apps", "v1", "ReplicaSet", "replicasets"),
            json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": owners}}),
        )
    }

    #[test]
    fn own_kind_events_queue_the_object_key_at_a_priority_that_follows_the_event() {
        let (m, _) = mapper(vec![]);
        let d = entry(
            &deployments(),
            json!({"metadata": {"name": "web", "namespace": "ns"}}),
        );
        let live = m.keys(&event(&deployments(), EventType::Modified, d.clone(), None));
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].key, ObjectKey::namespaced("ns", "web"));
        assert_eq!(live[0].priority, Priority::High);
        assert!(matches!(
            &live[0].reason,
            Reason::Event {
                via: Via::Own,
                event: EventType::Modified,
                ..
            }
        ));
        let initial = m.keys(&event(
            &deployments(),
            EventType::InitialListItem,
            d.clone(),
            None,
        ));
        assert_eq!(initial[0].priority, Priority::Low);
        // A change a re-list found (missed while the watch was down) waits behind live events too.
        for t in [EventType::Added, EventType::Modified, EventType::Deleted] {
            let relisted = ObjectEvent {
                from_list: true,
                ..event(&deployments(), t, d.clone(), None)
            };
            let keys = m.keys(&relisted);
            assert_eq!((keys.len(), keys[0].priority), (1, Priority::Low), "{t:?}");
        }
    }

    #[test]
    fn owned_objects_queue_their_controller_owner_and_former_owners_on_update() {
        let (m, _) = mapper(vec![]);
        let rsk = ar("apps", "v1", "ReplicaSet", "replicasets");
        let owned_by = |name: &str, controller: bool| json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": format!("u-{name}"), "controller": controller}]);
        let e = event(
            &rsk,
            EventType::Added,
            rs("rs1", owned_by("web", true)),
            None,
        );
        assert_eq!(keys(&m, &e), ["ns/web"]);
        let r = &m.keys(&e)[0].reason;
        assert!(matches!(r, Reason::Event { via: Via::Owner, object, .. } if object.name == "rs1"));
        // Not the controller: ignored when controller_only.
        assert!(
            keys(
                &m,
                &event(
                    &rsk,
                    EventType::Added,
                    rs("rs2", owned_by("web", false)),
                    None
                )
            )
            .is_empty()
        );
        // Owner of another kind or group: ignored.
        let other = json!([{"apiVersion": "batch/v1", "kind": "Deployment", "name": "x", "uid": "u", "controller": true}]);
        assert!(keys(&m, &event(&rsk, EventType::Added, rs("rs3", other), None)).is_empty());
        // Adoption moves the controller: both old and new owners hear about it.
        let moved = event(
            &rsk,
            EventType::Modified,
            rs("rs1", owned_by("api", true)),
            Some(rs("rs1", owned_by("web", true))),
        );
        assert_eq!(keys(&m, &moved), ["ns/api", "ns/web"]);
    }

    #[test]
    fn a_deleted_owned_object_queues_its_owner_from_its_last_known_state() {
        let (m, _) = mapper(vec![]);
        let rsk = ar("apps", "v1", "ReplicaSet", "replicasets");
        let last = rs(
            "rs1",
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true}]),
        );
        let e = event(&rsk, EventType::Deleted, last, None);
        let k = m.keys(&e);
        assert_eq!(k[0].key, ObjectKey::namespaced("ns", "web"));
        assert!(matches!(
            k[0].reason,
            Reason::Event {
                event: EventType::Deleted,
                ..
            }
        ));
    }

    #[test]
    fn watched_objects_map_through_selectors_and_indexes() {
        let pods = ar("", "v1", "Pod", "pods");
        let svcs = ar("", "v1", "Service", "services");
        let nodes = ar("", "v1", "Node", "nodes");
        let (m, store) = mapper(vec![
            WatchMapping {
                name: "service-selects".into(),
                kind: GroupKind::new("", "Service"),
                map_by: MapBy::ObjectSelectsPrimaries {
                    path: FieldPath::parse("spec.selector").expect("p"),
                },
            },
            WatchMapping {
                name: "pods-selected".into(),
                kind: GroupKind::new("", "Pod"),
                map_by: MapBy::PrimariesSelectObject {
                    path: FieldPath::parse("spec.selector").expect("p"),
                },
            },
            WatchMapping {
                name: "node".into(),
                kind: GroupKind::new("", "Node"),
                map_by: MapBy::Index {
                    index: "node".into(),
                    value_from: FieldPath::parse("metadata.name").expect("p"),
                },
            },
        ]);
        let svc = entry(
            &svcs,
            json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"selector": {"app": "web"}}}),
        );
        assert_eq!(
            keys(&m, &event(&svcs, EventType::Added, svc, None)),
            ["ns/web"]
        );
        let other_ns = entry(
            &svcs,
            json!({"metadata": {"name": "s", "namespace": "x"}, "spec": {"selector": {"app": "web"}}}),
        );
        assert!(keys(&m, &event(&svcs, EventType::Added, other_ns, None)).is_empty());
        let empty = entry(
            &svcs,
            json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"selector": {}}}),
        );
        assert!(
            keys(&m, &event(&svcs, EventType::Added, empty, None)).is_empty(),
            "empty selector selects nothing"
        );

        let pod = entry(
            &pods,
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "api"}}}),
        );
        let k = m.keys(&event(&pods, EventType::Added, pod, None));
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].key, ObjectKey::namespaced("ns", "api"));
        assert!(
            matches!(&k[0].reason, Reason::Event { via: Via::Mapping(n), .. } if &**n == "pods-selected")
        );

        let node = entry(&nodes, json!({"metadata": {"name": "n2"}}));
        assert_eq!(
            keys(&m, &event(&nodes, EventType::Modified, node, None)),
            ["ns/api"]
        );
        // A primary whose selector changes is re-read (its resourceVersion changed).
        store
            .apply(obj(
                json!({"metadata": {"name": "api", "namespace": "ns", "resourceVersion": "2"},
                              "spec": {"selector": {"matchLabels": {"app": "other"}}}}),
            ))
            .expect("update");
        let api_pod = entry(
            &pods,
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "api"}}}),
        );
        assert!(keys(&m, &event(&pods, EventType::Added, api_pod, None)).is_empty());
        let other_pod = entry(
            &pods,
            json!({"metadata": {"name": "q", "namespace": "ns", "labels": {"app": "other"}}}),
        );
        assert_eq!(
            keys(&m, &event(&pods, EventType::Added, other_pod, None)),
            ["ns/api"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn mapper_run_queues_keys_from_a_stream_and_resync_requeues_every_primary() {
        let (m, store) = mapper(vec![]);
        let queue: WorkQueue<ObjectKey> = WorkQueue::default();
        let d = entry(
            &deployments(),
            json!({"metadata": {"name": "web", "namespace": "ns"}}),
        );
        let events = futures::stream::iter(vec![
            event(&deployments(), EventType::Added, d.clone(), None),
            event(&deployments(), EventType::Modified, d, None),
        ]);
        m.run(events, queue.clone()).await;
        assert_eq!(queue.len(), 1, "two events on one key coalesce");
        let item = queue.get().await.expect("item");
        queue.done(&item.key);
        let r = tokio::spawn(resync(store, queue.clone(), Duration::from_secs(600)));
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert!(queue.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            let i = queue.get().await.expect("resync item");
            assert_eq!(
                (i.reason.clone(), i.priority),
                (Reason::Resync, Priority::Low)
            );
            got.push(i.key.to_string());
        }
        got.sort();
        assert_eq!(got, ["ns/api", "ns/web"]);
        queue.shutdown();
        r.abort();
    }

    fn watch(name: &str, kind: GroupKind, map_by: MapBy) -> WatchMapping {
        WatchMapping {
            name: name.into(),
            kind,
            map_by,
        }
    }

    #[test]
    fn watched_objects_map_by_owner_references_same_name_namespace_and_all() {
        let svc = ar("", "v1", "Service", "services");
        let namespaces = ar("", "v1", "Namespace", "namespaces");
        let cm = ar("", "v1", "ConfigMap", "configmaps");
        let secret = ar("", "v1", "Secret", "secrets");
        let node = ar("", "v1", "Node", "nodes");
        let (m, store) = mapper(vec![
            watch("svc", GroupKind::new("", "Service"), MapBy::SameName),
            watch(
                "cm",
                GroupKind::new("", "ConfigMap"),
                MapBy::OwnerReferences,
            ),
            watch("ns", GroupKind::new("", "Namespace"), MapBy::Namespace),
            watch("secret", GroupKind::new("", "Secret"), MapBy::Namespace),
            watch("node", GroupKind::new("", "Node"), MapBy::All),
        ]);
        store
            .apply(obj(
                json!({"metadata": {"name": "db", "namespace": "other", "resourceVersion": "1"}}),
            ))
            .expect("apply");
        let added = |r: &ApiResource, v| event(r, EventType::Added, entry(r, v), None);

        // Same name: only a primary that exists.
        let web_svc = added(
            &svc,
            json!({"metadata": {"name": "web", "namespace": "ns"}}),
        );
        assert_eq!(keys(&m, &web_svc), ["ns/web"]);
        let orphan_svc = added(
            &svc,
            json!({"metadata": {"name": "nope", "namespace": "ns"}}),
        );
        assert!(keys(&m, &orphan_svc).is_empty());

        // Owner references: every reference to the reconciled kind, controller or not.
        let owners = json!([
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1"},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "u2", "controller": true},
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u3"}
        ]);
        let owned = added(
            &cm,
            json!({"metadata": {"name": "c", "namespace": "ns", "ownerReferences": owners}}),
        );
        assert_eq!(keys(&m, &owned), ["ns/api", "ns/web"]);

        // Namespace: a namespaced object leads to the primaries of its namespace...
        let s = added(
            &secret,
            json!({"metadata": {"name": "s", "namespace": "other"}}),
        );
        assert_eq!(keys(&m, &s), ["other/db"]);
        // ...and a Namespace to the primaries of the namespace it is.
        let ns = added(&namespaces, json!({"metadata": {"name": "ns"}}));
        assert_eq!(keys(&m, &ns), ["ns/api", "ns/web"]);

        // All: every primary.
        let n = added(&node, json!({"metadata": {"name": "n1"}}));
        assert_eq!(keys(&m, &n), ["ns/api", "ns/web", "other/db"]);
    }

    #[test]
    fn index_lookups_from_namespaced_objects_reach_cluster_scoped_primaries() {
        let nodes = ar("", "v1", "Node", "nodes");
        let pods = ar("", "v1", "Pod", "pods");
        let store = Store::new(nodes, false);
        store
            .add_index(
                "metadata.name",
                FieldPath::parse("metadata.name").expect("path"),
            )
            .expect("index");
        for n in ["n1", "n2"] {
            store
                .apply(obj(
                    json!({"metadata": {"name": n, "resourceVersion": "1"}}),
                ))
                .expect("apply");
        }
        let m = Mapper::new(
            Mapping {
                reconciles: GroupKind::new("", "Node"),
                cluster_scoped: true,
                owns: vec![],
                watches: vec![watch(
                    "pods",
                    GroupKind::new("", "Pod"),
                    MapBy::Index {
                        index: "metadata.name".into(),
                        value_from: FieldPath::parse("spec.nodeName").expect("path"),
                    },
                )],
            },
            store,
        );
        let pod = entry(
            &pods,
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "n2"}}),
        );
        assert_eq!(keys(&m, &event(&pods, EventType::Added, pod, None)), ["n2"]);
    }
}
