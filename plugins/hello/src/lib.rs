//! Example kubewasm plugin: stamps every ConfigMap with how many keys it has and how many
//! ConfigMaps share its namespace, and records an Event when the stamp changes.
//!
//! Exercises a cache get, a cache count, a merge patch and an Event.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{
    Action, Api, Event, ListParams, Manifest, Patch, Plugin, Request, Result, Verb, log,
};
use serde_json::json;

/// Annotation with the number of data keys.
const KEYS: &str = "hello.kubewasm.dev/keys";
/// Annotation with the number of ConfigMaps in the namespace.
const SIBLINGS: &str = "hello.kubewasm.dev/siblings";

struct Hello;

impl Plugin for Hello {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .permit::<ConfigMap>(&[Verb::Patch])
            .concurrency(2)
    }

    fn reconcile(req: Request) -> Result<Action> {
        let cms = Api::<ConfigMap>::namespaced(&req.namespace);
        let Some(cm) = cms.get(&req.name)? else {
            return Ok(Action::done()); // deleted since the event; nothing to stamp
        };
        let keys = cm.data.as_ref().map_or(0, |d| d.len()).to_string();
        let siblings = cms.count(&ListParams::default())?.to_string();
        let annotations = cm.metadata.annotations.unwrap_or_default();
        if annotations.get(KEYS) == Some(&keys) && annotations.get(SIBLINGS) == Some(&siblings) {
            return Ok(Action::done()); // already stamped: reconciles must be idempotent
        }
        let patch =
            Patch::merge(json!({"metadata": {"annotations": {KEYS: keys, SIBLINGS: siblings}}}))?;
        let cm = cms.patch(&req.name, &patch)?;
        let note = format!("{keys} keys, {siblings} ConfigMaps in the namespace");
        kubewasm_sdk::event(&cm, &Event::normal("Stamped", &note).action("Patch"))?;
        log::info(format!("stamped {}/{}: {note}", req.namespace, req.name));
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use kubewasm_sdk::Error;
    use kubewasm_sdk::testing::{Call, FakeHost};
    use serde_json::json;

    fn seed(host: &FakeHost, ns: &str, name: &str, keys: usize) {
        let data: serde_json::Map<_, _> =
            (0..keys).map(|i| (format!("k{i}"), json!("v"))).collect();
        host.seed_json::<ConfigMap>(
            json!({"metadata": {"namespace": ns, "name": name}, "data": data}),
        );
    }

    #[test]
    fn stamps_keys_and_siblings_and_records_an_event() {
        let host = FakeHost::for_plugin::<Hello>();
        seed(&host, "demo", "a", 2);
        seed(&host, "demo", "b", 0);
        seed(&host, "other", "c", 5);
        assert_eq!(host.reconcile::<Hello>("demo", "a"), Ok(Action::done()));
        let cm: ConfigMap = host.object("demo", "a").unwrap();
        let annotations = cm.metadata.annotations.unwrap();
        assert_eq!(annotations[KEYS], "2");
        assert_eq!(
            annotations[SIBLINGS], "2",
            "only ConfigMaps of its namespace count"
        );
        let events = host.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.reason, "Stamped");
        assert_eq!(
            events[0].event.note,
            "2 keys, 2 ConfigMaps in the namespace"
        );
        assert!(host.logs()[0].1.contains("stamped demo/a"));
    }

    #[test]
    fn a_second_reconcile_writes_nothing() {
        let host = FakeHost::for_plugin::<Hello>();
        seed(&host, "demo", "a", 1);
        host.reconcile::<Hello>("demo", "a").unwrap();
        host.clear_records();
        host.reconcile::<Hello>("demo", "a").unwrap();
        assert!(host.writes().is_empty(), "{:?}", host.writes());
        assert!(host.events().is_empty());
    }

    #[test]
    fn converges_when_the_cache_lags_behind_its_own_write() {
        let host = FakeHost::for_plugin::<Hello>();
        seed(&host, "demo", "a", 1);
        host.set_cache_lag(true);
        host.reconcile::<Hello>("demo", "a").unwrap();
        // The cache still shows the unstamped object: the patch is sent again, same content.
        host.reconcile::<Hello>("demo", "a").unwrap();
        host.sync();
        host.clear_records();
        host.reconcile::<Hello>("demo", "a").unwrap();
        assert!(host.writes().is_empty(), "stable once the cache caught up");
        let cm: ConfigMap = host.object("demo", "a").unwrap();
        assert_eq!(cm.metadata.annotations.unwrap()[KEYS], "1");
    }

    #[test]
    fn a_deleted_configmap_is_not_an_error() {
        let host = FakeHost::for_plugin::<Hello>();
        assert_eq!(host.reconcile::<Hello>("demo", "gone"), Ok(Action::done()));
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_failed_patch_fails_the_reconcile_without_an_event() {
        let host = FakeHost::for_plugin::<Hello>();
        seed(&host, "demo", "a", 1);
        host.fail_next(Call::Patch, Error::Conflict("stale".into()));
        let err = host.reconcile::<Hello>("demo", "a").unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert!(host.events().is_empty());
        // The host retries; the retry succeeds.
        assert_eq!(host.reconcile::<Hello>("demo", "a"), Ok(Action::done()));
    }

    #[test]
    fn the_manifest_grants_what_reconcile_uses() {
        // Enforced by FakeHost::for_plugin: a verb missing from the manifest fails as Forbidden.
        let host = FakeHost::for_plugin::<Hello>();
        seed(&host, "demo", "a", 1);
        host.reconcile::<Hello>("demo", "a").unwrap();
        assert_eq!(host.writes()[0].call, Call::Patch);
    }
}
