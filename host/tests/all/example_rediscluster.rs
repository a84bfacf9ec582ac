//! The `rediscluster` example operator, loaded from `target/plugins`, against the in-memory
//! backend: StatefulSet, Service, status, finalizer, Events, scaling, image changes, invalid
//! specs, objects it does not own, write conflicts and cache lag.

use std::sync::Arc;
use std::time::Duration;

use kubewasm::runtime::{
    Action, ApiError, Backend, DeleteOptions, EventType, Kind, Plugin, Reason,
};
use serde_json::{Value, json};

use crate::support;
use crate::support::lagging_cluster::{Cluster, kind, reconcile, rv};

const NS: &str = "demo";
const NAME: &str = "cache";
const FINALIZER: &str = "cache.example.com/cleanup";

fn redisclusters() -> Kind {
    kind(
        "cache.example.com",
        "v1alpha1",
        "RedisCluster",
        "redisclusters",
        true,
    )
}

fn statefulsets() -> Kind {
    kind("apps", "v1", "StatefulSet", "statefulsets", true)
}

fn services() -> Kind {
    kind("", "v1", "Service", "services", true)
}

async fn setup() -> (Plugin, Arc<Cluster>) {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::example("rediscluster")).await;
    let cluster = Cluster::new(vec![redisclusters(), statefulsets(), services()]);
    (plugin, cluster)
}

fn redis(replicas: Value, image: &str) -> Value {
    json!({
        "apiVersion": "cache.example.com/v1alpha1", "kind": "RedisCluster",
        "metadata": {"name": NAME, "namespace": NS, "uid": "rc-uid-1", "generation": 1},
        "spec": {"replicas": replicas, "image": image}
    })
}

async fn run(plugin: &Plugin, cluster: &Arc<Cluster>) -> Action {
    reconcile(plugin, cluster, NS, NAME, Reason::Changed).await
}

fn rc(cluster: &Cluster) -> Value {
    cluster
        .object(&redisclusters(), Some(NS), NAME)
        .expect("the RedisCluster exists")
}

fn sts(cluster: &Cluster) -> Value {
    cluster
        .object(&statefulsets(), Some(NS), NAME)
        .expect("the StatefulSet exists")
}

/// Changes the stored RedisCluster as a user would (a new resourceVersion and generation).
fn edit(cluster: &Cluster, f: impl FnOnce(&mut Value)) {
    let mut obj = rc(cluster);
    f(&mut obj);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    obj["metadata"]["generation"] = json!(generation + 1);
    cluster.server.insert(&redisclusters(), obj).unwrap();
}

/// What a StatefulSet controller would report.
fn set_ready(cluster: &Cluster, ready: i64) {
    let mut s = sts(cluster);
    s["status"] = json!({"readyReplicas": ready});
    cluster.server.insert(&statefulsets(), s).unwrap();
}

fn reasons(cluster: &Cluster) -> Vec<String> {
    cluster.events().into_iter().map(|e| e.reason).collect()
}

#[tokio::test]
async fn a_new_cluster_gets_a_finalizer_a_stateful_set_a_service_and_pending_status() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();

    assert_eq!(run(&plugin, &cluster).await, Action::Done);

    let rc = rc(&cluster);
    assert_eq!(rc["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(rc["status"]["phase"], "Pending");
    assert_eq!(rc["status"]["readyReplicas"], 0);
    assert_eq!(rc["status"]["observedGeneration"], 1);
    let sts = sts(&cluster);
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["serviceName"], NAME);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "redis:7.2"
    );
    let owner = &sts["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "RedisCluster");
    assert_eq!(owner["apiVersion"], "cache.example.com/v1alpha1");
    assert_eq!(owner["uid"], "rc-uid-1");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    let svc = cluster
        .object(&services(), Some(NS), NAME)
        .expect("the Service exists");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(svc["spec"]["ports"][0]["port"], 6379);
    assert_eq!(
        svc["spec"]["selector"],
        sts["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(svc["metadata"]["ownerReferences"][0]["uid"], "rc-uid-1");
    assert_eq!(reasons(&cluster), ["Created", "Created"]);
    assert!(
        cluster
            .events()
            .iter()
            .all(|e| e.kind.kind == "RedisCluster"
                && e.name == NAME
                && e.event_type == EventType::Normal)
    );
}

#[tokio::test]
async fn reconciling_a_converged_cluster_writes_nothing() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    let versions = (
        rv(&rc(&cluster)),
        rv(&sts(&cluster)),
        rv(&cluster.object(&services(), Some(NS), NAME).unwrap()),
    );
    let events = cluster.events().len();

    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    assert_eq!(
        reconcile(&plugin, &cluster, NS, NAME, Reason::Resync).await,
        Action::Done
    );

    assert_eq!(
        versions,
        (
            rv(&rc(&cluster)),
            rv(&sts(&cluster)),
            rv(&cluster.object(&services(), Some(NS), NAME).unwrap())
        )
    );
    assert_eq!(cluster.events().len(), events);
}

#[tokio::test]
async fn ready_replicas_move_the_phase_from_pending_to_scaling_to_running() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    assert_eq!(rc(&cluster)["status"]["phase"], "Pending");

    set_ready(&cluster, 1);
    run(&plugin, &cluster).await;
    assert_eq!(rc(&cluster)["status"]["phase"], "Scaling");
    assert_eq!(rc(&cluster)["status"]["readyReplicas"], 1);

    set_ready(&cluster, 3);
    run(&plugin, &cluster).await;
    assert_eq!(rc(&cluster)["status"]["phase"], "Running");
    assert_eq!(rc(&cluster)["status"]["readyReplicas"], 3);
}

#[tokio::test]
async fn scaling_and_image_changes_update_the_stateful_set_and_record_events() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    set_ready(&cluster, 3);
    run(&plugin, &cluster).await;

    edit(&cluster, |o| o["spec"]["replicas"] = json!(5));
    run(&plugin, &cluster).await;
    assert_eq!(sts(&cluster)["spec"]["replicas"], 5);
    assert_eq!(rc(&cluster)["status"]["phase"], "Scaling");
    assert_eq!(rc(&cluster)["status"]["observedGeneration"], 2);

    edit(&cluster, |o| o["spec"]["replicas"] = json!(2));
    run(&plugin, &cluster).await;
    assert_eq!(sts(&cluster)["spec"]["replicas"], 2);
    set_ready(&cluster, 2);
    run(&plugin, &cluster).await;
    assert_eq!(rc(&cluster)["status"]["phase"], "Running");

    edit(&cluster, |o| o["spec"]["image"] = json!("redis:7.4"));
    run(&plugin, &cluster).await;
    let s = sts(&cluster);
    assert_eq!(
        s["spec"]["template"]["spec"]["containers"][0]["image"],
        "redis:7.4"
    );
    assert_eq!(s["spec"]["replicas"], 2);

    let events = cluster.events();
    let notes: Vec<(&str, &str)> = events
        .iter()
        .skip(2)
        .map(|e| (e.reason.as_str(), e.note.as_str()))
        .collect();
    assert_eq!(
        notes,
        [
            ("Scaling", "scaling from 3 to 5 replicas"),
            ("Scaling", "scaling from 5 to 2 replicas"),
            (
                "ImageChanged",
                "changing the image from redis:7.2 to redis:7.4"
            ),
        ]
    );
}

#[tokio::test]
async fn a_changed_stateful_set_is_put_back_in_line_with_the_spec() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    let mut s = sts(&cluster);
    s["spec"]["replicas"] = json!(7);
    cluster.server.insert(&statefulsets(), s).unwrap();

    reconcile(&plugin, &cluster, NS, NAME, Reason::Resync).await;
    assert_eq!(sts(&cluster)["spec"]["replicas"], 3);
}

#[tokio::test]
async fn deletion_removes_the_stateful_set_and_service_then_only_its_own_finalizer() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    let mut obj = rc(&cluster);
    obj["metadata"]["finalizers"] = json!(["example.com/keep", FINALIZER]);
    obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    cluster.server.insert(&redisclusters(), obj).unwrap();

    assert_eq!(run(&plugin, &cluster).await, Action::Done);

    assert!(cluster.object(&statefulsets(), Some(NS), NAME).is_none());
    assert!(cluster.object(&services(), Some(NS), NAME).is_none());
    assert_eq!(
        rc(&cluster)["metadata"]["finalizers"],
        json!(["example.com/keep"])
    );
    assert_eq!(
        reasons(&cluster).last().map(String::as_str),
        Some("CleanedUp")
    );

    // Once released, further reconciles of the terminating object do nothing.
    let version = rv(&rc(&cluster));
    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    assert_eq!(rv(&rc(&cluster)), version);
}

#[tokio::test]
async fn a_cluster_deleted_without_the_finalizer_has_its_objects_deleted_but_not_others() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    cluster
        .server
        .delete(&redisclusters(), Some(NS), NAME, DeleteOptions::default())
        .await
        .unwrap();
    // A Service of the same name in another namespace, not owned: must stay.
    cluster
        .server
        .insert(
            &services(),
            json!({"metadata": {"name": NAME, "namespace": "other"}, "spec": {}}),
        )
        .unwrap();

    reconcile(&plugin, &cluster, NS, NAME, Reason::Deleted).await;
    reconcile(&plugin, &cluster, "other", NAME, Reason::Deleted).await;

    assert!(cluster.object(&statefulsets(), Some(NS), NAME).is_none());
    assert!(cluster.object(&services(), Some(NS), NAME).is_none());
    assert!(cluster.object(&services(), Some("other"), NAME).is_some());
}

#[tokio::test]
async fn an_invalid_spec_is_phase_failed_with_one_warning_and_creates_nothing() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(0), "redis:7.2"))
        .unwrap();

    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    assert_eq!(run(&plugin, &cluster).await, Action::Done);

    let status = &rc(&cluster)["status"];
    assert_eq!(status["phase"], "Failed");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("between 1 and 20"), "{message}");
    assert!(cluster.object(&statefulsets(), Some(NS), NAME).is_none());
    let events = cluster.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, "InvalidSpec");
    assert_eq!(events[0].event_type, EventType::Warning);

    // Fixing the spec recovers, and the message goes.
    edit(&cluster, |o| o["spec"]["replicas"] = json!(2));
    run(&plugin, &cluster).await;
    let status = &rc(&cluster)["status"];
    assert_eq!(status["phase"], "Pending");
    assert!(status.get("message").is_none_or(Value::is_null), "{status}");
    assert_eq!(sts(&cluster)["spec"]["replicas"], 2);
}

#[tokio::test]
async fn a_stateful_set_it_does_not_own_is_never_taken_over() {
    let (plugin, cluster) = setup().await;
    let theirs = json!({"metadata": {"name": NAME, "namespace": NS},
                        "spec": {"replicas": 9, "selector": {}, "template": {}}});
    cluster.server.insert(&statefulsets(), theirs).unwrap();
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();

    run(&plugin, &cluster).await;

    assert_eq!(sts(&cluster)["spec"]["replicas"], 9);
    let status = &rc(&cluster)["status"];
    assert_eq!(status["phase"], "Failed");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not owned"),
        "{status}"
    );
    assert_eq!(
        reasons(&cluster).last().map(String::as_str),
        Some("NameTaken")
    );
}

#[tokio::test]
async fn a_write_conflict_requeues_soon_and_the_next_reconcile_converges() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    cluster.fail_next(ApiError::Conflict("the object has been modified".into()));

    let action = run(&plugin, &cluster).await;
    assert!(
        matches!(action, Action::RequeueAfter(d) if d <= Duration::from_secs(1)),
        "{action:?}"
    );
    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    assert_eq!(rc(&cluster)["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(sts(&cluster)["spec"]["replicas"], 3);
    assert_eq!(rc(&cluster)["status"]["phase"], "Pending");
}

#[tokio::test]
async fn its_own_writes_missing_from_the_cache_cause_a_requeue_not_duplicates_or_errors() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    cluster.freeze().await; // the cache will not see the writes of the next reconciles
    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    let events = cluster.events().len();

    // The cache still shows the RedisCluster without finalizer and no StatefulSet: the
    // finalizer write (stale resourceVersion) or the create (already exists) loses the race.
    let action = run(&plugin, &cluster).await;
    assert!(matches!(action, Action::RequeueAfter(_)), "{action:?}");
    assert_eq!(cluster.events().len(), events, "no duplicate events");
    assert_eq!(rc(&cluster)["metadata"]["finalizers"], json!([FINALIZER]));

    cluster.thaw();
    assert_eq!(run(&plugin, &cluster).await, Action::Done);
    assert_eq!(cluster.events().len(), events);
    assert_eq!(sts(&cluster)["spec"]["replicas"], 3);
}

#[tokio::test]
async fn a_re_created_cluster_replaces_what_its_predecessor_left() {
    let (plugin, cluster) = setup().await;
    cluster
        .server
        .insert(&redisclusters(), redis(json!(3), "redis:7.2"))
        .unwrap();
    run(&plugin, &cluster).await;
    // Deleted without cleanup (finalizer removed by hand) and re-created at once: new uid.
    cluster
        .server
        .delete(&redisclusters(), Some(NS), NAME, DeleteOptions::default())
        .await
        .unwrap();
    let mut again = redis(json!(2), "redis:7.4");
    again["metadata"]["uid"] = json!("rc-uid-2");
    cluster.server.insert(&redisclusters(), again).unwrap();

    let mut action = run(&plugin, &cluster).await;
    for _ in 0..5 {
        if action == Action::Done {
            break;
        }
        action = run(&plugin, &cluster).await;
    }
    assert_eq!(action, Action::Done);
    let s = sts(&cluster);
    assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "rc-uid-2");
    assert_eq!(s["spec"]["replicas"], 2);
    let svc = cluster.object(&services(), Some(NS), NAME).unwrap();
    assert_eq!(svc["metadata"]["ownerReferences"][0]["uid"], "rc-uid-2");
}

#[tokio::test]
async fn the_manifest_owns_the_stateful_set_and_service() {
    let (plugin, _) = setup().await;
    let m = plugin.manifest();
    assert_eq!(m.reconciles.kind.plural, "redisclusters");
    let owned: Vec<&str> = m.owns.iter().map(|k| k.kind.as_str()).collect();
    assert_eq!(owned, ["StatefulSet", "Service"]);
}
