//! `/healthz` and `/readyz` of `kubewasm run` change state at the right moments, and SIGTERM
//! drains reconciles in flight before exiting 0.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use kubewasm_apiserver::{ApiServer, Config};

use crate::support;
use crate::support::process::{Host, plugin_dir, timestamp};
use crate::support::wait::wait;

async fn start(
    plugins: &[std::path::PathBuf],
    args: &[&str],
) -> (ApiServer, tempfile::TempDir, Host) {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), plugins);
    let host = Host::start("host", &plugins, &kubeconfig, args);
    (server, dir, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_waits_for_the_plugins_caches_to_sync_while_healthz_is_live() {
    // The RedisCluster CRD is not installed: the plugin's informer cannot sync yet.
    let (server, _dir, host) = start(
        &[support::example("rediscluster")],
        &["--leader-elect=false"],
    )
    .await;
    let live = wait("/healthz to answer 200", || {
        host.get("/healthz").filter(|(s, _)| *s == 200)
    });
    assert!(live.is_some(), "{}", host.dump());
    let unsynced = wait("/readyz to say the caches have not synced", || {
        host.get("/readyz")
            .filter(|(_, body)| body.contains("caches not synced for rediscluster"))
    })
    .unwrap_or_else(|| panic!("{}", host.dump()));
    assert_eq!(unsynced.0, 503, "not ready: {}", unsynced.1);

    let crd: CustomResourceDefinition = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/rediscluster/crd.yaml"
        ))
        .expect("the example CRD"),
    )
    .expect("a CRD");
    let client = support::cluster::client_for(&server);
    Api::<CustomResourceDefinition>::all(client)
        .create(&PostParams::default(), &crd)
        .await
        .expect("install the CRD");
    let ready = wait("/readyz to answer 200 once the CRD is served", || {
        host.get("/readyz").filter(|(s, _)| *s == 200)
    });
    assert!(ready.is_some(), "{}", host.dump());
    let metrics = host.metrics();
    assert_eq!(
        metrics.get("kubewasm_plugin_synced", &[("plugin", "rediscluster")]),
        Some(1.0)
    );
    drop(host);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_readiness_drains_the_reconcile_in_flight_and_exits_zero() {
    // The spin plugin runs until its 3 s deadline: a reconcile is in flight when SIGTERM comes.
    let (server, _dir, mut host) = start(
        &[support::test_plugin("spin")],
        &["--leader-elect=false", "--deadline", "3s"],
    )
    .await;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slow", "namespace": "default"}
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(support::cluster::client_for(&server), "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("create the ConfigMap");
    let busy = wait("a reconcile to be in flight", || {
        let (status, body) = host.get("/metrics")?;
        let m = support::process::Metrics::parse(&body);
        (status == 200 && m.get("workqueue_unfinished_work", &[("name", "spin")]) >= Some(1.0))
            .then_some(())
    });
    assert!(busy.is_some(), "{}", host.dump());
    assert_eq!(host.get("/readyz").map(|r| r.0), Some(200));

    host.signal("TERM");
    let draining = wait("/readyz to say it is shutting down", || {
        host.get("/readyz")
            .filter(|(s, body)| *s == 503 && body.contains("shutting down"))
    });
    assert!(draining.is_some(), "{}", host.dump());
    let status = host.wait_exit();
    assert!(status.success(), "exit status {status}\n{}", host.dump());

    let signalled = timestamp(&host.wait_log("received SIGTERM, shutting down"));
    let finished = host
        .lines
        .lock()
        .iter()
        .find(|l| {
            l["fields"]["message"].as_str() == Some("reconcile failed; retrying with backoff")
                && l["fields"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("deadline"))
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the in-flight reconcile ended at its deadline\n{}",
                host.dump()
            )
        });
    assert!(
        timestamp(&finished) > signalled,
        "the reconcile in flight finished after SIGTERM, before the exit"
    );
    host.wait_log("every reconcile in flight has finished");
    server.shutdown().await;
}
