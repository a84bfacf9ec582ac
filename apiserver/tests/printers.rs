//! `kubectl get` prints the tables kube-apiserver prints (server-side printing): the real headers and
//! cells for Pods, Deployments, Services, ConfigMaps, Jobs and custom resources. Fails (never skips)
//! when kubectl is not installed.

mod common;

use std::time::Duration;

use kubewasm_apiserver::{ApiServer, Config, Simulation};

use common::kubectl::{Kubectl, write};

/// The lines of a kubectl table, each split into its cells (columns are at least two spaces apart).
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The row whose first cell is `name`.
fn row<'a>(t: &'a [Vec<String>], name: &str) -> &'a [String] {
    t.iter()
        .find(|r| r.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in {t:?}"))
}

/// Whether `cell` reads like an age (`5s`, `2m10s`, `3h`).
fn is_age(cell: &str) -> bool {
    !cell.is_empty()
        && cell.starts_with(|c: char| c.is_ascii_digit())
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

/// Runs `kubectl args` until `check` accepts its table (60 s at most).
async fn eventually(
    k: &Kubectl,
    args: &[&str],
    check: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = table(&k.ok(args).await);
        if check(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl {args:?} never printed what was expected; last: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn get_pods_prints_ready_status_restarts_and_the_wide_columns() {
    let server = ApiServer::start(Config::default()).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    let pod = write(
        dir.path(),
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\n\
         spec: {nodeName: n1, containers: [{name: a, image: nginx}, {name: b, image: busybox}],\n\
         readinessGates: [{conditionType: example.com/gate}]}\n",
    );
    k.ok(&["apply", "-f", &pod]).await;

    let t = table(&k.ok(&["get", "pods"]).await);
    assert_eq!(t[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let r = row(&t, "p1");
    assert_eq!(r[1..4], ["0/2", "Pending", "0"]);
    assert!(is_age(&r[4]), "age {:?}", r[4]);

    let t = table(&k.ok(&["get", "pods", "-o", "wide"]).await);
    assert_eq!(
        t[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    assert_eq!(row(&t, "p1")[5..], ["<none>", "n1", "<none>", "0/1"]);

    // A Pod being deleted (held by a finalizer) is Terminating.
    k.ok(&[
        "patch",
        "pod",
        "p1",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    k.ok(&["delete", "pod", "p1", "--wait=false"]).await;
    let t = table(&k.ok(&["get", "pod", "p1"]).await);
    assert_eq!(row(&t, "p1")[2], "Terminating");
    server.shutdown().await;
}

#[tokio::test]
async fn get_deployments_and_pods_follow_the_simulated_rollout() {
    let server = ApiServer::start(Config {
        simulate: Some(Simulation {
            pod_start_delay: Duration::from_millis(200),
            ..Simulation::default()
        }),
        ..Config::default()
    })
    .await
    .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;

    let t = eventually(&k, &["get", "deployments"], |t| {
        t.len() == 2 && t[1][1] == "2/2"
    })
    .await;
    assert_eq!(t[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(row(&t, "web")[1..4], ["2/2", "2", "2"]);

    let t = table(&k.ok(&["get", "deployments", "-o", "wide"]).await);
    assert_eq!(
        t[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(row(&t, "web")[5..], ["nginx", "nginx", "app=web"]);

    let t = table(
        &k.ok(&["get", "deployment", "web", "--subresource=scale"])
            .await,
    );
    assert_eq!(t[0], ["NAME", "DESIRED", "AVAILABLE", "AGE"]);
    assert_eq!(row(&t, "web")[1..3], ["2", "2"]);
    assert!(is_age(&row(&t, "web")[3]), "{t:?}");
    let t = table(
        &k.ok(&["get", "deployment", "web", "--subresource=status"])
            .await,
    );
    assert_eq!(row(&t, "web")[1], "2/2");

    let t = eventually(&k, &["get", "pods", "-l", "app=web"], |t| {
        t.len() == 3 && t[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running")
    })
    .await;
    for r in &t[1..] {
        assert_eq!(r[3], "0");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn get_services_prints_types_addresses_and_ports() {
    let server = ApiServer::start(Config::default()).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    k.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "--tcp=80:8080,443:8443",
    ])
    .await;
    k.ok(&["create", "service", "loadbalancer", "lb", "--tcp=443:8443"])
        .await;
    k.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=db.example.com",
    ])
    .await;

    let t = table(&k.ok(&["get", "svc"]).await);
    assert_eq!(
        t[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(
        row(&t, "kubernetes")[1..5],
        ["ClusterIP", "10.0.0.1", "<none>", "443/TCP"]
    );
    let np = row(&t, "np");
    assert_eq!(np[1], "NodePort");
    assert!(np[2].starts_with("10.0.0."), "cluster IP {:?}", np[2]);
    assert_eq!(np[3], "<none>");
    let ports: Vec<&str> = np[4].split(',').collect();
    assert_eq!(ports.len(), 2, "ports {:?}", np[4]);
    assert!(
        ports[0].starts_with("80:") && ports[0].ends_with("/TCP"),
        "{ports:?}"
    );
    assert!(
        ports[1].starts_with("443:") && ports[1].ends_with("/TCP"),
        "{ports:?}"
    );
    assert_eq!(row(&t, "lb")[3], "<pending>");
    assert_eq!(
        row(&t, "ext")[1..5],
        ["ExternalName", "<none>", "db.example.com", "<none>"]
    );

    let t = table(&k.ok(&["get", "svc", "np", "-o", "wide"]).await);
    assert_eq!(t[0].last().map(String::as_str), Some("SELECTOR"));
    assert_eq!(row(&t, "np")[6], "app=np");
    server.shutdown().await;
}

#[tokio::test]
async fn get_configmaps_wide_secrets_and_jobs() {
    let server = ApiServer::start(Config::default()).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    k.ok(&[
        "create",
        "configmap",
        "demo",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .await;
    k.ok(&["create", "configmap", "empty"]).await;
    let t = table(&k.ok(&["get", "configmaps", "-o", "wide"]).await);
    assert_eq!(t[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(row(&t, "demo")[1], "2");
    assert_eq!(row(&t, "empty")[1], "0");
    assert!(is_age(&row(&t, "demo")[2]));
    k.ok(&["label", "configmap", "demo", "app=web"]).await;
    // --sort-by asks for whole objects (includeObject=Object), -L and --show-labels read their labels.
    let t = table(
        &k.ok(&[
            "get",
            "configmaps",
            "--sort-by=.metadata.name",
            "-L",
            "app",
            "--show-labels",
        ])
        .await,
    );
    assert_eq!(t[0], ["NAME", "DATA", "AGE", "APP", "LABELS"]);
    let names: Vec<&str> = t[1..].iter().map(|r| r[0].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(row(&t, "demo")[3..], ["web", "app=web"]);

    k.ok(&["create", "secret", "generic", "s", "--from-literal=user=me"])
        .await;
    let t = table(&k.ok(&["get", "secrets"]).await);
    assert_eq!(t[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(row(&t, "s")[1..3], ["Opaque", "1"]);

    k.ok(&["create", "job", "j", "--image=busybox", "--", "true"])
        .await;
    let t = table(&k.ok(&["get", "jobs"]).await);
    assert_eq!(t[0], ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    assert_eq!(row(&t, "j")[1..3], ["Running", "0/1"]);
    server.shutdown().await;
}

#[tokio::test]
async fn get_custom_resources_prints_the_crd_columns() {
    let server = ApiServer::start(Config::default()).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    let crd = write(
        dir.path(),
        "crd.yaml",
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    additionalPrinterColumns:
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Detail, type: string, jsonPath: .spec.detail, priority: 1}
"#,
    );
    k.ok(&["apply", "-f", &crd]).await;
    let w = write(
        dir.path(),
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n\
         spec: {size: 3, detail: fine}\n\
         status: {conditions: [{type: Synced, status: \"False\"}, {type: Ready, status: \"True\"}]}\n",
    );
    k.ok(&["apply", "-f", &w]).await;
    let t = table(&k.ok(&["get", "widgets"]).await);
    assert_eq!(t[0], ["NAME", "READY", "SIZE"]);
    assert_eq!(row(&t, "w1")[1..], ["True", "3"]);
    let t = table(&k.ok(&["get", "widgets", "-o", "wide"]).await);
    assert_eq!(t[0], ["NAME", "READY", "SIZE", "DETAIL"]);
    assert_eq!(row(&t, "w1")[3], "fine");
    server.shutdown().await;
}

/// A GET with `Accept: ...;as=Table`; the body.
async fn get_table(client: &kube::Client, path: &str) -> String {
    let req = http::Request::get(path)
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    tokio::time::timeout(Duration::from_secs(30), client.request_text(req))
        .await
        .expect("answer within 30s")
        .expect("table")
}

#[tokio::test]
async fn table_watches_send_headers_once_and_print_bookmarks_and_include_object_is_checked() {
    let server = ApiServer::start(Config::default()).await.expect("server");
    let client = common::client(&server);
    for name in ["a", "b"] {
        let cm = serde_json::json!({"metadata": {"name": name}, "data": {"k": "v"}});
        let r = common::raw(
            &client,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            cm.to_string(),
        )
        .await;
        assert_eq!(r.code, 201, "{}", r.text);
    }
    let text = get_table(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&allowWatchBookmarks=true\
         &sendInitialEvents=true&resourceVersionMatch=NotOlderThan&includeObject=None",
    )
    .await;
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let added: Vec<&serde_json::Value> = events.iter().filter(|e| e["type"] == "ADDED").collect();
    assert!(added.len() >= 2, "{text}");
    assert_eq!(added[0]["object"]["kind"], "Table");
    assert_eq!(added[0]["object"]["columnDefinitions"][1]["name"], "Data");
    assert_eq!(added[0]["object"]["rows"][0]["cells"][1], 1);
    assert_eq!(
        added[0]["object"]["rows"][0]["object"],
        serde_json::Value::Null
    );
    for e in &events[1..] {
        assert_eq!(
            e["object"]["columnDefinitions"],
            serde_json::Value::Null,
            "{e}"
        );
    }
    let end = events
        .iter()
        .find(|e| e["type"] == "BOOKMARK")
        .expect("initial-events-end bookmark");
    assert_eq!(end["object"]["kind"], "Table");
    assert_eq!(
        end["object"]["rows"][0]["cells"],
        serde_json::json!(["", 0, "<unknown>"])
    );
    assert_eq!(
        end["object"]["rows"][0]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    let r = common::raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps?includeObject=Everything",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.code, 200, "without as=Table includeObject is not read");
    let req = http::Request::get("/api/v1/namespaces/default/configmaps?includeObject=Everything")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    server.shutdown().await;
}
