//! Tests of the store: reads through every index, and a property test that the incrementally
//! maintained indexes always equal indexes rebuilt from scratch.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;

use crate::RawObject;
use crate::testing::pods;

fn pod(
    ns: &str,
    name: &str,
    rv: u32,
    labels: &[(&str, &str)],
    owner: Option<&str>,
    node: Option<&str>,
) -> RawObject {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let owners: Vec<_> = owner
        .into_iter()
        .map(|uid| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{uid}"), "uid": uid}))
        .collect();
    RawObject::from_json(
        &json!({
            "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}"), "resourceVersion": rv.to_string(),
                         "labels": labels, "ownerReferences": owners},
            "spec": {"nodeName": node},
        })
        .to_string(),
    )
    .expect("pod")
}

fn names(entries: Vec<Arc<Entry>>) -> Vec<String> {
    let mut v: Vec<String> = entries.iter().map(|e| e.key().to_string()).collect();
    v.sort();
    v
}

fn sample() -> Store {
    let s = Store::new(pods(), false);
    s.add_index("node", FieldPath::parse("spec.nodeName").expect("path"))
        .expect("index");
    for obj in [
        pod(
            "a",
            "web-1",
            1,
            &[("app", "web"), ("tier", "front")],
            Some("rs1"),
            Some("n1"),
        ),
        pod("a", "web-2", 1, &[("app", "web")], Some("rs1"), Some("n2")),
        pod(
            "b",
            "db-1",
            1,
            &[("app", "db"), ("tier", "back")],
            Some("rs2"),
            Some("n1"),
        ),
        pod("b", "loose", 1, &[], None, None),
    ] {
        s.apply(obj).expect("apply");
    }
    s
}

#[test]
fn store_gets_by_namespace_and_name() {
    let s = sample();
    let e = s.get(Some("a"), "web-1").expect("web-1");
    assert_eq!(e.key(), &ObjectKey::namespaced("a", "web-1"));
    assert!(s.get(Some("b"), "web-1").is_none());
    assert!(s.get(None, "web-1").is_none());
    assert_eq!(s.len(), 4);
}

#[test]
fn store_lists_by_namespace_selector_index_and_owner() {
    let s = sample();
    assert_eq!(names(s.list(Some("a"), None)), ["a/web-1", "a/web-2"]);
    assert_eq!(names(s.list(None, None)).len(), 4);
    let sel = |t: &str| LabelSelector::parse(t).expect("selector");
    assert_eq!(
        names(s.list(None, Some(&sel("app=web")))),
        ["a/web-1", "a/web-2"]
    );
    assert_eq!(
        names(s.list(None, Some(&sel("app in (web,db),tier")))),
        ["a/web-1", "b/db-1"]
    );
    assert_eq!(names(s.list(Some("b"), Some(&sel("tier")))), ["b/db-1"]);
    assert_eq!(
        names(s.list(None, Some(&sel("app!=web")))),
        ["b/db-1", "b/loose"]
    );
    assert_eq!(
        names(s.list(None, Some(&sel("app=none")))),
        Vec::<String>::new()
    );
    assert_eq!(
        names(s.list_by_index("node", "n1").expect("index")),
        ["a/web-1", "b/db-1"]
    );
    assert_eq!(names(s.list_by_owner("rs1")), ["a/web-1", "a/web-2"]);
    assert!(matches!(
        s.list_by_index("nope", "x"),
        Err(Error::NoSuchIndex { .. })
    ));
}

#[test]
fn label_selector_reads_use_the_label_index_unless_every_requirement_is_negative() {
    let s = sample();
    let inner = s.inner.read();
    let cand = |t: &str| inner.candidates(None, &LabelSelector::parse(t).expect("selector"));
    assert_eq!(cand("app=web").map(|c| c.len()), Some(2));
    assert_eq!(
        cand("app in (web,db),tier=back").map(|c| c.len()),
        Some(1),
        "positive sets are intersected"
    );
    assert_eq!(cand("app=web,tier").map(|c| c.len()), Some(1));
    assert_eq!(cand("app=none").map(|c| c.len()), Some(0));
    assert_eq!(cand("!app,tier!=x"), None);
    let in_ns =
        |ns: &str, t: &str| inner.candidates(Some(ns), &LabelSelector::parse(t).expect("selector"));
    assert_eq!(
        in_ns("b", "!app").map(|c| c.len()),
        Some(2),
        "a namespace bounds even negative selectors"
    );
    assert_eq!(in_ns("a", "tier").map(|c| c.len()), Some(1));
    assert_eq!(in_ns("zz", "tier").map(|c| c.len()), Some(0));
}

#[test]
fn updates_move_an_object_between_index_entries() {
    let s = sample();
    let change = s
        .apply(pod(
            "a",
            "web-1",
            2,
            &[("app", "api")],
            Some("rs9"),
            Some("n3"),
        ))
        .expect("apply");
    assert!(
        matches!(change, Change::Modified { ref old, .. } if old.resource_version() == Some("1"))
    );
    assert_eq!(
        names(s.list(None, Some(&LabelSelector::parse("app=web").expect("sel")))),
        ["a/web-2"]
    );
    assert_eq!(
        names(s.list_by_index("node", "n1").expect("index")),
        ["b/db-1"]
    );
    assert_eq!(
        names(s.list_by_index("node", "n3").expect("index")),
        ["a/web-1"]
    );
    assert_eq!(names(s.list_by_owner("rs1")), ["a/web-2"]);
    assert_eq!(names(s.list_by_owner("rs9")), ["a/web-1"]);
}

#[test]
fn delete_removes_from_every_index_and_returns_the_last_state() {
    let s = sample();
    let change = s
        .delete(pod(
            "a",
            "web-1",
            5,
            &[("app", "web")],
            Some("rs1"),
            Some("n1"),
        ))
        .expect("delete");
    let Change::Deleted {
        last,
        cached,
        final_state_known,
    } = change
    else {
        panic!("expected a delete")
    };
    assert_eq!(
        last.resource_version(),
        Some("5"),
        "the final state from the watch event"
    );
    assert!(final_state_known);
    assert_eq!(
        cached
            .and_then(|c| c.resource_version().map(str::to_owned))
            .as_deref(),
        Some("1")
    );
    assert!(s.get(Some("a"), "web-1").is_none());
    assert_eq!(names(s.list_by_owner("rs1")), ["a/web-2"]);
    assert_eq!(
        names(s.list_by_index("node", "n1").expect("index")),
        ["b/db-1"]
    );
    // Deleting something never cached still reports it, with nothing cached.
    let change = s
        .delete(pod("z", "ghost", 1, &[], None, None))
        .expect("delete");
    assert!(matches!(change, Change::Deleted { cached: None, .. }));
}

#[test]
fn replace_reports_added_modified_unchanged_and_deleted() {
    let s = sample();
    let (changes, errors) = s.replace(vec![
        pod(
            "a",
            "web-1",
            1,
            &[("app", "web"), ("tier", "front")],
            Some("rs1"),
            Some("n1"),
        ),
        pod("a", "web-2", 2, &[("app", "web")], Some("rs1"), Some("n2")),
        pod("c", "new", 1, &[], None, None),
    ]);
    assert!(errors.is_empty());
    let mut kinds: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Added(e) => format!("added {}", e.key()),
            Change::Modified { new, .. } => format!("modified {}", new.key()),
            Change::Unchanged(e) => format!("unchanged {}", e.key()),
            Change::Deleted {
                last,
                final_state_known,
                ..
            } => {
                assert!(!final_state_known, "a re-list only knows the cached state");
                format!("deleted {}", last.key())
            }
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "added c/new",
            "deleted b/db-1",
            "deleted b/loose",
            "modified a/web-2",
            "unchanged a/web-1"
        ]
    );
    assert_eq!(names(s.list(None, None)), ["a/web-1", "a/web-2", "c/new"]);
}

#[test]
fn replace_skips_objects_without_a_name_and_says_so() {
    let s = Store::new(pods(), false);
    let nameless = RawObject::from_json(r#"{"metadata": {"namespace": "a"}}"#).expect("obj");
    let (changes, errors) = s.replace(vec![nameless, pod("a", "ok", 1, &[], None, None)]);
    assert_eq!(changes.len(), 1);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("no metadata.name"),
        "{}",
        errors[0]
    );
}

#[test]
fn add_index_backfills_existing_objects_and_rejects_a_conflicting_path() {
    let s = sample();
    s.add_index(
        "app",
        FieldPath::parse("metadata.labels.app").expect("path"),
    )
    .expect("add");
    assert_eq!(
        names(s.list_by_index("app", "web").expect("index")),
        ["a/web-1", "a/web-2"]
    );
    s.add_index(
        "app",
        FieldPath::parse("metadata.labels.app").expect("path"),
    )
    .expect("same twice is fine");
    let err = s
        .add_index("app", FieldPath::parse("spec.x").expect("path"))
        .expect_err("conflict");
    assert!(matches!(err, Error::IndexConflict { .. }));
    // New objects are indexed too.
    s.apply(pod("c", "web-3", 1, &[("app", "web")], None, None))
        .expect("apply");
    assert_eq!(
        names(s.list_by_index("app", "web").expect("index")).len(),
        3
    );
}

#[test]
fn a_list_prepared_object_by_object_indexes_like_replace_even_for_an_index_added_meanwhile() {
    let s = Store::new(pods(), false);
    s.add_index("node", FieldPath::parse("spec.nodeName").expect("path"))
        .expect("index");
    let prepared: Vec<Prepared> = [
        pod("a", "web-1", 1, &[("app", "web")], Some("rs1"), Some("n1")),
        pod("a", "web-2", 1, &[("app", "web")], None, Some("n2")),
        pod("b", "db-1", 1, &[("app", "db")], None, Some("n1")),
    ]
    .into_iter()
    .map(|o| s.prepare(o).expect("prepares"))
    .collect();
    // Declared after the objects were prepared: their values come from the cached JSON.
    s.add_index(
        "app",
        FieldPath::parse("metadata.labels.app").expect("path"),
    )
    .expect("index");
    let changes = s.replace_prepared(prepared);
    assert_eq!(changes.len(), 3);
    assert!(changes.iter().all(|c| matches!(c, Change::Added(_))));
    assert_eq!(
        names(s.list_by_index("node", "n1").expect("index")),
        ["a/web-1", "b/db-1"]
    );
    assert_eq!(
        names(s.list_by_index("app", "web").expect("index")),
        ["a/web-1", "a/web-2"]
    );
    assert_eq!(names(s.list_by_owner("rs1")), ["a/web-1"]);
    let unnamed = RawObject::from_json(r#"{"metadata": {"namespace": "a"}}"#).expect("object");
    assert!(
        s.prepare(unnamed).is_err(),
        "an object without a name is refused"
    );
}

#[test]
fn stats_count_objects_and_json_bytes() {
    let s = sample();
    let st = s.stats();
    assert_eq!(st.objects, 4);
    let json: usize = s.snapshot().iter().map(|e| e.json().len()).sum();
    assert_eq!(st.json_bytes, json);
    assert!(st.entry_bytes > json && st.index_bytes > 0);
    let loose = s.get(Some("b"), "loose").expect("loose").json().len();
    s.delete(pod("b", "loose", 2, &[], None, None))
        .expect("delete");
    assert_eq!(s.stats().json_bytes, json - loose);
    assert_eq!(s.stats().objects, 3);
}

// ---- property test: incremental indexes == indexes rebuilt from scratch ----

type Norm = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Every index as index-name -> value -> keys, independent of slot ids.
fn normalize(inner: &Inner) -> Norm {
    let key = |id: &Id| {
        inner
            .slot(*id)
            .map(|e| e.key().to_string())
            .unwrap_or_else(|| format!("<dangling {id}>"))
    };
    let mut out = Norm::new();
    for (ns, names) in &inner.by_namespace {
        let set = out
            .entry("namespace".into())
            .or_default()
            .entry(ns.clone())
            .or_default();
        for id in names.values() {
            set.insert(key(id));
        }
    }
    for (k, idx) in &inner.by_label {
        out.entry("label-exists".into())
            .or_default()
            .insert(k.clone(), idx.all.iter().map(key).collect());
        for (v, ids) in &idx.by_value {
            out.entry("label".into())
                .or_default()
                .insert(format!("{k}={v}"), ids.iter().map(key).collect());
        }
    }
    for (ns, ids) in &inner.ns_ids {
        out.entry("namespace-ids".into())
            .or_default()
            .insert(ns.clone(), ids.iter().map(key).collect());
    }
    for (uid, ids) in &inner.by_owner {
        out.entry("owner".into())
            .or_default()
            .insert(uid.clone(), ids.iter().map(key).collect());
    }
    for (name, idx) in &inner.fields {
        for (v, ids) in &idx.by_value {
            out.entry(format!("field:{name}"))
                .or_default()
                .insert(v.clone(), ids.iter().map(key).collect());
        }
        let forward: BTreeSet<String> = idx.values.keys().map(key).collect();
        out.entry(format!("field-forward:{name}"))
            .or_default()
            .insert(String::new(), forward);
    }
    out.entry("objects".into()).or_default().insert(
        String::new(),
        inner.entries().map(|e| e.key().to_string()).collect(),
    );
    out
}

fn rebuilt(s: &Store) -> Norm {
    let fresh = Store::new(pods(), false);
    for (name, path) in s.indexes() {
        fresh.add_index(&name, path).expect("index");
    }
    for e in s.snapshot() {
        fresh
            .apply(
                RawObject::from_json(std::str::from_utf8(e.json()).expect("UTF-8"))
                    .expect("object"),
            )
            .expect("apply");
    }
    let inner = fresh.inner.read();
    normalize(&inner)
}

/// namespace, name, labels, owner, node: the generated parts of one pod.
type PodSpec = (u8, u8, Vec<(u8, u8)>, Option<u8>, Option<u8>);

#[derive(Clone, Debug)]
enum Op {
    Apply {
        ns: u8,
        name: u8,
        labels: Vec<(u8, u8)>,
        owner: Option<u8>,
        node: Option<u8>,
    },
    Delete {
        ns: u8,
        name: u8,
    },
    Replace(Vec<PodSpec>),
    AddIndex(u8),
}

fn labels_strategy() -> impl Strategy<Value = Vec<(u8, u8)>> {
    prop::collection::vec((0u8..3, 0u8..3), 0..3)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..2, 0u8..4, labels_strategy(), prop::option::of(0u8..3), prop::option::of(0u8..3))
            .prop_map(|(ns, name, labels, owner, node)| Op::Apply { ns, name, labels, owner, node }),
        3 => (0u8..2, 0u8..4).prop_map(|(ns, name)| Op::Delete { ns, name }),
        1 => prop::collection::vec((0u8..2, 0u8..4, labels_strategy(), prop::option::of(0u8..3), prop::option::of(0u8..3)), 0..6)
            .prop_map(Op::Replace),
        1 => (0u8..2).prop_map(Op::AddIndex),
    ]
}

fn make(
    ns: u8,
    name: u8,
    rv: u32,
    labels: &[(u8, u8)],
    owner: Option<u8>,
    node: Option<u8>,
) -> RawObject {
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (format!("k{k}"), format!("v{v}")))
        .collect();
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let owner = owner.map(|o| format!("uid{o}"));
    let node = node.map(|n| format!("node{n}"));
    pod(
        &format!("ns{ns}"),
        &format!("p{name}"),
        rv,
        &labels,
        owner.as_deref(),
        node.as_deref(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn indexes_always_equal_indexes_rebuilt_from_scratch(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let s = Store::new(pods(), false);
        s.add_index("node", FieldPath::parse("spec.nodeName").expect("path")).expect("index");
        let mut rv = 0;
        for op in ops {
            rv += 1;
            match op {
                Op::Apply { ns, name, labels, owner, node } => {
                    s.apply(make(ns, name, rv, &labels, owner, node)).expect("apply");
                }
                Op::Delete { ns, name } => {
                    s.delete(make(ns, name, rv, &[], None, None)).expect("delete");
                }
                Op::Replace(objs) => {
                    // A list holds each key once.
                    let mut seen = BTreeSet::new();
                    let objs = objs
                        .into_iter()
                        .filter(|(ns, name, ..)| seen.insert((*ns, *name)))
                        .map(|(ns, name, labels, owner, node)| make(ns, name, rv, &labels, owner, node))
                        .collect();
                    let (_, errors) = s.replace(objs);
                    prop_assert!(errors.is_empty());
                }
                Op::AddIndex(i) => {
                    let path = if i == 0 { "metadata.labels.k0" } else { "metadata.ownerReferences.uid" };
                    s.add_index(&format!("extra{i}"), FieldPath::parse(path).expect("path")).expect("index");
                }
            }
            let incremental = normalize(&s.inner.read());
            prop_assert_eq!(&incremental, &rebuilt(&s));
            let json: usize = s.snapshot().iter().map(|e| e.json().len()).sum();
            prop_assert_eq!(s.stats().json_bytes, json);
            prop_assert_eq!(s.len(), s.snapshot().len());
        }
    }

    #[test]
    fn selector_reads_equal_a_full_scan(
        objs in prop::collection::vec((0u8..2, 0u8..6, labels_strategy()), 0..12),
        exprs in prop::collection::vec((0u8..6, 0u8..3, 0u8..3), 1..3),
        ns in prop::option::of(0u8..2),
    ) {
        let s = Store::new(pods(), false);
        for (n, name, labels) in &objs {
            s.apply(make(*n, *name, 1, labels, None, None)).expect("apply");
        }
        let text: Vec<String> = exprs
            .iter()
            .map(|(op, k, v)| match op {
                0 => format!("k{k}=v{v}"),
                1 => format!("k{k}!=v{v}"),
                2 => format!("k{k} in (v{v},v{})", (v + 1) % 3),
                3 => format!("k{k} notin (v{v})"),
                4 => format!("k{k}"),
                _ => format!("!k{k}"),
            })
            .collect();
        let selector = LabelSelector::parse(&text.join(",")).expect("selector");
        let ns = ns.map(|n| format!("ns{n}"));
        let got = names(s.list(ns.as_deref(), Some(&selector)));
        let want = names(
            s.snapshot()
                .into_iter()
                .filter(|e| ns.as_deref().is_none_or(|n| e.namespace() == Some(n)) && selector.matches(e.labels()))
                .collect(),
        );
        prop_assert_eq!(got, want);
    }
}
