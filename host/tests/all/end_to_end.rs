//! The real host against the embedded API server over HTTP: plugins reconcile what kubectl-like
//! clients create, reading from the shared informer caches and writing through kube::Client.

use serde_json::json;

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;

fn configmap(ns: &str, name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns}, "data": data})
}

async fn annotation(cluster: &TestCluster, ns: &str, name: &str, key: &str) -> Option<String> {
    let cm = cluster
        .dynamic("v1", "ConfigMap", "configmaps", Some(ns))
        .get_opt(name)
        .await
        .expect("get configmap")?;
    cm.metadata.annotations?.get(key).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reconciles_objects_from_the_initial_list_and_from_the_watch() {
    let cluster = TestCluster::start().await;
    cluster
        .create(
            "configmaps",
            configmap("default", "before", json!({"a": "1"})),
        )
        .await;
    cluster.start_plugin(&support::example("hello")).await;
    cluster
        .create(
            "configmaps",
            configmap("default", "after", json!({"a": "1", "b": "2"})),
        )
        .await;

    eventually("the ConfigMap from the initial list is stamped", || {
        let c = &cluster;
        async move {
            annotation(c, "default", "before", "hello.kubewasm.dev/keys")
                .await
                .filter(|v| v == "1")
        }
    })
    .await;
    eventually("the ConfigMap created later is stamped", || {
        let c = &cluster;
        async move {
            annotation(c, "default", "after", "hello.kubewasm.dev/keys")
                .await
                .filter(|v| v == "2")
        }
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_reconciled_again_and_the_plugin_records_events() {
    let cluster = TestCluster::start().await;
    cluster.start_plugin(&support::example("hello")).await;
    cluster
        .create("configmaps", configmap("default", "cm", json!({"a": "1"})))
        .await;
    eventually("the first stamp", || {
        let c = &cluster;
        async move {
            annotation(c, "default", "cm", "hello.kubewasm.dev/keys")
                .await
                .filter(|v| v == "1")
        }
    })
    .await;

    let api = cluster.dynamic("v1", "ConfigMap", "configmaps", Some("default"));
    api.patch(
        "cm",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"b": "2", "c": "3"}})),
    )
    .await
    .expect("patch");
    eventually("the stamp follows the change", || {
        let c = &cluster;
        async move {
            annotation(c, "default", "cm", "hello.kubewasm.dev/keys")
                .await
                .filter(|v| v == "3")
        }
    })
    .await;

    let events = cluster.dynamic("events.k8s.io/v1", "Event", "events", Some("default"));
    let stamped = eventually("Events about the ConfigMap", || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            let about_cm: Vec<_> = list
                .items
                .into_iter()
                .filter(|e| e.data["regarding"]["name"] == "cm" && e.data["reason"] == "Stamped")
                .collect();
            (about_cm.len() >= 2).then_some(about_cm)
        }
    })
    .await;
    let event = &stamped[0].data;
    assert_eq!(event["regarding"]["kind"], "ConfigMap");
    assert_eq!(event["reportingController"], "kubewasm/hello");
    assert!(
        event["regarding"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "the event names the object's uid so kubectl describe finds it: {event}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_that_read_the_same_kind_share_one_list_and_one_watch() {
    let cluster = TestCluster::start().await;
    // The same component under three names: three plugins that all reconcile ConfigMaps.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["one", "two", "three"] {
        std::fs::copy(
            support::example("hello"),
            dir.path().join(format!("{name}.wasm")),
        )
        .expect("copy plugin");
    }
    cluster.server.faults().clear_requests();
    for name in ["one", "two", "three"] {
        cluster
            .start_plugin(&dir.path().join(format!("{name}.wasm")))
            .await;
    }
    cluster
        .create(
            "configmaps",
            configmap("default", "shared", json!({"k": "v"})),
        )
        .await;
    eventually("the ConfigMap is stamped", || {
        let c = &cluster;
        async move { annotation(c, "default", "shared", "hello.kubewasm.dev/keys").await }
    })
    .await;

    let requests = cluster.server.faults().requests();
    let count = |verb: &str| {
        requests
            .iter()
            .filter(|r| r.resource.as_deref() == Some("configmaps") && r.verb == verb)
            .count()
    };
    assert_eq!(
        count("list"),
        1,
        "one LIST of configmaps for three plugins: {requests:#?}"
    );
    assert_eq!(
        count("watch"),
        1,
        "one WATCH of configmaps for three plugins: {requests:#?}"
    );
    assert_eq!(cluster.manager.status().len(), 3);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_plugin_releases_informers_no_other_plugin_uses() {
    let cluster = TestCluster::start().await;
    cluster.start_plugin(&support::example("hello")).await;
    assert_eq!(cluster.manager.informers().running(), 1);
    assert!(cluster.manager.stop("hello").await);
    assert_eq!(cluster.manager.informers().running(), 0);
    assert!(
        !cluster.manager.stop("hello").await,
        "stopping twice says no"
    );
    cluster.stop().await;
}

/// `kubewasm dev` as a user runs it: a process that serves an API server, writes a kubeconfig,
/// runs the example plugins, and reacts to kubectl; SIGTERM stops it with exit code 0.
#[test]
fn kubewasm_dev_serves_kubectl_and_runs_the_example_plugins() {
    use std::process::Command;

    let plugins = support::example("hello");
    let plugins = plugins.parent().expect("plugins folder");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("dev.kubeconfig");
    let (mut dev, banner) = support::process::start_dev(dir.path(), plugins, &[]);
    assert!(
        banner.contains("kubewasm dev is running."),
        "banner: {banner}"
    );
    assert!(
        banner.contains("hello"),
        "the example plugins run: {banner}"
    );

    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .expect("kubectl must be installed for this test");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\n  namespace: default\ndata:\n  a: \"1\"\n  b: \"2\"\n",
    )
    .expect("write manifest");
    let (ok, out) = kubectl(&["apply", "-f", manifest.to_str().expect("utf-8 path")]);
    assert!(ok, "kubectl apply: {out}");
    let mut last = String::new();
    support::wait::wait("the plugin to stamp the ConfigMap kubectl applied", || {
        let (ok, out) = kubectl(&[
            "get",
            "configmap",
            "from-kubectl",
            "-o",
            "jsonpath={.metadata.annotations.hello\\.kubewasm\\.dev/keys}",
        ]);
        last = out;
        (ok && last.trim() == "2").then_some(())
    })
    .unwrap_or_else(|| panic!("the plugin never stamped the ConfigMap: {last}"));

    let pid = dev.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = dev.wait().expect("kubewasm dev exits");
    assert!(
        status.success(),
        "SIGTERM stops kubewasm dev cleanly: {status}"
    );
}
