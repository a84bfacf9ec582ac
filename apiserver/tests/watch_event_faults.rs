//! Faults::perturb_watch_events: live watch events dropped, duplicated or reordered (what the
//! host's perturbation tests do to a plugin's informers), seen by a real watch over HTTP.

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kubewasm_apiserver::EventFault;
use serde_json::json;

use common::{client, server};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("configmap")
}

/// Creates `names` in order, then reads `n` ADDED events from a watch opened before, and
/// returns their names in the order they came.
async fn added_after(
    fault: EventFault,
    every: u64,
    limit: u64,
    names: &[&str],
    n: usize,
) -> Vec<String> {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let rv = api
        .list(&Default::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    let stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("the watch starts");
    server.faults().perturb_watch_events(fault, every, limit);
    for name in names {
        api.create(&PostParams::default(), &cm(name))
            .await
            .expect("create");
    }
    let names: Vec<String> = tokio::time::timeout(
        Duration::from_secs(30),
        stream
            .try_filter_map(|e| async move {
                Ok(match e {
                    WatchEvent::Added(o) => o.metadata.name,
                    _ => None,
                })
            })
            .take(n)
            .try_collect(),
    )
    .await
    .expect("the events arrive")
    .expect("the watch streams");
    assert_eq!(server.faults().perturbed_watch_events(), limit);
    server.shutdown().await;
    names
}

#[tokio::test]
async fn duplicated_events_arrive_twice_in_a_row() {
    let got = added_after(EventFault::Duplicate, 1, 2, &["a", "b", "c"], 5).await;
    assert_eq!(got, ["a", "a", "b", "b", "c"]);
}

#[tokio::test]
async fn a_reordered_event_comes_after_the_next_event_about_another_object() {
    let got = added_after(EventFault::Reorder, 2, 1, &["a", "b", "c", "d"], 4).await;
    assert_eq!(got, ["a", "c", "b", "d"]);
}

#[tokio::test]
async fn a_reordered_event_with_nothing_after_it_still_arrives() {
    let got = added_after(EventFault::Reorder, 2, 1, &["a", "b"], 2).await;
    assert_eq!(got, ["a", "b"]);
}

#[tokio::test]
async fn dropped_events_never_arrive_and_the_stream_goes_on() {
    let got = added_after(EventFault::Drop, 2, 2, &["a", "b", "c", "d", "e"], 3).await;
    assert_eq!(got, ["a", "c", "e"]);
}

#[tokio::test]
async fn events_about_one_object_keep_their_order() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("the watch starts");
    server
        .faults()
        .perturb_watch_events(EventFault::Reorder, 1, 1);
    api.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let mut changed = cm("a");
    changed.data = Some([("k".to_owned(), "v".to_owned())].into());
    api.replace("a", &PostParams::default(), &changed)
        .await
        .expect("replace");
    let kinds: Vec<&str> = tokio::time::timeout(
        Duration::from_secs(30),
        stream
            .map_ok(|e| match e {
                WatchEvent::Added(_) => "ADDED",
                WatchEvent::Modified(_) => "MODIFIED",
                _ => "OTHER",
            })
            .take(2)
            .try_collect(),
    )
    .await
    .expect("the events arrive")
    .expect("the watch streams");
    assert_eq!(kinds, ["ADDED", "MODIFIED"]);
    assert_eq!(server.faults().perturbed_watch_events(), 1);
    server.shutdown().await;
}
