//! The `configmap-mirror` example operator, loaded from `target/plugins`, against the
//! in-memory backend: mirrors into selected namespaces, updates, removal when the source goes,
//! is unlabelled or a namespace stops matching, deleted or edited mirrors restored, orphan
//! cleanup, objects it does not own, write conflicts and cache lag.

use std::sync::Arc;

use kubewasm::runtime::{
    Action, ApiError, Backend, DeleteOptions, EventType, Kind, ListQuery, Plugin, Reason,
};
use serde_json::{Value, json};

use crate::support;
use crate::support::lagging_cluster::{Cluster, kind, reconcile, rv};

const ENABLED: &str = "mirror.kubewasm.dev/enabled";
const SELECTOR: &str = "mirror.kubewasm.dev/namespace-selector";

fn configmaps() -> Kind {
    kind("", "v1", "ConfigMap", "configmaps", true)
}

fn namespaces() -> Kind {
    kind("", "v1", "Namespace", "namespaces", false)
}

/// Namespaces team-a (the source's), team-b (env=prod), team-c (env=dev).
async fn setup() -> (Plugin, Arc<Cluster>) {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("configmap-mirror")).await;
    let cluster = Cluster::new(vec![configmaps(), namespaces()]);
    add_namespace(&cluster, "team-a", json!({}));
    add_namespace(&cluster, "team-b", json!({"env": "prod"}));
    add_namespace(&cluster, "team-c", json!({"env": "dev"}));
    (plugin, cluster)
}

fn add_namespace(cluster: &Cluster, name: &str, labels: Value) {
    cluster
        .server
        .insert(
            &namespaces(),
            json!({"metadata": {"name": name, "labels": labels}}),
        )
        .unwrap();
}

fn add_source(cluster: &Cluster, data: Value, selector: Option<&str>) {
    let mut cm = json!({"metadata": {"name": "settings", "namespace": "team-a",
                                     "labels": {ENABLED: "true", "app": "web"}},
                        "data": data});
    if let Some(s) = selector {
        cm["metadata"]["annotations"] = json!({SELECTOR: s});
    }
    cluster.server.insert(&configmaps(), cm).unwrap();
}

fn edit_source(cluster: &Cluster, f: impl FnOnce(&mut Value)) {
    let mut cm = source(cluster);
    f(&mut cm);
    cluster.server.insert(&configmaps(), cm).unwrap();
}

fn source(cluster: &Cluster) -> Value {
    cluster
        .object(&configmaps(), Some("team-a"), "settings")
        .expect("the source exists")
}

fn mirror(cluster: &Cluster, ns: &str) -> Option<Value> {
    cluster.object(&configmaps(), Some(ns), "settings")
}

/// Namespaces holding a ConfigMap named `settings` other than the source.
fn mirrored(cluster: &Cluster) -> Vec<String> {
    let mut out: Vec<String> = cluster
        .server
        .list(&configmaps(), &ListQuery::default())
        .unwrap()
        .iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap())
        .filter(|v| v["metadata"]["name"] == "settings" && v["metadata"]["namespace"] != "team-a")
        .map(|v| v["metadata"]["namespace"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn run_source(plugin: &Plugin, cluster: &Arc<Cluster>) -> Action {
    reconcile(plugin, cluster, "team-a", "settings", Reason::Changed).await
}

#[tokio::test]
async fn a_labelled_configmap_is_mirrored_into_every_other_namespace() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"color": "blue"}), None);

    assert_eq!(run_source(&plugin, &cluster).await, Action::Done);

    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);
    let m = mirror(&cluster, "team-b").unwrap();
    assert_eq!(m["data"], json!({"color": "blue"}));
    assert_eq!(
        m["metadata"]["annotations"]["mirror.kubewasm.dev/source"],
        "team-a/settings"
    );
    assert_eq!(
        m["metadata"]["labels"],
        json!({"app": "web", "app.kubernetes.io/managed-by": "kubewasm-configmap-mirror"}),
        "a mirror keeps the source's labels but is never a source itself"
    );
    let events = cluster.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, "Mirrored");
    assert_eq!(events[0].name, "settings");
    assert_eq!(events[0].namespace.as_deref(), Some("team-a"));
}

#[tokio::test]
async fn source_changes_reach_the_mirrors_and_a_converged_source_writes_nothing() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"color": "blue"}), None);
    run_source(&plugin, &cluster).await;

    edit_source(&cluster, |cm| {
        cm["data"] = json!({"color": "red", "size": "xl"})
    });
    run_source(&plugin, &cluster).await;
    for ns in ["team-b", "team-c"] {
        assert_eq!(
            mirror(&cluster, ns).unwrap()["data"],
            json!({"color": "red", "size": "xl"})
        );
    }

    let before = (
        rv(&mirror(&cluster, "team-b").unwrap()),
        cluster.events().len(),
    );
    assert_eq!(
        reconcile(&plugin, &cluster, "team-a", "settings", Reason::Resync).await,
        Action::Done
    );
    reconcile(&plugin, &cluster, "team-b", "settings", Reason::Resync).await;
    assert_eq!(
        before,
        (
            rv(&mirror(&cluster, "team-b").unwrap()),
            cluster.events().len()
        )
    );
}

#[tokio::test]
async fn the_namespace_selector_picks_the_targets_and_mirrors_go_where_it_stops_matching() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), Some("env=prod"));
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-b"]);

    edit_source(&cluster, |cm| {
        cm["metadata"]["annotations"][SELECTOR] = json!("env in (prod, dev)");
    });
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);

    edit_source(&cluster, |cm| {
        cm["metadata"]["annotations"][SELECTOR] = json!("env=dev");
    });
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-c"]);
}

#[tokio::test]
async fn a_new_namespace_gets_a_mirror_and_one_that_stops_matching_loses_it() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), Some("env"));
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);

    add_namespace(&cluster, "team-d", json!({"env": "test"}));
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-b", "team-c", "team-d"]);

    // team-b loses its label: reconciling the mirror itself (its own event) removes it.
    add_namespace(&cluster, "team-b", json!({}));
    reconcile(&plugin, &cluster, "team-b", "settings", Reason::Changed).await;
    assert_eq!(mirrored(&cluster), ["team-c", "team-d"]);
}

#[tokio::test]
async fn a_terminating_namespace_gets_no_mirror() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(
            &namespaces(),
            json!({"metadata": {"name": "going", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                   "status": {"phase": "Terminating"}}),
        )
        .unwrap();
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);
}

#[tokio::test]
async fn deleting_the_source_deletes_its_mirrors() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    cluster
        .server
        .delete(
            &configmaps(),
            Some("team-a"),
            "settings",
            DeleteOptions::default(),
        )
        .await
        .unwrap();

    reconcile(&plugin, &cluster, "team-a", "settings", Reason::Deleted).await;
    assert!(mirrored(&cluster).is_empty());
}

#[tokio::test]
async fn unlabelling_the_source_deletes_its_mirrors_and_keeps_the_source() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    edit_source(&cluster, |cm| {
        cm["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove(ENABLED);
    });

    run_source(&plugin, &cluster).await;
    assert!(mirrored(&cluster).is_empty());
    assert_eq!(source(&cluster)["data"], json!({"k": "v"}));
    assert_eq!(
        cluster.events().last().map(|e| e.reason.as_str()),
        Some("Unmirrored")
    );
}

#[tokio::test]
async fn mirrors_left_while_the_host_was_down_delete_themselves() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    // The source goes while nothing runs; at start every ConfigMap is reconciled.
    cluster
        .server
        .delete(
            &configmaps(),
            Some("team-a"),
            "settings",
            DeleteOptions::default(),
        )
        .await
        .unwrap();

    for ns in ["team-b", "team-c"] {
        reconcile(&plugin, &cluster, ns, "settings", Reason::Created).await;
    }
    assert!(mirrored(&cluster).is_empty());
}

#[tokio::test]
async fn an_edited_mirror_is_put_back_in_line_with_its_source() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    let mut m = mirror(&cluster, "team-b").unwrap();
    m["data"] = json!({"k": "tampered"});
    cluster.server.insert(&configmaps(), m).unwrap();

    reconcile(&plugin, &cluster, "team-b", "settings", Reason::Changed).await;
    assert_eq!(
        mirror(&cluster, "team-b").unwrap()["data"],
        json!({"k": "v"})
    );
}

#[tokio::test]
async fn a_configmap_that_is_not_a_mirror_is_never_overwritten_or_deleted() {
    let (plugin, cluster) = setup().await;
    let theirs =
        json!({"metadata": {"name": "settings", "namespace": "team-b"}, "data": {"own": "data"}});
    cluster.server.insert(&configmaps(), theirs).unwrap();
    add_source(&cluster, json!({"k": "v"}), None);

    run_source(&plugin, &cluster).await;
    assert_eq!(
        mirror(&cluster, "team-b").unwrap()["data"],
        json!({"own": "data"})
    );
    assert_eq!(
        mirror(&cluster, "team-c").unwrap()["data"],
        json!({"k": "v"})
    );
    let warning = cluster
        .events()
        .into_iter()
        .find(|e| e.event_type == EventType::Warning)
        .expect("a warning");
    assert_eq!(warning.reason, "MirrorBlocked");
    assert!(warning.note.contains("team-b"), "{}", warning.note);

    // Deleting the source removes its mirrors only.
    cluster
        .server
        .delete(
            &configmaps(),
            Some("team-a"),
            "settings",
            DeleteOptions::default(),
        )
        .await
        .unwrap();
    reconcile(&plugin, &cluster, "team-a", "settings", Reason::Deleted).await;
    reconcile(&plugin, &cluster, "team-b", "settings", Reason::Resync).await;
    assert_eq!(mirrored(&cluster), ["team-b"]);
}

#[tokio::test]
async fn unrelated_configmaps_are_left_alone() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(
            &configmaps(),
            json!({"metadata": {"name": "plain", "namespace": "team-a"}, "data": {"x": "1"}}),
        )
        .unwrap();
    let before = rv(&cluster
        .object(&configmaps(), Some("team-a"), "plain")
        .unwrap());
    assert_eq!(
        reconcile(&plugin, &cluster, "team-a", "plain", Reason::Created).await,
        Action::Done
    );
    let after = cluster
        .object(&configmaps(), Some("team-a"), "plain")
        .unwrap();
    assert_eq!(rv(&after), before);
    assert!(cluster.events().is_empty());
    assert_eq!(
        cluster
            .server
            .list(&configmaps(), &ListQuery::default())
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_invalid_selector_warns_and_changes_nothing() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    edit_source(&cluster, |cm| {
        cm["metadata"]["annotations"] = json!({SELECTOR: "env in (prod"});
    });

    assert_eq!(run_source(&plugin, &cluster).await, Action::Done);
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);
    let last = cluster.events().pop().expect("an event");
    assert_eq!(last.reason, "InvalidSelector");
    assert_eq!(last.event_type, EventType::Warning);
}

#[tokio::test]
async fn a_write_conflict_requeues_and_the_next_reconcile_converges() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    edit_source(&cluster, |cm| cm["data"] = json!({"k": "w"}));
    cluster.fail_next(ApiError::Conflict("the object has been modified".into()));

    let action = run_source(&plugin, &cluster).await;
    assert!(matches!(action, Action::RequeueAfter(_)), "{action:?}");
    assert_eq!(run_source(&plugin, &cluster).await, Action::Done);
    for ns in ["team-b", "team-c"] {
        assert_eq!(mirror(&cluster, ns).unwrap()["data"], json!({"k": "w"}));
    }
}

#[tokio::test]
async fn its_own_creates_missing_from_the_cache_requeue_instead_of_failing() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    cluster.freeze().await;
    run_source(&plugin, &cluster).await;

    let action = run_source(&plugin, &cluster).await;
    assert!(matches!(action, Action::RequeueAfter(_)), "{action:?}");

    cluster.thaw();
    assert_eq!(run_source(&plugin, &cluster).await, Action::Done);
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);
    assert_eq!(cluster.events().len(), 1, "one Mirrored event");
}

#[tokio::test]
async fn a_deleted_mirror_is_put_back_by_its_source() {
    let (plugin, cluster) = setup().await;
    add_source(&cluster, json!({"k": "v"}), None);
    run_source(&plugin, &cluster).await;
    cluster
        .server
        .delete(
            &configmaps(),
            Some("team-b"),
            "settings",
            DeleteOptions::default(),
        )
        .await
        .unwrap();

    reconcile(&plugin, &cluster, "team-b", "settings", Reason::Deleted).await;
    assert_eq!(mirrored(&cluster), ["team-b", "team-c"]);
    assert_eq!(
        mirror(&cluster, "team-b").unwrap()["data"],
        json!({"k": "v"})
    );
}
