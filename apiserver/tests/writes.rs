//! Write semantics through kube::Client: conflicts, generateName, server-filled fields, finalizers,
//! status subresource isolation, generation, patches and server-side apply, namespaces, lists.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::{assert_status, client, get, send_json, server};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox:1"},
                ]},
            },
        },
    }))
    .expect("deployment")
}

fn kube_code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn stale_resource_version_update_is_a_409_conflict() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let created = api
        .create(&PostParams::default(), &cm("foo"))
        .await
        .expect("create");
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "first".to_string())].into());
    api.replace("foo", &PostParams::default(), &first)
        .await
        .expect("first update");
    let mut stale = created;
    stale.data = Some([("k".to_string(), "stale".to_string())].into());
    let err = api
        .replace("foo", &PostParams::default(), &stale)
        .await
        .expect_err("stale");
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"foo\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let now = api.get("foo").await.expect("get");
    assert_eq!(
        now.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("first")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_create_is_409_already_exists() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    api.create(&PostParams::default(), &cm("dup"))
        .await
        .expect("create");
    let err = api
        .create(&PostParams::default(), &cm("dup"))
        .await
        .expect_err("dup");
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"dup\" already exists");
    server.shutdown().await;
}

#[tokio::test]
async fn generate_name_gives_distinct_names_with_the_prefix() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let obj: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).expect("cm");
    let a = api.create(&PostParams::default(), &obj).await.expect("a");
    let b = api.create(&PostParams::default(), &obj).await.expect("b");
    let (na, nb) = (
        a.metadata.name.expect("name"),
        b.metadata.name.expect("name"),
    );
    assert!(na.starts_with("gen-") && nb.starts_with("gen-"));
    assert_ne!(na, nb);
    api.get(&na).await.expect("stored under the generated name");
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_fills_uid_timestamp_resource_version_and_generation() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let a = api
        .create(&PostParams::default(), &cm("filled"))
        .await
        .expect("create");
    let b = api
        .create(&PostParams::default(), &cm("filled-2"))
        .await
        .expect("create");
    assert!(a.metadata.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(a.metadata.creation_timestamp.is_some());
    // Like kube-apiserver, ConfigMaps carry no generation (workloads and custom resources do).
    assert_eq!(a.metadata.generation, None);
    let rv = |c: &ConfigMap| {
        c.metadata
            .resource_version
            .clone()
            .expect("rv")
            .parse::<u64>()
            .expect("numeric")
    };
    assert!(rv(&b) > rv(&a));
    server.shutdown().await;
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_resource_version() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let a = api
        .create(&PostParams::default(), &cm("same"))
        .await
        .expect("create");
    let b = api
        .replace("same", &PostParams::default(), &a)
        .await
        .expect("replace");
    assert_eq!(a.metadata.resource_version, b.metadata.resource_version);
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_they_are_removed() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut obj = cm("fin");
    obj.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");

    let deleted = api
        .delete("fin", &DeleteParams::default())
        .await
        .expect("delete");
    let held = deleted
        .left()
        .expect("the object is returned while finalizers remain");
    assert!(held.metadata.deletion_timestamp.is_some());
    let still = api.get("fin").await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    // Deleting again changes nothing.
    let again = api
        .delete("fin", &DeleteParams::default())
        .await
        .expect("delete again");
    assert_eq!(
        again.left().and_then(|o| o.metadata.resource_version),
        still.metadata.resource_version
    );

    api.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizers");
    let err = api.get("fin").await.expect_err("gone");
    assert_eq!(kube_code(&err), 404);

    let w = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
        ),
    )
    .await;
    let types: Vec<String> = w
        .text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(types, ["MODIFIED", "DELETED"]);
    server.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_from_the_main_resource() {
    let server = server().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&server));
    api.create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");

    // /status changes only .status.
    let status_patch = json!({"status": {"replicas": 5}, "spec": {"replicas": 9}});
    let s = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .expect("patch status");
    assert_eq!(s.status.as_ref().and_then(|s| s.replicas), Some(5));
    assert_eq!(s.spec.as_ref().and_then(|s| s.replicas), Some(1));

    // The main resource ignores .status.
    let m = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 0}, "spec": {"replicas": 2}})),
        )
        .await
        .expect("patch main");
    assert_eq!(m.status.as_ref().and_then(|s| s.replicas), Some(5));
    assert_eq!(m.spec.as_ref().and_then(|s| s.replicas), Some(2));

    // PUT of /status.
    let mut cur = api.get_status("web").await.expect("get status");
    if let Some(st) = cur.status.as_mut() {
        st.ready_replicas = Some(2);
    }
    let put = api
        .replace_status("web", &PostParams::default(), &cur)
        .await
        .expect("replace status");
    assert_eq!(put.status.and_then(|s| s.ready_replicas), Some(2));
    server.shutdown().await;
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let server = server().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&server));
    let d = api
        .create(&PostParams::default(), &deployment("gen", 1))
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let d = api
        .patch(
            "gen",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}, "annotations": {"a": "b"}}})),
        )
        .await
        .expect("metadata");
    assert_eq!(d.metadata.generation, Some(1));
    let d = api
        .patch_status(
            "gen",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .expect("status");
    assert_eq!(d.metadata.generation, Some(1));
    let d = api
        .patch("gen", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("spec");
    assert_eq!(d.metadata.generation, Some(2));
    server.shutdown().await;
}

#[tokio::test]
async fn merge_json_and_strategic_merge_patches_apply() {
    let server = server().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&server));
    api.create(&PostParams::default(), &deployment("p", 1))
        .await
        .expect("create");
    let pp = PatchParams::default();
    let d = api
        .patch("p", &pp, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .expect("merge");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(4));

    // JSON patch (raw: kube's Patch::Json needs its own json-patch version).
    let r = common::raw(
        &api.clone().into_client(),
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/p",
        Some("application/json-patch+json"),
        serde_json::to_vec(&json!([
            {"op": "test", "path": "/spec/replicas", "value": 4},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
        ]))
        .expect("json"),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["replicas"], 5);

    // Strategic merge: containers merge by name, env by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]},
    ]}}}});
    let d = api
        .patch("p", &pp, &Patch::Strategic(smp))
        .await
        .expect("strategic");
    let containers = d
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers;
    assert_eq!(containers.len(), 2, "sidecar kept: {containers:?}");
    let main = containers.iter().find(|c| c.name == "main").expect("main");
    assert_eq!(main.image.as_deref(), Some("nginx:2"));
    let env: Vec<&str> = main.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert!(env.contains(&"A") && env.contains(&"B"), "{env:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_conflicts_without_force_and_wins_with_force() {
    let server = server().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&server));
    let mine = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ssa"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ssa"}},
                 "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
    });
    let d = api
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&mine))
        .await
        .expect("apply creates");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert!(
        d.metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("alice"))
    );

    let theirs = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"}, "spec": {"replicas": 3}});
    let err = api
        .patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&theirs))
        .await
        .expect_err("conflict");
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(status.message.contains("alice"), "{}", status.message);
    assert!(
        status.message.contains(".spec.replicas"),
        "{}",
        status.message
    );
    assert_eq!(
        api.get("ssa")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(2)
    );

    let d = api
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .expect("forced");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
    server.shutdown().await;
}

#[tokio::test]
async fn objects_in_a_missing_namespace_are_404_and_deleting_a_namespace_deletes_its_contents() {
    let server = server().await;
    let client = client(&server);
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let err = missing
        .create(&PostParams::default(), &cm("x"))
        .await
        .expect_err("404");
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nope\" not found");

    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns"),
    )
    .await
    .expect("create ns");
    let in_team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    in_team
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).expect("pod"),
    )
    .await
    .expect("pod");
    nss.delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    assert_eq!(kube_code(&nss.get("team").await.expect_err("ns gone")), 404);
    assert!(
        in_team
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for (name, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
        let mut c = cm(name);
        c.metadata.labels = Some([("env".to_string(), env.to_string())].into());
        api.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    let l = api
        .list(&ListParams::default().labels("env=prod"))
        .await
        .expect("list");
    assert_eq!(names(l), ["a", "c"]);
    let l = api
        .list(&ListParams::default().labels("env in (dev),!missing"))
        .await
        .expect("list");
    assert_eq!(names(l), ["b"]);
    let l = api
        .list(&ListParams::default().fields("metadata.name!=a"))
        .await
        .expect("list");
    assert_eq!(names(l), ["b", "c"]);
    let pods: Api<Pod> = Api::all(client.clone());
    pods.list(&ListParams::default().fields("spec.nodeName=n1,status.phase=Running"))
        .await
        .expect("pod field selectors are supported");
    server.shutdown().await;
}

#[tokio::test]
async fn pages_come_from_one_snapshot_and_expire_after_compaction() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("p{i}")))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    // Written after the snapshot: not in later pages.
    api.create(&PostParams::default(), &cm("p9"))
        .await
        .expect("create");
    api.delete("p4", &DeleteParams::default())
        .await
        .expect("delete");
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    let third = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().expect("more")),
        )
        .await
        .expect("page 3");
    let all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(all, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(
        first.metadata.resource_version,
        third.metadata.resource_version
    );
    assert!(third.metadata.continue_.is_none());

    let again = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    server.faults().compact_history();
    let r = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={}",
            again.metadata.continue_.expect("token")
        ),
    )
    .await;
    assert_status(&r, 410, "Expired");
    server.shutdown().await;
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&pp, &cm("dry")).await.expect("dry create");
    assert_eq!(
        kube_code(&api.get("dry").await.expect_err("not stored")),
        404
    );

    // A dry-run change answers with the would-be object at the current resourceVersion (so
    // `kubectl diff` shows only the real change) and stores nothing.
    let wet = api
        .create(&PostParams::default(), &cm("wet"))
        .await
        .expect("create");
    let rv = wet.metadata.resource_version.clone();
    let dry_patch = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = api
        .patch(
            "wet",
            &dry_patch,
            &Patch::Merge(json!({"data": {"k": "changed"}})),
        )
        .await
        .expect("dry patch");
    assert_eq!(
        answered.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("changed")
    );
    assert_eq!(answered.metadata.resource_version, rv);
    let stored = api.get("wet").await.expect("get");
    assert_eq!(stored.metadata.resource_version, rv);
    assert_eq!(
        stored.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("v")
    );
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("wet", &dp).await.expect("dry delete");
    assert_eq!(
        api.get("wet")
            .await
            .expect("still there")
            .metadata
            .resource_version,
        rv
    );
    server.shutdown().await;
}

#[tokio::test]
async fn delete_collection_removes_only_matching_objects() {
    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for (name, tier) in [("x", "a"), ("y", "a"), ("z", "b")] {
        let mut c = cm(name);
        c.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=a"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["z"]);
    let r = send_json(
        &client,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/z",
        &json!({"preconditions": {"resourceVersion": "1"}}),
    )
    .await;
    assert_status(&r, 409, "Conflict");
    server.shutdown().await;
}

#[tokio::test]
async fn a_namespace_with_finalizers_is_terminating_and_refuses_new_content() {
    let server = server().await;
    let client = client(&server);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .expect("ns"),
    )
    .await
    .expect("create ns");
    let held: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    held.create(&PostParams::default(), &cm("old"))
        .await
        .expect("create");
    nss.delete("held", &DeleteParams::default())
        .await
        .expect("delete ns");
    let ns = nss
        .get("held")
        .await
        .expect("still there while finalizers remain");
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert!(
        held.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let err = held
        .create(&PostParams::default(), &cm("new"))
        .await
        .expect_err("terminating");
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(
        status.message.contains("being terminated"),
        "{}",
        status.message
    );
    server.shutdown().await;
}

fn owned(name: &str, owners: &[&ConfigMap]) -> ConfigMap {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| {
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "name": o.metadata.name.clone().unwrap_or_default(),
                "uid": o.metadata.uid.clone().unwrap_or_default(),
            })
        })
        .collect();
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": refs}}))
        .expect("cm")
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents_unless_orphaned() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server));
    let pp = PostParams::default();
    let parent = api.create(&pp, &cm("parent")).await.expect("parent");
    let other = api.create(&pp, &cm("other")).await.expect("other");
    let child = api
        .create(&pp, &owned("child", &[&parent]))
        .await
        .expect("child");
    api.create(&pp, &owned("grandchild", &[&child]))
        .await
        .expect("grandchild");
    api.create(&pp, &owned("shared", &[&parent, &other]))
        .await
        .expect("shared");

    api.delete("parent", &DeleteParams::default())
        .await
        .expect("delete parent");
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    let left = names(api.list(&ListParams::default()).await.expect("list"));
    assert_eq!(
        left,
        ["other", "shared"],
        "an object with a remaining owner stays"
    );

    let keep = api.create(&pp, &cm("keep")).await.expect("keep");
    let keep2 = api.create(&pp, &cm("keep2")).await.expect("keep2");
    api.create(&pp, &owned("kept-child", &[&keep]))
        .await
        .expect("kept child");
    api.create(&pp, &owned("kept-shared", &[&keep, &keep2]))
        .await
        .expect("kept shared child");
    api.delete("keep", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    let orphan = api
        .get("kept-child")
        .await
        .expect("orphaned dependent stays");
    assert!(
        orphan.metadata.owner_references.is_none(),
        "the deleted owner is removed from ownerReferences: {:?}",
        orphan.metadata.owner_references
    );
    let shared = api
        .get("kept-shared")
        .await
        .expect("shared dependent stays");
    let uids: Vec<String> = shared
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect();
    assert_eq!(uids, [keep2.metadata.uid.clone().unwrap_or_default()]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_scale_subresource_reads_and_sets_replicas() {
    let server = server().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&server));
    api.create(&PostParams::default(), &deployment("sc", 1))
        .await
        .expect("create");
    let scale = api.get_scale("sc").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(
        scale.status.map(|s| s.selector),
        Some(Some("app=sc".to_string()))
    );
    let s = api
        .patch_scale(
            "sc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(s.spec.and_then(|s| s.replicas), Some(4));
    let d = api.get("sc").await.expect("get");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(d.metadata.generation, Some(2));
    let stale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "sc", "resourceVersion": "1"}, "spec": {"replicas": 9}});
    let err = api
        .replace_scale(
            "sc",
            &PostParams::default(),
            &serde_json::from_value(stale).expect("scale"),
        )
        .await
        .expect_err("stale");
    assert_eq!(kube_code(&err), 409);
    server.shutdown().await;
}

#[tokio::test]
async fn empty_maps_left_by_patches_disappear_as_in_kube() {
    let server = server().await;
    let c = client(&server);
    let path = "/api/v1/namespaces/default/configmaps";
    let created = send_json(
        &c,
        "POST",
        path,
        &json!({"metadata": {"name": "e", "labels": {"a": "1"}, "annotations": {}}, "data": {"k": "v"}}),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert!(created.body["metadata"].get("annotations").is_none());
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let r = common::raw(
            &c,
            "PATCH",
            &format!("{path}/e"),
            Some(ct),
            serde_json::to_vec(&json!({"metadata": {"labels": {"a": null}}, "data": {"k": null}}))
                .expect("json"),
        )
        .await;
        assert_eq!(r.code, 200, "{ct}: {}", r.text);
        let stored = get(&c, &format!("{path}/e")).await.body;
        assert!(stored["metadata"].get("labels").is_none(), "{ct}: {stored}");
        assert!(stored.get("data").is_none(), "{ct}: {stored}");
        // Put them back for the next patch type.
        let r = common::raw(
            &c,
            "PATCH",
            &format!("{path}/e"),
            Some("application/merge-patch+json"),
            serde_json::to_vec(&json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}))
                .expect("json"),
        )
        .await;
        assert_eq!(r.code, 200, "{}", r.text);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn secret_string_data_is_stored_base64_encoded_in_data() {
    let server = server().await;
    let c = client(&server);
    let path = "/api/v1/namespaces/default/secrets";
    let created = send_json(
        &c,
        "POST",
        path,
        &json!({"metadata": {"name": "s"}, "data": {"old": "eA=="}, "stringData": {"password": "hunter2"}}),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    assert!(created.body.get("stringData").is_none(), "{}", created.text);
    assert_eq!(
        created.body["data"],
        json!({"old": "eA==", "password": "aHVudGVyMg=="})
    );
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(c.clone());
    let patched = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"old": "y"}})),
        )
        .await
        .expect("patch");
    let data = patched.data.expect("data");
    assert_eq!(data["old"].0, b"y");
    assert_eq!(data["password"].0, b"hunter2");
    assert!(patched.string_data.is_none());
    server.shutdown().await;
}
