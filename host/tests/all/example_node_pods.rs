//! The `node-pods` example operator, loaded from `target/plugins`, against the in-memory
//! backend: a ConfigMap per Node counting its Pods by phase through the `spec.nodeName`
//! field index, kept current as Pods change, removed with the Node, and correct under write
//! conflicts and cache lag.

use std::sync::Arc;

use kubewasm::runtime::{
    Action, ApiError, Backend, DeleteOptions, Kind, Plugin, Reason, WatchMapping,
};
use serde_json::{Value, json};

use crate::support;
use crate::support::lagging_cluster::{Cluster, kind, reconcile, rv};

const SYSTEM: &str = "kube-system";

fn nodes() -> Kind {
    kind("", "v1", "Node", "nodes", false)
}

fn pods() -> Kind {
    kind("", "v1", "Pod", "pods", true)
}

fn configmaps() -> Kind {
    kind("", "v1", "ConfigMap", "configmaps", true)
}

async fn setup() -> (Plugin, Arc<Cluster>) {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("node-pods")).await;
    let cluster = Cluster::new(vec![nodes(), pods(), configmaps()]);
    (plugin, cluster)
}

fn add_node(cluster: &Cluster, name: &str, uid: &str) {
    cluster
        .server
        .insert(
            &nodes(),
            json!({"metadata": {"name": name, "uid": uid}, "status": {"capacity": {"pods": "110"}}}),
        )
        .unwrap();
}

fn add_pod(cluster: &Cluster, ns: &str, name: &str, node: Option<&str>, phase: Option<&str>) {
    let mut pod = json!({"metadata": {"name": name, "namespace": ns},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    if let Some(phase) = phase {
        pod["status"] = json!({"phase": phase});
    }
    cluster.server.insert(&pods(), pod).unwrap();
}

fn summary(cluster: &Cluster, node: &str) -> Option<Value> {
    cluster.object(&configmaps(), Some(SYSTEM), &format!("node-pods-{node}"))
}

fn counts(cm: &Value) -> Vec<(String, String)> {
    cm["data"]
        .as_object()
        .expect("the summary has data")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn expect(
    pending: u32,
    running: u32,
    succeeded: u32,
    failed: u32,
    unknown: u32,
) -> Vec<(String, String)> {
    let total = pending + running + succeeded + failed + unknown;
    [
        ("Failed", failed),
        ("Pending", pending),
        ("Running", running),
        ("Succeeded", succeeded),
        ("Unknown", unknown),
        ("total", total),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_string()))
    .collect()
}

async fn run(plugin: &Plugin, cluster: &Arc<Cluster>, node: &str) -> Action {
    reconcile(plugin, cluster, "", node, Reason::Changed).await
}

#[tokio::test]
async fn a_node_gets_a_summary_counting_only_its_own_pods_by_phase() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    add_node(&cluster, "n2", "node-uid-2");
    add_pod(&cluster, "a", "web-1", Some("n1"), Some("Running"));
    add_pod(&cluster, "b", "web-2", Some("n1"), Some("Pending"));
    add_pod(&cluster, "b", "fresh", Some("n1"), None);
    add_pod(&cluster, "a", "job", Some("n1"), Some("Succeeded"));
    add_pod(&cluster, "a", "elsewhere", Some("n2"), Some("Running"));
    add_pod(&cluster, "a", "unscheduled", None, None);

    assert_eq!(run(&plugin, &cluster, "n1").await, Action::Done);

    let cm = summary(&cluster, "n1").expect("the summary of n1 exists");
    assert_eq!(counts(&cm), expect(2, 1, 1, 0, 0));
    let owner = &cm["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], "n1");
    assert_eq!(owner["uid"], "node-uid-1");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubewasm-node-pods"
    );
    assert!(
        summary(&cluster, "n2").is_none(),
        "only the reconciled Node"
    );
}

#[tokio::test]
async fn pod_changes_update_the_summary_and_an_unchanged_node_writes_nothing() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    add_pod(&cluster, "a", "p1", Some("n1"), Some("Running"));
    add_pod(&cluster, "a", "p2", Some("n1"), Some("Pending"));
    run(&plugin, &cluster, "n1").await;

    add_pod(&cluster, "a", "p2", Some("n1"), Some("Failed"));
    add_pod(&cluster, "a", "p3", Some("n1"), Some("Unknown"));
    cluster
        .server
        .delete(&pods(), Some("a"), "p1", DeleteOptions::default())
        .await
        .unwrap();
    run(&plugin, &cluster, "n1").await;
    let cm = summary(&cluster, "n1").unwrap();
    assert_eq!(counts(&cm), expect(0, 0, 0, 1, 1));

    assert_eq!(
        reconcile(&plugin, &cluster, "", "n1", Reason::Resync).await,
        Action::Done
    );
    assert_eq!(rv(&summary(&cluster, "n1").unwrap()), rv(&cm));
}

#[tokio::test]
async fn a_node_without_pods_has_all_zero_counts() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "idle", "node-uid-9");
    run(&plugin, &cluster, "idle").await;
    assert_eq!(
        counts(&summary(&cluster, "idle").unwrap()),
        expect(0, 0, 0, 0, 0)
    );
}

#[tokio::test]
async fn the_summary_goes_with_the_node_but_a_configmap_it_did_not_write_stays() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    add_pod(&cluster, "a", "p1", Some("n1"), Some("Running"));
    run(&plugin, &cluster, "n1").await;
    cluster
        .server
        .delete(&nodes(), None, "n1", DeleteOptions::default())
        .await
        .unwrap();

    assert_eq!(
        reconcile(&plugin, &cluster, "", "n1", Reason::Deleted).await,
        Action::Done
    );
    assert!(summary(&cluster, "n1").is_none());

    // Someone's own ConfigMap with the name a summary would have: never deleted.
    cluster
        .server
        .insert(
            &configmaps(),
            json!({"metadata": {"name": "node-pods-ghost", "namespace": SYSTEM}, "data": {"mine": "yes"}}),
        )
        .unwrap();
    reconcile(&plugin, &cluster, "", "ghost", Reason::Deleted).await;
    assert!(summary(&cluster, "ghost").is_some());
}

#[tokio::test]
async fn a_configmap_it_did_not_write_is_not_overwritten() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    cluster
        .server
        .insert(
            &configmaps(),
            json!({"metadata": {"name": "node-pods-n1", "namespace": SYSTEM}, "data": {"mine": "yes"}}),
        )
        .unwrap();
    run(&plugin, &cluster, "n1").await;
    assert_eq!(
        summary(&cluster, "n1").unwrap()["data"],
        json!({"mine": "yes"})
    );
    let events = cluster.events();
    assert_eq!(events.last().map(|e| e.reason.as_str()), Some("NameTaken"));
    assert_eq!(events.last().map(|e| e.kind.kind.as_str()), Some("Node"));
}

#[tokio::test]
async fn a_re_created_node_takes_over_the_summary_of_its_predecessor() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    run(&plugin, &cluster, "n1").await;
    cluster
        .server
        .delete(&nodes(), None, "n1", DeleteOptions::default())
        .await
        .unwrap();
    add_node(&cluster, "n1", "node-uid-2");
    add_pod(&cluster, "a", "p1", Some("n1"), Some("Running"));

    run(&plugin, &cluster, "n1").await;
    let cm = summary(&cluster, "n1").unwrap();
    assert_eq!(cm["metadata"]["ownerReferences"][0]["uid"], "node-uid-2");
    assert_eq!(counts(&cm), expect(0, 1, 0, 0, 0));
}

#[tokio::test]
async fn a_write_conflict_requeues_and_the_next_reconcile_converges() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    run(&plugin, &cluster, "n1").await;
    add_pod(&cluster, "a", "p1", Some("n1"), Some("Running"));
    cluster.fail_next(ApiError::Conflict("the object has been modified".into()));

    let action = run(&plugin, &cluster, "n1").await;
    assert!(matches!(action, Action::RequeueAfter(_)), "{action:?}");
    assert_eq!(
        counts(&summary(&cluster, "n1").unwrap()),
        expect(0, 0, 0, 0, 0)
    );

    assert_eq!(run(&plugin, &cluster, "n1").await, Action::Done);
    assert_eq!(
        counts(&summary(&cluster, "n1").unwrap()),
        expect(0, 1, 0, 0, 0)
    );
}

#[tokio::test]
async fn its_own_create_missing_from_the_cache_requeues_instead_of_failing() {
    let (plugin, cluster) = setup().await;
    add_node(&cluster, "n1", "node-uid-1");
    add_pod(&cluster, "a", "p1", Some("n1"), Some("Running"));
    cluster.freeze().await;
    run(&plugin, &cluster, "n1").await;

    // The cache has not seen the summary yet: the create meets `already-exists`.
    let action = run(&plugin, &cluster, "n1").await;
    assert!(matches!(action, Action::RequeueAfter(_)), "{action:?}");

    cluster.thaw();
    assert_eq!(run(&plugin, &cluster, "n1").await, Action::Done);
    assert_eq!(
        counts(&summary(&cluster, "n1").unwrap()),
        expect(0, 1, 0, 0, 0)
    );
}

#[tokio::test]
async fn the_manifest_maps_pods_to_their_node_through_declared_indexes() {
    let (plugin, _) = setup().await;
    let m = plugin.manifest();
    assert_eq!(m.reconciles.kind.kind, "Node");
    let by_node = m
        .indexes
        .iter()
        .find(|i| i.name == "by-node")
        .expect("an index by-node");
    assert_eq!(by_node.kind.kind, "Pod");
    let pod_watch = m
        .watches
        .iter()
        .find(|w| w.kind.kind == "Pod")
        .expect("Pods are watched");
    assert!(
        matches!(&pod_watch.mapping, WatchMapping::IndexLookup { index, .. } if index == "by-name"),
        "{:?}",
        pod_watch.mapping
    );
}
