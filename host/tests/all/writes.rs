//! Every write of the SDK, through the runtime, against the in-memory backend, on a CRD
//! declared with serde (the crd-writer test plugin).

use std::sync::Arc;
use std::time::Duration;

use kubewasm::runtime::{Action, Backend, DeleteOptions, Kind, MemoryBackend, Reason, Request};
use serde_json::json;

use crate::support;

fn greetings() -> Kind {
    Kind {
        group: "example.com".into(),
        version: "v1".into(),
        kind: "Greeting".into(),
        plural: "greetings".into(),
        namespaced: true,
    }
}

fn greeting(message: &str) -> serde_json::Value {
    json!({"apiVersion": "example.com/v1", "kind": "Greeting",
           "metadata": {"name": "hi", "namespace": "demo"}, "spec": {"message": message}})
}

#[tokio::test]
async fn a_crd_reconciler_creates_replaces_applies_patches_and_deletes() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &support::test_plugin("crd-writer")).await;
    assert_eq!(
        plugin.manifest().reconciles.kind.plural,
        "greetings",
        "the plural is guessed"
    );
    let memory = Arc::new(MemoryBackend::new());
    let backend: Arc<dyn Backend> = memory.clone();
    let cm = support::configmaps();
    memory.insert(&greetings(), greeting("hello")).unwrap();

    let action = plugin
        .reconcile(backend.clone(), Request::new("demo", "hi", Reason::Created))
        .await
        .unwrap();
    assert_eq!(action, Action::RequeueAfter(Duration::from_secs(60)));
    let created = memory
        .object(&cm, Some("demo"), "hi-greeting")
        .expect("created");
    assert_eq!(created["data"]["message"], "hello");
    assert_eq!(
        memory
            .object(&cm, Some("demo"), "hi-applied")
            .expect("applied")["data"]["message"],
        "hello"
    );
    let g = memory.object(&greetings(), Some("demo"), "hi").unwrap();
    assert_eq!(g["metadata"]["annotations"]["example.com/seen"], "yes");
    assert_eq!(g["status"]["observed"], "hello");

    // A changed spec replaces the owned ConfigMap found through the index.
    let mut changed = g.clone();
    changed["spec"]["message"] = json!("bonjour");
    memory.insert(&greetings(), changed).unwrap();
    plugin
        .reconcile(backend.clone(), Request::new("demo", "hi", Reason::Changed))
        .await
        .unwrap();
    let replaced = memory.object(&cm, Some("demo"), "hi-greeting").unwrap();
    assert_eq!(replaced["data"]["message"], "bonjour");
    assert_ne!(
        replaced["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        memory.object(&cm, Some("demo"), "hi-applied").unwrap()["data"]["message"],
        "bonjour"
    );
    assert_eq!(
        memory.object(&greetings(), Some("demo"), "hi").unwrap()["status"]["observed"],
        "bonjour"
    );

    // Deleting the Greeting deletes what it owned.
    memory
        .delete(&greetings(), Some("demo"), "hi", DeleteOptions::default())
        .await
        .unwrap();
    plugin
        .reconcile(backend, Request::new("demo", "hi", Reason::Deleted))
        .await
        .unwrap();
    assert!(memory.object(&cm, Some("demo"), "hi-greeting").is_none());
    assert!(memory.object(&cm, Some("demo"), "hi-applied").is_none());
}
