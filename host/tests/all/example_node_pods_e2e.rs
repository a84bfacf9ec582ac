//! The `node-pods` operator end to end: the real manager against the embedded API server.
//! Summaries follow Pods bound, re-phased, moved and deleted, and Nodes deleted and
//! re-created; the Pod -> Node mapping goes through the declared `spec.nodeName` index.

use serde_json::{Value, json};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;
use crate::support::example_e2e::{
    CM, NODE, POD, absent, create, delete, merge, merge_status, summary_is,
};

const SYSTEM: Option<&str> = Some("kube-system");

async fn start() -> TestCluster {
    let cluster = TestCluster::start().await;
    cluster.start_plugin(&support::example("node-pods")).await;
    cluster
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
}

fn pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_follow_pods_and_nodes_through_creates_changes_and_deletes() {
    let cluster = start().await;
    let c = &cluster;
    create(c, NODE, node("worker-1")).await;
    create(c, NODE, node("worker-2")).await;
    summary_is(c, "worker-1", &[]).await;
    summary_is(c, "worker-2", &[]).await;

    create(c, POD, pod("web-1", "worker-1")).await;
    create(c, POD, pod("web-2", "worker-1")).await;
    create(c, POD, pod("batch", "worker-2")).await;
    summary_is(c, "worker-1", &[("Pending", 2)]).await;
    summary_is(c, "worker-2", &[("Pending", 1)]).await;

    // Phases reported by the "kubelet".
    merge_status(
        c,
        POD,
        Some("default"),
        "web-1",
        json!({"status": {"phase": "Running"}}),
    )
    .await;
    merge_status(
        c,
        POD,
        Some("default"),
        "batch",
        json!({"status": {"phase": "Succeeded"}}),
    )
    .await;
    summary_is(c, "worker-1", &[("Pending", 1), ("Running", 1)]).await;
    summary_is(c, "worker-2", &[("Succeeded", 1)]).await;

    // A deleted Pod leaves its Node's summary.
    delete(c, POD, Some("default"), "web-2").await;
    summary_is(c, "worker-1", &[("Running", 1)]).await;

    // An edited summary is rewritten.
    merge(
        c,
        CM,
        SYSTEM,
        "node-pods-worker-1",
        json!({"data": {"Running": "99"}}),
    )
    .await;
    summary_is(c, "worker-1", &[("Running", 1)]).await;
    // A deleted summary is written again.
    delete(c, CM, SYSTEM, "node-pods-worker-1").await;
    summary_is(c, "worker-1", &[("Running", 1)]).await;

    // A deleted Node loses its summary; re-created, it gets a new one with its new uid.
    delete(c, NODE, None, "worker-2").await;
    eventually("the summary of worker-2 deleted", || async move {
        absent(c, CM, SYSTEM, "node-pods-worker-2")
            .await
            .then_some(())
    })
    .await;
    create(c, NODE, node("worker-2")).await;
    summary_is(c, "worker-2", &[("Succeeded", 1)]).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pods_created_at_once_are_all_counted() {
    let cluster = start().await;
    let c = &cluster;
    create(c, NODE, node("busy")).await;
    for i in 0..40 {
        create(c, POD, pod(&format!("p-{i}"), "busy")).await;
    }
    for i in 0..10 {
        merge_status(
            c,
            POD,
            Some("default"),
            &format!("p-{i}"),
            json!({"status": {"phase": "Failed"}}),
        )
        .await;
    }
    summary_is(c, "busy", &[("Pending", 30), ("Failed", 10)]).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_name_is_longer_than_a_label_value_gets_a_summary() {
    let cluster = start().await;
    let c = &cluster;
    let name = format!("ip-10-0-0-1.{}.compute.internal", "eu-west".repeat(9));
    assert!(name.len() > 63);
    create(c, NODE, node(&name)).await;
    create(c, POD, pod("web", &name)).await;
    summary_is(c, &name, &[("Pending", 1)]).await;
    cluster.stop().await;
}
