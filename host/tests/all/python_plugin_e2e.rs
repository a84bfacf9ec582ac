//! The Python `labeler` plugin end to end: the real manager (informers, queues, cache-backed
//! reads, kube::Client writes) against the embedded API server. It labels enabled ConfigMaps
//! from their Namespace or a ServiceAccount, follows a Namespace's label change through its
//! watch and index, records Events, and reports a Secret source it may not read.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;

const ENABLED: &str = "labeler.kubewasm.dev/enabled";
const COPIED_FROM: &str = "labeler.kubewasm.dev/copied-from";

fn namespace(name: &str, team: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"team": team}}})
}

fn configmap(ns: &str, name: &str, labels: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
           "data": {"k": "v"}})
}

/// The ConfigMap as the API server has it, if it exists.
async fn get_cm(c: &TestCluster, ns: &str, name: &str) -> Option<Value> {
    let obj = c
        .dynamic("v1", "ConfigMap", "configmaps", Some(ns))
        .get_opt(name)
        .await
        .ok()??;
    serde_json::to_value(obj).ok()
}

/// Waits until `ns/name` carries `team=<team>`, and returns it.
async fn labelled(c: &TestCluster, ns: &str, name: &str, team: &str) -> Value {
    let what = format!("{ns}/{name} labelled team={team}");
    eventually(&what, || async move {
        get_cm(c, ns, name)
            .await
            .filter(|cm| cm["metadata"]["labels"]["team"] == team)
    })
    .await
}

/// Waits for an Event about ConfigMap `ns/name` with `reason` and a note containing `note`.
async fn event(c: &TestCluster, ns: &str, name: &str, reason: &str, note: &str) -> Value {
    let events = c.dynamic("events.k8s.io/v1", "Event", "events", Some(ns));
    let what = format!("a {reason} Event about {ns}/{name} saying {note:?}");
    eventually(&what, || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items.into_iter().map(|e| e.data).find(|e| {
                e["regarding"]["name"] == name
                    && e["reason"] == reason
                    && e["note"].as_str().is_some_and(|n| n.contains(note))
            })
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_plugin_labels_configmaps_from_their_namespace_through_the_real_host() {
    let cluster = TestCluster::start().await;
    cluster
        .create("namespaces", namespace("demo", "payments"))
        .await;
    // Not enabled: outside the plugin's label selector, never touched.
    cluster
        .create(
            "configmaps",
            configmap("demo", "plain", json!({}), json!({})),
        )
        .await;
    cluster.start_plugin(&support::example("labeler")).await;
    cluster
        .create(
            "configmaps",
            configmap("demo", "app", json!({ENABLED: "true"}), json!({})),
        )
        .await;

    let cm = labelled(&cluster, "demo", "app", "payments").await;
    assert_eq!(cm["metadata"]["annotations"][COPIED_FROM], "Namespace/demo");
    assert_eq!(cm["data"]["k"], "v");
    let labeled = event(
        &cluster,
        "demo",
        "app",
        "Labeled",
        "copied team=payments from Namespace/demo",
    )
    .await;
    assert_eq!(labeled["type"], "Normal");
    assert_eq!(labeled["reportingController"], "kubewasm/labeler");

    // A Namespace's label changes: its watch maps it through the `by-namespace` index.
    cluster
        .dynamic("v1", "Namespace", "namespaces", None)
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "billing"}}})),
        )
        .await
        .expect("patching the namespace");
    labelled(&cluster, "demo", "app", "billing").await;

    // Another source, read through the informer the manifest's `get` grant starts.
    cluster
        .create(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "builder", "namespace": "demo", "labels": {"tier": "gold"}}}),
        )
        .await;
    cluster
        .create(
            "configmaps",
            configmap(
                "demo",
                "worker",
                json!({ENABLED: "true"}),
                json!({"labeler.kubewasm.dev/from": "ServiceAccount/builder",
                       "labeler.kubewasm.dev/labels": "tier"}),
            ),
        )
        .await;
    let worker = eventually("demo/worker labelled tier=gold", || {
        let c = &cluster;
        async move {
            get_cm(c, "demo", "worker")
                .await
                .filter(|cm| cm["metadata"]["labels"]["tier"] == "gold")
        }
    })
    .await;
    assert_eq!(
        worker["metadata"]["annotations"][COPIED_FROM],
        "ServiceAccount/builder"
    );

    let plain = get_cm(&cluster, "demo", "plain")
        .await
        .expect("plain exists");
    assert!(
        plain["metadata"]["labels"].get("team").is_none(),
        "a ConfigMap without {ENABLED}=true is not reconciled: {plain}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_source_is_refused_by_the_host_and_reported_by_the_python_plugin() {
    let cluster = TestCluster::start().await;
    cluster
        .create("namespaces", namespace("demo", "payments"))
        .await;
    cluster.start_plugin(&support::example("labeler")).await;
    cluster
        .create(
            "configmaps",
            configmap(
                "demo",
                "app",
                json!({ENABLED: "true"}),
                json!({"labeler.kubewasm.dev/from": "Secret/token"}),
            ),
        )
        .await;

    let warning = event(
        &cluster,
        "demo",
        "app",
        "SourceForbidden",
        "cannot read Secret/token",
    )
    .await;
    assert_eq!(warning["type"], "Warning");
    assert!(
        warning["note"]
            .as_str()
            .is_some_and(|n| n.contains("does not declare kind Secret")),
        "the host's reason reaches the Event: {warning}"
    );
    let cm = get_cm(&cluster, "demo", "app").await.expect("app exists");
    assert!(
        cm["metadata"]["labels"].get("team").is_none(),
        "nothing copied: {cm}"
    );
    cluster.stop().await;
}
