//! Bad input gets the right `kind: Status` error, never a panic or a hung connection, and nothing
//! already stored changes.

mod common;

use kubewasm_apiserver::Config;
use serde_json::{Value, json};

use common::{
    Raw, assert_page_not_found, assert_status, client, get, raw, send_json, server, server_with,
};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// The stored ConfigMaps and the list resourceVersion: must be identical before and after bad requests.
async fn snapshot(client: &kube::Client) -> Value {
    get(client, CMS).await.body
}

async fn post(client: &kube::Client, path: &str, ct: &str, body: &[u8]) -> Raw {
    raw(client, "POST", path, Some(ct), body.to_vec()).await
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_a_status_error_and_changes_nothing() {
    let server = server().await;
    let client = client(&server);
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"a": "1"}});
    assert_eq!(send_json(&client, "POST", CMS, &good).await.code, 201);
    let before = snapshot(&client).await;
    let keep = format!("{CMS}/keep");

    // Malformed bodies: 400.
    assert_status(
        &post(&client, CMS, "application/json", b"{\"metadata\": ").await,
        400,
        "BadRequest",
    );
    assert_status(
        &post(&client, CMS, "application/json", b"[1,2]").await,
        400,
        "BadRequest",
    );
    assert_status(
        &post(&client, CMS, "application/json", &[0xff, 0xfe, 0x00]).await,
        400,
        "BadRequest",
    );
    assert_status(
        &post(&client, CMS, "application/yaml", b"metadata: [unclosed").await,
        400,
        "BadRequest",
    );
    // Wrong kind or apiVersion for the URL: 400.
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Secret") && m.contains("ConfigMap")),
        "{}",
        r.text
    );
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    // Namespace in the body differs from the URL: 400.
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"metadata": {"name": "x", "namespace": "other"}}),
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    // Name in the body differs from the URL on PUT: 400.
    let r = send_json(
        &client,
        "PUT",
        &keep,
        &json!({"metadata": {"name": "other"}, "data": {"a": "2"}}),
    )
    .await;
    assert_status(&r, 400, "BadRequest");

    // Missing or invalid names: 422 naming metadata.name.
    let r = send_json(&client, "POST", CMS, &json!({"metadata": {}})).await;
    assert_status(&r, 422, "Invalid");
    assert_eq!(r.body["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueRequired"
    );
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"metadata": {"name": "Not_Valid"}}),
    )
    .await;
    assert_status(&r, 422, "Invalid");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("RFC 1123")),
        "{}",
        r.text
    );

    // Wrong field types are 400 (as kube's decoder reports them), bad label syntax is 422.
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"metadata": {"name": "typed"}, "data": {"n": 1}}),
    )
    .await;
    assert_status(&r, 400, "BadRequest");
    let r = send_json(
        &client,
        "POST",
        CMS,
        &json!({"metadata": {"name": "labelled", "labels": {"app": "has space"}}}),
    )
    .await;
    assert_status(&r, 422, "Invalid");
    assert_eq!(
        r.body["details"]["causes"][0]["field"],
        "metadata.labels.app"
    );
    let r = send_json(
        &client,
        "PUT",
        &keep,
        &json!({"metadata": {"name": "keep", "labels": {"bad key!": "x"}}}),
    )
    .await;
    assert_status(&r, 422, "Invalid");

    // Unknown resources, versions and groups: 404.
    assert_status(
        &get(&client, "/api/v1/namespaces/default/widgets").await,
        404,
        "NotFound",
    );
    assert_status(
        &get(&client, "/apis/apps/v9/namespaces/default/deployments").await,
        404,
        "NotFound",
    );
    // Outside every served group, as kube-apiserver: a plain-text 404 page, not a Status.
    for path in [
        "/apis/nope.example.com/v1/things",
        "/apis/nope.example.com/v1",
        "/apis/nope.example.com",
        "/nonsense",
    ] {
        assert_page_not_found(&get(&client, path).await);
    }
    assert_status(
        &get(&client, &format!("{CMS}/missing")).await,
        404,
        "NotFound",
    );
    assert_status(
        &get(&client, &format!("{CMS}/keep/status")).await,
        404,
        "NotFound",
    );

    // Invalid selectors and list parameters: 400.
    assert_status(
        &get(&client, &format!("{CMS}?labelSelector=a%20in%20b")).await,
        400,
        "BadRequest",
    );
    assert_status(
        &get(&client, &format!("{CMS}?labelSelector=%3D%3D")).await,
        400,
        "BadRequest",
    );
    let r = get(&client, &format!("{CMS}?fieldSelector=spec.nodeName%3Dx")).await;
    assert_status(&r, 400, "BadRequest");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.nodeName")),
        "{}",
        r.text
    );
    assert_status(
        &get(&client, &format!("{CMS}?fieldSelector=metadata.name")).await,
        400,
        "BadRequest",
    );
    assert_status(
        &get(&client, &format!("{CMS}?limit=abc")).await,
        400,
        "BadRequest",
    );
    assert_status(
        &get(&client, &format!("{CMS}?limit=2&continue=garbage")).await,
        400,
        "BadRequest",
    );
    assert_status(
        &get(&client, &format!("{CMS}?watch=1&resourceVersion=abc")).await,
        400,
        "BadRequest",
    );

    // Oversized bodies: 413.
    let mut big = b"{\"metadata\":{\"name\":\"big\"},\"data\":{\"x\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024 + 10));
    big.extend(b"\"}}");
    assert_status(
        &post(&client, CMS, "application/json", &big).await,
        413,
        "RequestEntityTooLarge",
    );

    // A protobuf body without the `k8s\0` magic: 400, as kube-apiserver answers (tests/protobuf.rs has more).
    assert_status(
        &post(
            &client,
            CMS,
            "application/vnd.kubernetes.protobuf",
            b"\x6b\x38\x73",
        )
        .await,
        400,
        "BadRequest",
    );
    // Unsupported media types: 415.
    assert_status(
        &raw(&client, "PATCH", &keep, Some("text/plain"), b"{}".to_vec()).await,
        415,
        "UnsupportedMediaType",
    );

    // Invalid patches: 400 for unparsable ones, 422 for ones that cannot apply, 400 for apply without a manager.
    assert_status(
        &raw(
            &client,
            "PATCH",
            &keep,
            Some("application/merge-patch+json"),
            b"{nope".to_vec(),
        )
        .await,
        400,
        "BadRequest",
    );
    assert_status(
        &raw(
            &client,
            "PATCH",
            &keep,
            Some("application/json-patch+json"),
            b"{\"op\":\"add\"}".to_vec(),
        )
        .await,
        // Not a list of operations: kube-apiserver cannot decode it (400), before applying.
        400,
        "BadRequest",
    );
    let failing_test = br#"[{"op":"test","path":"/data/a","value":"999"},{"op":"replace","path":"/data/a","value":"x"}]"#;
    assert_status(
        &raw(
            &client,
            "PATCH",
            &keep,
            Some("application/json-patch+json"),
            failing_test.to_vec(),
        )
        .await,
        422,
        "Invalid",
    );
    let r = raw(
        &client,
        "PATCH",
        &keep,
        Some("application/apply-patch+yaml"),
        b"data: {a: '3'}".to_vec(),
    )
    .await;
    // As kube-apiserver: the PatchOptions are invalid (422), naming the field.
    assert_status(&r, 422, "Invalid");
    assert_eq!(r.body["details"]["causes"][0]["field"], "fieldManager");
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("fieldManager")),
        "{}",
        r.text
    );
    assert_status(
        &raw(
            &client,
            "PATCH",
            &format!("{CMS}/missing"),
            Some("application/merge-patch+json"),
            b"{}".to_vec(),
        )
        .await,
        404,
        "NotFound",
    );
    // A patch that sets a stale resourceVersion: 409.
    let r = raw(
        &client,
        "PATCH",
        &keep,
        Some("application/merge-patch+json"),
        br#"{"metadata":{"resourceVersion":"1"},"data":{"a":"9"}}"#.to_vec(),
    )
    .await;
    assert_status(&r, 409, "Conflict");

    // A client that accepts neither JSON nor protobuf: 406 (protobuf-only: tests/protobuf.rs).
    let req = http::Request::get(CMS)
        .header("accept", "text/html")
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = client.send(req).await.expect("response");
    assert_eq!(resp.status().as_u16(), 406);

    // Verbs that do not apply: 405.
    assert_status(
        &send_json(&client, "POST", &keep, &good).await,
        405,
        "MethodNotAllowed",
    );
    assert_status(
        &raw(&client, "POST", "/api", None, Vec::new()).await,
        405,
        "MethodNotAllowed",
    );

    // Nothing stored changed, and the server still answers.
    assert_eq!(snapshot(&client).await, before);
    server.shutdown().await;
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured_and_written_into_the_kubeconfig() {
    let server = server_with(Config {
        token: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let anonymous = client(&server);
    assert_status(
        &get(&anonymous, "/api/v1/namespaces").await,
        401,
        "Unauthorized",
    );
    let kc = server.kubeconfig();
    assert!(kc.contains("token: \"s3cret\""), "{kc}");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kc).expect("valid kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    assert_eq!(config.default_namespace, "default");
    let authed = kube::Client::try_from(config).expect("client");
    assert_eq!(get(&authed, "/api/v1/namespaces").await.code, 200);
    server.shutdown().await;
}
