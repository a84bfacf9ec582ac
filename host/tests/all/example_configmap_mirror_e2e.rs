//! The `configmap-mirror` operator end to end: the real manager against the embedded API
//! server, with the sample objects of `examples/`. Mirrors follow the source and the
//! namespaces' labels, go when the source goes or is unlabelled, and are cleaned up when the
//! source was deleted while the plugin was stopped.

use serde_json::{Value, json};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;
use crate::support::example_e2e::{CM, NS, create, delete, kubectl_apply, list, merge, observe};

const NAME: &str = "shared-settings";

async fn start() -> (TestCluster, tempfile::TempDir) {
    let cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    cluster
        .start_plugin(&support::example("configmap-mirror"))
        .await;
    kubectl_apply(&cluster, dir.path(), "configmap-mirror/namespaces.yaml");
    (cluster, dir)
}

/// Namespaces holding a mirror of team-a/shared-settings, sorted.
async fn mirrors(c: &TestCluster) -> Vec<String> {
    let mut out: Vec<String> = list(c, CM, None)
        .await
        .iter()
        .filter(|cm| {
            cm["metadata"]["annotations"]["mirror.kubewasm.dev/source"] == "team-a/shared-settings"
        })
        .filter_map(|cm| cm["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

async fn mirrored_into(c: &TestCluster, want: &[&str]) {
    let what = format!("mirrors in exactly {want:?}");
    eventually(
        &what,
        || async move { (mirrors(c).await == want).then_some(()) },
    )
    .await;
}

async fn data_everywhere(c: &TestCluster, namespaces: &[&str], data: Value) {
    let what = format!("mirrors in {namespaces:?} holding {data}");
    let data = &data;
    eventually(&what, || async move {
        for ns in namespaces {
            if observe(c, CM, Some(ns), NAME).await?["data"] != *data {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_follow_the_source_and_the_namespaces_through_changes_and_deletes() {
    let (cluster, dir) = start().await;
    let c = &cluster;
    kubectl_apply(c, dir.path(), "configmap-mirror/source.yaml"); // selector env=prod
    mirrored_into(c, &["team-b"]).await;
    let m = observe(c, CM, Some("team-b"), NAME).await.unwrap();
    assert_eq!(
        m["data"],
        json!({"log-level": "info", "feature-flags": "search,checkout"})
    );

    // A namespace starts matching; a new matching one appears; the source changes.
    merge(
        c,
        NS,
        None,
        "team-c",
        json!({"metadata": {"labels": {"env": "prod"}}}),
    )
    .await;
    mirrored_into(c, &["team-b", "team-c"]).await;
    create(
        c,
        NS,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team-d", "labels": {"env": "prod"}}}),
    )
    .await;
    mirrored_into(c, &["team-b", "team-c", "team-d"]).await;
    merge(
        c,
        CM,
        Some("team-a"),
        NAME,
        json!({"data": {"log-level": "debug"}}),
    )
    .await;
    data_everywhere(
        c,
        &["team-b", "team-c", "team-d"],
        json!({"log-level": "debug", "feature-flags": "search,checkout"}),
    )
    .await;

    // A deleted mirror comes back; an edited one is put back.
    delete(c, CM, Some("team-c"), NAME).await;
    merge(
        c,
        CM,
        Some("team-d"),
        NAME,
        json!({"data": {"log-level": "tampered"}}),
    )
    .await;
    data_everywhere(
        c,
        &["team-b", "team-c", "team-d"],
        json!({"log-level": "debug", "feature-flags": "search,checkout"}),
    )
    .await;

    // A namespace stops matching; the selector changes; the source is unlabelled, then deleted.
    merge(
        c,
        NS,
        None,
        "team-b",
        json!({"metadata": {"labels": {"env": null}}}),
    )
    .await;
    mirrored_into(c, &["team-c", "team-d"]).await;
    merge(
        c,
        CM,
        Some("team-a"),
        NAME,
        json!({"metadata": {"annotations": {"mirror.kubewasm.dev/namespace-selector": null}}}),
    )
    .await;
    mirrored_into(
        c,
        &[
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "team-b",
            "team-c",
            "team-d",
        ],
    )
    .await;
    merge(
        c,
        CM,
        Some("team-a"),
        NAME,
        json!({"metadata": {"labels": {"mirror.kubewasm.dev/enabled": null}}}),
    )
    .await;
    mirrored_into(c, &[]).await;
    merge(
        c,
        CM,
        Some("team-a"),
        NAME,
        json!({"metadata": {"labels": {"mirror.kubewasm.dev/enabled": "true"},
                            "annotations": {"mirror.kubewasm.dev/namespace-selector": "env=prod"}}}),
    )
    .await;
    mirrored_into(c, &["team-c", "team-d"]).await;
    delete(c, CM, Some("team-a"), NAME).await;
    mirrored_into(c, &[]).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_of_a_source_deleted_while_the_plugin_was_stopped_are_removed_at_start() {
    let (cluster, dir) = start().await;
    let c = &cluster;
    kubectl_apply(c, dir.path(), "configmap-mirror/source.yaml");
    merge(
        c,
        NS,
        None,
        "team-c",
        json!({"metadata": {"labels": {"env": "prod"}}}),
    )
    .await;
    mirrored_into(c, &["team-b", "team-c"]).await;

    assert!(
        cluster.manager.stop("configmap-mirror").await,
        "the plugin was running"
    );
    delete(c, CM, Some("team-a"), NAME).await;
    assert_eq!(
        mirrors(c).await,
        ["team-b", "team-c"],
        "nothing ran meanwhile"
    );

    cluster
        .start_plugin(&support::example("configmap-mirror"))
        .await;
    mirrored_into(c, &[]).await;
    cluster.stop().await;
}
