//! Fault suite, conflicts: many writers on one object. The `tally` test plugin (4 workers) copies
//! each of 50 source ConfigMaps into one shared ConfigMap with conditional replaces read from its
//! cache, while this test writes into the same object from outside and changes sources under it.
//! Stale writes get 409 Conflict; the host must retry them until every update has landed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;

const NS: &str = "conflicts";
const SOURCES: usize = 50;
const OUTSIDE_KEYS: usize = 20;

fn source(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"tally.kubewasm.dev/source": "true"}},
        "data": {"value": value},
    }))
    .expect("a ConfigMap")
}

/// The outside writer: adds `outside-<i>` to the tally the same way the plugin does (read, change,
/// replace with the read resourceVersion), retrying its own conflicts. Returns how many it got.
async fn write_outside(api: Api<ConfigMap>, conflicts: Arc<AtomicU64>) {
    for i in 0..OUTSIDE_KEYS {
        loop {
            let mut tally = api.get("tally").await.expect("the tally can be read");
            tally
                .data
                .get_or_insert_default()
                .insert(format!("outside-{i}"), i.to_string());
            match api.replace("tally", &PostParams::default(), &tally).await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("the outside write failed: {e}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_on_one_object_retry_their_conflicts_and_lose_no_update() {
    let cluster = TestCluster::start().await;
    cluster
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let tally: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "tally", "namespace": NS}, "data": {}}))
            .expect("a ConfigMap");
    api.create(&PostParams::default(), &tally)
        .await
        .expect("the tally is created");
    cluster.start_plugin(&support::test_plugin("tally")).await;
    let faults = cluster.server.faults();
    faults.clear_requests();

    // All sources at once, the outside writer beside them, then half of the sources change value
    // while the first round of writes is still in flight.
    let outside_conflicts = Arc::new(AtomicU64::new(0));
    let outside = tokio::spawn(write_outside(api.clone(), outside_conflicts.clone()));
    let names: Vec<String> = (0..SOURCES).map(|i| format!("source-{i:02}")).collect();
    futures::future::join_all(names.iter().map(|n| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &source(n, "1"))
                .await
                .expect("a source is created")
        }
    }))
    .await;
    futures::future::join_all(names.iter().step_by(2).map(|n| {
        let api = api.clone();
        async move {
            api.replace(n, &PostParams::default(), &{
                let mut s = api.get(n).await.expect("the source can be read");
                s.data = Some([("value".to_string(), "2".to_string())].into());
                s
            })
            .await
            .expect("a source is changed")
        }
    }))
    .await;
    outside.await.expect("the outside writer finished");

    let mut want: BTreeMap<String, String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), if i % 2 == 0 { "2" } else { "1" }.to_string()))
        .collect();
    want.extend((0..OUTSIDE_KEYS).map(|i| (format!("outside-{i}"), i.to_string())));
    let got = eventually(
        "the tally holds every source's latest value and every outside key",
        || {
            let api = api.clone();
            let want = want.clone();
            async move {
                let data = api.get("tally").await.ok()?.data.unwrap_or_default();
                (data == want).then_some(data)
            }
        },
    )
    .await;
    let lost = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count();
    assert_eq!(lost, 0);

    // The scenario really had many writers colliding: the plugin's own replaces hit conflicts too.
    let conflicts = faults.responses_with_status(409);
    let outside = outside_conflicts.load(Ordering::Relaxed);
    assert!(
        conflicts > outside,
        "expected the plugin's writes to conflict too: {conflicts} 409s in all, {outside} of them the outside writer's"
    );
    let replaces = faults
        .requests()
        .iter()
        .filter(|r| r.verb == "update" && r.path.ends_with("/configmaps/tally"))
        .count();
    let retries = cluster
        .manager
        .status()
        .iter()
        .find(|s| s.name == "tally")
        .map_or(0, |s| s.queue.retries);
    support::fault_report::record(
        "conflicts",
        "many writers on one object",
        &format!(
            "{SOURCES} sources x 4 workers + 1 outside writer ({OUTSIDE_KEYS} keys) on one ConfigMap, half the sources changed mid-run"
        ),
        &format!(
            "{conflicts} 409s ({} plugin, {outside} outside) in {replaces} replaces, {retries} requeues with backoff; all {} keys present",
            conflicts - outside,
            want.len()
        ),
        Some(lost as u64),
    );
    cluster.stop().await;
}
