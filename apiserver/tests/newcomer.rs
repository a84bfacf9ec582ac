//! The commands a newcomer types first, with kubectl 1.32 (which sends protobuf for typed creates),
//! against the embedded server: each must work as it does on a cluster and leave the objects a
//! cluster would. Workloads that need Pods to run are covered in `simulate.rs`; `explain` and
//! `apply --validate=strict` in `openapi.rs`.

mod common;

use base64::Engine as _;
use serde_json::Value;

use common::kubectl::{Kubectl, write};
use common::server;

const CSR: &str = r#"
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: alice
spec:
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KLS0tLS1FTkQgQ0VSVElGSUNBVEUgUkVRVUVTVC0tLS0tCg==
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
"#;

#[tokio::test]
async fn a_newcomers_first_commands_work_as_on_a_cluster() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());

    // create configmap / secret / namespace: typed creates, sent as protobuf.
    let out = k
        .ok(&["create", "configmap", "demo", "--from-literal=a=b"])
        .await;
    assert!(out.contains("configmap/demo created"), "{out}");
    let cm = k.json(&["get", "configmap", "demo", "-o", "json"]).await;
    assert_eq!(cm["data"]["a"], "b");

    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ])
    .await;
    let secret = k.json(&["get", "secret", "creds", "-o", "json"]).await;
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "czNjcmV0");

    k.ok(&["create", "namespace", "foo"]).await;
    let ns = k.json(&["get", "namespace", "foo", "-o", "json"]).await;
    assert_eq!(ns["status"]["phase"], "Active");
    // The namespace gets its default ServiceAccount, as the ServiceAccount controller does.
    k.ok(&["get", "serviceaccount", "default", "-n", "foo"])
        .await;

    // create deployment, expose it: the Service gets a cluster IP and the defaults.
    k.ok(&["create", "deployment", "web", "--image=nginx"])
        .await;
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).await;
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx");
    assert_eq!(
        c["imagePullPolicy"], "Always",
        "an untagged image is :latest"
    );
    let out = k
        .ok(&[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--target-port=8080",
        ])
        .await;
    assert!(out.contains("service/web exposed"), "{out}");
    let svc = k.json(&["get", "service", "web", "-o", "json"]).await;
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
    assert!(ip.starts_with("10.0.0."), "allocated cluster IP: {svc}");

    // run: a bare Pod with the Pod defaults and the default ServiceAccount.
    k.ok(&[
        "run",
        "hello",
        "--image=busybox:1.36",
        "--restart=Never",
        "--",
        "echo",
        "hi",
    ])
    .await;
    let pod = k.json(&["get", "pod", "hello", "-o", "json"]).await;
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["containers"][0]["args"][1], "hi");
    assert_eq!(pod["status"]["phase"], "Pending");

    // create job / cronjob: batch/v1 with the Job controller's selector.
    k.ok(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "--",
        "true",
    ])
    .await;
    let job = k.json(&["get", "job", "once", "-o", "json"]).await;
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        job["metadata"]["uid"]
    );
    k.ok(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox:1.36",
        "--schedule=0 3 * * *",
    ])
    .await;
    let cj = k.json(&["get", "cronjob", "nightly", "-o", "json"]).await;
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");

    // label, annotate, patch (strategic, merge and JSON), scale: no editor needed.
    k.ok(&["label", "configmap", "demo", "tier=web"]).await;
    k.ok(&["annotate", "configmap", "demo", "note=hello"]).await;
    k.ok(&["patch", "configmap", "demo", "-p", r#"{"data":{"c":"d"}}"#])
        .await;
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/template/spec/containers/0/env","value":[{"name":"MODE","value":"dev"}]}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"LEVEL","value":"2"}]}]}}}}"#,
    ])
    .await;
    k.ok(&["scale", "deployment", "web", "--replicas=3"]).await;
    let cm = k.json(&["get", "configmap", "demo", "-o", "json"]).await;
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello");
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "c": "d"}));
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).await;
    assert_eq!(d["spec"]["replicas"], 3);
    let env: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        env,
        ["LEVEL", "MODE"],
        "a strategic merge adds to the env by name"
    );

    // What every cluster has, and what clients look up.
    k.ok(&["get", "service", "kubernetes", "-n", "default"])
        .await;
    let resources = k.ok(&["api-resources"]).await;
    for name in [
        "jobs",
        "cronjobs",
        "daemonsets",
        "poddisruptionbudgets",
        "ingresses",
        "networkpolicies",
        "certificatesigningrequests",
        "roles",
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.starts_with(&format!("{name} "))),
            "api-resources lists {name}:\n{resources}"
        );
    }
    let all = k.ok(&["get", "all"]).await;
    for name in [
        "pod/hello",
        "service/web",
        "deployment.apps/web",
        "job.batch/once",
    ] {
        assert!(all.contains(name), "get all shows {name}:\n{all}");
    }

    // create token: a TokenRequest whose JWT names the ServiceAccount.
    let token = k.ok(&["create", "token", "default"]).await;
    let claims = token.trim().split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    let err = k.fails(&["create", "token", "nobody"]).await;
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );

    // auth can-i / whoami: the dev cluster authorises everything and says who the user is.
    let out = k.ok(&["auth", "can-i", "create", "pods"]).await;
    assert_eq!(out.trim(), "yes");
    let out = k.ok(&["auth", "whoami"]).await;
    assert!(out.contains("kubewasm-admin"), "{out}");

    // certificate approve: the CSR's approval subresource.
    let csr = write(dir.path(), "csr.yaml", CSR);
    k.ok(&["apply", "-f", &csr]).await;
    let out = k.ok(&["certificate", "approve", "alice"]).await;
    assert!(out.contains("approved"), "{out}");
    let csr = k.json(&["get", "csr", "alice", "-o", "json"]).await;
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(csr["status"]["conditions"][0]["status"], "True");

    // exec cannot work without containers: the answer says so.
    let err = k.fails(&["exec", "hello", "--", "ls"]).await;
    assert!(
        err.contains("not supported in the kubewasm dev cluster"),
        "{err}"
    );

    // delete: typed deletes (DeleteOptions bodies) of what was made.
    for (kind, name) in [("configmap", "demo"), ("secret", "creds"), ("job", "once")] {
        let out = k.ok(&["delete", kind, name]).await;
        assert!(out.contains("deleted"), "{out}");
    }
    let err = k.fails(&["get", "configmap", "demo"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    server.shutdown().await;
}
