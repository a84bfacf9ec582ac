//! The fake host's own behaviour.
use super::*;
use crate::Error;
use crate::data::Event;
use crate::data::Level;
use crate::manifest::Verb;
use crate::reconcile::Request;
use crate::{Manifest, Patch, WatchMapping};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use serde_json::Value;
use serde_json::json;

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
    crate::patch::<ConfigMap>("a", "x", &patch).unwrap();
    let read = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
    assert_eq!(read.data.unwrap().len(), 2);
}

#[test]
fn with_cache_lag_reads_see_the_old_object_until_sync() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    host.set_cache_lag(true);
    let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
    let written: ConfigMap = crate::patch("a", "x", &patch).unwrap();
    assert_eq!(written.data.unwrap().len(), 2);
    let stale = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
    assert_eq!(stale.data.unwrap().len(), 1);
    host.sync();
    let fresh = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
    assert_eq!(fresh.data.unwrap().len(), 2);
}

#[test]
fn a_stale_resource_version_is_a_conflict() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    let mut old = crate::get::<ConfigMap>("a", "x").unwrap().unwrap();
    crate::patch::<ConfigMap>(
        "a",
        "x",
        &Patch::merge(json!({"data": {"b": "2"}})).unwrap(),
    )
    .unwrap();
    old.data = None;
    let err = crate::replace(&old).unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(host.writes().len(), 1, "a failed write is not recorded");
}

#[test]
fn deleting_an_object_with_finalizers_marks_it_until_they_are_removed() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(json!({"metadata": {
        "namespace": "a", "name": "x", "finalizers": ["example.com/cleanup"]}}));
    crate::delete::<ConfigMap>("a", "x").unwrap();
    let marked: ConfigMap = host.object("a", "x").expect("kept while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let patch = Patch::Json(json!([{"op": "remove", "path": "/metadata/finalizers"}]));
    crate::patch::<ConfigMap>("a", "x", &patch).unwrap();
    assert!(host.object::<ConfigMap>("a", "x").is_none());
    assert!(
        crate::delete::<ConfigMap>("a", "x")
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn the_manifest_is_enforced_for_undeclared_kinds_and_verbs() {
    let host = FakeHost::for_plugin::<Limited>();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    assert!(crate::get::<ConfigMap>("a", "x").unwrap().is_some());
    assert!(crate::get::<Secret>("a", "x").unwrap_err().is_forbidden());
    assert!(
        crate::delete::<ConfigMap>("a", "x")
            .unwrap_err()
            .is_forbidden()
    );
    assert!(
        crate::list::<Node>("", "").is_ok(),
        "watched kinds are readable"
    );
    let event = Event::normal("Seen", "hello");
    assert!(
        crate::event_for::<Pod>("a", "p", &event)
            .unwrap_err()
            .is_forbidden()
    );
    crate::event_for::<ConfigMap>("a", "x", &event).unwrap();
    assert_eq!(host.events()[0].event.reason, "Seen");
}

#[test]
fn list_filters_by_namespace_and_label_selector() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "web", json!({"app": "web", "tier": "front"})));
    host.seed_json::<ConfigMap>(cm("a", "db", json!({"app": "db"})));
    host.seed_json::<ConfigMap>(cm("b", "web", json!({"app": "web"})));
    let names = |ns: &str, sel: &str| -> Vec<String> {
        crate::list::<ConfigMap>(ns, sel)
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
        crate::list::<ConfigMap>("", "app in web"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn list_by_index_uses_the_index_declared_in_the_manifest() {
    let host = FakeHost::for_plugin::<Limited>();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({"kubewasm.dev/node": "n1"})));
    host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));
    let on_n1 = crate::list_by_index::<ConfigMap>("by-node", "n1").unwrap();
    assert_eq!(on_n1.len(), 1);
    assert_eq!(on_n1[0].metadata.name.as_deref(), Some("x"));
    let err = crate::list_by_index::<ConfigMap>("by-zone", "z").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn projected_reads_keep_only_the_asked_fields_and_follow_the_manifest() {
    let host = FakeHost::for_plugin::<Limited>();
    let mut x = cm("a", "x", json!({"kubewasm.dev/node": "n1", "other": "o"}));
    x["data"] = json!({"k": "v", "big": "not wanted"});
    host.seed_json::<ConfigMap>(x);
    host.seed_json::<ConfigMap>(cm("a", "y", json!({"kubewasm.dev/node": "n2"})));

    let got = crate::get_fields::<ConfigMap>("a", "x", &["data.k"])
        .unwrap()
        .unwrap();
    assert_eq!(got.data, Some([("k".to_owned(), "v".to_owned())].into()));
    assert_eq!(got.metadata.name.as_deref(), Some("x"));
    assert!(
        got.metadata.resource_version.is_some(),
        "identity is always kept"
    );
    assert_eq!(got.metadata.labels, None);
    assert_eq!(
        crate::get_fields::<ConfigMap>("a", "none", &["data"]).unwrap(),
        None
    );

    let labelled =
        crate::list_fields::<ConfigMap>("a", "kubewasm.dev/node=n1", &["metadata.labels[other]"])
            .unwrap();
    assert_eq!(labelled.len(), 1);
    assert_eq!(
        labelled[0].metadata.labels,
        Some([("other".to_owned(), "o".to_owned())].into())
    );
    let on_n2 = crate::list_by_index_fields::<ConfigMap>("by-node", "n2", &["data"]).unwrap();
    assert_eq!(on_n2.len(), 1);
    assert_eq!(on_n2[0].metadata.name.as_deref(), Some("y"));

    let bad = crate::get_fields::<ConfigMap>("a", "x", &["data..k"]).unwrap_err();
    assert!(matches!(bad, Error::Invalid(_)), "{bad}");
    let forbidden = crate::list_fields::<Pod>("", "", &["metadata.name"]).unwrap_err();
    assert!(matches!(forbidden, Error::Forbidden(_)), "{forbidden}");
    host.fail_next(Call::List, Error::NotSynced("later".into()));
    assert_eq!(
        crate::list_fields::<ConfigMap>("a", "", &["data"]).unwrap_err(),
        Error::NotSynced("later".into()),
        "projected reads fail like the plain call they mirror"
    );
}

#[test]
fn an_injected_failure_hits_the_next_matching_call_once() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    host.fail_next(Call::Patch, Error::Unavailable("down".into()));
    assert!(
        crate::get::<ConfigMap>("a", "x").is_ok(),
        "other calls are unaffected"
    );
    let patch = Patch::merge(json!({"data": {"b": "2"}})).unwrap();
    let err = crate::patch::<ConfigMap>("a", "x", &patch).unwrap_err();
    assert_eq!(err, Error::Unavailable("down".into()));
    assert!(crate::patch::<ConfigMap>("a", "x", &patch).is_ok());
    host.fail_next(Call::Any, Error::NotFound("gone".into()));
    assert!(
        crate::get::<ConfigMap>("a", "x")
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn apply_creates_a_missing_object_and_merges_into_an_existing_one() {
    let host = FakeHost::new();
    let desired: ConfigMap = serde_json::from_value(cm("a", "x", json!({"k": "v"}))).unwrap();
    let created = crate::apply(&desired, false).unwrap();
    assert!(created.metadata.uid.is_some());
    host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "y"},
        "data": {"keep": "me"}}));
    let mut y = desired.clone();
    y.metadata.name = Some("y".into());
    let merged = crate::apply(&y, true).unwrap();
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
    let err = crate::patch::<ConfigMap>("a", "x", &patch).unwrap_err();
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
    crate::create(&obj).unwrap();
    assert!(matches!(crate::create(&obj), Err(Error::AlreadyExists(_))));
    obj.metadata.name = None;
    obj.metadata.generate_name = Some("gen-".into());
    let made = crate::create(&obj).unwrap();
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
    let pod: Pod = crate::patch_status("a", "p", &patch).unwrap();
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("n1"));
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
}

#[test]
fn logs_are_recorded_and_a_dropped_host_leaves_no_host_behind() {
    let host = FakeHost::new();
    crate::log::info("hello");
    assert_eq!(host.logs(), [(Level::Info, "hello".to_owned())]);
    drop(host);
    let err = crate::get::<ConfigMap>("a", "x").unwrap_err();
    assert!(err.message().contains("FakeHost"), "{err}");
}

#[test]
fn a_merge_patch_that_is_not_an_object_is_invalid_and_changes_nothing() {
    let host = FakeHost::new();
    host.seed_json::<ConfigMap>(cm("a", "x", json!({})));
    for body in [json!("text"), json!([1, 2]), json!(3)] {
        let err = crate::patch::<ConfigMap>("a", "x", &Patch::Merge(body.clone())).unwrap_err();
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
    let err = crate::list::<ConfigMap>("", "Example.com/x=1").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = crate::list::<ConfigMap>("", "app=").unwrap();
    assert!(err.is_empty(), "an empty value is a valid selector");
    let bad = crate::get_fields::<ConfigMap>("a", "x", &["metadata.labels[app"]).unwrap_err();
    assert!(matches!(bad, Error::Invalid(_)), "{bad}");
}
