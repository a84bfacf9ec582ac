//! Both versions of the WIT contract in one host: the committed `kubewasm:controller@0.1.0`
//! component (`fixtures/wit-0.1.0/hello.wasm`) beside a `@0.2.0` test plugin (`v2-ops`), against
//! the embedded API server; what 0.2.0 added (field selectors, an index narrowed to a
//! namespace, keys and count, strategic merge, scale, delete preconditions, related objects in
//! Events) and how the host resolves plurals and scope when a 0.2.0 plugin loads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams};
use kubewasm::runtime::{
    Action, Backend, KindResolver, MemoryBackend, Reason, Request, Runtime, RuntimeConfig,
    WitVersion,
};
use kubewasm::{DiscoveryResolver, Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::{Value, json};

use crate::support::cluster::{TestCluster, client_for};
use crate::support::{self, eventually};

/// The committed 0.1.0 component: stamps each ConfigMap with `hello.kubewasm.dev/keys` and
/// `.../siblings` and records a `Stamped` Event.
fn hello_0_1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wit-0.1.0/hello.wasm")
}

/// A runtime that resolves plurals from the cluster's discovery, as `kubewasm run` does.
fn online_runtime(client: &kube::Client) -> Runtime {
    Runtime::new(RuntimeConfig {
        resolver: Some(Arc::new(DiscoveryResolver::new(client.clone()))),
        ..support::config()
    })
    .expect("the runtime starts")
}

async fn start() -> TestCluster {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = client_for(&server);
    let runtime = online_runtime(&client);
    let manager = Manager::new(client.clone(), ManagerConfig::default());
    TestCluster::from_parts(server, client, runtime, manager)
}

/// Installs the plugin's CRDs (what `kubewasm dev` does) and waits until they are served.
async fn install_crds(cluster: &TestCluster, crds: &[Value]) {
    for crd in crds {
        cluster
            .create("customresourcedefinitions", crd.clone())
            .await;
    }
    let resolver = DiscoveryResolver::new(cluster.client.clone());
    eventually("the Goose CRD to be served", || async {
        resolver
            .resolve("zoo.kubewasm.dev", "v1", "Goose")
            .await
            .ok()
            .flatten()
    })
    .await;
}

fn pod(ns: &str, name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    })
}

async fn set_phase(client: &kube::Client, ns: &str, name: &str, phase: &str) {
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap_or_else(|e| panic!("setting the phase of {ns}/{name}: {e}"));
}

#[tokio::test]
async fn a_0_1_and_a_0_2_plugin_run_side_by_side_in_one_host() {
    let cluster = start().await;
    let client = cluster.client.clone();
    cluster
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
        )
        .await;

    // Loaded before its CRD is installed: the kinds resolve from discovery (Endpoints) and
    // from the manifest's CRD (Goose, not served yet), and the CRD is there to install.
    let ops = support::load(&cluster.runtime, &support::test_plugin("v2-ops")).await;
    assert_eq!(ops.wit_version(), WitVersion::V0_2);
    let m = ops.manifest();
    let plural = |group: &str, kind: &str| {
        let k = m.declared(group, kind).expect("declared");
        (k.plural.clone(), k.namespaced)
    };
    assert_eq!(plural("", "Endpoints"), ("endpoints".into(), true));
    assert_eq!(plural("zoo.kubewasm.dev", "Goose"), ("geese".into(), true));
    install_crds(&cluster, ops.custom_resources()).await;

    for (ns, name, node, phase) in [
        ("default", "p1", "node-1", "Running"),
        ("default", "p2", "node-2", "Running"),
        ("default", "p3", "node-1", "Pending"),
        ("other", "p4", "node-1", "Running"),
    ] {
        cluster.create("pods", pod(ns, name, node)).await;
        set_phase(&client, ns, name, phase).await;
    }
    cluster
        .create(
            "endpoints",
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ep", "namespace": "default"}}),
        )
        .await;
    for name in ["g1", "g2"] {
        cluster
            .create(
                "geese",
                json!({"apiVersion": "zoo.kubewasm.dev/v1", "kind": "Goose",
                       "metadata": {"name": name, "namespace": "default"}, "spec": {"honk": "loud"}}),
            )
            .await;
    }
    cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "web-doomed", "namespace": "default"}, "data": {"a": "1"}}),
        )
        .await;
    // A parent whose child must survive its deletion (orphan propagation).
    let parent = cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "web-parent", "namespace": "default"}}),
        )
        .await;
    cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "web-child", "namespace": "default", "ownerReferences": [{
                       "apiVersion": "v1", "kind": "ConfigMap", "name": "web-parent",
                       "uid": parent.metadata.uid.clone().expect("a uid")}]}}),
        )
        .await;
    cluster
        .create(
            "deployments",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "annotations": {
                    "ops.kubewasm.dev/image": "app:2", "ops.kubewasm.dev/replicas": "3"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [
                            {"name": "app", "image": "app:1"},
                            {"name": "side", "image": "side:1"}
                        ]}
                    }
                }
            }),
        )
        .await;

    let hello = support::load(&cluster.runtime, &hello_0_1()).await;
    assert_eq!(hello.wit_version(), WitVersion::V0_1);
    assert!(hello.custom_resources().is_empty());
    cluster.manager.start(hello).expect("hello starts");
    cluster.manager.start(ops).expect("v2-ops starts");
    cluster.manager.wait_synced().await;

    // The 0.2.0 plugin's report: each answer checked against what the cluster holds (the
    // namespace also has the API server's own `kubernetes` Endpoints).
    let endpoints = cluster
        .dynamic("v1", "Endpoints", "endpoints", Some("default"))
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .len()
        .to_string();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let expected = [
        ("count-on-node-1", "2"),
        ("running-elsewhere", "default/p2"),
        ("index-here", "default/p1,default/p3"),
        ("index-everywhere", "3"),
        ("endpoints", endpoints.as_str()),
        ("geese", "2"),
        ("scale", "3"),
        ("delete-right-uid", "ok"),
        ("delete-orphan", "ok"),
    ];
    let data = eventually("the v2-ops report", || async {
        let data = cms.get_opt("web-report").await.ok()??.data?;
        expected
            .iter()
            .all(|(k, v)| data.get(*k).map(String::as_str) == Some(*v))
            .then_some(data)
    })
    .await;
    let bad = &data["bad-selector"];
    assert!(
        bad.contains("Invalid") && bad.contains("no operator"),
        "{bad}"
    );
    let wrong_uid = &data["delete-wrong-uid"];
    assert!(wrong_uid.contains("Conflict"), "{wrong_uid}");
    assert!(cms.get_opt("web-doomed").await.unwrap().is_none());
    // Orphaned: the parent is gone, the child stays without its owner reference.
    eventually("web-parent to be gone and web-child orphaned", || async {
        let parent_gone = cms.get_opt("web-parent").await.ok()?.is_none();
        let child = cms.get_opt("web-child").await.ok()??;
        let orphaned = child
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty();
        (parent_gone && orphaned).then_some(())
    })
    .await;

    // The strategic merge patch replaced one container's image and kept the other; the scale
    // patch set the replicas.
    let deployment = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let images: Vec<(String, String)> = spec
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| (c.name, c.image.unwrap_or_default()))
        .collect();
    assert_eq!(
        images,
        [
            ("app".into(), "app:2".into()),
            ("side".into(), "side:1".into())
        ]
    );

    // The 0.1.0 component, through the adapter: it stamps ConfigMaps (a cache get, a count, a
    // merge patch) and records its Event.
    cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "plain", "namespace": "other"}, "data": {"a": "1", "b": "2"}}),
        )
        .await;
    let other = Api::<ConfigMap>::namespaced(client.clone(), "other");
    let annotations = eventually("plain to be stamped by the 0.1.0 plugin", || async {
        let a = other.get_opt("plain").await.ok()??.metadata.annotations?;
        a.contains_key("hello.kubewasm.dev/siblings").then_some(a)
    })
    .await;
    assert_eq!(annotations["hello.kubewasm.dev/keys"], "2");
    assert_eq!(annotations["hello.kubewasm.dev/siblings"], "1");

    let events = |ns: &str| cluster.dynamic("events.k8s.io/v1", "Event", "events", Some(ns));
    let stamped = events("other");
    eventually("the 0.1.0 plugin's Stamped event", || async {
        let list = stamped.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.data["reason"] == "Stamped" && e.data["regarding"]["name"] == "plain")
    })
    .await;
    let reported = events("default");
    let event = eventually("the 0.2.0 plugin's Reported event", || async {
        let list = reported.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.data["reason"] == "Reported")
    })
    .await;
    assert_eq!(event.data["regarding"]["kind"], "Deployment");
    assert_eq!(event.data["related"]["kind"], "ConfigMap");
    assert_eq!(event.data["related"]["name"], "web-report");
    cluster.stop().await;
}

#[tokio::test]
async fn discovery_gives_the_served_plural_and_scope_of_built_in_and_custom_kinds() {
    let cluster = start().await;
    let resolver = DiscoveryResolver::new(cluster.client.clone());
    let resolve = |group: &'static str, kind: &'static str| {
        let resolver = &resolver;
        async move {
            resolver
                .resolve(group, "v1", kind)
                .await
                .expect("discovery answers")
                .map(|r| (r.plural, r.namespaced))
        }
    };
    assert_eq!(
        resolve("", "Endpoints").await,
        Some(("endpoints".into(), true))
    );
    assert_eq!(resolve("", "Node").await, Some(("nodes".into(), false)));
    assert_eq!(
        resolve("networking.k8s.io", "NetworkPolicy").await,
        Some(("networkpolicies".into(), true))
    );
    assert_eq!(resolve("", "Nonsense").await, None);
    assert_eq!(resolve("zoo.kubewasm.dev", "Goose").await, None);
    let ops = support::load(&cluster.runtime, &support::test_plugin("v2-ops")).await;
    install_crds(&cluster, ops.custom_resources()).await;
    assert_eq!(
        resolve("zoo.kubewasm.dev", "Goose").await,
        Some(("geese".into(), true))
    );
    cluster.stop().await;
}

#[tokio::test]
async fn offline_a_0_2_plugin_resolves_its_kinds_from_its_crds_and_the_built_in_table() {
    // `kubewasm plugin check` and the memory-backend tests have no API server to ask.
    let runtime = support::runtime();
    let ops = support::load(&runtime, &support::test_plugin("v2-ops")).await;
    let m = ops.manifest();
    let kind = |group: &str, kind: &str| m.declared(group, kind).expect("declared").clone();
    assert_eq!(kind("", "Endpoints").plural, "endpoints");
    assert_eq!(kind("apps", "Deployment").plural, "deployments");
    let goose = kind("zoo.kubewasm.dev", "Goose");
    assert_eq!((goose.plural.as_str(), goose.namespaced), ("geese", true));
    let [crd] = ops.custom_resources() else {
        panic!("one CRD: {:?}", ops.custom_resources())
    };
    assert_eq!(crd["metadata"]["name"], "geese.zoo.kubewasm.dev");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
}

#[tokio::test]
async fn a_0_1_plugin_keeps_its_declared_plural_and_scope() {
    let hello = support::load(&support::runtime(), &hello_0_1()).await;
    assert_eq!(hello.wit_version(), WitVersion::V0_1);
    let cm = &hello.manifest().reconciles.kind;
    assert_eq!((cm.plural.as_str(), cm.namespaced), ("configmaps", true));
}

#[tokio::test]
async fn a_0_1_plugin_reaches_every_import_through_the_adapter_and_requeues_in_milliseconds() {
    let plugin = support::load(&support::runtime(), &support::test_plugin("v1-calls")).await;
    assert_eq!(plugin.wit_version(), WitVersion::V0_1);
    let memory = Arc::new(MemoryBackend::new());
    let cm = support::configmaps();
    for (ns, name, app) in [
        ("a", "self", "web"),
        ("a", "sibling", "web"),
        ("a", "other", "db"),
        ("b", "far", "web"),
        ("a", "doomed", "db"),
    ] {
        memory
            .insert(
                &cm,
                json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                       "data": {"k": "v"}}),
            )
            .unwrap();
    }
    let backend: Arc<dyn Backend> = memory.clone();
    let action = plugin
        .reconcile(backend, Request::new("a", "self", Reason::Created))
        .await
        .expect("the reconcile succeeds");
    assert_eq!(action, Action::RequeueAfter(Duration::from_millis(1500)));

    // get-fields saw the data; list-by-index every namespace; list-fields the label selector
    // in one namespace.
    let seen = "data=1 index=3 list=self,sibling";
    let object = memory.object(&cm, Some("a"), "self").unwrap();
    assert_eq!(
        object["metadata"]["annotations"]["v1-calls.kubewasm.dev/seen"],
        seen
    );
    assert_eq!(
        object["status"]["seen"], seen,
        "replace-status wrote the status"
    );
    assert!(memory.object(&cm, Some("a"), "doomed").is_none());
    let events = memory.events();
    let [event] = events.as_slice() else {
        panic!("one event: {events:?}")
    };
    assert_eq!((event.reason.as_str(), event.note.as_str()), ("Seen", seen));
    assert_eq!(event.kind.plural, "configmaps");
    assert_eq!(event.related, None);
}

#[tokio::test]
async fn a_0_2_plugin_requeues_after_a_duration_in_nanoseconds() {
    let plugin = support::load(&support::runtime(), &support::test_plugin("v2-ops")).await;
    let memory = Arc::new(MemoryBackend::new());
    let deployments = plugin
        .manifest()
        .declared("apps", "Deployment")
        .unwrap()
        .clone();
    memory
        .insert(
            &deployments,
            json!({"metadata": {"name": "web", "namespace": "a",
                                "annotations": {"ops.kubewasm.dev/requeue-ms": "2500"}}}),
        )
        .unwrap();
    let backend: Arc<dyn Backend> = memory.clone();
    let action = plugin
        .reconcile(backend, Request::new("a", "web", Reason::Created))
        .await
        .expect("the reconcile succeeds");
    assert_eq!(action, Action::RequeueAfter(Duration::from_millis(2500)));
}
