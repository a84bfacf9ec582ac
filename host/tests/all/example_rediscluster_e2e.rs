//! The `rediscluster` operator end to end: the real manager (informers, cache-backed reads,
//! kube::Client writes, queues) against the embedded API server, with the CRD from
//! `examples/`. It converges after creates, scaling, image changes and deletes, across a
//! re-creation under the same name, a burst of spec changes (stale cache, conflicts), failing
//! API requests, and a restart of the plugin while its RedisCluster was being deleted.

use kubewasm_apiserver::Failure;
use serde_json::{Value, json};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;
use crate::support::example_e2e::{
    REDIS, STS, SVC, absent, create, delete, get, kubectl_apply, merge, merge_status, observe, s,
};

const NS: Option<&str> = Some("default");

async fn start() -> (TestCluster, tempfile::TempDir) {
    let cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    kubectl_apply(&cluster, dir.path(), "rediscluster/crd.yaml");
    // The CRD's resource is served as soon as it is created; wait for discovery anyway.
    eventually("redisclusters are served", || {
        let c = &cluster;
        async move {
            c.dynamic(REDIS.api_version, REDIS.kind, REDIS.plural, NS)
                .list(&Default::default())
                .await
                .ok()
        }
    })
    .await;
    cluster
        .start_plugin(&support::example("rediscluster"))
        .await;
    (cluster, dir)
}

fn redis(name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": REDIS.api_version, "kind": REDIS.kind,
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"replicas": replicas, "image": image}})
}

/// Waits until the StatefulSet has `replicas` of `image`, owned by the RedisCluster's uid.
async fn sts_converged(c: &TestCluster, name: &str, replicas: i64, image: &str) -> Value {
    let what = format!("StatefulSet {name} with {replicas} x {image}");
    eventually(&what, || async move {
        let rc = observe(c, REDIS, NS, name).await?;
        let sts = observe(c, STS, NS, name).await?;
        (sts["spec"]["replicas"] == replicas
            && s(&sts, "/spec/template/spec/containers/0/image") == image
            && sts["metadata"]["ownerReferences"][0]["uid"] == rc["metadata"]["uid"])
            .then_some(sts)
    })
    .await
}

/// Waits until the status says `phase` with `ready` ready replicas for the current generation.
async fn status_is(c: &TestCluster, name: &str, phase: &str, ready: i64) {
    let what = format!("RedisCluster {name} {phase} with {ready} ready");
    eventually(&what, || async move {
        let rc = observe(c, REDIS, NS, name).await?;
        (rc["status"]["phase"] == phase
            && rc["status"]["readyReplicas"] == ready
            && rc["status"]["observedGeneration"] == rc["metadata"]["generation"])
            .then_some(())
    })
    .await;
}

async fn all_gone(c: &TestCluster, name: &str) {
    let what = format!("RedisCluster {name}, its StatefulSet and Service deleted");
    eventually(&what, || async move {
        (absent(c, REDIS, NS, name).await
            && absent(c, STS, NS, name).await
            && absent(c, SVC, NS, name).await)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_converges_through_create_scale_image_change_and_delete() {
    let (cluster, _dir) = start().await;
    let c = &cluster;
    create(c, REDIS, redis("cache", 3, "redis:7.2")).await;

    sts_converged(c, "cache", 3, "redis:7.2").await;
    let svc = eventually("the headless Service", || async move {
        get(c, SVC, NS, "cache").await
    })
    .await;
    assert_eq!(svc["spec"]["clusterIP"], "None");
    status_is(c, "cache", "Pending", 0).await;
    let rc = get(c, REDIS, NS, "cache").await.unwrap();
    assert_eq!(
        rc["metadata"]["finalizers"],
        json!(["cache.example.com/cleanup"])
    );

    // Scale down, become ready, scale up, change the image.
    merge(c, REDIS, NS, "cache", json!({"spec": {"replicas": 1}})).await;
    sts_converged(c, "cache", 1, "redis:7.2").await;
    merge_status(
        c,
        STS,
        NS,
        "cache",
        json!({"status": {"replicas": 1, "readyReplicas": 1}}),
    )
    .await;
    status_is(c, "cache", "Running", 1).await;
    merge(c, REDIS, NS, "cache", json!({"spec": {"replicas": 4}})).await;
    sts_converged(c, "cache", 4, "redis:7.2").await;
    status_is(c, "cache", "Scaling", 1).await;
    merge(
        c,
        REDIS,
        NS,
        "cache",
        json!({"spec": {"image": "redis:7.4"}}),
    )
    .await;
    sts_converged(c, "cache", 4, "redis:7.4").await;

    // An edit of the StatefulSet itself is undone.
    merge(c, STS, NS, "cache", json!({"spec": {"replicas": 9}})).await;
    sts_converged(c, "cache", 4, "redis:7.4").await;
    // A deleted StatefulSet or Service is created again.
    delete(c, STS, NS, "cache").await;
    delete(c, SVC, NS, "cache").await;
    sts_converged(c, "cache", 4, "redis:7.4").await;
    eventually("the Service again", || async move {
        observe(c, SVC, NS, "cache").await
    })
    .await;

    delete(c, REDIS, NS, "cache").await;
    all_gone(c, "cache").await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_re_created_under_the_same_name_gets_fresh_objects() {
    let (cluster, _dir) = start().await;
    let c = &cluster;
    create(c, REDIS, redis("cache", 2, "redis:7.2")).await;
    sts_converged(c, "cache", 2, "redis:7.2").await;
    delete(c, REDIS, NS, "cache").await;
    all_gone(c, "cache").await;

    create(c, REDIS, redis("cache", 3, "redis:7.4")).await;
    sts_converged(c, "cache", 3, "redis:7.4").await;
    status_is(c, "cache", "Pending", 0).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_spec_changes_converges_on_the_last_one() {
    let (cluster, _dir) = start().await;
    let c = &cluster;
    create(c, REDIS, redis("burst", 1, "redis:7.0")).await;
    // Back-to-back writes: the operator reconciles on caches that lag behind them, so its
    // finalizer and status writes meet stale resourceVersions and retry.
    for replicas in 2..=12 {
        let image = format!("redis:7.{}", replicas % 3);
        merge(
            c,
            REDIS,
            NS,
            "burst",
            json!({"spec": {"replicas": replicas, "image": image}}),
        )
        .await;
    }
    sts_converged(c, "burst", 12, "redis:7.0").await;
    status_is(c, "burst", "Pending", 0).await;
    let rc = get(c, REDIS, NS, "burst").await.unwrap();
    assert_eq!(
        rc["metadata"]["finalizers"],
        json!(["cache.example.com/cleanup"])
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_api_requests_are_retried_until_the_cluster_converges() {
    let (cluster, _dir) = start().await;
    let c = &cluster;
    cluster.server.faults().fail_next(3, Failure::ServerError);
    // The create itself may be one of the failed requests: retry it as a client would.
    let body = redis("flaky", 2, "redis:7.2");
    eventually("the RedisCluster is created", || {
        let body = body.clone();
        async move {
            c.dynamic(REDIS.api_version, REDIS.kind, REDIS.plural, NS)
                .create(
                    &Default::default(),
                    &serde_json::from_value(body).expect("an object"),
                )
                .await
                .ok()
        }
    })
    .await;
    cluster.server.faults().fail_next(4, Failure::ServerError);
    sts_converged(c, "flaky", 2, "redis:7.2").await;
    status_is(c, "flaky", "Pending", 0).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_while_the_plugin_is_stopped_is_cleaned_up_when_it_returns() {
    let (cluster, _dir) = start().await;
    let c = &cluster;
    create(c, REDIS, redis("offline", 2, "redis:7.2")).await;
    sts_converged(c, "offline", 2, "redis:7.2").await;
    eventually("the finalizer", || async move {
        let rc = get(c, REDIS, NS, "offline").await?;
        rc["metadata"]["finalizers"].is_array().then_some(())
    })
    .await;

    assert!(
        cluster.manager.stop("rediscluster").await,
        "the plugin was running"
    );
    delete(c, REDIS, NS, "offline").await;
    let rc = get(c, REDIS, NS, "offline")
        .await
        .expect("held by the finalizer");
    assert!(rc["metadata"]["deletionTimestamp"].is_string());

    cluster
        .start_plugin(&support::example("rediscluster"))
        .await;
    all_gone(c, "offline").await;
    cluster.stop().await;
}
