//! OpenAPI v2 and v3 as kubectl reads them (`explain`, `apply` patches, `--validate=strict`), the
//! documents built for CRDs, and server-side field validation of built-in kinds. The kubectl tests
//! fail (never skip) when kubectl is not installed.

mod common;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use common::kubectl::{Kubectl, write};
use common::{assert_status, client, get, raw, send_json, server};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        description: A gizmo of the test suite.
        properties:
          spec:
            type: object
            description: What the gizmo should be.
            properties:
              size: {type: integer, description: How many cogs the gizmo has.}
              parts:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, description: The part's name in the gizmo.}
"#;

#[tokio::test]
async fn kubectl_explains_built_in_kinds_from_v3_and_v2() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());

    let out = k.ok(&["explain", "pod.spec"]).await;
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: spec <PodSpec>"), "{out}");
    assert!(
        out.contains("containers\t<[]Container> -required-"),
        "{out}"
    );

    let out = k.ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods."), "{out}");

    // The v2 form (gnostic protobuf) is what this output format reads.
    let out = k
        .ok(&["explain", "--output=plaintext-openapiv2", "configmap"])
        .await;
    assert!(out.contains("KIND:     ConfigMap"), "{out}");
    assert!(
        out.contains("ConfigMap holds configuration data for pods to consume."),
        "{out}"
    );
    assert!(out.contains("binaryData\t<map[string]string>"), "{out}");
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_explains_crd_kinds_and_nested_fields() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    k.ok(&["apply", "-f", &write(dir.path(), "crd.yaml", CRD)])
        .await;

    let out = k.ok(&["explain", "gizmo"]).await;
    assert!(out.contains("GROUP:      example.com"), "{out}");
    assert!(out.contains("A gizmo of the test suite."), "{out}");
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");

    let out = k.ok(&["explain", "gizmo.spec.parts.name"]).await;
    assert!(out.contains("FIELD: name <string>"), "{out}");
    assert!(out.contains("The part's name in the gizmo."), "{out}");
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_validate_strict_is_refused_by_the_server_with_its_message() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    k.ok(&["apply", "-f", &write(dir.path(), "crd.yaml", CRD)])
        .await;

    let cm = write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {a: b}\nbogus: 1\n",
    );
    let o = k.run(&["apply", "--validate=strict", "-f", &cm]).await;
    assert!(!o.ok, "{}", o.stdout);
    assert!(
        o.stderr.contains(
            r#"Error from server (BadRequest): error when creating "#
        ) && o.stderr.contains(
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#
        ),
        "{}",
        o.stderr
    );
    let o = k.run(&["get", "configmap", "demo"]).await;
    assert!(!o.ok, "the refused ConfigMap was stored");

    let deploy = write(
        dir.path(),
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx, imagePullPolicyy: Always}]\n",
    );
    let o = k.run(&["apply", "--validate=strict", "-f", &deploy]).await;
    assert!(
        o.stderr.contains(
            r#"strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolicyy""#
        ),
        "{}",
        o.stderr
    );

    let gizmo = write(
        dir.path(),
        "gizmo.yaml",
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\nspec: {size: 2, colour: red}\n",
    );
    let o = k.run(&["apply", "--validate=strict", "-f", &gizmo]).await;
    assert!(
        o.stderr.contains(
            r#"Gizmo in version "v1" cannot be handled as a Gizmo: strict decoding error: unknown field "spec.colour""#
        ),
        "{}",
        o.stderr
    );
    let o = k.run(&["apply", "--server-side", "-f", &gizmo]).await;
    assert!(
        o.stderr.contains(
            "failed to create typed patch object (default/g1; example.com/v1, Kind=Gizmo): .spec.colour: field not declared in schema"
        ),
        "{}",
        o.stderr
    );

    // --validate=false sends fieldValidation=Ignore: the field is dropped and the object stored.
    k.ok(&["apply", "--validate=false", "-f", &cm]).await;
    let out = k.ok(&["get", "configmap", "demo", "-o", "json"]).await;
    let stored: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(stored["data"]["a"], "b");
    assert!(stored.get("bogus").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_of_a_changed_container_list_merges_by_name_from_the_v3_schema() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    let first = write(
        dir.path(),
        "d1.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: web, image: 'nginx:1', env: [{name: A, value: '1'}]}\n      - {name: side, image: busybox}\n",
    );
    let second = write(
        dir.path(),
        "d2.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: web, image: 'nginx:2'}\n      - {name: log, image: fluentd}\n",
    );
    k.ok(&["apply", "-f", &first]).await;
    // Another writer adds a container kubectl's last-applied configuration does not know: a
    // strategic merge patch keeps it, a whole-list replacement would drop it.
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"pause"}]}}}}"#,
    ])
    .await;
    let o = k.run(&["apply", "-f", &second, "-v=6"]).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        !o.stderr.contains("/openapi/v2"),
        "apply fell back to /openapi/v2: {}",
        o.stderr
    );
    let out = k
        .ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={range .spec.template.spec.containers[*]}{.name}={.image};{end}",
        ])
        .await;
    let mut containers: Vec<&str> = out.split_terminator(';').collect();
    containers.sort_unstable();
    assert_eq!(
        containers,
        vec!["extra=pause", "log=fluentd", "web=nginx:2"]
    );
    let env = k
        .ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[?(@.name==\"web\")].env}",
        ])
        .await;
    assert_eq!(env, "", "the env kubectl no longer applies was removed");
    server.shutdown().await;
}

fn crd_body(extra_field: Option<&str>) -> Value {
    let mut props = json!({"size": {"type": "integer", "description": "How many cogs."}});
    if let Some(f) = extra_field {
        props[f] = json!({"type": "string"});
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoRoster"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": props},
                    "status": {"type": "object", "properties": {"size": {"type": "integer"}}},
                }}},
            }],
        },
    })
}

async fn index_url(client: &kube::Client, path: &str) -> Option<String> {
    get(client, "/openapi/v3").await.body["paths"][path]["serverRelativeURL"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn a_crd_group_version_gets_a_document_with_its_schema_and_a_hash_that_follows_it() {
    let server = server().await;
    let client = client(&server);
    assert_eq!(index_url(&client, "apis/example.com/v1").await, None);
    let r = send_json(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd_body(None),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let first = index_url(&client, "apis/example.com/v1")
        .await
        .expect("the CRD's group/version is in the index");

    let doc = get(&client, &first).await.body;
    let model = &doc["components"]["schemas"]["com.example.v1.Gizmo"];
    assert_eq!(
        model["properties"]["spec"]["properties"]["size"],
        json!({"type": "integer", "description": "How many cogs."})
    );
    assert_eq!(
        model["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        model["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Gizmo", "version": "v1"}])
    );
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for referenced in [
        "com.example.v1.GizmoRoster",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.api.autoscaling.v1.Scale",
    ] {
        assert!(schemas.contains_key(referenced), "{referenced} missing");
    }
    let object = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/gizmos/{name}"];
    assert_eq!(
        object["patch"]["operationId"],
        "patchExampleComV1NamespacedGizmo"
    );
    let patch_types: Vec<&str> = object["patch"]["requestBody"]["content"]
        .as_object()
        .expect("patch body")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        patch_types,
        vec![
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json"
        ]
    );
    assert!(
        object["patch"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert!(
        doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/gizmos/{name}/scale"].is_object()
    );
    assert_eq!(
        doc["paths"]["/apis/example.com/v1/gizmos"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/com.example.v1.GizmoRoster"
    );

    // Changing the CRD changes the document and its hash.
    let mut updated = crd_body(Some("colour"));
    updated["metadata"]["resourceVersion"] = get(
        &client,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.example.com",
    )
    .await
    .body["metadata"]["resourceVersion"]
        .clone();
    let r = send_json(
        &client,
        "PUT",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.example.com",
        &updated,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let second = index_url(&client, "apis/example.com/v1")
        .await
        .expect("still listed");
    assert_ne!(first, second, "the hash must change with the schema");
    let doc = get(&client, &second).await.body;
    assert_eq!(
        doc["components"]["schemas"]["com.example.v1.Gizmo"]["properties"]["spec"]["properties"]["colour"]
            ["type"],
        "string"
    );

    // Deleting the CRD removes its document.
    let r = raw(
        &client,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.example.com",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(index_url(&client, "apis/example.com/v1").await, None);
    assert_status(
        &get(&client, "/openapi/v3/apis/example.com/v1").await,
        404,
        "NotFound",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn built_in_documents_are_kube_apiservers_own() {
    let server = server().await;
    let client = client(&server);
    let url = index_url(&client, "apis/apps/v1").await.expect("apps/v1");
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
    let doc = get(&client, &url).await.body;
    let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    assert_eq!(
        path["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(
        path["patch"]["requestBody"]["content"]["application/strategic-merge-patch+json"]
            .is_object()
    );
    let containers =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    // The index's hash makes the document immutable; an outdated hash is sent to the current one.
    let hash = url.split("hash=").nth(1).expect("hash").to_string();
    let fetch = |uri: String| {
        let client = client.clone();
        async move {
            let req = http::Request::get(uri)
                .body(kube::client::Body::empty())
                .expect("request");
            client.send(req).await.expect("response")
        }
    };
    let current = fetch(url.clone()).await;
    assert_eq!(current.status().as_u16(), 200);
    assert_eq!(
        current.headers()[http::header::CACHE_CONTROL],
        "public, immutable"
    );
    assert_eq!(
        current.headers()[http::header::ETAG],
        format!("\"{hash}\"").as_str()
    );
    let stale = fetch("/openapi/v3/apis/apps/v1?hash=0123".to_string()).await;
    assert_eq!(stale.status().as_u16(), 301);
    assert_eq!(stale.headers()[http::header::LOCATION], url.as_str());
    // Groups this server does not serve are not advertised.
    assert_eq!(index_url(&client, "apis/storage.k8s.io/v1").await, None);
    server.shutdown().await;
}

async fn get_v2(client: &kube::Client, accept: &str) -> (u16, String, bytes::Bytes) {
    let req = http::Request::builder()
        .uri("/openapi/v2")
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = client.send(req).await.expect("response");
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (code, ct, body)
}

#[tokio::test]
async fn openapi_v2_answers_kubectl_in_protobuf_and_others_in_json() {
    let server = server().await;
    let client = client(&server);
    let (code, ct, body) = get_v2(
        &client,
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        ct,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    // gnostic's Document starts with field 1 (swagger: "2.0").
    assert_eq!(&body[..5], b"\x0a\x032.0");

    let (code, ct, body) = get_v2(&client, "application/json").await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());

    let (code, _, _) = get_v2(&client, "text/html").await;
    assert_eq!(code, 406);
    server.shutdown().await;
}

fn warnings(r: &common::Raw) -> Vec<String> {
    r.headers
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn unknown_and_duplicate_fields_of_built_in_kinds_follow_field_validation() {
    let server = server().await;
    let client = client(&server);
    let cms = "/api/v1/namespaces/default/configmaps";
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"1","x":"2"}},"data":{"k":"v"},"zz":1}"#;

    let r = raw(
        &client,
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        Some("application/json"),
        body,
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.labels.x", unknown field "zz""#
    );

    // Without the parameter kube-apiserver warns (Warn is its default) and stores the object.
    let r = raw(&client, "POST", cms, Some("application/json"), body).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(
        warnings(&r),
        vec![
            r#"299 - "duplicate field \"metadata.labels.x\"""#,
            r#"299 - "unknown field \"zz\"""#
        ]
    );
    assert_eq!(r.body["metadata"]["labels"]["x"], "2");
    assert!(r.body.get("zz").is_none());

    let r = raw(
        &client,
        "PUT",
        &format!("{cms}/a?fieldValidation=Ignore"),
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(warnings(&r).is_empty());

    let r = raw(
        &client,
        "PUT",
        &format!("{cms}/a?fieldValidation=Sometimes"),
        Some("application/json"),
        body,
    )
    .await;
    assert_status(&r, 422, "Invalid");
    assert_eq!(
        r.body["message"],
        r#"UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Sometimes": supported values: "", "Ignore", "Strict", "Warn""#
    );

    // A merge patch is checked as the object it produces.
    let patch = r#"{"data":{"k":"w"},"metadata":{"bogus":1}}"#;
    let r = raw(
        &client,
        "PATCH",
        &format!("{cms}/a?fieldValidation=Strict"),
        Some("application/merge-patch+json"),
        patch,
    )
    .await;
    assert_status(&r, 422, "Invalid");
    let message = r.body["message"].as_str().expect("message");
    assert!(
        message.starts_with(r#" "" is invalid: patch: Invalid value: "{"#),
        "{message}"
    );
    assert!(
        message.ends_with(r#"strict decoding error: unknown field "metadata.bogus""#),
        "{message}"
    );
    assert_eq!(r.body["details"]["causes"][0]["field"], "patch");
    let r = raw(
        &client,
        "PATCH",
        &format!("{cms}/a"),
        Some("application/merge-patch+json"),
        patch,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(
        warnings(&r),
        vec![r#"299 - "unknown field \"metadata.bogus\"""#]
    );
    assert_eq!(r.body["data"]["k"], "w");

    // Server-side apply of an undeclared field is refused whatever fieldValidation says.
    let apply = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\nbogus: true\n";
    let r = raw(
        &client,
        "PATCH",
        &format!("{cms}/a?fieldManager=alice"),
        Some("application/apply-patch+yaml"),
        apply,
    )
    .await;
    assert_eq!(r.code, 500, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "failed to create typed patch object (/a; /v1, Kind=ConfigMap): .bogus: field not declared in schema"
    );
    assert!(r.body.get("reason").is_none());
    server.shutdown().await;
}
