//! Discovery documents, /version, health, the OpenAPI v3 surface kubectl reads, Table output, and
//! multi-version CRDs.

mod common;

use serde_json::json;

use common::{client, get, raw, send_json, server};

#[tokio::test]
async fn discovery_documents_describe_groups_versions_and_resources() {
    let server = server().await;
    let client = client(&server);
    let api = get(&client, "/api").await;
    assert_eq!(api.body["kind"], "APIVersions");
    assert_eq!(api.body["versions"], json!(["v1"]));

    let v1 = get(&client, "/api/v1").await;
    assert_eq!(v1.body["kind"], "APIResourceList");
    assert_eq!(v1.body["groupVersion"], "v1");
    let pods = v1.body["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "pods")
        .cloned()
        .expect("pods listed");
    assert_eq!(pods["kind"], "Pod");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert!(
        pods["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("watch")))
    );

    let groups = get(&client, "/apis").await;
    let names: Vec<&str> = groups.body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    let apps = get(&client, "/apis/apps").await;
    assert_eq!(apps.body["kind"], "APIGroup");
    assert_eq!(apps.body["preferredVersion"]["groupVersion"], "apps/v1");

    let version = get(&client, "/version").await;
    assert_eq!(version.body["major"], "1");
    for p in ["/healthz", "/readyz", "/livez"] {
        let r = get(&client, p).await;
        assert_eq!((r.code, r.text.as_str()), (200, "ok"), "{p}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn openapi_v3_tells_kubectl_that_field_validation_is_supported() {
    let server = server().await;
    let client = client(&server);
    let index = get(&client, "/openapi/v3").await;
    let url = index.body["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 listed")
        .to_string();
    let doc = get(&client, &url).await;
    let path = &doc.body["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    assert_eq!(
        path["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(
        path["patch"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
    let v2 = get(&client, "/openapi/v2").await;
    assert_eq!((v2.code, &v2.body["swagger"]), (200, &json!("2.0")));
    server.shutdown().await;
}

#[tokio::test]
async fn table_output_has_name_printer_columns_and_age() {
    let server = server().await;
    let client = client(&server);
    let dep = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {}, "template": {}}});
    assert_eq!(
        send_json(
            &client,
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            &dep
        )
        .await
        .code,
        201
    );
    let req = http::Request::get("/apis/apps/v1/namespaces/default/deployments")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .expect("request");
    let text = client.request_text(req).await.expect("table");
    let table: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(table["rows"][0]["cells"][0], "web");
    assert_eq!(table["rows"][0]["cells"][1], "0/3");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(table["rows"][0]["object"]["metadata"]["name"], "web");
    server.shutdown().await;
}

#[tokio::test]
async fn multi_version_crds_serve_the_same_objects_at_every_served_version() {
    let server = server().await;
    let client = client(&server);
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [
                     {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                     {"name": "v1", "served": true, "storage": true, "schema": schema},
                 ]},
    });
    let r = send_json(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let group = get(&client, "/apis/example.com").await;
    assert_eq!(group.body["preferredVersion"]["version"], "v1");
    let obj = json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"x": 1}});
    let r = send_json(
        &client,
        "POST",
        "/apis/example.com/v1beta1/namespaces/default/gadgets",
        &obj,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let v1 = get(&client, "/apis/example.com/v1/namespaces/default/gadgets/g").await;
    assert_eq!(v1.body["apiVersion"], "example.com/v1");
    assert_eq!(v1.body["spec"]["x"], 1);
    let list = get(&client, "/apis/example.com/v1/namespaces/default/gadgets").await;
    assert_eq!(list.body["items"][0]["apiVersion"], "example.com/v1");
    let r = raw(
        &client,
        "DELETE",
        "/apis/example.com/v1/namespaces/default/gadgets/g",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["status"], "Success");
    server.shutdown().await;
}

#[tokio::test]
async fn metadata_only_lists_and_watches_work_for_kube_clients() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    use kube::core::PartialObjectMeta;
    use kube::runtime::{WatchStreamExt, watcher};

    let server = server().await;
    let client = client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "meta", "labels": {"a": "b"}}, "data": {"k": "v"}}),
    )
    .expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let list = api
        .list_metadata(&Default::default())
        .await
        .expect("list metadata");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    let meta: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(client.clone());
    let mut stream = watcher(meta, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .expect("an event within 30s")
        .expect("stream item")
        .expect("no error");
    assert_eq!(first.metadata.name.as_deref(), Some("meta"));
    server.shutdown().await;
}

#[tokio::test]
async fn events_recorded_through_events_k8s_io_show_up_as_core_v1_events() {
    use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ObjectReference};
    use kube::api::{Api, ListParams, PostParams};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let server = server().await;
    let client = client(&server);
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "subject"}})).expect("cm"),
        )
        .await
        .expect("create");
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: cm.metadata.name.clone(),
        namespace: cm.metadata.namespace.clone(),
        uid: cm.metadata.uid.clone(),
        ..Default::default()
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kubewasm-test".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Reconciled".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.expect("publish");
    // A repeat is a merge patch through events.k8s.io/v1 that bumps the series.
    recorder
        .publish(&ev, &reference)
        .await
        .expect("publish again");

    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let list = core
        .list(&ListParams::default().fields("involvedObject.name=subject"))
        .await
        .expect("core/v1 events");
    assert_eq!(list.items.len(), 1, "{:?}", list.items);
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("all good"));
    assert_eq!(e.reason.as_deref(), Some("Reconciled"));
    assert_eq!(e.reporting_component.as_deref(), Some("kubewasm-test"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("ConfigMap"));
    let v1 = get(
        &client,
        &format!(
            "/apis/events.k8s.io/v1/namespaces/default/events/{}",
            e.metadata.name.clone().expect("name")
        ),
    )
    .await;
    assert_eq!(v1.body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1.body["note"], "all good");
    assert_eq!(v1.body["regarding"]["name"], "subject");
    // managedFields name the fields as the events.k8s.io/v1 writer did.
    let entries = v1.body["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry["apiVersion"], "events.k8s.io/v1", "{entry}");
        let fields = &entry["fieldsV1"];
        assert!(fields.get("f:message").is_none(), "{entry}");
        assert!(fields.get("f:involvedObject").is_none(), "{entry}");
    }
    assert!(
        entries
            .iter()
            .any(|e| e["fieldsV1"].get("f:note").is_some()),
        "{entries:?}"
    );
    server.shutdown().await;
}
