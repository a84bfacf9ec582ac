//! CRD lifecycle: create a CRD, see it in discovery, create custom objects validated against its schema,
//! delete the CRD and see the type and its objects go.

mod common;

use http_body_util::BodyExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use common::{assert_page_not_found, assert_status, client, get, raw, send_json, server};

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1, "maximum": 20},
                                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                                "image": {"type": "string"},
                            },
                        },
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                    },
                }},
            }],
        },
    })
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("widget")
}

#[tokio::test]
async fn crd_lifecycle_discovery_validation_and_removal() {
    let server = server().await;
    let client = client(&server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).expect("crd");
    let created = crds
        .create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    let conditions = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
    );

    // Discovery lists it at once.
    let groups = get(&client, "/apis").await;
    assert!(
        groups.body["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["name"] == "example.com"),
        "{}",
        groups.text
    );
    let res = get(&client, "/apis/example.com/v1").await;
    let names: Vec<&str> = res.body["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status"]);
    assert_eq!(res.body["resources"][0]["shortNames"], json!(["wd"]));

    // Valid objects are stored, with schema defaults applied and unknown fields pruned.
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource());
    let w = widgets
        .create(
            &PostParams::default(),
            &widget("ok", json!({"size": 3, "unknownField": true})),
        )
        .await
        .expect("valid widget");
    assert_eq!(w.data["spec"]["mode"], "fast");
    assert!(
        w.data["spec"].get("unknownField").is_none(),
        "pruned: {:?}",
        w.data
    );
    assert_eq!(w.metadata.generation, Some(1));

    // With fieldValidation=Strict (kubectl's default), unknown fields are an error instead.
    let r = send_json(
        &client,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
        &serde_json::to_value(widget("strict", json!({"size": 3, "unknownField": true})))
            .expect("json"),
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field \"spec.unknownField\"")),
        "{}",
        r.text
    );

    // Invalid objects get 422 naming the field, and are not stored.
    let cases = [
        (
            json!({"mode": "fast"}),
            "spec.size",
            "FieldValueRequired",
            "spec.size: Required value",
        ),
        (
            json!({"size": "big"}),
            "spec.size",
            "FieldValueTypeInvalid",
            "spec.size in body must be of type integer",
        ),
        (
            json!({"size": 50}),
            "spec.size",
            "FieldValueInvalid",
            "Widget.example.com \"bad\" is invalid: spec.size: Invalid value: 50: spec.size in body should be less than or equal to 20",
        ),
        (
            json!({"size": 0}),
            "spec.size",
            "FieldValueInvalid",
            "should be greater than or equal to 1",
        ),
        (
            json!({"size": 2, "mode": "warp"}),
            "spec.mode",
            "FieldValueNotSupported",
            "Unsupported value: \"warp\"",
        ),
    ];
    for (spec, field, reason, text) in cases {
        let r = send_json(
            &client,
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            &serde_json::to_value(widget("bad", spec.clone())).expect("json"),
        )
        .await;
        assert_status(&r, 422, "Invalid");
        let msg = r.body["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(text),
            "{spec}: message {msg:?} should contain {text:?}"
        );
        let cause = &r.body["details"]["causes"][0];
        assert_eq!(cause["field"], field, "{}", r.text);
        assert_eq!(cause["reason"], reason, "{}", r.text);
        assert_eq!(r.body["details"]["kind"], "Widget");
        assert_eq!(r.body["details"]["group"], "example.com");
    }
    assert_status(
        &get(
            &client,
            "/apis/example.com/v1/namespaces/default/widgets/bad",
        )
        .await,
        404,
        "NotFound",
    );

    // Updates are validated too, and leave the stored object alone when invalid.
    let err = widgets
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 99}})),
        )
        .await
        .expect_err("invalid update");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    assert_eq!(
        widgets.get("ok").await.expect("get").data["spec"]["size"],
        3
    );

    // Strategic merge is not for custom resources.
    let r = raw(
        &client,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/ok",
        Some("application/strategic-merge-patch+json"),
        br#"{"spec":{"size":4}}"#.to_vec(),
    )
    .await;
    assert_status(&r, 415, "UnsupportedMediaType");

    // The status subresource is isolated.
    let s = widgets
        .patch_status(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 5}})),
        )
        .await
        .expect("status");
    assert_eq!(s.data["status"]["ready"], true);
    assert_eq!(s.data["spec"]["size"], 3);
    let m = widgets
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": false}, "spec": {"size": 6}})),
        )
        .await
        .expect("main");
    assert_eq!(m.data["status"]["ready"], true);
    assert_eq!(m.data["spec"]["size"], 6);
    assert_eq!(m.metadata.generation, Some(2));

    // Deleting the CRD removes the type and its objects; open watches see the DELETED events and end.
    let req = http::Request::get(
        "/apis/example.com/v1/namespaces/default/widgets?watch=1&timeoutSeconds=600",
    )
    .body(kube::client::Body::empty())
    .expect("request");
    let mut body = client.send(req).await.expect("watch").into_body();
    let mut text = String::new();
    // The stream is live once the synthetic ADDED arrived.
    while !text.contains('\n') {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(30), body.frame())
            .await
            .expect("first event within 30s")
            .expect("a frame")
            .expect("no error");
        if let Some(d) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(d));
        }
    }
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(30), body.collect())
        .await
        .expect("the watch ends when its CRD is deleted")
        .expect("body");
    text.push_str(&String::from_utf8_lossy(&rest.to_bytes()));
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("event")["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{text}");
    // The group is gone with its last CRD.
    assert_page_not_found(&get(&client, "/apis/example.com/v1").await);
    assert_page_not_found(
        &get(
            &client,
            "/apis/example.com/v1/namespaces/default/widgets/ok",
        )
        .await,
    );
    let groups = get(&client, "/apis").await;
    assert!(
        !groups.body["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["name"] == "example.com")
    );

    // Re-creating the CRD starts empty.
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("re-create crd");
    assert!(
        widgets
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_crds_are_rejected_with_422() {
    let server = server().await;
    let client = client(&server);
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("wrong.example.com");
    crd["spec"]["versions"][0]["storage"] = json!(false);
    let r = send_json(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_status(&r, 422, "Invalid");
    let fields: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(fields.contains(&"spec.versions"), "{fields:?}");
    assert_page_not_found(&get(&client, "/apis/example.com/v1").await);
    server.shutdown().await;
}

#[tokio::test]
async fn cluster_scoped_crds_serve_objects_without_a_namespace() {
    let server = server().await;
    let client = client(&server);
    let mut crd = widget_crd();
    crd["spec"]["scope"] = json!("Cluster");
    let r = send_json(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &widget_resource());
    widgets
        .create(
            &PostParams::default(),
            &widget("global", json!({"size": 1})),
        )
        .await
        .expect("cluster-scoped create");
    let got = widgets.get("global").await.expect("get");
    assert!(got.metadata.namespace.is_none());
    // No namespaced route exists for a cluster-scoped resource: kube-apiserver's plain 404.
    let r = get(&client, "/apis/example.com/v1/namespaces/default/widgets").await;
    assert_page_not_found(&r);
    server.shutdown().await;
}
