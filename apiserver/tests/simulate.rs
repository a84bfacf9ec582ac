//! The workload simulator end to end, driven the way a user drives a cluster: kubectl (which must be
//! installed; the tests fail, never skip, without it) and raw HTTP for what kubectl 1.32 sends as
//! protobuf. Each test starts its own server with `Config::simulate` on.

mod common;

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use kubewasm_apiserver::{ApiServer, Config, Simulation};
use serde_json::{Value, json};

use common::kubectl::Kubectl;
use common::{client, eventually, get, send_json, server_with};

/// A server with the simulator on and a short start delay.
async fn simulated() -> ApiServer {
    server_with(Config {
        simulate: Some(Simulation {
            pod_start_delay: Duration::from_millis(200),
            job_pod_duration: Duration::from_millis(300),
            ..Simulation::default()
        }),
        ..Config::default()
    })
    .await
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: main, image: {image}}}]}}
"#
    )
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn is_running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Waits until `kubectl get {what} -o json` satisfies `ok`, and returns the list.
async fn wait_for(k: &Kubectl, args: &[&str], what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-o", "json"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let v = k.json(&full).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn controller_of(obj: &Value) -> Option<(String, String)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| {
            assert_eq!(r["blockOwnerDeletion"], true, "{r}");
            (
                r["kind"].as_str().unwrap_or_default().to_string(),
                r["name"].as_str().unwrap_or_default().to_string(),
            )
        })
}

#[tokio::test]
async fn a_deployment_rolls_out_scales_and_rolls_a_new_template_out() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.apply(&deployment("web", 2, "nginx")).await;
    let out = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");

    let d = k.json(&["get", "deployment", "web", "-o", "json"]).await;
    assert_eq!(d["status"]["availableReplicas"], 2, "{d:#}");
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(d["status"]["updatedReplicas"], 2);
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let conditions = d["status"]["conditions"].as_array().expect("conditions");
    assert!(
        conditions.iter().any(|c| c["type"] == "Available"
            && c["status"] == "True"
            && c["reason"] == "MinimumReplicasAvailable"),
        "{d:#}"
    );
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"),
        "{d:#}"
    );

    let sets = items(&k.json(&["get", "replicasets", "-o", "json"]).await);
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("hash label")
        .to_string();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(controller_of(rs), Some(("Deployment".into(), "web".into())));
    assert_eq!(rs["status"]["readyReplicas"], 2);

    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert!(
            p["metadata"]["name"]
                .as_str()
                .expect("name")
                .starts_with(&format!("web-{hash}-")),
            "{p:#}"
        );
        assert_eq!(p["metadata"]["generateName"], format!("web-{hash}-"));
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        assert_eq!(
            controller_of(p),
            Some(("ReplicaSet".into(), format!("web-{hash}")))
        );
        assert!(is_running_and_ready(p), "{p:#}");
        assert!(
            p["spec"]["nodeName"]
                .as_str()
                .expect("node")
                .starts_with("kwok-node-")
        );
        assert!(
            p["status"]["podIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.0.")),
            "{p:#}"
        );
        assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
        assert!(p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    }
    let nodes = items(&k.json(&["get", "nodes", "-o", "json"]).await);
    assert_eq!(nodes.len(), 2);
    // Each node's kubelet holds a Lease in kube-node-lease, owned by its Node.
    let leases = items(
        &k.json(&["get", "leases", "-n", "kube-node-lease", "-o", "json"])
            .await,
    );
    assert_eq!(leases.len(), 2, "{leases:#?}");
    for l in &leases {
        assert!(l["spec"]["renewTime"].is_string(), "{l:#}");
        assert_eq!(l["spec"]["holderIdentity"], l["metadata"]["name"]);
        assert_eq!(l["metadata"]["ownerReferences"][0]["kind"], "Node");
    }
    for n in &nodes {
        let ready = n["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
        assert_eq!(
            ready.map(|c| c["status"].clone()),
            Some(json!("True")),
            "{n:#}"
        );
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
    }

    // What happened is told in Events, as the real components record them.
    let events = items(&k.json(&["get", "events", "-o", "json"]).await);
    let told = |component: &str, reason: &str| {
        events.iter().any(|e| {
            e["reason"] == reason
                && (e["source"]["component"] == component || e["reportingComponent"] == component)
        })
    };
    assert!(
        told("deployment-controller", "ScalingReplicaSet"),
        "{events:#?}"
    );
    assert!(
        told("replicaset-controller", "SuccessfulCreate"),
        "{events:#?}"
    );
    assert!(told("default-scheduler", "Scheduled"), "{events:#?}");
    assert!(told("kubelet", "Started"), "{events:#?}");
    let pod_name = pods[0]["metadata"]["name"].as_str().expect("name");
    let described = k.ok(&["describe", "pod", pod_name]).await;
    assert!(
        described.contains("Successfully assigned default/")
            && described.contains("Started container main"),
        "{described}"
    );

    // kubectl scale up and down.
    k.ok(&["scale", "deployment/web", "--replicas=4"]).await;
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    wait_for(&k, &["get", "pods"], "4 ready pods", |l| {
        let p = items(l);
        p.len() == 4 && p.iter().all(is_running_and_ready)
    })
    .await;
    k.ok(&["scale", "deployment/web", "--replicas=1"]).await;
    wait_for(&k, &["get", "deployment", "web"], "1 replica", |d| {
        d["status"]["replicas"] == 1 && d["status"]["availableReplicas"] == 1
    })
    .await;
    assert_eq!(
        items(&k.json(&["get", "pods", "-o", "json"]).await).len(),
        1
    );

    // A template change rolls a new ReplicaSet out and scales the old one to zero.
    k.ok(&["scale", "deployment/web", "--replicas=3"]).await;
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    k.ok(&["set", "image", "deployment/web", "main=nginx:1.27"])
        .await;
    let out = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let sets = items(&k.json(&["get", "replicasets", "-o", "json"]).await);
    assert_eq!(sets.len(), 2, "{sets:#?}");
    let new = sets
        .iter()
        .find(|rs| rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27")
        .expect("a ReplicaSet for the new template");
    let old = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == format!("web-{hash}"))
        .expect("old");
    assert_eq!(new["spec"]["replicas"], 3);
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let new_hash = new["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("hash");
    assert_ne!(new_hash, hash);
    let pods = wait_for(&k, &["get", "pods"], "only new pods", |l| {
        let p = items(l);
        p.len() == 3
            && p.iter()
                .all(|p| p["metadata"]["labels"]["pod-template-hash"] == new_hash)
    })
    .await;
    assert!(items(&pods).iter().all(is_running_and_ready));
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );

    // rollout undo brings the first ReplicaSet back (as revision 3) instead of making another.
    k.ok(&["rollout", "undo", "deployment/web"]).await;
    let out = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let sets = items(&k.json(&["get", "replicasets", "-o", "json"]).await);
    assert_eq!(sets.len(), 2, "{sets:#?}");
    let first = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == format!("web-{hash}"))
        .expect("the first ReplicaSet");
    assert_eq!(first["spec"]["replicas"], 3);
    assert_eq!(
        first["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let history = k.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(
        history.contains("2 ") && history.contains("3 "),
        "{history}"
    );
    server.shutdown().await;
}

/// Every pod event of namespace `default`, as (type, name, ready) in order, recorded from the start.
fn record_pod_events(server: &ApiServer) -> tokio::task::JoinHandle<Vec<(String, String, bool)>> {
    let pods: Api<DynamicObject> = Api::namespaced_with(
        client(server),
        "default",
        &ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let stream = pods
            .watch(&WatchParams::default().timeout(20), "0")
            .await
            .expect("watch");
        let mut stream = Box::pin(stream);
        while let Some(Ok(ev)) = stream.next().await {
            let (kind, obj) = match ev {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                _ => continue,
            };
            let v = serde_json::to_value(&obj).expect("json");
            seen.push((
                kind.to_string(),
                obj.metadata.name.clone().unwrap_or_default(),
                is_running_and_ready(&v),
            ));
            let ready = seen.iter().filter(|(_, n, r)| *r && n == "db-2").count();
            if ready > 0 {
                break;
            }
        }
        seen
    })
}

#[tokio::test]
async fn a_statefulset_makes_ordinal_pods_one_after_another() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    let events = record_pod_events(&server);
    eventually("the pod watch", || async {
        server
            .faults()
            .requests()
            .iter()
            .any(|r| r.watch && r.resource.as_deref() == Some("pods"))
            .then_some(())
    })
    .await;
    k.apply(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: redis, image: redis}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#,
    )
    .await;
    let set = wait_for(&k, &["get", "statefulset", "db"], "3 ready replicas", |s| {
        s["status"]["readyReplicas"] == 3
    })
    .await;
    assert_eq!(set["status"]["replicas"], 3);
    assert_eq!(set["status"]["currentReplicas"], 3);
    assert_eq!(set["status"]["updatedReplicas"], 3);
    assert_eq!(set["status"]["observedGeneration"], 1);
    let revision = set["status"]["updateRevision"]
        .as_str()
        .expect("updateRevision")
        .to_string();
    assert_eq!(set["status"]["currentRevision"], revision.as_str());
    assert!(revision.starts_with("db-"));
    let cr = k
        .json(&["get", "controllerrevision", &revision, "-o", "json"])
        .await;
    assert_eq!(
        controller_of(&cr),
        Some(("StatefulSet".into(), "db".into()))
    );
    assert_eq!(cr["revision"], 1);

    // Each ordinal was created only once the one before it was Running and Ready.
    let seen = events.await.expect("watch task");
    for (i, name) in ["db-1", "db-2"].iter().enumerate() {
        let created = seen
            .iter()
            .position(|(t, n, _)| t == "ADDED" && n == name)
            .unwrap_or_else(|| panic!("{name} added: {seen:?}"));
        let before = format!("db-{i}");
        assert!(
            seen[..created]
                .iter()
                .any(|(_, n, ready)| *n == before && *ready),
            "{name} was created before {before} was ready: {seen:?}"
        );
    }
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    for (i, p) in pods.iter().enumerate() {
        let name = format!("db-{i}");
        assert_eq!(p["metadata"]["name"], name.as_str());
        assert_eq!(
            p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            name.as_str()
        );
        assert_eq!(
            p["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            i.to_string()
        );
        assert_eq!(
            p["metadata"]["labels"]["controller-revision-hash"],
            revision.as_str()
        );
        assert_eq!(p["spec"]["hostname"], name.as_str());
        assert_eq!(p["spec"]["subdomain"], "db");
        // Each ordinal has its own claim from the volumeClaimTemplate, mounted as the template's volume.
        let claim = format!("data-{name}");
        assert!(
            p["spec"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["name"] == "data"
                    && v["persistentVolumeClaim"]["claimName"] == claim.as_str())),
            "{p:#}"
        );
        let pvc = k.json(&["get", "pvc", &claim, "-o", "json"]).await;
        assert_eq!(pvc["metadata"]["labels"]["app"], "db");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert!(is_running_and_ready(p));
    }

    // Scaling down removes the highest ordinals.
    k.ok(&["scale", "statefulset/db", "--replicas=1"]).await;
    let pods = wait_for(&k, &["get", "pods"], "one pod left", |l| {
        items(l).len() == 1
    })
    .await;
    assert_eq!(items(&pods)[0]["metadata"]["name"], "db-0");
    wait_for(
        &k,
        &["get", "statefulset", "db"],
        "status of one replica",
        |s| s["status"]["replicas"] == 1 && s["status"]["readyReplicas"] == 1,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_daemonset_runs_one_pod_on_each_node() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.apply(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox}]}
"#,
    )
    .await;
    let nodes = items(&k.json(&["get", "nodes", "-o", "json"]).await);
    assert_eq!(nodes.len(), 2, "two fake nodes by default");
    let ds = wait_for(
        &k,
        &["get", "daemonset", "agent"],
        "a ready pod per node",
        |d| d["status"]["numberReady"] == 2,
    )
    .await;
    assert_eq!(ds["status"]["desiredNumberScheduled"], 2);
    assert_eq!(ds["status"]["currentNumberScheduled"], 2);
    assert_eq!(ds["status"]["updatedNumberScheduled"], 2);
    assert_eq!(ds["status"]["numberAvailable"], 2);
    let out = k
        .ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    let mut on: Vec<&str> = pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().expect("bound"))
        .collect();
    on.sort_unstable();
    assert_eq!(on, ["kwok-node-0", "kwok-node-1"]);
    for p in &pods {
        assert_eq!(controller_of(p), Some(("DaemonSet".into(), "agent".into())));
        assert!(p["metadata"]["labels"]["controller-revision-hash"].is_string());
        assert!(is_running_and_ready(p));
    }

    // A NoSchedule taint keeps new Pods off the node; the daemon already there stays, misscheduled.
    k.ok(&[
        "taint",
        "nodes",
        "kwok-node-1",
        "dedicated=infra:NoSchedule",
    ])
    .await;
    k.apply(&deployment("web", 3, "nginx")).await;
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let web = k
        .json(&["get", "pods", "-l", "app=web", "-o", "json"])
        .await;
    assert_eq!(items(&web).len(), 3);
    assert!(
        items(&web)
            .iter()
            .all(|p| p["spec"]["nodeName"] == "kwok-node-0"),
        "{web:#}"
    );
    let ds = wait_for(
        &k,
        &["get", "daemonset", "agent"],
        "one node desired",
        |d| d["status"]["desiredNumberScheduled"] == 1,
    )
    .await;
    assert_eq!(ds["status"]["numberMisscheduled"], 1, "{ds:#}");
    let daemons = k
        .json(&["get", "pods", "-l", "app=agent", "-o", "json"])
        .await;
    assert_eq!(items(&daemons).len(), 2, "{daemons:#}");

    // A NoExecute taint evicts what does not tolerate it: the daemon on kwok-node-0 goes, and so
    // do the web Pods, which are made again and have nowhere to run.
    k.ok(&["taint", "nodes", "kwok-node-0", "maintenance=now:NoExecute"])
        .await;
    wait_for(&k, &["get", "pods"], "the evictions", |l| {
        let pods = items(l);
        let web: Vec<&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "web")
            .collect();
        !pods.iter().any(|p| p["spec"]["nodeName"] == "kwok-node-0")
            && web.len() == 3
            && web.iter().all(|p| p["status"]["phase"] == "Pending")
    })
    .await;
    let events = items(&k.json(&["get", "events", "-o", "json"]).await);
    assert!(
        events.iter().any(|e| e["reason"] == "TaintManagerEviction"),
        "{events:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_job_runs_its_pod_to_completion() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.apply(
        r#"apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  completions: 2
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl}]
"#,
    )
    .await;
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=60s",
    ])
    .await;
    let job = k.json(&["get", "job", "pi", "-o", "json"]).await;
    assert_eq!(job["status"]["succeeded"], 2, "{job:#}");
    assert!(job["status"]["completionTime"].is_string());
    assert!(job["status"]["startTime"].is_string());
    assert!(job["status"].get("active").is_none(), "{job:#}");
    let conditions = job["status"]["conditions"].as_array().expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    );
    assert!(conditions.iter().any(|c| c["type"] == "SuccessCriteriaMet"));
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded", "{p:#}");
        assert_eq!(controller_of(p), Some(("Job".into(), "pi".into())));
        assert_eq!(p["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }
    // The log of a finished container says how it ended.
    let name = pods[0]["metadata"]["name"].as_str().expect("name");
    let log = k.ok(&["logs", name]).await;
    assert!(log.contains("exited with code 0"), "{log}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_cronjob_starts_a_job_for_its_latest_missed_schedule() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.apply(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: tick, image: busybox}]
"#,
    )
    .await;
    // As if the controller had last run it an hour ago: the latest missed schedule runs now.
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let patch = json!({"status": {"lastScheduleTime": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}});
    k.ok(&[
        "patch",
        "cronjob",
        "tick",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])
    .await;
    let jobs = wait_for(&k, &["get", "jobs"], "a job of the cronjob", |l| {
        !items(l).is_empty()
    })
    .await;
    let job = &items(&jobs)[0];
    assert_eq!(controller_of(job), Some(("CronJob".into(), "tick".into())));
    let scheduled =
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .expect("scheduled timestamp")
            .parse::<jiff::Timestamp>()
            .expect("a time");
    assert_eq!(
        scheduled.as_second() % 300,
        0,
        "on a */5 boundary: {scheduled}"
    );
    assert!(scheduled > an_hour_ago && scheduled <= jiff::Timestamp::now());
    assert_eq!(
        job["metadata"]["name"],
        format!("tick-{}", scheduled.as_second() / 60)
    );
    let name = job["metadata"]["name"].as_str().expect("name").to_string();
    k.ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{name}"),
        "--timeout=60s",
    ])
    .await;
    let cj = wait_for(
        &k,
        &["get", "cronjob", "tick"],
        "the success recorded",
        |c| c["status"]["lastSuccessfulTime"].is_string() && c["status"].get("active").is_none(),
    )
    .await;
    assert_eq!(
        cj["status"]["lastScheduleTime"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
        Some(scheduled)
    );
    assert_eq!(
        items(&k.json(&["get", "jobs", "-o", "json"]).await).len(),
        1,
        "one job for the missed schedules"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_service_gets_an_endpoint_slice_of_its_ready_pods() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "web").await;
    k.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ])
    .await;
    let slices = wait_for(&k, &["get", "endpointslices"], "two endpoints", |l| {
        items(l)
            .first()
            .is_some_and(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 2))
    })
    .await;
    let slice = &items(&slices)[0];
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(controller_of(slice), Some(("Service".into(), "web".into())));
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "", "port": 8080, "protocol": "TCP"}])
    );
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    let mut pod_ips: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .collect();
    let mut slice_ips: Vec<&str> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addresses"][0].as_str())
        .collect();
    pod_ips.sort_unstable();
    slice_ips.sort_unstable();
    assert_eq!(pod_ips, slice_ips);
    assert!(
        slice["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["conditions"]["ready"] == true)
    );

    // No Pods, no endpoints; the slice goes with the Service.
    k.ok(&["scale", "deployment/web", "--replicas=0"]).await;
    wait_for(&k, &["get", "endpointslices"], "no endpoints", |l| {
        items(l)
            .first()
            .is_some_and(|s| s["endpoints"].is_null() && s["ports"].is_null())
    })
    .await;
    k.ok(&["delete", "service", "web"]).await;
    wait_for(&k, &["get", "endpointslices"], "the slice gone", |l| {
        items(l).is_empty()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_rollout_that_cannot_progress_exceeds_its_deadline() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.apply(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {no-such: node}
      containers: [{name: main, image: nginx}]
"#,
    )
    .await;
    let o = k
        .run(&["rollout", "status", "deployment/stuck", "--timeout=60s"])
        .await;
    assert!(!o.ok, "{}", o.stdout);
    assert!(
        o.stderr.contains("exceeded its progress deadline"),
        "{}",
        o.stderr
    );
    let d = k.json(&["get", "deployment", "stuck", "-o", "json"]).await;
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "Progressing").cloned())
        .expect("Progressing");
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    let pod = &items(&k.json(&["get", "pods", "-o", "json"]).await)[0];
    assert_eq!(pod["status"]["phase"], "Pending");
    server.shutdown().await;
}

#[tokio::test]
async fn pods_of_a_deleted_node_are_collected_and_replaced() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "web").await;
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    assert!(
        pods.iter().any(|p| p["spec"]["nodeName"] == "kwok-node-1"),
        "the scheduler spreads Pods over both nodes: {pods:#?}"
    );
    k.ok(&["delete", "node", "kwok-node-1"]).await;
    // kube-controller-manager's pod GC waits 40 s before it deletes a vanished node's Pods.
    wait_for(
        &k,
        &["get", "pods"],
        "both pods running on kwok-node-0",
        |l| {
            let pods = items(l);
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| p["spec"]["nodeName"] == "kwok-node-0" && is_running_and_ready(p))
        },
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_pod_of_another_scheduler_waits_for_its_binding() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    let c = client(&server);
    let r = send_json(
        &c,
        "POST",
        "/api/v1/namespaces/default/pods",
        &json!({"metadata": {"name": "mine"}, "spec": {"schedulerName": "my-scheduler", "containers": [{"name": "c", "image": "x"}]}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let binding = |node: &str| json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "mine"}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    let path = "/api/v1/namespaces/default/pods/mine/binding";
    // The default scheduler leaves it alone.
    let p = k.json(&["get", "pod", "mine", "-o", "json"]).await;
    assert!(p["spec"].get("nodeName").is_none(), "{p:#}");
    let r = send_json(&c, "POST", path, &binding("kwok-node-1")).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["status"], "Success");
    let r = send_json(&c, "POST", path, &binding("kwok-node-0")).await;
    common::assert_status(&r, 409, "Conflict");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("already assigned to node \"kwok-node-1\"")),
        "{}",
        r.text
    );
    // The node's kubelet then runs it.
    let p = wait_for(
        &k,
        &["get", "pod", "mine"],
        "the pod running",
        is_running_and_ready,
    )
    .await;
    assert_eq!(p["spec"]["nodeName"], "kwok-node-1");
    server.shutdown().await;
}

async fn rolled_out(k: &Kubectl, name: &str) {
    k.apply(&deployment(name, 2, "nginx")).await;
    k.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ])
    .await;
}

fn owned_by(list: &Value, kind: &str, name_prefix: &str) -> usize {
    items(list)
        .iter()
        .filter(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(name_prefix))
        })
        .filter(|o| controller_of(o).is_some_and(|(k, _)| k == kind))
        .count()
}

#[tokio::test]
async fn cascading_deletes_orphan_or_collect_dependents_like_the_garbage_collector() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    for name in ["orphaned", "background", "foreground"] {
        rolled_out(&k, name).await;
    }

    // Orphan: the ReplicaSet and its Pods stay, released from the Deployment.
    k.ok(&["delete", "deployment", "orphaned", "--cascade=orphan"])
        .await;
    let sets = k.json(&["get", "replicasets", "-o", "json"]).await;
    let rs = items(&sets)
        .into_iter()
        .find(|rs| {
            rs["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("orphaned-"))
        })
        .expect("the orphaned ReplicaSet stays");
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs:#}");
    let pods = k.json(&["get", "pods", "-o", "json"]).await;
    assert_eq!(owned_by(&pods, "ReplicaSet", "orphaned-"), 2);

    // Background: the Deployment goes at once, then its ReplicaSet and Pods.
    k.ok(&["delete", "deployment", "background", "--cascade=background"])
        .await;
    wait_for(
        &k,
        &["get", "replicasets,pods"],
        "the background dependents gone",
        |l| {
            owned_by(l, "ReplicaSet", "background-") == 0
                && owned_by(l, "Pod", "background-") == 0
                && !items(l).iter().any(|o| {
                    o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("background-"))
                })
        },
    )
    .await;

    // Foreground: kubectl waits for the Deployment, which goes after its dependents.
    k.ok(&[
        "delete",
        "deployment",
        "foreground",
        "--cascade=foreground",
        "--timeout=60s",
    ])
    .await;
    let left = k
        .json(&["get", "deployments,replicasets,pods", "-o", "json"])
        .await;
    assert!(
        !items(&left).iter().any(|o| o["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("foreground"))),
        "{left:#}"
    );
    // The orphaned ReplicaSet is untouched by the others.
    let pods = k.json(&["get", "pods", "-o", "json"]).await;
    assert_eq!(owned_by(&pods, "ReplicaSet", "orphaned-"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_foreground_owner_waits_for_a_dependent_with_a_finalizer() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "held").await;
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    let held = pods[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    k.ok(&[
        "patch",
        "pod",
        &held,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    k.ok(&[
        "delete",
        "deployment",
        "held",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    // The Deployment and ReplicaSet stay, deleting, with the foregroundDeletion finalizer, while the Pod is held.
    let d = k.json(&["get", "deployment", "held", "-o", "json"]).await;
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d:#}");
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let sets = items(&k.json(&["get", "replicasets", "-o", "json"]).await);
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert!(
        sets[0]["metadata"]["deletionTimestamp"].is_string(),
        "{:#}",
        sets[0]
    );
    assert_eq!(
        sets[0]["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "a ReplicaSet with Pods is deleted in the foreground too"
    );
    let pod = k.json(&["get", "pod", &held, "-o", "json"]).await;
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    // Releasing the Pod lets everything go.
    k.ok(&[
        "patch",
        "pod",
        &held,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    wait_for(
        &k,
        &["get", "deployments,replicasets,pods"],
        "everything gone",
        |l| items(l).is_empty(),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_workloads() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    k.ok(&["create", "namespace", "team"]).await;
    let manifest = deployment("web", 2, "nginx").replace(
        "metadata: {name: web}",
        "metadata: {name: web, namespace: team}",
    );
    k.apply(&manifest).await;
    k.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "team",
        "--timeout=60s",
    ])
    .await;
    k.ok(&["delete", "namespace", "team", "--timeout=60s"])
        .await;
    let o = k.run(&["get", "namespace", "team"]).await;
    assert!(!o.ok && o.stderr.contains("NotFound"), "{}", o.stderr);
    let left = k
        .json(&["get", "deployments,replicasets,pods", "-A", "-o", "json"])
        .await;
    assert!(items(&left).is_empty(), "{left:#}");
    server.shutdown().await;
}

#[tokio::test]
async fn pod_logs_are_synthetic_and_checked_like_the_real_server() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "web").await;
    let log = k.ok(&["logs", "deployment/web"]).await;
    assert!(
        log.contains("container \"main\"") && log.contains("simulated"),
        "{log}"
    );
    let pod = items(&k.json(&["get", "pods", "-o", "json"]).await)[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let tail = k.ok(&["logs", &pod, "--tail=1"]).await;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let stamped = k.ok(&["logs", &pod, "--timestamps"]).await;
    assert!(
        stamped
            .lines()
            .all(|l| l.split(' ').next().is_some_and(|t| t.ends_with('Z'))),
        "{stamped}"
    );

    let c = client(&server);
    let r = get(
        &c,
        &format!("/api/v1/namespaces/default/pods/{pod}/log?container=nope"),
    )
    .await;
    common::assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        format!("container nope is not valid for pod {pod}")
    );
    let r = get(&c, "/api/v1/namespaces/default/pods/missing/log").await;
    common::assert_status(&r, 404, "NotFound");

    // A Pod that is not scheduled has no log yet.
    let r = send_json(
        &c,
        "POST",
        "/api/v1/namespaces/default/pods",
        &json!({"metadata": {"name": "nowhere"}, "spec": {"nodeSelector": {"no": "such-node"}, "containers": [{"name": "c", "image": "x"}]}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = get(&c, "/api/v1/namespaces/default/pods/nowhere/log").await;
    common::assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "pod nowhere does not have a host assigned"
    );
    let p = k.json(&["get", "pod", "nowhere", "-o", "json"]).await;
    let scheduled = p["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "PodScheduled").cloned());
    assert_eq!(
        scheduled.as_ref().map(|c| c["reason"].clone()),
        Some(json!("Unschedulable")),
        "{p:#}"
    );

    // exec answers with a clear message.
    let o = k.run(&["exec", &pod, "--", "ls"]).await;
    assert!(!o.ok);
    assert!(
        o.stderr
            .contains("not supported in the kubewasm dev cluster"),
        "{}",
        o.stderr
    );
    server.shutdown().await;
}

fn eviction(pod: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "default"}})
}

#[tokio::test]
async fn evictions_respect_pod_disruption_budgets() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "web").await;
    k.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: web}}\n",
    )
    .await;
    let pdb = wait_for(&k, &["get", "pdb", "web"], "the budget observed", |p| {
        p["status"]["observedGeneration"] == 1 && p["status"]["currentHealthy"] == 2
    })
    .await;
    assert_eq!(pdb["status"]["desiredHealthy"], 2);
    assert_eq!(pdb["status"]["expectedPods"], 2);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);

    // kube's client retries 429 by default; the answer itself is what is checked here.
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_retry = false;
    let c = kube::Client::try_from(config).expect("client");
    let pods = items(&k.json(&["get", "pods", "-o", "json"]).await);
    let victim = pods[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let path = format!("/api/v1/namespaces/default/pods/{victim}/eviction");
    let r = send_json(&c, "POST", &path, &eviction(&victim)).await;
    common::assert_status(&r, 429, "TooManyRequests");
    assert_eq!(
        r.body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        r.body["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    assert!(k.run(&["get", "pod", &victim]).await.ok, "the pod stays");

    // With room in the budget the eviction deletes the Pod and the ReplicaSet replaces it.
    k.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ])
    .await;
    wait_for(&k, &["get", "pdb", "web"], "one disruption allowed", |p| {
        p["status"]["disruptionsAllowed"] == 1 && p["status"]["observedGeneration"] == 2
    })
    .await;
    let r = send_json(&c, "POST", &path, &eviction(&victim)).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["status"], "Success");
    let o = k.run(&["get", "pod", &victim]).await;
    assert!(!o.ok && o.stderr.contains("NotFound"), "{}", o.stderr);
    wait_for(&k, &["get", "pods"], "a replacement pod", |l| {
        let p = items(l);
        p.len() == 2 && p.iter().all(is_running_and_ready)
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_drain_evicts_pods_to_the_other_node() {
    let server = simulated().await;
    let k = Kubectl::temp(&server);
    rolled_out(&k, "web").await;
    k.ok(&[
        "drain",
        "kwok-node-0",
        "--ignore-daemonsets",
        "--timeout=60s",
    ])
    .await;
    let pods = wait_for(
        &k,
        &["get", "pods"],
        "both pods ready on the other node",
        |l| {
            let p = items(l);
            p.len() == 2
                && p.iter()
                    .all(|p| is_running_and_ready(p) && p["spec"]["nodeName"] == "kwok-node-1")
        },
    )
    .await;
    assert_eq!(items(&pods).len(), 2);
    let node = k.json(&["get", "node", "kwok-node-0", "-o", "json"]).await;
    assert_eq!(node["spec"]["unschedulable"], true);

    // A budget that allows no disruption blocks the drain of the other node.
    k.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: web}}\n",
    )
    .await;
    wait_for(&k, &["get", "pdb", "web"], "the budget observed", |p| {
        p["status"]["currentHealthy"] == 2
    })
    .await;
    let o = k
        .run(&[
            "drain",
            "kwok-node-1",
            "--ignore-daemonsets",
            "--timeout=3s",
        ])
        .await;
    assert!(!o.ok, "{}", o.stdout);
    assert!(o.stderr.contains("disruption budget"), "{}", o.stderr);
    server.shutdown().await;
}

#[tokio::test]
async fn without_simulate_nothing_acts_on_workloads() {
    let server = server_with(Config::default()).await;
    let k = Kubectl::temp(&server);
    k.apply(&deployment("web", 2, "nginx")).await;
    // Give a simulator ample time to have acted, were one running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = k
        .json(&["get", "nodes,replicasets,pods", "-A", "-o", "json"])
        .await;
    assert!(items(&all).is_empty(), "{all:#}");
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).await;
    assert!(d["status"].get("observedGeneration").is_none(), "{d:#}");
    server.shutdown().await;
}
