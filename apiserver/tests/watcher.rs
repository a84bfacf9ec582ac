//! kube-runtime's watcher and reflector against the embedded server: paged initial lists, live events,
//! re-list after a forced 410, resume after dropped watches, streaming lists, and injected faults.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kubewasm_apiserver::{ApiServer, Config, Failure, RequestRecord};
use serde_json::json;

use common::{client, eventually, get, server, server_with};

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "test"}},
        "data": {"v": value},
    }))
    .expect("configmap")
}

/// name -> (resourceVersion, data.v) of every ConfigMap in "default", as the server has them.
async fn server_state(api: &Api<ConfigMap>) -> BTreeMap<String, (String, String)> {
    let list = api.list(&Default::default()).await.expect("list");
    list.items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                (
                    c.metadata.resource_version.clone().unwrap_or_default(),
                    c.data
                        .as_ref()
                        .and_then(|d| d.get("v").cloned())
                        .unwrap_or_default(),
                ),
            )
        })
        .collect()
}

fn store_state(store: &Store<ConfigMap>) -> BTreeMap<String, (String, String)> {
    store
        .state()
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                (
                    c.metadata.resource_version.clone().unwrap_or_default(),
                    c.data
                        .as_ref()
                        .and_then(|d| d.get("v").cloned())
                        .unwrap_or_default(),
                ),
            )
        })
        .collect()
}

async fn converge(api: &Api<ConfigMap>, store: &Store<ConfigMap>, what: &str) {
    eventually(what, || async {
        let want = server_state(api).await;
        (store_state(store) == want).then_some(())
    })
    .await;
}

fn configmap_requests(server: &ApiServer) -> Vec<RequestRecord> {
    server
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.resource.as_deref() == Some("configmaps"))
        .collect()
}

#[tokio::test]
async fn reflector_store_equals_server_after_paged_list_events_forced_410_and_dropped_watches() {
    // No bookmarks during the test: one landing between the Secret write and the compaction below
    // would carry the watcher past the compacted history, and it would resume without a 410.
    let server = server_with(Config {
        bookmark_interval: Duration::from_secs(24 * 3600),
        ..Config::default()
    })
    .await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), "initial"))
            .await
            .expect("create");
    }
    server.faults().clear_requests();

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().page_size(2)),
    )
    .default_backoff()
    .applied_objects();
    let driver = tokio::spawn(async move {
        stream.for_each(|_| async {}).await;
    });
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .expect("store ready within 30s")
        .expect("writer alive");

    // The initial list came in more than one page, each asking for 2 items.
    // (The test's own comparisons list without a limit; the watcher's lists carry limit=2.)
    let lists: Vec<RequestRecord> = configmap_requests(&server)
        .into_iter()
        .filter(|r| r.verb == "list")
        .collect();
    assert!(lists.len() >= 4, "7 objects in pages of 2: {lists:?}");
    assert!(lists.iter().all(|r| r.query.contains("limit=2")));
    assert!(lists.iter().skip(1).all(|r| r.query.contains("continue=")));
    converge(&api, &reader, "initial list in the store").await;

    // Live events: add, modify, delete.
    api.create(&PostParams::default(), &cm("cm-new", "x"))
        .await
        .expect("create");
    api.patch(
        "cm-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "changed"}})),
    )
    .await
    .expect("patch");
    api.delete("cm-2", &DeleteParams::default())
        .await
        .expect("delete");
    converge(&api, &reader, "watch events applied").await;

    // Dropped watches: the watcher resumes from its last resourceVersion without re-listing.
    server.faults().clear_requests();
    server.faults().drop_watches();
    api.patch(
        "cm-3",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "after-drop"}})),
    )
    .await
    .expect("patch");
    converge(&api, &reader, "resume after dropped watch").await;
    let after_drop = configmap_requests(&server);
    assert!(
        after_drop.iter().any(|r| r.watch
            && r.query.contains("resourceVersion=")
            && !r.query.contains("resourceVersion=0")),
        "the watcher re-watched from a resourceVersion: {after_drop:?}"
    );
    assert!(
        !after_drop
            .iter()
            .any(|r| r.verb == "list" && r.query.contains("limit=2")),
        "no re-list needed after a plain drop: {after_drop:?}"
    );

    // Compacted history + dropped watch: the re-watch gets 410 and the watcher re-lists. A write to
    // another resource first moves the server past the watcher's last resourceVersion.
    server.faults().clear_requests();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bump"}})).expect("secret"),
        )
        .await
        .expect("create secret");
    server.faults().compact_history();
    server.faults().drop_watches();
    api.patch(
        "cm-4",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "after-410"}})),
    )
    .await
    .expect("patch");
    api.delete("cm-5", &DeleteParams::default())
        .await
        .expect("delete");
    converge(&api, &reader, "re-list after 410").await;
    eventually("a re-list after the 410", || async {
        configmap_requests(&server)
            .iter()
            .any(|r| r.verb == "list" && r.query.contains("limit=2"))
            .then_some(())
    })
    .await;
    driver.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("s-{i}"), "v"))
            .await
            .expect("create");
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().streaming_lists()),
    )
    .default_backoff()
    .applied_objects();
    let driver = tokio::spawn(async move {
        stream.for_each(|_| async {}).await;
    });
    // The store only becomes ready after the initial-events-end bookmark.
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .expect("store ready within 30s")
        .expect("writer alive");
    assert_eq!(reader.state().len(), 3);
    let reqs = configmap_requests(&server);
    assert!(
        reqs.iter()
            .any(|r| r.watch && r.query.contains("sendInitialEvents=true")),
        "{reqs:?}"
    );
    assert!(!reqs.iter().any(|r| r.verb == "list"), "no list: {reqs:?}");
    api.create(&PostParams::default(), &cm("s-live", "v"))
        .await
        .expect("create");
    converge(&api, &reader, "streaming watcher sees live events").await;
    driver.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_a_410_error_event() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c = api
        .create(&PostParams::default(), &cm("old", "v"))
        .await
        .expect("create");
    let rv = c.metadata.resource_version.expect("rv");
    api.create(&PostParams::default(), &cm("newer", "v"))
        .await
        .expect("create");
    server.faults().compact_history();
    let r = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5"
        ),
    )
    .await;
    assert_eq!(r.code, 200);
    let first: serde_json::Value =
        serde_json::from_str(r.text.lines().next().expect("one event")).expect("json event");
    assert_eq!(first["type"], "ERROR");
    assert_eq!(first["object"]["kind"], "Status");
    assert_eq!(first["object"]["code"], 410);
    assert_eq!(first["object"]["reason"], "Expired");
    assert!(
        first["object"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too old resource version"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_exactly_the_later_events() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .expect("create");
    api.create(&PostParams::default(), &cm("b", "1"))
        .await
        .expect("create");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let rv = first.metadata.resource_version.expect("rv");
    let r = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
        ),
    )
    .await;
    let events: Vec<(String, String)> = r
        .text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("event json");
            (
                v["type"].as_str().unwrap_or("").to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("ADDED".to_string(), "b".to_string()),
            ("DELETED".to_string(), "a".to_string())
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_with_a_label_selector_sends_deleted_when_an_object_stops_matching() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c = api
        .create(&PostParams::default(), &cm("sel", "1"))
        .await
        .expect("create");
    let rv = c.metadata.resource_version.expect("rv");
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("patch");
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "test"}}})),
    )
    .await
    .expect("patch");
    let r = get(
        &client,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1&labelSelector=app%3Dtest"),
    )
    .await;
    let types: Vec<String> = r
        .text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("event json");
            v["type"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(types, ["DELETED", "ADDED"]);
    server.shutdown().await;
}

/// Reads a watch's NDJSON stream until `lines` events arrived (30 s at most), then drops it.
async fn first_events(client: &kube::Client, path: &str, lines: usize) -> Vec<serde_json::Value> {
    let req = http::Request::get(path)
        .body(kube::client::Body::empty())
        .expect("request");
    let mut body = client.send(req).await.expect("watch").into_body();
    let mut text = String::new();
    while text.matches('\n').count() < lines {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .unwrap_or_else(|_| panic!("{lines} events within 30s; got {text:?}"))
            .unwrap_or_else(|| panic!("the watch ended early; got {text:?}"))
            .expect("no error");
        if let Some(d) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(d));
        }
    }
    text.lines()
        .take(lines)
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect()
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed() {
    let server = server_with(Config {
        bookmark_interval: Duration::from_millis(20),
        ..Config::default()
    })
    .await;
    let client = client(&server);
    let events = first_events(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=600",
        2,
    )
    .await;
    for v in &events {
        assert_eq!(v["type"], "BOOKMARK");
        assert_eq!(v["object"]["kind"], "ConfigMap");
        assert!(v["object"]["metadata"]["resourceVersion"].is_string());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_zero_bookmark_interval_is_refused_at_start() {
    let err = ApiServer::start(Config {
        bookmark_interval: Duration::ZERO,
        ..Config::default()
    })
    .await
    .err()
    .expect("a zero bookmark interval is refused");
    assert!(err.to_string().contains("bookmark_interval"), "{err}");
}

#[tokio::test]
async fn injected_failures_answer_the_next_requests_then_stop() {
    let server = server().await;
    // kube::Client retries 429 by default; this test looks at the raw answers.
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    server.faults().fail_next(2, Failure::ServerError);
    for _ in 0..2 {
        let r = get(&client, "/api/v1/namespaces/default/configmaps").await;
        common::assert_status(&r, 500, "InternalError");
    }
    assert_eq!(
        get(&client, "/api/v1/namespaces/default/configmaps")
            .await
            .code,
        200
    );
    server.faults().fail_next(
        1,
        Failure::TooManyRequests {
            retry_after: Duration::from_secs(3),
        },
    );
    let r = get(&client, "/api/v1/namespaces/default/configmaps").await;
    common::assert_status(&r, 429, "TooManyRequests");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(r.body["details"]["retryAfterSeconds"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn added_latency_delays_responses() {
    let server = server().await;
    let client = client(&server);
    server.faults().set_latency(Duration::from_millis(300));
    let start = std::time::Instant::now();
    get(&client, "/api/v1/namespaces").await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    server.faults().set_latency(Duration::ZERO);
    server.shutdown().await;
}

#[tokio::test]
async fn request_log_records_verbs_paths_and_watches() {
    let server = server().await;
    let client = client(&server);
    server.faults().clear_requests();
    get(&client, "/api/v1/namespaces/default/configmaps?limit=1").await;
    get(&client, "/api/v1/namespaces/default").await;
    get(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=0",
    )
    .await;
    get(&client, "/apis").await;
    let log = server.faults().requests();
    let got: Vec<(&str, &str, bool, Option<&str>)> = log
        .iter()
        .map(|r| {
            (
                r.verb.as_str(),
                r.path.as_str(),
                r.watch,
                r.resource.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "list",
                "/api/v1/namespaces/default/configmaps",
                false,
                Some("configmaps")
            ),
            (
                "get",
                "/api/v1/namespaces/default",
                false,
                Some("namespaces")
            ),
            (
                "watch",
                "/api/v1/namespaces/default/configmaps",
                true,
                Some("configmaps")
            ),
            ("discovery", "/apis", false, None),
        ]
    );
    assert_eq!(log[0].query, "limit=1");
    assert_eq!(log[0].namespace.as_deref(), Some("default"));
    assert_eq!(log[0].method, "GET");
    server.shutdown().await;
}

#[tokio::test]
async fn list_and_watch_parameters_follow_kube_rules() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c = api
        .create(&PostParams::default(), &cm("p", "1"))
        .await
        .expect("create");
    let old = c.metadata.resource_version.expect("rv");
    api.create(&PostParams::default(), &cm("q", "1"))
        .await
        .expect("create");
    // Streaming lists need resourceVersionMatch=NotOlderThan.
    let r = get(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true",
    )
    .await;
    common::assert_status(&r, 422, "Invalid");
    // Exact reads of an older list are not kept: 410; of the current one: fine.
    let r = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={old}&resourceVersionMatch=Exact"
        ),
    )
    .await;
    common::assert_status(&r, 410, "Expired");
    let now = get(&client, "/api/v1/namespaces/default/configmaps").await;
    let rv = now.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_string();
    let r = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    // NotOlderThan an older version serves the current state.
    let r = get(
        &client,
        &format!("/api/v1/namespaces/default/configmaps?resourceVersion={old}&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2));
    // A watch with timeoutSeconds ends on its own.
    let start = std::time::Instant::now();
    let r = get(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
    )
    .await;
    assert_eq!(
        r.text.lines().count(),
        2,
        "initial ADDED events: {}",
        r.text
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    server.shutdown().await;
}
