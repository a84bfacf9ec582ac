//! The fake host's own behaviour.
use super::*;
use crate::Error;
use crate::data::Event;
use crate::data::Level;
use crate::manifest::Verb;
use crate::reconcile::Request;
use crate::{Api, DeleteParams, ListParams, Manifest, Patch, WatchMapping};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use serde_json::Value;
use serde_json::json;

fn cms(ns: &str) -> Api<ConfigMap> {
    Api::namespaced(ns)
}

fn cm(ns: &str, name: &str, labels: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name, "labels": labels}, "data": {"a": "1"}})
}

struct Limited;

impl Plugin for Limited {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .watches::<Node>(WatchMapping::IndexLookup {
                index: "by-node".into(),
                field: "metadata.name".into(),
            })
            .index::<ConfigMap>("by-node", "metadata.labels[kubewasm.dev/node]")
            .permit::<ConfigMap>(&[Verb::Patch])
    }
    fn reconcile(_: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

#[test]
fn writes_are_visible_to_reads_at_once_without_cache_lag() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
    cms("a").patch("x", &patch).unwrap();
    let read = cms("a").get("x").unwrap().unwrap();
    assert_eq!(read.data.unwrap().len(), 2);
}

#[test]
fn with_cache_lag_reads_see_the_old_object_until_sync() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    host.set_cache_lag(true);
    let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
    let written = cms("a").patch("x", &patch).unwrap();
    assert_eq!(written.data.unwrap().len(), 2);
    let stale = cms("a").get("x").unwrap().unwrap();
    assert_eq!(stale.data.unwrap().len(), 1);
    host.sync();
    let fresh = cms("a").get("x").unwrap().unwrap();
    assert_eq!(fresh.data.unwrap().len(), 2);
}

#[test]
fn a_stale_resource_version_is_a_conflict() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    let mut old = cms("a").get("x").unwrap().unwrap();
    cms("a")
        .patch("x", &Patch::merge(json!({"data": {"b": "2"}})).unwrap())
        .unwrap();
    old.data = None;
    let err = cms("a").replace("x", &old).unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(host.writes().len(), 1, "a failed write is not recorded");
}

#[test]
fn deleting_an_object_with_finalizers_marks_it_until_they_are_removed() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(json!({"metadata": {
        "namespace": "a", "name": "x", "finalizers": ["example.com/cleanup"]}}));
    cms("a").delete("x", &DeleteParams::default()).unwrap();
    let marked: ConfigMap = host.object("a", "x").expect("kept while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let patch = Patch::Json(json!([{"op": "remove", "path": "/metadata/finalizers"}]));
    cms("a").patch("x", &patch).unwrap();
    assert!(host.object::<ConfigMap>("a", "x").is_none());
    assert!(
        cms("a")
            .delete("x", &DeleteParams::default())
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn the_manifest_is_enforced_for_undeclared_kinds_and_verbs() {
    let host = FakeHost::for_plugin::<Limited>();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    assert!(cms("a").get("x").unwrap().is_some());
    assert!(
        Api::<Secret>::namespaced("a")
            .get("x")
            .unwrap_err()
            .is_forbidden()
    );
    assert!(
        cms("a")
            .delete("x", &DeleteParams::default())
            .unwrap_err()
            .is_forbidden()
    );
    assert!(
        Api::<Node>::all().list(&ListParams::default()).is_ok(),
        "watched kinds are readable"
    );
    let event = Event::normal("Seen", "hello");
    assert!(
        Api::<Pod>::namespaced("a")
            .event("p", &event)
            .unwrap_err()
            .is_forbidden()
    );
    cms("a").event("x", &event).unwrap();
    assert_eq!(host.events()[0].event.reason, "Seen");
}

#[test]
fn list_filters_by_namespace_and_label_selector() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "web", json!({"app": "web", "tier": "front"})));
    host.seed_json::<ConfigMap>(cm("a", "db", json!({"app": "db"})));
    host.seed_json::<ConfigMap>(cm("b", "web", json!({"app": "web"})));
    let names = |ns: &str, sel: &str| -> Vec<String> {
        let api = if ns.is_empty() { Api::all() } else { cms(ns) };
        let lp = if sel.is_empty() {
            ListParams::default()
        } else {
            ListParams::default().labels(sel)
        };
        api.list(&lp)
            .unwrap()
            .into_iter()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.metadata.namespace.unwrap(),
                    c.metadata.name.unwrap()
                )
            })
            .collect()
    };
    assert_eq!(names("", ""), ["a/db", "a/web", "b/web"]);
    assert_eq!(names("a", ""), ["a/db", "a/web"]);
    assert_eq!(names("", "app=web"), ["a/web", "b/web"]);
    assert_eq!(names("", "app in (db, web),tier"), ["a/web"]);
    assert_eq!(names("", "app!=web"), ["a/db"]);
    assert_eq!(names("", "!tier,app notin (db)"), ["b/web"]);
    assert!(matches!(
        Api::<ConfigMap>::all().list(&ListParams::default().labels("app in web")),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn list_by_index_uses_the_index_declared_in_the_manifest() {
    let host = FakeHost::for_plugin::<Limited>();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({"kubewasm.dev/node": "n1"})));
    host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));
    let all = Api::<ConfigMap>::all();
    let on_n1 = all
        .list(&ListParams::default().index("by-node", "n1"))
        .unwrap();
    assert_eq!(on_n1.len(), 1);
    assert_eq!(on_n1[0].metadata.name.as_deref(), Some("x"));
    let err = all
        .list(&ListParams::default().index("by-zone", "z"))
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn projected_reads_keep_only_the_asked_fields_and_follow_the_manifest() {
    let host = FakeHost::for_plugin::<Limited>();
    let mut x = cm("a", "x", json!({"kubewasm.dev/node": "n1", "other": "o"}));
    x["data"] = json!({"k": "v", "big": "not wanted"});
    host.seed_json::<ConfigMap>(x);
    host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));

    let got: ConfigMap = cms("a").get_fields("x", &["data.k"]).unwrap().unwrap();
    assert_eq!(got.data, Some([("k".to_owned(), "v".to_owned())].into()));
    assert_eq!(got.metadata.name.as_deref(), Some("x"));
    assert!(
        got.metadata.resource_version.is_some(),
        "identity is always kept"
    );
    assert_eq!(got.metadata.labels, None);
    assert_eq!(
        cms("a").get_fields::<ConfigMap>("none", &["data"]).unwrap(),
        None
    );

    let labelled: Vec<ConfigMap> = cms("a")
        .list_fields(
            &ListParams::default().labels("kubewasm.dev/node=n1"),
            &["metadata.labels[other]"],
        )
        .unwrap();
    assert_eq!(labelled.len(), 1);
    assert_eq!(
        labelled[0].metadata.labels,
        Some([("other".to_owned(), "o".to_owned())].into())
    );
    let on_n2: Vec<ConfigMap> = Api::<ConfigMap>::all()
        .list_fields(&ListParams::default().index("by-node", "n2"), &["data"])
        .unwrap();
    assert_eq!(on_n2.len(), 1);
    assert_eq!(on_n2[0].metadata.name.as_deref(), Some("y"));

    let bad = cms("a")
        .get_fields::<ConfigMap>("x", &["data..k"])
        .unwrap_err();
    assert!(matches!(bad, Error::Invalid(_)), "{bad}");
    let forbidden = Api::<Pod>::all()
        .list_fields::<Pod>(&ListParams::default(), &["metadata.name"])
        .unwrap_err();
    assert!(matches!(forbidden, Error::Forbidden(_)), "{forbidden}");
    host.fail_next(Call::List, Error::NotSynced("later".into()));
    assert_eq!(
        cms("a")
            .list_fields::<ConfigMap>(&ListParams::default(), &["data"])
            .unwrap_err(),
        Error::NotSynced("later".into()),
        "projected reads fail like the plain call they mirror"
    );
}

#[test]
fn an_injected_failure_hits_the_next_matching_call_once() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    host.fail_next(Call::Patch, Error::Unavailable("down".into()));
    assert!(cms("a").get("x").is_ok(), "other calls are unaffected");
    let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
    let err = cms("a").patch("x", &patch).unwrap_err();
    assert_eq!(err, Error::Unavailable("down".into()));
    assert!(cms("a").patch("x", &patch).is_ok());
    host.fail_next(Call::Any, Error::NotFound("gone".into()));
    assert!(cms("a").get("x").unwrap_err().is_not_found());
}

#[test]
fn apply_creates_a_missing_object_and_merges_into_an_existing_one() {
    let host = FakeHost::new();
    let desired: ConfigMap = serde_json::from_value(cm("a", "x", json!({"k": "v"}))).unwrap();
    let created = cms("a")
        .patch("x", &Patch::apply(&desired).unwrap())
        .unwrap();
    assert!(created.metadata.uid.is_some());
    host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "y"},
        "data": {"keep": "me"}}));
    let mut y = desired.clone();
    y.metadata.name = Some("y".into());
    let merged = cms("a")
        .patch("y", &Patch::apply(&y).unwrap().force())
        .unwrap();
    let data = merged.data.unwrap();
    assert_eq!((data["keep"].as_str(), data["a"].as_str()), ("me", "1"));
    assert_eq!(
        host.writes()
            .iter()
            .filter(|w| w.call == Call::Apply)
            .count(),
        2
    );
}

#[test]
fn a_failed_json_patch_test_is_invalid_as_kube_apiserver_answers_and_changes_nothing() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    let patch = Patch::Json(json!([
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "not 1"}
    ]));
    let err = cms("a").patch("x", &patch).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert_eq!(
        host.object::<ConfigMap>("a", "x")
            .unwrap()
            .data
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn create_refuses_a_taken_name_and_generates_names() {
    let host = FakeHost::new();
    let mut obj: ConfigMap = serde_json::from_value(cm("a", "x", json!({}))).unwrap();
    cms("a").create(&obj).unwrap();
    assert!(matches!(
        cms("a").create(&obj),
        Err(Error::AlreadyExists(_))
    ));
    obj.metadata.name = None;
    obj.metadata.generate_name = Some("gen-".into());
    let made = cms("a").create(&obj).unwrap();
    assert!(made.metadata.name.unwrap().starts_with("gen-"));
    assert_eq!(host.objects::<ConfigMap>().len(), 2);
}

#[test]
fn status_writes_change_only_the_status() {
    let host = FakeHost::new();
    host.seed_json::<Pod>(json!({"metadata": {"namespace": "a", "name": "p"},
        "spec": {"nodeName": "n1", "containers": []}}));
    let patch =
        Patch::merge(json!({"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}})).unwrap();
    let pod = Api::<Pod>::namespaced("a")
        .patch_status("p", &patch)
        .unwrap();
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("n1"));
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
}

#[test]
fn logs_are_recorded_and_a_dropped_host_leaves_no_host_behind() {
    let host = FakeHost::new();
    crate::log::info("hello");
    assert_eq!(host.logs(), [(Level::Info, "hello".to_owned())]);
    drop(host);
    let err = cms("a").get("x").unwrap_err();
    assert!(err.message().contains("FakeHost"), "{err}");
}

#[test]
fn a_merge_patch_that_is_not_an_object_is_invalid_and_changes_nothing() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    for body in [json!("text"), json!([1, 2]), json!(3)] {
        let err = cms("a")
            .patch("x", &Patch::Merge(body.clone()))
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{body}: {err}");
    }
    assert_eq!(
        host.object::<ConfigMap>("a", "x").unwrap().data.unwrap()["a"],
        "1"
    );
    assert!(host.writes().is_empty());
}

struct Broken;

impl Plugin for Broken {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .with_labels("app in web")
            .index::<Pod>("by-node", "spec..nodeName")
            .concurrency(0)
    }
    fn reconcile(_: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

#[test]
fn a_manifest_the_host_would_refuse_fails_the_test_with_every_problem() {
    let panic = std::panic::catch_unwind(FakeHost::for_plugin::<Broken>).unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("the host would refuse"), "{message}");
    for problem in ["reconciles:", "spec..nodeName", "concurrency"] {
        assert!(
            message.contains(problem),
            "{problem} missing from {message}"
        );
    }
}

#[test]
fn selectors_and_field_paths_are_judged_by_the_hosts_parser() {
    let _host = FakeHost::for_plugin::<Limited>();
    // Label keys follow Kubernetes' rules: an uppercase prefix is refused, as the host does.
    let all = Api::<ConfigMap>::all();
    let err = all
        .list(&ListParams::default().labels("Example.com/x=1"))
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = all.list(&ListParams::default().labels("app=")).unwrap();
    assert!(err.is_empty(), "an empty value is a valid selector");
    let bad = cms("a")
        .get_fields::<ConfigMap>("x", &["metadata.labels[app"])
        .unwrap_err();
    assert!(matches!(bad, Error::Invalid(_)), "{bad}");
}

struct WatchesAnUndeclaredIndex;

impl Plugin for WatchesAnUndeclaredIndex {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>().watches::<Node>(WatchMapping::IndexLookup {
            index: "by-node".into(),
            field: "metadata.name".into(),
        })
    }
    fn reconcile(_: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

#[test]
fn a_watch_naming_an_undeclared_index_is_refused_as_the_host_refuses_it() {
    let panic =
        std::panic::catch_unwind(FakeHost::for_plugin::<WatchesAnUndeclaredIndex>).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("index \"by-node\" is not declared"),
        "{message}"
    );
    // A FakeHost::new() does not enforce the manifest, but reconciling the plugin checks it.
    let host = FakeHost::new();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.reconcile::<WatchesAnUndeclaredIndex>("a", "x")
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("the host would refuse"), "{message}");
}

#[derive(Debug, serde::Serialize, serde::Deserialize, Default)]
struct Goose {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    #[serde(default)]
    spec: Value,
}

impl crate::Object for Goose {
    const GROUP: &'static str = "zoo.example.com";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Goose";
    const NAMESPACED: bool = true;
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
}

impl crate::CustomResourceExt for Goose {
    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "geese.zoo.example.com"},
            "spec": {"group": "zoo.example.com", "scope": "Namespaced",
                     "names": {"kind": "Goose", "plural": "geese"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}
        })
    }
}

struct Zoo;

impl Plugin for Zoo {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Goose>()
            .custom_resource::<Goose>()
            .permit::<Goose>(&[Verb::Patch])
    }
    fn reconcile(_: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

struct BadCrd;

impl Plugin for BadCrd {
    fn manifest() -> Manifest {
        let mut m = Manifest::reconcile::<ConfigMap>().custom_resource::<Goose>();
        m.custom_resources[0]["spec"]["scope"] = "Everywhere".into();
        m
    }
    fn reconcile(_: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

#[test]
fn custom_resources_ship_in_the_manifest_and_a_bad_crd_is_refused() {
    let host = FakeHost::for_plugin::<Zoo>();
    host.seed_json::<Goose>(json!({"metadata": {"namespace": "a", "name": "g"}, "spec": {"x": 1}}));
    let geese = Api::<Goose>::namespaced("a");
    let err = geese
        .patch("g", &Patch::Strategic(json!({"spec": {"x": 2}})))
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("custom resources")),
        "{err}"
    );
    geese
        .patch("g", &Patch::Merge(json!({"spec": {"x": 2}})))
        .unwrap();
    let panic = std::panic::catch_unwind(FakeHost::for_plugin::<BadCrd>).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("custom-resources[0]"), "{message}");
    assert!(message.contains("Everywhere"), "{message}");
}

#[test]
fn field_selectors_keys_and_count_select_as_the_host_does() {
    let _host = FakeHost::new();
    for (ns, name, node, phase) in [
        ("a", "p1", Some("n1"), "Running"),
        ("a", "p2", Some("n2"), "Running"),
        ("b", "p3", Some("n1"), "Succeeded"),
        ("b", "p4", None, "Pending"),
    ] {
        crate::testing::FakeHost::seed_json::<Pod>(
            &_host,
            json!({"metadata": {"namespace": ns, "name": name},
                   "spec": {"nodeName": node, "containers": [{"name": "c", "image": format!("img-{name}")}]},
                   "status": {"phase": phase}}),
        );
    }
    let pods = Api::<Pod>::all();
    let names = |lp: ListParams| -> Vec<String> {
        pods.keys(&lp)
            .unwrap()
            .into_iter()
            .map(|k| format!("{}/{}", k.namespace.unwrap(), k.name))
            .collect()
    };
    assert_eq!(
        names(ListParams::default().fields("spec.nodeName=n1")),
        ["a/p1", "b/p3"]
    );
    assert_eq!(
        names(ListParams::default().fields("spec.nodeName==n1,status.phase!=Succeeded")),
        ["a/p1"]
    );
    assert_eq!(
        names(ListParams::default().fields("spec.nodeName=")),
        ["b/p4"]
    );
    assert_eq!(
        names(ListParams::default().fields("spec.containers.image=img-p2")),
        ["a/p2"]
    );
    assert_eq!(
        Api::<Pod>::namespaced("b")
            .count(&ListParams::default().fields("status.phase!=Running"))
            .unwrap(),
        2
    );
    let err = pods
        .count(&ListParams::default().fields("spec.nodeName"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("no operator")),
        "{err}"
    );
}

#[test]
fn the_scope_of_a_call_must_fit_the_kind_as_the_host_requires() {
    let host = FakeHost::new();
    host.seed_json::<Node>(json!({"metadata": {"name": "n1"}}));
    assert!(Api::<Node>::all().get("n1").unwrap().is_some());
    let err = Api::<ConfigMap>::all().get("x").unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("Api::namespaced")),
        "{err}"
    );
    let err = cms("").list(&ListParams::default()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = Api::<Node>::scoped("a").get("n1").unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("cluster-scoped")),
        "{err}"
    );
    let keys = Api::<Node>::all().keys(&ListParams::default()).unwrap();
    assert_eq!(keys[0].namespace, None);
}

#[test]
fn a_strategic_merge_patch_merges_containers_by_name() {
    let host = FakeHost::new();
    host.seed_json::<Pod>(json!({"metadata": {"namespace": "a", "name": "p"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}]}}));
    let pods = Api::<Pod>::namespaced("a");
    let patch = Patch::strategic(json!({"spec": {"containers": [
        {"name": "side", "image": "side:2"}, {"name": "new", "image": "new:1"}]}}))
    .unwrap();
    let pod = pods.patch("p", &patch).unwrap();
    let images: Vec<_> = pod
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| format!("{}={}", c.name, c.image.unwrap()))
        .collect();
    assert_eq!(images, ["app=app:1", "side=side:2", "new=new:1"]);
    assert_eq!(host.writes()[0].call, Call::Patch);
    let directive = Patch::Strategic(json!({"spec": {"$retainKeys": ["containers"]}}));
    let err = pods.patch("p", &directive).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("$retainKeys")),
        "{err}"
    );
}

#[test]
fn patch_scale_changes_only_the_replicas_and_answers_a_scale() {
    use k8s_openapi::api::apps::v1::Deployment;
    let host = FakeHost::new();
    host.seed_json::<Deployment>(json!({"metadata": {"namespace": "a", "name": "web"},
        "spec": {"replicas": 1, "selector": {}, "template": {}}, "status": {"replicas": 1}}));
    let deployments = Api::<Deployment>::namespaced("a");
    let scale = deployments
        .patch_scale(
            "web",
            &Patch::Merge(json!({"spec": {"replicas": 3}, "metadata": {"labels": {"no": "no"}}})),
        )
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().replicas, 1);
    let stored: Deployment = host.object("a", "web").unwrap();
    assert_eq!(stored.spec.unwrap().replicas, Some(3));
    assert_eq!(stored.metadata.labels, None);
    assert_eq!(host.writes()[0].call, Call::PatchScale);
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    let err = cms("a")
        .patch_scale("x", &Patch::Merge(json!({})))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn delete_preconditions_conflict_when_they_no_longer_hold() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "x", "uid": "u1"}}));
    let err = cms("a")
        .delete("x", &DeleteParams::default().precondition_uid("u0"))
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let err = cms("a")
        .delete(
            "x",
            &DeleteParams::default().precondition_resource_version("999"),
        )
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    cms("a")
        .delete("x", &DeleteParams::foreground().precondition_uid("u1"))
        .unwrap();
    assert!(host.object::<ConfigMap>("a", "x").is_none());
    assert_eq!(host.writes()[0].body["propagation"], "Foreground");
}

#[test]
fn repeated_events_are_aggregated_into_one_with_a_count() {
    let host = FakeHost::new();
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"namespace": "a", "name": "p"}})).unwrap();
    let cm: ConfigMap = serde_json::from_value(cm("a", "x", json!({}))).unwrap();
    let synced = Event::normal("Synced", "all good")
        .action("Sync")
        .related(&pod);
    crate::event(&cm, &synced).unwrap();
    crate::event(&cm, &synced).unwrap();
    crate::event(&cm, &Event::normal("Synced", "other note")).unwrap();
    crate::event(&cm, &Event::warning("Synced", "all good").action("Sync")).unwrap();
    let events = host.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].count, 2);
    assert_eq!(events[0].event.related.as_ref().unwrap().name, "p");
    assert_eq!(events[0].event.related.as_ref().unwrap().version, "v1");
    assert!(events[2].event.is_warning());
    assert_eq!((events[1].count, events[2].count), (1, 1));
}

#[test]
#[allow(deprecated)]
fn the_deprecated_free_functions_still_work_over_api() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({"app": "web"})));
    host.seed_json::<Node>(json!({"metadata": {"name": "n1"}}));
    // `""` still means cluster-scoped for one object and every namespace for a list.
    assert!(crate::get::<Node>("", "n1").unwrap().is_some());
    assert_eq!(crate::list::<ConfigMap>("", "app=web").unwrap().len(), 1);
    assert_eq!(crate::list::<ConfigMap>("b", "").unwrap().len(), 0);
    let patched: ConfigMap = crate::patch(
        "a",
        "x",
        &Patch::merge(json!({"data": {"b": "2"}})).unwrap(),
    )
    .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);
    let raw = crate::list_fields_raw::<ConfigMap>("a", "", &["data.b"]).unwrap();
    let items: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    assert_eq!(items[0]["data"], json!({"b": "2"}));
    let mut y: ConfigMap = serde_json::from_value(cm("a", "y", json!({}))).unwrap();
    y = crate::create(&y).unwrap();
    y.data = None;
    y = crate::replace(&y).unwrap();
    crate::apply(&y, true).unwrap();
    crate::event_for::<ConfigMap>("a", "y", &Event::normal("Seen", "y")).unwrap();
    crate::delete::<ConfigMap>("a", "y").unwrap();
    let calls: Vec<Call> = host.writes().iter().map(|w| w.call).collect();
    assert_eq!(
        calls,
        [
            Call::Patch,
            Call::Create,
            Call::Replace,
            Call::Apply,
            Call::Delete
        ]
    );
    assert_eq!(host.events().len(), 1);
}
