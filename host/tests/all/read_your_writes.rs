//! Read-your-writes: a key is not reconciled again until the host's caches hold the writes its
//! previous reconcile made. The `read-your-writes` test plugin runs the guide's finalizer
//! pattern over several reconciles (conditional merge patches with the cached
//! `resourceVersion`, an immediate requeue after each); the host's watches are slowed down, so
//! a reconcile handed its key before the cache caught up would read its own object stale and
//! get 409 Conflict. With the guard there is none.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::json;

use crate::support;
use crate::support::cluster::{TestCluster, client_for};
use crate::support::eventually;

const NS: &str = "ryw";
const OBJECTS: usize = 4;
const TARGET: u64 = 4;
/// How late the host's watches deliver each chunk of events: far longer than a reconcile takes,
/// so without the guard the next reconcile of a key always reads the cache from before its
/// own write.
const WATCH_LAG: Duration = Duration::from_millis(300);

/// A client for `server` whose watch responses arrive `WATCH_LAG` late (every other request is
/// as fast as ever): an informer cache that trails the API server, as on a busy cluster.
fn lagging_watch_client(server: &ApiServer) -> kube::Client {
    let inner = client_for(server);
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            let watch = request
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
            let (parts, body) = inner.send(request).await?.into_parts();
            let body = axum::body::Body::new(body);
            let body = if watch {
                axum::body::Body::from_stream(body.into_data_stream().then(|chunk| async move {
                    tokio::time::sleep(WATCH_LAG).await;
                    chunk
                }))
            } else {
                body
            };
            Ok::<_, kube::Error>(http::Response::from_parts(parts, body))
        }
    });
    kube::Client::new(service, "default")
}

fn steps(cm: &ConfigMap) -> Option<u64> {
    cm.metadata
        .annotations
        .as_ref()?
        .get("ryw.kubewasm.dev/steps")?
        .parse()
        .ok()
}

/// The value of a counter in the Prometheus text, 0 when absent.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_back_its_own_writes_so_conditional_patches_do_not_conflict() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = client_for(&server);
    let manager = Manager::new(lagging_watch_client(&server), ManagerConfig::default());
    let cluster = TestCluster::from_parts(server, client, support::runtime(), manager);
    cluster
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .await;
    cluster
        .start_plugin(&support::test_plugin("read-your-writes"))
        .await;
    let faults = cluster.server.faults();
    faults.clear_requests();

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    for i in 0..OBJECTS {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("cm-{i}"), "namespace": NS},
            "data": {"target": TARGET.to_string()},
        }))
        .expect("a ConfigMap");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("the ConfigMap is created");
    }
    eventually("every ConfigMap has its finalizer and every step", || {
        let api = api.clone();
        async move {
            let all = api.list(&Default::default()).await.ok()?.items;
            let done = all.len() == OBJECTS
                && all.iter().all(|cm| {
                    steps(cm) == Some(TARGET)
                        && cm
                            .metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| f.iter().any(|f| f == "ryw.kubewasm.dev/cleanup"))
                });
            done.then_some(())
        }
    })
    .await;

    // Each object took 1 + TARGET conditional patches, each read from the cache right after
    // the previous one: not one of them was stale.
    let patches = faults
        .requests()
        .iter()
        .filter(|r| r.verb == "patch" && r.namespace.as_deref() == Some(NS))
        .count();
    assert_eq!(
        faults.responses_with_status(409),
        0,
        "conditional patches conflicted ({patches} patches): a reconcile read its own object stale"
    );
    assert_eq!(patches, OBJECTS * (1 + TARGET as usize));
    let metrics = cluster.manager.render_metrics();
    let waited = counter(
        &metrics,
        r#"kubewasm_cache_waits_total{plugin="read-your-writes",result="caught_up"}"#,
    );
    assert!(
        waited >= 1.0,
        "reconciles waited for the lagging cache: {waited}\n{metrics}"
    );
    cluster.stop().await;
}
