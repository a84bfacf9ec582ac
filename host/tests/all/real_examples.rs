//! The three example operators end to end on a real control plane (kube-apiserver, etcd,
//! kube-controller-manager, kube-scheduler and kwok, built from Go modules): `kubewasm run` as
//! a separate process, deployed as a Deployment would run it — as a ServiceAccount holding
//! only the RBAC that `kubewasm rbac` generated for its plugins. Each test checks that
//! - the operator converges through create, scale, change and delete, with the real
//!   StatefulSet controller, scheduler, kwok "kubelet" and garbage collector doing their part;
//! - its reconciles stop once everything has converged (no loop on server-defaulted fields);
//! - it never met a 403 (the generated RBAC is enough), while what the manifest does not
//!   declare is refused by the real authorizer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support;
use crate::support::eventually;
use crate::support::example_e2e::{
    CM, NODE, POD, REDIS, STS, SVC, absent, create, delete, get, list, merge, observe, s,
    summary_is,
};
use crate::support::process::Host;
use crate::support::real::{Deployment, RealCluster};

/// The host's metric of finished reconciles.
const RECONCILES: &str = "controller_runtime_reconcile_total";

/// Applies an example CRD (shared by every test of the run; never deleted) and waits until it
/// is served.
fn install_crd(cluster: &RealCluster, path: &str, name: &str) {
    let file = support::example_e2e::example_file(path);
    cluster.kubectl_ok(&["apply", "--server-side", "-f", &file.display().to_string()]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        &format!("crd/{name}"),
    ]);
}

/// Starts `kubewasm run` for `deployment` and waits until its plugins have synced.
fn start_host(name: &str, deployment: &Deployment) -> Host {
    let host = Host::start(
        name,
        &deployment.plugins,
        &deployment.kubeconfig,
        &deployment.args(&[]),
    );
    host.wait_log_where("its plugins to start", |m| m.contains("plugin(s) started"));
    host
}

/// Every log line of `host` that mentions a refusal by the real API server: by its authorizer
/// (403 Forbidden) or by its validation (422 Invalid, e.g. an Event the host wrote wrong).
fn refusal_lines(host: &Host) -> Vec<String> {
    host.lines
        .lock()
        .iter()
        .map(Value::to_string)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("forbidden") || l.contains("invalid:") || l.contains("is invalid")
        })
        .collect()
}

/// No write of the host or its plugins was refused: the generated RBAC was enough, and
/// everything the host wrote (objects, status, Events) passed the real server's validation.
fn assert_no_refusal(host: &Host, deployment: &Deployment) {
    let lines = refusal_lines(host);
    assert!(
        lines.is_empty(),
        "the real API server refused the host's requests:\n{}\n\nthe RBAC:\n{}",
        lines.join("\n"),
        deployment.rbac
    );
}

/// The Events recorded about `name` in `ns` (events.k8s.io/v1), as `reason`s.
async fn event_reasons(c: &RealCluster, ns: &str, name: &str) -> Vec<String> {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(c.client.clone(), ns);
    events
        .list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

/// Waits until the host's reconcile count has not moved for 5 s: after convergence nothing
/// may keep requeueing (a reconcile that loops on a field the server defaults would).
async fn reconciles_settle(host: &Host, plugin: &str) -> f64 {
    let count = || host.metrics().sum(RECONCILES, &[("controller", plugin)]);
    let quiet = Duration::from_secs(5);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = count();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = count();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{plugin} kept reconciling for 90 s after convergence ({last} reconciles); its \
             last log lines:\n{}",
            tail(host, 40)
        );
    }
}

fn tail(host: &Host, n: usize) -> String {
    let lines = host.lines.lock();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn redis(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": REDIS.api_version, "kind": REDIS.kind,
           "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": replicas, "image": image}})
}

/// The StatefulSet has `replicas` of `image`, and its Pods (scheduled by kube-scheduler, made
/// Running and Ready by kwok) are all ready; the RedisCluster says `Running` with as many ready.
async fn redis_running(c: &RealCluster, name: &str, replicas: i64, image: &str) {
    let ns = Some(c.namespace.as_str());
    let what = format!("RedisCluster {name} Running with {replicas} x {image}");
    eventually(&what, || async move {
        let rc = observe(c, REDIS, ns, name).await?;
        let sts = observe(c, STS, ns, name).await?;
        (sts["spec"]["replicas"] == replicas
            && s(&sts, "/spec/template/spec/containers/0/image") == image
            && sts["status"]["readyReplicas"] == replicas
            && sts["status"]["updatedReplicas"] == replicas
            && rc["status"]["phase"] == "Running"
            && rc["status"]["readyReplicas"] == replicas
            && rc["status"]["observedGeneration"] == rc["metadata"]["generation"])
            .then_some(())
    })
    .await;
}

async fn pods_of(c: &RealCluster, instance: &str) -> Vec<Value> {
    list(c, POD, Some(&c.namespace))
        .await
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/instance"] == instance)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediscluster_converges_on_a_real_control_plane_with_only_its_generated_rbac() {
    let c = RealCluster::shared("real-rediscluster").await;
    install_crd(
        &c,
        "rediscluster/crd.yaml",
        "redisclusters.cache.example.com",
    );
    let policy = format!("default:\n  namespaces: [{}]\n", c.namespace);
    let deployment = c
        .deploy(&[support::example("rediscluster")], Some(&policy))
        .await;
    let host = start_host("rediscluster", &deployment);
    let ns = Some(c.namespace.as_str());

    // Create: the StatefulSet and Service appear, the real StatefulSet controller creates
    // the Pods, the scheduler binds them to the kwok Node, kwok makes them Ready, and the
    // RedisCluster reaches Running without anyone patching a status by hand.
    create(&c, REDIS, redis(&c.namespace, "cache", 3, "redis:7.2")).await;
    redis_running(&c, "cache", 3, "redis:7.2").await;
    let svc = get(&c, SVC, ns, "cache")
        .await
        .expect("the headless Service");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    let sts = get(&c, STS, ns, "cache").await.expect("the StatefulSet");
    let rc = get(&c, REDIS, ns, "cache").await.expect("the RedisCluster");
    assert_eq!(
        sts["metadata"]["ownerReferences"][0]["uid"],
        rc["metadata"]["uid"]
    );
    assert_eq!(
        sts["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        true
    );
    assert_eq!(pods_of(&c, "cache").await.len(), 3);
    // The Events the plugin recorded reached the real server (client-go's naming).
    let reasons = event_reasons(&c, &c.namespace, "cache").await;
    assert!(
        reasons.iter().any(|r| r == "Created"),
        "Events about cache: {reasons:?}"
    );
    let settled = reconciles_settle(&host, "rediscluster").await;
    assert!(settled > 0.0);

    // Scale down and up, change the image: the StatefulSet follows, the Pods follow it.
    merge(&c, REDIS, ns, "cache", json!({"spec": {"replicas": 1}})).await;
    redis_running(&c, "cache", 1, "redis:7.2").await;
    eventually("the scaled-down Pods to go", || async {
        (pods_of(&c, "cache").await.len() == 1).then_some(())
    })
    .await;
    merge(
        &c,
        REDIS,
        ns,
        "cache",
        json!({"spec": {"replicas": 2, "image": "redis:7.4"}}),
    )
    .await;
    redis_running(&c, "cache", 2, "redis:7.4").await;
    reconciles_settle(&host, "rediscluster").await;

    // Delete: the finalizer removes the StatefulSet and Service, the garbage collector the
    // Pods the StatefulSet owned, and then the RedisCluster goes.
    delete(&c, REDIS, ns, "cache").await;
    eventually("the RedisCluster and everything it owned to go", || async {
        (absent(&c, REDIS, ns, "cache").await
            && absent(&c, STS, ns, "cache").await
            && absent(&c, SVC, ns, "cache").await
            && pods_of(&c, "cache").await.is_empty())
        .then_some(())
    })
    .await;

    assert_no_refusal(&host, &deployment);
    // Not declared by the manifest (patch only on RedisClusters; no update on StatefulSets;
    // nothing on Secrets): refused by the real authorizer, not only by the host.
    let base = format!(
        "/apis/cache.example.com/v1alpha1/namespaces/{}/redisclusters",
        c.namespace
    );
    deployment
        .refused(
            "deleting a RedisCluster",
            http::Request::delete(format!("{base}/other"))
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    deployment
        .refused(
            "creating a Secret",
            http::Request::post(format!("/api/v1/namespaces/{}/secrets", c.namespace))
                .header("content-type", "application/json")
                .body(br#"{"metadata":{"name":"x"}}"#.to_vec())
                .unwrap(),
        )
        .await;
    deployment
        .refused(
            "patching a StatefulSet outside the policy's namespace",
            http::Request::patch("/apis/apps/v1/namespaces/default/statefulsets/x")
                .header("content-type", "application/merge-patch+json")
                .body(b"{}".to_vec())
                .unwrap(),
        )
        .await;
    c.finish().await;
}

fn pod(ns: &str, name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pods_counts_pods_that_kwok_runs_and_a_job_completes() {
    let c = RealCluster::shared("real-node-pods").await;
    let deployment = c.deploy(&[support::example("node-pods")], None).await;
    let host = start_host("node-pods", &deployment);
    let ns = c.namespace.clone();
    let (n1, n2) = (c.unique("n1"), c.unique("n2"));
    // Fake Nodes kwok takes over: Ready, and their Pods Running as a kubelet would report.
    for n in [&n1, &n2] {
        create(&c, NODE, kubewasm_controlplane::kwok_node(n)).await;
    }
    summary_is(&c, &n1, &[]).await;
    summary_is(&c, &n2, &[]).await;

    create(&c, POD, pod(&ns, "web-1", &n1)).await;
    create(&c, POD, pod(&ns, "web-2", &n1)).await;
    summary_is(&c, &n1, &[("Running", 2)]).await;
    // A Job's Pod: the real job controller creates it, kwok runs and completes it.
    c.apply_yaml(&format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: batch, namespace: {ns}}}\nspec:\n  \
         template:\n    spec:\n      nodeName: {n2}\n      restartPolicy: Never\n      \
         containers: [{{name: job, image: busybox}}]\n"
    ));
    summary_is(&c, &n2, &[("Succeeded", 1)]).await;
    reconciles_settle(&host, "node-pods").await;

    // A deleted Pod goes once kwok confirms it (as a kubelet does); a deleted Node takes its
    // summary along.
    delete(&c, POD, Some(&ns), "web-2").await;
    summary_is(&c, &n1, &[("Running", 1)]).await;
    delete(&c, NODE, None, &n2).await;
    eventually("the summary of the deleted Node to go", || async {
        absent(&c, CM, Some("kube-system"), &format!("node-pods-{n2}"))
            .await
            .then_some(())
    })
    .await;
    reconciles_settle(&host, "node-pods").await;
    assert_no_refusal(&host, &deployment);
    // Not declared: node-pods reads Nodes, it may not change them.
    deployment
        .refused(
            "patching a Node",
            http::Request::patch(format!("/api/v1/nodes/{n1}"))
                .header("content-type", "application/merge-patch+json")
                .body(br#"{"metadata":{"labels":{"x":"y"}}}"#.to_vec())
                .unwrap(),
        )
        .await;
    delete(&c, NODE, None, &n1).await;
    c.finish().await;
}

const SOURCE: &str = "mirror.kubewasm.dev/source";

/// Namespaces holding a mirror of `source` (namespace/name), sorted.
async fn mirrors(c: &RealCluster, source: &str) -> Vec<String> {
    let mut out: Vec<String> = list(c, CM, None)
        .await
        .iter()
        .filter(|cm| cm["metadata"]["annotations"][SOURCE] == source)
        .filter_map(|cm| cm["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

async fn mirrored_into(c: &RealCluster, source: &str, want: &[&String], data: &Value) {
    let what = format!("mirrors of {source} holding {data} in exactly {want:?}");
    eventually(&what, || async move {
        let found = mirrors(c, source).await;
        if found.iter().collect::<Vec<_>>() != want {
            return None;
        }
        for ns in want {
            if observe(c, CM, Some(ns), "settings").await?["data"] != *data {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_mirror_follows_namespaces_and_its_source_on_a_real_control_plane() {
    let c = RealCluster::shared("real-mirror").await;
    let src = c.namespace.clone();
    let [a, b, t] = ["a", "b", "c"].map(|s| format!("{src}-{s}"));
    for (ns, env) in [(&a, "prod"), (&b, "dev"), (&t, "prod")] {
        support::real::create_namespace(&c.client, ns, json!({"mirror-test": src, "env": env}))
            .await;
    }
    // Confined to the test's namespaces: its writes are granted by Roles there only.
    let policy = format!("default:\n  namespaces: [{src}, {a}, {b}, {t}]\n");
    let deployment = c
        .deploy(&[support::example("configmap-mirror")], Some(&policy))
        .await;
    let host = start_host("configmap-mirror", &deployment);
    let source = format!("{src}/settings");

    create(
        &c,
        CM,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": src,
                            "labels": {"mirror.kubewasm.dev/enabled": "true"},
                            "annotations": {"mirror.kubewasm.dev/namespace-selector":
                                            format!("mirror-test={src},env=prod")}},
               "data": {"level": "info"}}),
    )
    .await;
    mirrored_into(&c, &source, &[&a, &t], &json!({"level": "info"})).await;

    // A namespace that starts to match gets a mirror, one that stops loses it; the data follows.
    merge(
        &c,
        support::example_e2e::NS,
        None,
        &b,
        json!({"metadata": {"labels": {"env": "prod"}}}),
    )
    .await;
    merge(
        &c,
        support::example_e2e::NS,
        None,
        &a,
        json!({"metadata": {"labels": {"env": "dev"}}}),
    )
    .await;
    merge(
        &c,
        CM,
        Some(&src),
        "settings",
        json!({"data": {"level": "debug"}}),
    )
    .await;
    mirrored_into(&c, &source, &[&b, &t], &json!({"level": "debug"})).await;
    reconciles_settle(&host, "configmap-mirror").await;

    // The source goes: so do its mirrors.
    delete(&c, CM, Some(&src), "settings").await;
    eventually("every mirror to go", || async {
        mirrors(&c, &source).await.is_empty().then_some(())
    })
    .await;
    reconciles_settle(&host, "configmap-mirror").await;
    assert_no_refusal(&host, &deployment);
    // Not declared: the plugin reads Namespaces, it may not label them; outside the policy's
    // namespaces it may not write ConfigMaps.
    deployment
        .refused(
            "labelling a Namespace",
            http::Request::patch(format!("/api/v1/namespaces/{a}"))
                .header("content-type", "application/merge-patch+json")
                .body(br#"{"metadata":{"labels":{"x":"y"}}}"#.to_vec())
                .unwrap(),
        )
        .await;
    deployment
        .refused(
            "creating a ConfigMap outside the policy's namespaces",
            http::Request::post("/api/v1/namespaces/default/configmaps")
                .header("content-type", "application/json")
                .body(br#"{"metadata":{"name":"escape"}}"#.to_vec())
                .unwrap(),
        )
        .await;
    for ns in [&a, &b, &t] {
        delete(&c, support::example_e2e::NS, None, ns).await;
    }
    c.finish().await;
}
