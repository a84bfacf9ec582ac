//! Events recorded against the embedded API server fold into series: a plugin recording the
//! same Event on every reconcile leaves one `events.k8s.io/v1` Event whose `series.count`
//! counts the repeats, as client-go's and kube-runtime's recorders do.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kubewasm::ClusterBackend;
use kubewasm::runtime::{Backend, EventRecord, EventType};
use kubewasm_apiserver::{ApiServer, Config};

use crate::support;
use crate::support::cluster::client_for;

fn record(note: &str) -> EventRecord {
    EventRecord {
        kind: support::configmaps(),
        namespace: Some("default".into()),
        name: "settings".into(),
        related: None,
        event_type: EventType::Normal,
        reason: "Synced".into(),
        note: note.into(),
        action: "Sync".into(),
        reporting_controller: "kubewasm/events-test".into(),
    }
}

/// (name, note, series.count) of every Event in `default`, by name.
async fn events(client: &kube::Client) -> Vec<(String, String, Option<i64>)> {
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
        "events",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let mut out: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("Events can be listed")
        .items
        .into_iter()
        .map(|e| {
            (
                e.metadata.name.clone().unwrap_or_default(),
                e.data["note"].as_str().unwrap_or_default().to_owned(),
                e.data["series"]["count"].as_i64(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_identical_events_are_one_event_with_a_series_and_other_notes_stay_apart() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let client = client_for(&server);
    let backend = ClusterBackend::new(client.clone(), [], "host-0".to_owned());
    for _ in 0..100 {
        backend
            .record_event(record("config applied"))
            .await
            .expect("the Event is recorded");
    }
    backend
        .record_event(record("config rejected"))
        .await
        .expect("the Event is recorded");

    let got = events(&client).await;
    let repeated: Vec<_> = got.iter().filter(|e| e.1 == "config applied").collect();
    assert!(
        !repeated.is_empty() && repeated.len() <= 2,
        "100 identical Events make at most 2 objects: {got:?}"
    );
    // Within the 6-minute window they are one Event counting every occurrence (two only if
    // the test ran across a window, which it does not in seconds).
    assert_eq!(repeated.len(), 1, "{got:?}");
    assert_eq!(repeated[0].2, Some(100), "{got:?}");
    let other: Vec<_> = got.iter().filter(|e| e.1 == "config rejected").collect();
    assert_eq!(other.len(), 1, "another note is another Event: {got:?}");
    assert_eq!(other[0].2, None, "recorded once: no series");

    // The series' Event is deleted (or expired): the next repeat creates a new one that
    // carries the count on.
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
        "events",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    api.delete(&repeated[0].0, &DeleteParams::default())
        .await
        .expect("the Event is deleted");
    backend
        .record_event(record("config applied"))
        .await
        .expect("the Event is recorded again");
    let got = events(&client).await;
    let repeated: Vec<_> = got.iter().filter(|e| e.1 == "config applied").collect();
    assert_eq!(repeated.len(), 1, "{got:?}");
    assert_eq!(repeated[0].2, Some(101), "{got:?}");
    server.shutdown().await;
}
