//! kubectl end to end against the embedded server. Fails (never skips) when kubectl is not installed.

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use common::kubectl::{Kubectl, write};
use common::server;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 20}
"#;

const OBJECTS: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
"#;

#[tokio::test]
async fn kubectl_works_end_to_end() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());

    // apply -f: a CRD, then a custom object and a ConfigMap.
    let crd = write(dir.path(), "crd.yaml", CRD);
    let objs = write(dir.path(), "objects.yaml", OBJECTS);
    k.ok(&["apply", "-f", &crd]).await;
    let out = k.ok(&["apply", "-f", &objs]).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    assert!(out.contains("configmap/settings created"), "{out}");
    let out = k.ok(&["apply", "-f", &objs]).await;
    assert!(out.contains("configmap/settings unchanged"), "{out}");

    // api-resources lists the CRD's resource.
    let out = k.ok(&["api-resources"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("widgets ") && l.contains("wd") && l.contains("example.com/v1")),
        "{out}"
    );

    // get -o json, and a readable table.
    let w = k.json(&["get", "widget", "w1", "-o", "json"]).await;
    assert_eq!(w["spec"]["size"], 3);
    let table = k.ok(&["get", "wd"]).await;
    assert!(
        table.contains("NAME") && table.contains("SIZE") && table.contains("w1"),
        "{table}"
    );

    // Validation errors reach the user.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: big}\nspec: {size: 50}\n",
    );
    let o = k.run(&["apply", "-f", &bad]).await;
    assert!(!o.ok);
    assert!(
        o.stderr.contains("spec.size") && o.stderr.contains("less than or equal to 20"),
        "{}",
        o.stderr
    );

    // get -w receives an event.
    let mut watch = k
        .cmd(&[
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let seen = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
            if text.contains("\"watched\"") {
                return text;
            }
        }
        text
    });
    // Give the watch a moment to be established by polling the server's request log.
    common::eventually("kubectl's watch request", || async {
        server
            .faults()
            .requests()
            .iter()
            .any(|r| r.watch && r.resource.as_deref() == Some("configmaps"))
            .then_some(())
    })
    .await;
    let created = write(
        dir.path(),
        "watched.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\n",
    );
    k.ok(&["apply", "-f", &created]).await;
    let text = tokio::time::timeout(Duration::from_secs(30), seen)
        .await
        .expect("event within 30s")
        .expect("reader");
    assert!(
        text.contains("\"ADDED\"") && text.contains("\"watched\""),
        "{text}"
    );
    let _ = watch.kill().await;

    // patch --type=merge and --type=json, and the default (strategic) patch.
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/color","value":"red"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"shape":"round"}}"#,
    ])
    .await;
    let cm = k.json(&["get", "cm", "settings", "-o", "json"]).await;
    assert_eq!(
        cm["data"],
        serde_json::json!({"color": "red", "size": "L", "shape": "round"})
    );
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":4}}"#,
    ])
    .await;

    // scale a Deployment through its /scale subresource.
    let dep = write(
        dir.path(),
        "dep.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: nginx}]}\n",
    );
    k.ok(&["apply", "-f", &dep]).await;
    let out = k.ok(&["scale", "deployment", "web", "--replicas=3"]).await;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let d = k.json(&["get", "deploy", "web", "-o", "json"]).await;
    assert_eq!(d["spec"]["replicas"], 3);

    // apply --server-side.
    let ssa = write(
        dir.path(),
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1'}\n",
    );
    let out = k.ok(&["apply", "--server-side", "-f", &ssa]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let cm = k
        .json(&["get", "cm", "ssa", "-o", "json", "--show-managed-fields"])
        .await;
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(cm["metadata"]["managedFields"][0]["operation"], "Apply");

    // replace with a stale resourceVersion fails with a conflict.
    let mut stale = k.json(&["get", "cm", "settings", "-o", "json"]).await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"bump":"1"}}"#,
    ])
    .await;
    stale["data"]["color"] = Value::String("green".into());
    let stale_file = write(dir.path(), "stale.json", &stale.to_string());
    let o = k.run(&["replace", "-f", &stale_file]).await;
    assert!(!o.ok, "stale replace must fail");
    assert!(
        o.stderr.contains("Operation cannot be fulfilled")
            && o.stderr.contains("the object has been modified"),
        "{}",
        o.stderr
    );

    // get --chunk-size=2 over 5 objects pages through the list.
    for i in 0..5 {
        k.ok(&[
            "apply",
            "-f",
            &write(
                dir.path(),
                &format!("c{i}.yaml"),
                &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: chunk-{i}}}\n"),
            ),
        ])
        .await;
    }
    server.faults().clear_requests();
    let out = k
        .ok(&["get", "cm", "-l", "", "--chunk-size=2", "-o", "name"])
        .await;
    let chunked: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("configmap/chunk-"))
        .collect();
    assert_eq!(chunked.len(), 5, "{out}");
    let pages: Vec<String> = server
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource.as_deref() == Some("configmaps"))
        .map(|r| r.query)
        .collect();
    // settings, watched, ssa and chunk-0..4: 8 ConfigMaps in pages of 2.
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages.iter().all(|q| q.contains("limit=2")), "{pages:?}");
    assert!(
        pages.iter().skip(1).all(|q| q.contains("continue=")),
        "{pages:?}"
    );

    // delete without finalizers; with finalizers it waits for them.
    k.ok(&["delete", "configmap", "ssa"]).await;
    assert!(!k.run(&["get", "cm", "ssa"]).await.ok);
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    k.ok(&["delete", "configmap", "settings", "--wait=false"])
        .await;
    let held = k.json(&["get", "cm", "settings", "-o", "json"]).await;
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    let o = k.run(&["get", "cm", "settings"]).await;
    assert!(!o.ok && o.stderr.contains("NotFound"), "{}", o.stderr);

    // Deleting the CRD removes the resource type.
    k.ok(&["delete", "-f", &crd]).await;
    let o = k.run(&["get", "widgets"]).await;
    assert!(!o.ok, "widgets should be gone: {}", o.stdout);
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_over_a_client_side_apply_takes_ownership_of_the_same_values() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = Kubectl::for_server(&server, dir.path());
    let manifest = write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: moved}\ndata: {a: '1'}\n",
    );
    k.ok(&["apply", "-f", &manifest]).await;
    let before = k
        .json(&["get", "cm", "moved", "-o", "json", "--show-managed-fields"])
        .await;
    assert_eq!(
        before["metadata"]["managedFields"][0]["manager"],
        "kubectl-client-side-apply"
    );

    // Same values: only ownership changes, and it must be stored.
    let out = k.ok(&["apply", "--server-side", "-f", &manifest]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let after = k
        .json(&["get", "cm", "moved", "-o", "json", "--show-managed-fields"])
        .await;
    let entries = after["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let apply = entries
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        .unwrap_or_else(|| panic!("no Apply entry for kubectl: {entries:?}"));
    assert!(
        apply["fieldsV1"].pointer("/f:data/f:a").is_some(),
        "{apply}"
    );
    assert_eq!(after["data"]["a"], "1");

    // A second server-side apply of the same manifest changes nothing.
    k.ok(&["apply", "--server-side", "-f", &manifest]).await;
    let again = k
        .json(&["get", "cm", "moved", "-o", "json", "--show-managed-fields"])
        .await;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    server.shutdown().await;
}
