//! managedFields as the server records them: ownership-only writes, `/status` entries, status reset on
//! the main resource, and schema defaults credited to the writer.

mod common;

use serde_json::{Value, json};

use common::{Raw, client, eventually, get, raw, send_json, server};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1"}]},
            },
        },
    })
}

async fn patch(client: &kube::Client, path: &str, ct: &str, body: &Value) -> Raw {
    let r = raw(
        client,
        "PATCH",
        path,
        Some(ct),
        serde_json::to_vec(body).expect("json"),
    )
    .await;
    assert!(r.code < 300, "PATCH {path} failed: {}", r.text);
    r
}

/// The managedFields entry of `manager` written through `subresource` (None: the main resource).
fn entry<'a>(obj: &'a Value, manager: &str, subresource: Option<&str>) -> Option<&'a Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| {
            e["manager"] == manager && e.get("subresource").and_then(Value::as_str) == subresource
        })
}

fn fields<'a>(obj: &'a Value, manager: &str, subresource: Option<&str>) -> &'a Value {
    &entry(obj, manager, subresource).unwrap_or_else(|| {
        panic!(
            "no managedFields entry for {manager:?} (subresource {subresource:?}): {}",
            obj["metadata"]["managedFields"]
        )
    })["fieldsV1"]
}

#[tokio::test]
async fn a_write_that_only_changes_ownership_is_stored() {
    let server = server().await;
    let c = client(&server);
    let created = send_json(&c, "POST", DEPLOYMENTS, &deployment("own")).await;
    assert_eq!(created.code, 201, "{}", created.text);
    let rv = created.body["metadata"]["resourceVersion"].clone();
    // kubectl's client-side to server-side apply migration: replace managedFields, nothing else.
    let mut migrated = created.body["metadata"]["managedFields"].clone();
    migrated[0]["manager"] = json!("kubectl");
    migrated[0]["operation"] = json!("Apply");
    let r = patch(
        &c,
        &format!("{DEPLOYMENTS}/own"),
        "application/json-patch+json",
        &json!([
            {"op": "replace", "path": "/metadata/managedFields", "value": migrated},
            {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
        ]),
    )
    .await;
    assert_ne!(
        r.body["metadata"]["resourceVersion"], rv,
        "the ownership change was dropped as a no-op: {}",
        r.text
    );
    let stored = get(&c, &format!("{DEPLOYMENTS}/own")).await.body;
    assert_eq!(stored["metadata"]["managedFields"], migrated);

    // A real no-op still keeps the resourceVersion.
    let again = send_json(&c, "PUT", &format!("{DEPLOYMENTS}/own"), &stored).await;
    assert_eq!(again.code, 200, "{}", again.text);
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        stored["metadata"]["resourceVersion"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn status_writes_are_recorded_under_the_status_subresource() {
    let server = server().await;
    let c = client(&server);
    let path = format!("{DEPLOYMENTS}/ctl");
    let apply = "application/apply-patch+yaml";
    // One controller applies spec and status under one manager.
    patch(
        &c,
        &format!("{path}?fieldManager=ctl"),
        apply,
        &deployment("ctl"),
    )
    .await;
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ctl"},
        "status": {"replicas": 1}});
    let after = patch(
        &c,
        &format!("{path}/status?fieldManager=ctl"),
        apply,
        &status,
    )
    .await
    .body;
    assert_eq!(after["status"]["replicas"], 1);
    assert_eq!(
        fields(&after, "ctl", Some("status")),
        &json!({"f:status": {"f:replicas": {}}})
    );
    let main = fields(&after, "ctl", None);
    assert!(
        main.pointer("/f:spec/f:replicas").is_some(),
        "applying the status disowned the spec: {main}"
    );
    assert!(main.get("f:status").is_none(), "{main}");

    // Applying the spec again keeps the status entry and the status.
    let again = patch(
        &c,
        &format!("{path}?fieldManager=ctl"),
        apply,
        &deployment("ctl"),
    )
    .await
    .body;
    assert_eq!(again["status"]["replicas"], 1);
    assert!(entry(&again, "ctl", Some("status")).is_some());

    // Merge patch and PUT through /status record Update entries for the status subresource.
    let merged = patch(
        &c,
        &format!("{path}/status?fieldManager=kubelet"),
        "application/merge-patch+json",
        &json!({"status": {"readyReplicas": 1}}),
    )
    .await
    .body;
    assert_eq!(
        fields(&merged, "kubelet", Some("status")),
        &json!({"f:status": {"f:readyReplicas": {}}})
    );
    assert!(entry(&merged, "kubelet", None).is_none());
    let mut put = merged.clone();
    put["status"]["availableReplicas"] = json!(1);
    let put = send_json(&c, "PUT", &format!("{path}/status?fieldManager=rs"), &put).await;
    assert_eq!(put.code, 200, "{}", put.text);
    assert_eq!(
        fields(&put.body, "rs", Some("status")),
        &json!({"f:status": {"f:availableReplicas": {}}})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn main_resource_writes_do_not_own_the_status_they_cannot_change() {
    let server = server().await;
    let c = client(&server);
    let path = format!("{DEPLOYMENTS}/iso");
    let created = send_json(&c, "POST", DEPLOYMENTS, &deployment("iso")).await;
    assert_eq!(created.code, 201, "{}", created.text);
    patch(
        &c,
        &format!("{path}/status"),
        "application/merge-patch+json",
        &json!({"status": {"replicas": 1}}),
    )
    .await;

    let merged = patch(
        &c,
        &format!("{path}?fieldManager=editor"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 2}, "status": {"replicas": 7}}),
    )
    .await
    .body;
    assert_eq!(merged["status"]["replicas"], 1);
    assert_eq!(
        fields(&merged, "editor", None),
        &json!({"f:spec": {"f:replicas": {}}})
    );

    let applied = patch(
        &c,
        &format!("{path}?fieldManager=applier&force=true"),
        "application/apply-patch+yaml",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iso"},
            "spec": {"paused": true}, "status": {"replicas": 9}}),
    )
    .await
    .body;
    assert_eq!(applied["status"]["replicas"], 1);
    assert_eq!(
        fields(&applied, "applier", None),
        &json!({"f:spec": {"f:paused": {}}})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn schema_defaults_are_owned_by_the_writer_that_caused_them() {
    let server = server().await;
    let c = client(&server);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer"},
                        "retry": {"type": "object", "properties": {
                            "limit": {"type": "integer", "default": 3},
                        }},
                    }},
                }}}}],
        },
    });
    let r = send_json(
        &c,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
    let body = json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g"}, "spec": {"size": 1}});
    eventually("the gadget type to be served", || async {
        let r = send_json(&c, "POST", &format!("{gadgets}?fieldManager=maker"), &body).await;
        (r.code == 201).then_some(())
    })
    .await;

    // The patch adds spec.retry; the server defaults spec.retry.limit, which the patcher owns.
    let merged = patch(
        &c,
        &format!("{gadgets}/g?fieldManager=tuner"),
        "application/merge-patch+json",
        &json!({"spec": {"retry": {}}}),
    )
    .await
    .body;
    assert_eq!(merged["spec"]["retry"]["limit"], 3);
    let tuner = fields(&merged, "tuner", None);
    assert!(
        tuner.pointer("/f:spec/f:retry/f:limit").is_some(),
        "the defaulted field is owned by nobody: {}",
        merged["metadata"]["managedFields"]
    );

    // Same for a JSON patch removing the field: the default comes back, owned by the remover.
    let removed = patch(
        &c,
        &format!("{gadgets}/g?fieldManager=resetter"),
        "application/json-patch+json",
        &json!([{"op": "remove", "path": "/spec/retry/limit"}]),
    )
    .await
    .body;
    assert_eq!(removed["spec"]["retry"]["limit"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn scale_writes_are_recorded_under_the_scale_subresource() {
    let server = server().await;
    let c = client(&server);
    let created = send_json(&c, "POST", DEPLOYMENTS, &deployment("sc")).await;
    assert_eq!(created.code, 201, "{}", created.text);
    let scaled = patch(
        &c,
        &format!("{DEPLOYMENTS}/sc/scale?fieldManager=hpa"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 4}}),
    )
    .await;
    assert_eq!(scaled.body["spec"]["replicas"], 4);
    let stored = get(&c, &format!("{DEPLOYMENTS}/sc")).await.body;
    assert_eq!(
        fields(&stored, "hpa", Some("scale")),
        &json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(entry(&stored, "hpa", None).is_none());
    server.shutdown().await;
}
