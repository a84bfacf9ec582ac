//! Informers against the embedded API server over real HTTP: sharing (one list+watch however many
//! consumers), the synced gate, re-list after 410 and dropped watches, owner mapping and deletes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DeleteParams, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kubewasm_apiserver::{ApiServer, Config, RequestRecord};
use kubewasm_controller::{
    EventReceiver, EventType, GroupKind, InformerFactory, InformerHandle, InformerKey,
    InformerOptions, InitialList, Mapper, Mapping, ObjectEvent, ObjectKey, OwnedKind, Reason, Via,
    WorkQueue, wait_for_sync,
};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(30);

async fn start() -> (ApiServer, kube::Client) {
    let server = ApiServer::start(Config::default())
        .await
        .expect("failed to start the embedded API server");
    let url = server.url().parse().expect("server url");
    let mut config = kube::Config::new(url);
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config).expect("kube client");
    (server, client)
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn configmaps() -> ApiResource {
    resource("", "v1", "ConfigMap", "configmaps")
}

fn cm(name: &str, labels: &[(&str, &str)], value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().copied().collect::<BTreeMap<_, _>>()},
        "data": {"v": value},
    }))
    .expect("configmap")
}

/// Polls `check` until it returns true or PATIENCE runs out (then fails with `what`).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(requests: &[RequestRecord], resource: &str, verb: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.resource.as_deref() == Some(resource) && r.verb == verb)
        .count()
}

/// The informer's store as name -> (resourceVersion, data.v).
fn cached(h: &InformerHandle) -> BTreeMap<String, (String, String)> {
    h.store()
        .snapshot()
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(e.json()).expect("cached json");
            let data = v["data"]["v"].as_str().unwrap_or_default().to_owned();
            (
                e.key().to_string(),
                (e.resource_version().unwrap_or_default().to_owned(), data),
            )
        })
        .collect()
}

/// The server's objects as name -> (resourceVersion, data.v).
async fn on_server(api: &Api<ConfigMap>, selector: &str) -> BTreeMap<String, (String, String)> {
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("list from the server")
        .items
        .into_iter()
        .map(|c| {
            let key = format!(
                "{}/{}",
                c.metadata.namespace.unwrap_or_default(),
                c.metadata.name.unwrap_or_default()
            );
            let data = c.data.and_then(|d| d.get("v").cloned()).unwrap_or_default();
            (key, (c.metadata.resource_version.unwrap_or_default(), data))
        })
        .collect()
}

async fn next_event(rx: &mut EventReceiver) -> ObjectEvent {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("informer stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_consumers_of_one_kind_make_exactly_one_list_and_one_watch() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("pre-{i}"), &[], "x"))
            .await
            .expect("create");
    }
    server.faults().clear_requests();
    let factory = InformerFactory::new(client);
    let handles: Vec<InformerHandle> = (0..5)
        .map(|_| {
            factory
                .acquire(InformerKey::all(configmaps()), InformerOptions::default())
                .expect("acquire")
        })
        .collect();
    assert_eq!(factory.running(), 1);
    let mut subs: Vec<EventReceiver> = handles.iter().map(InformerHandle::subscribe).collect();
    wait_for_sync(&handles.iter().collect::<Vec<_>>()).await;
    for h in &handles {
        assert_eq!(h.store().len(), 3, "every consumer sees the same store");
    }
    api.create(&PostParams::default(), &cm("live", &[], "y"))
        .await
        .expect("create");
    for rx in &mut subs {
        for _ in 0..3 {
            assert_eq!(next_event(rx).await.event_type, EventType::InitialListItem);
        }
        let e = next_event(rx).await;
        assert_eq!((e.event_type, e.object.name()), (EventType::Added, "live"));
    }
    let requests = server.faults().requests();
    assert_eq!(
        count(&requests, "configmaps", "list"),
        1,
        "one LIST for five consumers: {requests:#?}"
    );
    assert_eq!(
        count(&requests, "configmaps", "watch"),
        1,
        "one WATCH for five consumers: {requests:#?}"
    );
    let stats = handles[0].stats();
    assert_eq!(
        (stats.objects, stats.initial_items, stats.added, stats.lists),
        (4, 3, 1, 1)
    );

    // Releasing every handle stops the watch; the subscriptions end.
    drop(handles);
    assert_eq!(factory.running(), 0);
    for rx in &mut subs {
        let ended = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("subscription should end");
        assert!(ended.is_none());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_informer_syncs_from_a_single_watch_without_a_list() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..4 {
        api.create(&PostParams::default(), &cm(&format!("s-{i}"), &[], "x"))
            .await
            .expect("create");
    }
    server.faults().clear_requests();
    let factory = InformerFactory::new(client);
    let options = InformerOptions {
        initial_list: InitialList::StreamingList,
        ..InformerOptions::default()
    };
    let h = factory
        .acquire(InformerKey::all(configmaps()), options)
        .expect("acquire");
    tokio::time::timeout(PATIENCE, h.wait_synced())
        .await
        .expect("streaming list should sync");
    let requests = server.faults().requests();
    assert_eq!(cached(&h), on_server(&api, "").await);
    assert_eq!(count(&requests, "configmaps", "list"), 0, "{requests:#?}");
    assert_eq!(count(&requests, "configmaps", "watch"), 1, "{requests:#?}");
    assert!(
        requests
            .iter()
            .any(|r| r.query.contains("sendInitialEvents=true")),
        "{requests:#?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_synced_turns_true_only_after_the_first_complete_list_even_when_paginated() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("p-{i}"), &[], "x"))
            .await
            .expect("create");
    }
    server.faults().clear_requests();
    // Slow responses make the window before the first list completes observable.
    server.faults().set_latency(Duration::from_millis(300));
    let factory = InformerFactory::new(client);
    let options = InformerOptions {
        initial_list: InitialList::List { page_size: Some(2) },
        ..InformerOptions::default()
    };
    let h = factory
        .acquire(InformerKey::all(configmaps()), options)
        .expect("acquire");
    assert!(!h.has_synced());
    assert!(
        h.store().is_empty(),
        "pages are buffered until the list is complete"
    );
    tokio::time::timeout(PATIENCE, h.wait_synced())
        .await
        .expect("should sync");
    server.faults().set_latency(Duration::ZERO);
    assert!(h.has_synced());
    assert_eq!(h.store().len(), 7);
    assert_eq!(
        count(&server.faults().requests(), "configmaps", "list"),
        4,
        "7 objects in pages of 2"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_matches_the_server_after_dropped_watches_without_a_relist() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n, &[], "1"))
            .await
            .expect("create");
    }
    let factory = InformerFactory::new(client);
    let h = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire");
    h.wait_synced().await;
    for round in 0..3 {
        server.faults().drop_watches();
        api.replace("a", &PostParams::default(), &{
            let mut c = api.get("a").await.expect("get");
            c.data = Some([("v".to_owned(), format!("r{round}"))].into());
            c
        })
        .await
        .expect("update");
        api.create(
            &PostParams::default(),
            &cm(&format!("new-{round}"), &[], "1"),
        )
        .await
        .expect("create");
        if round == 1 {
            api.delete("b", &DeleteParams::default())
                .await
                .expect("delete");
        }
    }
    eventually("the store to equal the server", async || {
        cached(&h) == on_server(&api, "").await
    })
    .await;
    assert_eq!(
        h.stats().lists,
        1,
        "a dropped watch resumes from its resourceVersion, no re-list"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_matches_the_server_after_a_forced_410_relist_and_missed_deletes_carry_the_last_state()
 {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let sel = [("test", "relist")];
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n, &sel, "1"))
            .await
            .expect("create");
    }
    let factory = InformerFactory::new(client);
    let key = InformerKey {
        label_selector: Some("test=relist".into()),
        ..InformerKey::all(configmaps())
    };
    let h = factory
        .acquire(key, InformerOptions::default())
        .expect("acquire");
    let mut rx = h.subscribe();
    h.wait_synced().await;
    server.faults().clear_requests();

    // Change the selected objects (seen live or not, depending on how fast the watch comes back),
    // then a write the informer cannot see moves the server's resourceVersion past the informer's.
    server.faults().drop_watches();
    let mut a = api.get("a").await.expect("get");
    a.data = Some([("v".to_owned(), "2".to_owned())].into());
    api.replace("a", &PostParams::default(), &a)
        .await
        .expect("update");
    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete");
    api.create(&PostParams::default(), &cm("d", &sel, "1"))
        .await
        .expect("create");
    api.create(&PostParams::default(), &cm("unselected", &[], "1"))
        .await
        .expect("create");
    // Forget history and cut the watch: resuming from the informer's resourceVersion now gets 410 Gone.
    server.faults().compact_history();
    server.faults().drop_watches();

    eventually("a re-list after 410", async || h.stats().lists >= 2).await;
    eventually("the store to equal the server", async || {
        cached(&h) == on_server(&api, "test=relist").await
    })
    .await;
    assert!(
        h.stats().errors >= 1,
        "the 410 is reported as a watch error"
    );
    assert!(count(&server.faults().requests(), "configmaps", "list") >= 1);

    // Whether the delete of b was seen live or found missing by the re-list, subscribers got a
    // Deleted event carrying b's last known state.
    let mut deleted_b = None;
    while let Some(e) = rx.try_recv() {
        if e.event_type == EventType::Deleted && e.object.name() == "b" {
            deleted_b = Some(e);
        }
    }
    let deleted_b = deleted_b.expect("a Deleted event for b");
    assert_eq!(deleted_b.object.labels().get("test"), Some("relist"));
    let v: serde_json::Value = serde_json::from_slice(deleted_b.object.json()).expect("json");
    assert_eq!(v["data"]["v"], "1");
    server.shutdown().await;
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .expect("deployment")
}

fn replicaset(name: &str, owner: &Deployment) -> ReplicaSet {
    let owner_name = owner.metadata.name.clone().unwrap_or_default();
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": owner_name,
            "uid": owner.metadata.uid.clone().unwrap_or_default(), "controller": true
        }]},
        "spec": {
            "selector": {"matchLabels": {"app": owner_name}},
            "template": {"metadata": {"labels": {"app": owner_name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .expect("replicaset")
}

/// Takes items from the queue (marking them done) until one satisfies `want`.
async fn expect_key(
    queue: &WorkQueue<ObjectKey>,
    what: &str,
    want: impl Fn(&ObjectKey, &Reason) -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let item = tokio::time::timeout_at(deadline, queue.get())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("queue open");
        queue.done(&item.key);
        if want(&item.key, &item.reason) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_objects_queue_their_owner_and_deletes_are_delivered_end_to_end() {
    let (server, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let factory = InformerFactory::new(client);
    let dep = factory
        .acquire(
            InformerKey::all(resource("apps", "v1", "Deployment", "deployments")),
            InformerOptions::default(),
        )
        .expect("acquire deployments");
    let rs = factory
        .acquire(
            InformerKey::all(resource("apps", "v1", "ReplicaSet", "replicasets")),
            InformerOptions::default(),
        )
        .expect("acquire replicasets");
    let mapper = Mapper::new(
        Mapping {
            reconciles: GroupKind::new("apps", "Deployment"),
            cluster_scoped: false,
            owns: vec![OwnedKind {
                kind: GroupKind::new("apps", "ReplicaSet"),
                controller_only: true,
            }],
            watches: vec![],
        },
        dep.store().clone(),
    );
    let queue: WorkQueue<ObjectKey> = WorkQueue::default();
    let events = futures::stream::select(dep.subscribe(), rs.subscribe());
    let pump = tokio::spawn(mapper.run(events, queue.clone()));
    wait_for_sync(&[&dep, &rs]).await;

    let web = deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .expect("create deployment");
    let key = ObjectKey::namespaced("default", "web");
    expect_key(&queue, "the deployment's own add", |k, r| {
        k == &key
            && matches!(
                r,
                Reason::Event {
                    via: Via::Own,
                    event: EventType::Added,
                    ..
                }
            )
    })
    .await;

    replicasets
        .create(&PostParams::default(), &replicaset("web-1", &web))
        .await
        .expect("create rs");
    expect_key(&queue, "the owner's key from the replicaset add", |k, r| {
        k == &key
            && matches!(r, Reason::Event { via: Via::Owner, event: EventType::Added, object, kind } if object.name == "web-1" && &**kind == "ReplicaSet")
    })
    .await;

    replicasets
        .delete("web-1", &DeleteParams::default())
        .await
        .expect("delete rs");
    expect_key(
        &queue,
        "the owner's key from the replicaset delete",
        |k, r| {
            k == &key
                && matches!(
                    r,
                    Reason::Event {
                        via: Via::Owner,
                        event: EventType::Deleted,
                        ..
                    }
                )
        },
    )
    .await;
    assert!(rs.store().get(Some("default"), "web-1").is_none());

    deployments
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete deployment");
    expect_key(&queue, "the deployment's own delete", |k, r| {
        k == &key
            && matches!(
                r,
                Reason::Event {
                    via: Via::Own,
                    event: EventType::Deleted,
                    ..
                }
            )
    })
    .await;
    assert!(
        dep.store().get(Some("default"), "web").is_none(),
        "the reconcile sees the object gone from the cache"
    );
    queue.shutdown();
    pump.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscribers_and_new_indexes_see_what_is_already_cached() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, team) in [("a", "red"), ("b", "blue"), ("c", "red")] {
        api.create(&PostParams::default(), &cm(n, &[("team", team)], "1"))
            .await
            .expect("create");
    }
    let factory = InformerFactory::new(client);
    let first = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire");
    first.wait_synced().await;
    // A second plugin arrives later and declares an index: it is backfilled on the shared store.
    let options = InformerOptions {
        indexes: vec![("team".into(), "metadata.labels.team".parse().expect("path"))],
        ..InformerOptions::default()
    };
    let second = factory
        .acquire(InformerKey::all(configmaps()), options)
        .expect("acquire");
    assert!(
        second.has_synced(),
        "joining a synced informer is synced at once"
    );
    let mut names: Vec<String> = second
        .store()
        .list_by_index("team", "red")
        .expect("index")
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
    let mut rx = second.subscribe();
    let mut initial = Vec::new();
    for _ in 0..3 {
        let e = next_event(&mut rx).await;
        assert_eq!(e.event_type, EventType::InitialListItem);
        initial.push(e.object.name().to_owned());
    }
    initial.sort();
    assert_eq!(initial, ["a", "b", "c"]);
    // An invalid selector is a clear error, not a panic.
    let bad = InformerKey {
        label_selector: Some("a in x".into()),
        ..InformerKey::all(configmaps())
    };
    let err = factory
        .acquire(bad, InformerOptions::default())
        .expect_err("bad selector");
    assert!(err.to_string().contains("invalid label selector"), "{err}");
    // Equivalent selector spellings share one informer.
    let k1 = InformerKey {
        label_selector: Some("team==red".into()),
        ..InformerKey::all(configmaps())
    };
    let k2 = InformerKey {
        label_selector: Some(" team = red , team=red".into()),
        ..InformerKey::all(configmaps())
    };
    let (_h1, _h2) = (
        factory
            .acquire(k1, InformerOptions::default())
            .expect("acquire"),
        factory
            .acquire(k2, InformerOptions::default())
            .expect("acquire"),
    );
    assert_eq!(factory.running(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_changes_skips_what_is_cached_and_sees_every_later_change() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("old", &[], "1"))
        .await
        .expect("create");
    let factory = InformerFactory::new(client);
    let h = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire");
    h.wait_synced().await;
    let mut rx = h.subscribe_changes();
    assert!(rx.try_recv().is_none(), "nothing cached is replayed");
    api.create(&PostParams::default(), &cm("new", &[], "1"))
        .await
        .expect("create");
    let e = next_event(&mut rx).await;
    assert_eq!(e.event_type, EventType::Added);
    assert_eq!(e.object.name(), "new");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_gated_on_every_informers_sync_reconcile_only_then_and_follow_events() {
    use futures::stream::SelectAll;
    use kubewasm_controller::{Action, Priority, run_workers, wait_for_sync};

    let (server, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut created = Vec::new();
    for n in ["d1", "d2", "d3"] {
        created.push(
            deployments
                .create(&PostParams::default(), &deployment(n))
                .await
                .expect("create"),
        );
    }
    server.faults().set_latency(Duration::from_millis(200));
    let factory = InformerFactory::new(client);
    let dep = factory
        .acquire(
            InformerKey::all(resource("apps", "v1", "Deployment", "deployments")),
            InformerOptions::default(),
        )
        .expect("acquire deployments");
    let rs = factory
        .acquire(
            InformerKey::all(resource("apps", "v1", "ReplicaSet", "replicasets")),
            InformerOptions::default(),
        )
        .expect("acquire replicasets");
    let mapper = Mapper::new(
        Mapping {
            reconciles: GroupKind::new("apps", "Deployment"),
            cluster_scoped: false,
            owns: vec![OwnedKind {
                kind: GroupKind::new("apps", "ReplicaSet"),
                controller_only: true,
            }],
            watches: vec![],
        },
        dep.store().clone(),
    );
    let queue: WorkQueue<ObjectKey> = WorkQueue::default();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (s, gate_dep, gate_rs) = (seen.clone(), dep.clone(), rs.clone());
    // The composition the host's run loop makes: subscribe first, map events to keys, and run
    // the workers only once every informer has synced (the HasSynced gate).
    let events: SelectAll<_> = [&dep, &rs].iter().map(|h| h.subscribe()).collect();
    let pump = tokio::spawn(mapper.run(events, queue.clone()));
    let workers = queue.clone();
    let controller = tokio::spawn(async move {
        wait_for_sync(&[&dep, &rs]).await;
        run_workers(workers, 2, move |item| {
            let synced = gate_dep.has_synced() && gate_rs.has_synced();
            s.lock().push((
                item.key.to_string(),
                item.reason.clone(),
                item.priority,
                synced,
            ));
            async { Ok::<_, String>(Action::done()) }
        })
        .await;
        drop((dep, rs));
    });
    eventually("the three initial reconciles", async || {
        seen.lock().len() >= 3
    })
    .await;
    server.faults().set_latency(Duration::ZERO);
    {
        let seen = seen.lock();
        assert!(
            seen.iter().all(|(.., synced)| *synced),
            "a reconcile ran before every informer synced: {seen:?}"
        );
        let mut keys: Vec<&str> = seen.iter().map(|(k, ..)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["default/d1", "default/d2", "default/d3"]);
        assert!(seen.iter().all(|(_, r, p, _)| *p == Priority::Low
            && matches!(
                r,
                Reason::Event {
                    event: EventType::InitialListItem,
                    ..
                }
            )));
    }
    replicasets
        .create(&PostParams::default(), &replicaset("d1-x", &created[0]))
        .await
        .expect("create rs");
    eventually("the owner's reconcile", async || {
        seen.lock().iter().any(|(k, r, p, _)| {
            k == "default/d1"
                && *p == Priority::High
                && matches!(
                    r,
                    Reason::Event {
                        via: Via::Owner,
                        ..
                    }
                )
        })
    })
    .await;
    queue.shutdown();
    tokio::time::timeout(PATIENCE, controller)
        .await
        .expect("controller stops")
        .expect("join");
    pump.abort();
    let _ = pump.await;
    assert_eq!(
        factory.running(),
        0,
        "the plugin's informers are released when it stops"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_informer_that_cannot_list_stays_unsynced_and_says_why() {
    let (server, client) = start().await;
    let factory = InformerFactory::new(client);
    let missing = resource("example.com", "v1", "Widget", "widgets");
    let h = factory
        .acquire(InformerKey::all(missing), InformerOptions::default())
        .expect("acquire");
    eventually("a reported list error", async || h.stats().errors >= 1).await;
    assert!(!h.has_synced());
    let why = h.stats().last_error.expect("last error");
    assert!(
        why.contains("404") || why.to_lowercase().contains("not found"),
        "{why}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_outliving_their_factory_still_stop_the_informer_when_dropped() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let factory = InformerFactory::new(client);
    let h = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire");
    let h2 = h.clone();
    let mut rx = h.subscribe();
    drop(factory);
    h.wait_synced().await;
    api.create(&PostParams::default(), &cm("x", &[], "1"))
        .await
        .expect("create");
    assert_eq!(
        next_event(&mut rx).await.event_type,
        EventType::Added,
        "the informer still runs"
    );
    drop(h);
    drop(h2);
    let ended = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("subscription should end");
    assert!(
        ended.is_none(),
        "dropping the last handle stopped the watch"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_kinds_map_to_primaries_by_selector_and_by_index_end_to_end() {
    use kubewasm_controller::{FieldPath, MapBy, WatchMapping};

    let (server, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["web", "api"] {
        let mut d = deployment(n);
        d.metadata.labels = Some([("app".to_owned(), n.to_owned())].into());
        deployments
            .create(&PostParams::default(), &d)
            .await
            .expect("create deployment");
    }
    let factory = InformerFactory::new(client);
    let by_name = (
        "name".to_owned(),
        FieldPath::parse("metadata.name").expect("path"),
    );
    let dep = factory
        .acquire(
            InformerKey::all(resource("apps", "v1", "Deployment", "deployments")),
            InformerOptions {
                indexes: vec![by_name],
                ..InformerOptions::default()
            },
        )
        .expect("acquire deployments");
    let cms = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire configmaps");
    let mapper = Mapper::new(
        Mapping {
            reconciles: GroupKind::new("apps", "Deployment"),
            cluster_scoped: false,
            owns: vec![],
            watches: vec![
                // A ConfigMap whose `selector` data selects Deployments by label.
                WatchMapping {
                    name: "selects".into(),
                    kind: GroupKind::new("", "ConfigMap"),
                    map_by: MapBy::ObjectSelectsPrimaries {
                        path: FieldPath::parse("data").expect("path"),
                    },
                },
                // A ConfigMap naming its Deployment in `metadata.labels.target`, looked up by index.
                WatchMapping {
                    name: "names".into(),
                    kind: GroupKind::new("", "ConfigMap"),
                    map_by: MapBy::Index {
                        index: "name".into(),
                        value_from: FieldPath::parse("metadata.labels.target").expect("path"),
                    },
                },
            ],
        },
        dep.store().clone(),
    );
    let queue: WorkQueue<ObjectKey> = WorkQueue::default();
    let events = futures::stream::select(dep.subscribe(), cms.subscribe());
    let pump = tokio::spawn(mapper.run(events, queue.clone()));
    wait_for_sync(&[&dep, &cms]).await;
    // Take the initial-list keys first (in any order): a key still queued keeps its first reason.
    let mut initial = std::collections::BTreeSet::new();
    while initial.len() < 2 {
        let item = tokio::time::timeout(PATIENCE, queue.get())
            .await
            .expect("timed out waiting for the initial-list keys")
            .expect("queue open");
        queue.done(&item.key);
        assert!(matches!(
            item.reason,
            Reason::Event {
                event: EventType::InitialListItem,
                ..
            }
        ));
        initial.insert(item.key.to_string());
    }
    assert_eq!(
        initial.into_iter().collect::<Vec<_>>(),
        ["default/api", "default/web"]
    );

    let selecting: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "sel"}, "data": {"app": "web"}}))
            .expect("cm");
    cm_api
        .create(&PostParams::default(), &selecting)
        .await
        .expect("create");
    let web = ObjectKey::namespaced("default", "web");
    expect_key(&queue, "web via the selector mapping", |k, r| {
        k == &web && matches!(r, Reason::Event { via: Via::Mapping(m), .. } if &**m == "selects")
    })
    .await;

    let naming: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "ptr", "labels": {"target": "api"}}}))
            .expect("cm");
    cm_api
        .create(&PostParams::default(), &naming)
        .await
        .expect("create");
    let api = ObjectKey::namespaced("default", "api");
    expect_key(&queue, "api via the index mapping", |k, r| {
        k == &api && matches!(r, Reason::Event { via: Via::Mapping(m), .. } if &**m == "names")
    })
    .await;
    queue.shutdown();
    pump.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_list_keys_queue_at_low_priority_live_ones_at_high_and_progress_reaches_each_write()
{
    use kubewasm_controller::{Priority, parse_resource_version};

    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["listed-1", "listed-2"] {
        api.create(&PostParams::default(), &cm(n, &[], "1"))
            .await
            .expect("create");
    }
    let factory = InformerFactory::new(client);
    let h = factory
        .acquire(InformerKey::all(configmaps()), InformerOptions::default())
        .expect("acquire");
    let mapper = Mapper::new(
        Mapping {
            reconciles: GroupKind::new("", "ConfigMap"),
            cluster_scoped: false,
            owns: vec![],
            watches: vec![],
        },
        h.store().clone(),
    );
    let queue: WorkQueue<ObjectKey> = WorkQueue::default();
    tokio::spawn(mapper.run(h.subscribe(), queue.clone()));
    h.wait_synced().await;

    // A write's resourceVersion: the cache has it once progress reaches it.
    let mut progress = h.progress();
    let live = api
        .create(&PostParams::default(), &cm("live", &[], "1"))
        .await
        .expect("create");
    let rv = parse_resource_version(live.metadata.resource_version.as_deref().expect("rv"))
        .expect("the embedded server's resourceVersions are integers");
    tokio::time::timeout(PATIENCE, progress.wait_for(rv))
        .await
        .expect("the informer sees the write");
    assert!(h.store().get(Some("default"), "live").is_some());
    assert!(progress.newest() >= Some(rv));

    // The live key was queued after the listed ones but goes first.
    eventually("every key queued", async || queue.len() == 3).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let item = tokio::time::timeout(PATIENCE, queue.get())
            .await
            .expect("a key")
            .expect("the queue runs");
        got.push((item.key.name.clone(), item.priority));
        queue.done(&item.key);
    }
    assert_eq!(got[0], ("live".to_owned(), Priority::High));
    got.sort();
    assert_eq!(
        got[..2],
        [
            ("listed-1".to_owned(), Priority::Low),
            ("listed-2".to_owned(), Priority::Low)
        ]
    );
    server.shutdown().await;
}
