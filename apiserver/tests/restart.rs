//! The restart fault: every connection and watch closed, connections refused during the outage, the same
//! address, objects and resourceVersions afterwards, and clients (kube::Client, kube-runtime's reflector)
//! carrying on by themselves.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use common::{client, eventually, server};

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}}))
        .expect("configmap")
}

fn rv(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("a numeric resourceVersion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_ends_watches_refuses_connections_then_serves_the_same_state_on_the_same_address() {
    let server = server().await;
    let faults = server.faults();
    let addr = server.local_addr();
    let api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let a = api
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .expect("create a");
    let watch_from = a.metadata.resource_version.clone().expect("rv");
    let mut events = api
        .watch(&WatchParams::default(), &watch_from)
        .await
        .expect("watch starts")
        .boxed();
    assert!(faults.is_serving());

    faults.restart(Duration::from_secs(3)).await;

    // The open watch ended (EOF or a broken connection), it did not hang.
    let ended = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("the watch was not ended by the restart");
    assert!(
        matches!(ended, None | Some(Err(_))),
        "no event expected on a watch cut by a restart: {ended:?}"
    );
    assert!(!faults.is_serving(), "the outage lasts 3 s");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a connection during the outage is refused: {refused:?}"
    );
    assert!(
        api.get("a").await.is_err(),
        "a request during the outage fails"
    );

    faults.wait_serving().await;
    assert!(faults.is_serving());
    assert_eq!(server.local_addr(), addr);
    // The same client (its broken pooled connections replaced) sees the same object, unchanged.
    let again = api.get("a").await.expect("get after the restart");
    assert_eq!(again.metadata.resource_version, a.metadata.resource_version);
    assert_eq!(again.metadata.uid, a.metadata.uid);
    // resourceVersions continue; the watch history survived, so a watch resumes from before the restart.
    let b = api
        .create(&PostParams::default(), &cm("b", "1"))
        .await
        .expect("create b after the restart");
    assert!(rv(&b) > rv(&a), "resourceVersions continue after a restart");
    let mut resumed = api
        .watch(&WatchParams::default(), &watch_from)
        .await
        .expect("watch resumes")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(30), resumed.next())
        .await
        .expect("an event within 30 s")
        .expect("the stream is open")
        .expect("a watch event");
    match first {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflector_resumes_after_a_restart_and_sees_writes_made_after_it() {
    let server = server().await;
    let faults = server.faults();
    let api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    api.create(&PostParams::default(), &cm("before", "1"))
        .await
        .expect("create");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let driver = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .expect("store ready within 30 s")
        .expect("writer alive");

    faults.restart(Duration::from_millis(500)).await;
    faults.wait_serving().await;
    // A separate client writes, so the reflector's own reconnection is what is tested.
    let writer_api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    writer_api
        .create(&PostParams::default(), &cm("after", "1"))
        .await
        .expect("create after the restart");
    let mut names = eventually(
        "the reflector sees the write made after the restart",
        || {
            let reader = reader.clone();
            async move {
                let names: Vec<String> = reader
                    .state()
                    .iter()
                    .filter_map(|c| c.metadata.name.clone())
                    .collect();
                (names.len() == 2).then_some(names)
            }
        },
    )
    .await;
    names.sort();
    assert_eq!(names, ["after", "before"]);
    driver.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_during_an_outage_returns_and_a_later_restart_is_a_no_op() {
    let server = server().await;
    let faults = server.faults();
    faults.restart(Duration::from_secs(3600)).await;
    assert!(!faults.is_serving());
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown does not wait out the outage");
    tokio::time::timeout(Duration::from_secs(30), async {
        faults.wait_serving().await;
        faults.restart(Duration::from_secs(1)).await;
    })
    .await
    .expect("waiting on a stopped server returns at once");
    assert!(!faults.is_serving());
}

#[tokio::test]
async fn response_counts_by_status_include_conflicts() {
    let server = server().await;
    let faults = server.faults();
    let api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let a = api
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .expect("create");
    let mut stale = a.clone();
    api.replace("a", &PostParams::default(), &cm_with_rv(&a, "2"))
        .await
        .expect("first replace");
    stale.data = Some([("v".to_string(), "3".to_string())].into());
    let conflict = api.replace("a", &PostParams::default(), &stale).await;
    assert!(
        matches!(&conflict, Err(kube::Error::Api(s)) if s.code == 409),
        "{conflict:?}"
    );
    assert_eq!(faults.responses_with_status(409), 1);
    assert!(faults.responses_with_status(200) >= 1);
    assert_eq!(faults.responses_with_status(201), 1);
    faults.clear_requests();
    assert_eq!(faults.responses_with_status(409), 0);
    server.shutdown().await;
}

fn cm_with_rv(base: &ConfigMap, value: &str) -> ConfigMap {
    let mut c = base.clone();
    c.data = Some([("v".to_string(), value.to_string())].into());
    c
}
