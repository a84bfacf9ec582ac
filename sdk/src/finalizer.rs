//! [`finalizer()`]: run cleanup before an object goes, as kube-runtime's `finalizer` does.

use crate::api::{Api, Patch};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::reconcile::Action;

/// What [`finalizer()`] asks the reconcile to do with the object.
#[derive(Debug, Clone, PartialEq)]
pub enum FinalizerEvent<K> {
    /// The object is live (and carries the finalizer): bring the world in line with it.
    Apply(K),
    /// The object is being deleted and still carries the finalizer: clean up what it owns
    /// outside Kubernetes. When this returns `Ok`, the finalizer is removed and Kubernetes
    /// deletes the object; on an error the finalizer stays and the key is retried.
    Cleanup(K),
}

/// Runs `reconcile` for `obj` under the finalizer `name` (e.g. `example.com/cleanup`):
///
/// - a live object without the finalizer gets it first (a JSON patch that `test`s the
///   object's `resourceVersion`, so it never overwrites someone else's finalizers), then
///   `reconcile` runs with [`FinalizerEvent::Apply`] on the patched object;
/// - a live object with the finalizer: [`FinalizerEvent::Apply`];
/// - an object being deleted (`metadata.deletionTimestamp`) with the finalizer:
///   [`FinalizerEvent::Cleanup`], then the finalizer is removed (a JSON patch that `test`s
///   it is still at the same position);
/// - an object being deleted without it: nothing to do, [`Action::done`].
///
/// Needs `patch` on `K`. A `test` that fails (someone changed the object since the cache
/// saw it) answers [`Error::Invalid`] (as the API server does) and the key is retried with
/// the fresh object.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "x"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::{Action, Api, FinalizerEvent, finalizer};
///
/// let cms = Api::<ConfigMap>::namespaced("demo");
/// let Some(cm) = cms.get("x")? else { return Ok(()) };
/// let action = finalizer(&cms, "example.com/cleanup", cm, |event| match event {
///     FinalizerEvent::Apply(cm) => Ok(Action::done()),   // e.g. create a bucket for it
///     FinalizerEvent::Cleanup(cm) => Ok(Action::done()), // e.g. delete the bucket
/// })?;
/// let cm: ConfigMap = host.object("demo", "x").unwrap();
/// assert_eq!(cm.metadata.finalizers.unwrap(), ["example.com/cleanup"]);
/// # Ok::<(), kubewasm_sdk::Error>(())
/// ```
///
/// # Errors
/// What `reconcile` returns, or the error of the patch that adds or removes the finalizer
/// ([`Error::Invalid`] also when `obj` has no name).
pub fn finalizer<K: Object>(
    api: &Api<K>,
    name: &str,
    obj: K,
    reconcile: impl FnOnce(FinalizerEvent<K>) -> Result<Action>,
) -> Result<Action> {
    let meta = obj.meta();
    let object_name = meta
        .name
        .clone()
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", K::KIND)))?;
    let position = meta
        .finalizers
        .as_ref()
        .and_then(|f| f.iter().position(|f| f == name));
    let deleting = meta.deletion_timestamp.is_some();
    match (deleting, position) {
        (false, Some(_)) => reconcile(FinalizerEvent::Apply(obj)),
        (false, None) => {
            let mut ops = Vec::new();
            if let Some(rv) = &meta.resource_version {
                ops.push(serde_json::json!({
                    "op": "test", "path": "/metadata/resourceVersion", "value": rv
                }));
            }
            ops.push(if meta.finalizers.is_none() {
                serde_json::json!({"op": "add", "path": "/metadata/finalizers", "value": [name]})
            } else {
                serde_json::json!({"op": "add", "path": "/metadata/finalizers/-", "value": name})
            });
            let obj = api.patch(&object_name, &Patch::Json(ops.into()))?;
            reconcile(FinalizerEvent::Apply(obj))
        }
        (true, Some(i)) => {
            let action = reconcile(FinalizerEvent::Cleanup(obj))?;
            let path = format!("/metadata/finalizers/{i}");
            let ops = serde_json::json!([
                {"op": "test", "path": path, "value": name},
                {"op": "remove", "path": path},
            ]);
            match api.patch(&object_name, &Patch::Json(ops)) {
                // Gone already: nothing left to remove.
                Ok(_) | Err(Error::NotFound(_)) => Ok(action),
                Err(e) => Err(e),
            }
        }
        (true, None) => Ok(Action::done()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeleteParams;
    use crate::testing::{Call, FakeHost};
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    const NAME: &str = "example.com/cleanup";

    fn run(host: &FakeHost, seen: &mut Vec<String>) -> Result<Action> {
        let cms = Api::<ConfigMap>::namespaced("a");
        let cm = cms.get("x")?.expect("seeded");
        let _ = host;
        finalizer(&cms, NAME, cm, |event| {
            seen.push(match event {
                FinalizerEvent::Apply(cm) => format!("apply {:?}", cm.metadata.finalizers),
                FinalizerEvent::Cleanup(_) => "cleanup".into(),
            });
            Ok(Action::done())
        })
    }

    #[test]
    fn the_finalizer_is_added_then_cleanup_runs_on_delete_and_removes_it() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(
            json!({"metadata": {"namespace": "a", "name": "x", "finalizers": ["other/keep"]}}),
        );
        let mut seen = Vec::new();
        run(&host, &mut seen).unwrap();
        assert_eq!(
            seen,
            [format!("apply {:?}", Some(vec!["other/keep", NAME]))],
            "added next to the other finalizer, then applied on the patched object"
        );
        run(&host, &mut seen).unwrap();
        assert_eq!(
            host.writes().len(),
            1,
            "the second reconcile writes nothing"
        );

        Api::<ConfigMap>::namespaced("a")
            .delete("x", &DeleteParams::default())
            .unwrap();
        run(&host, &mut seen).unwrap();
        assert_eq!(seen.last().unwrap(), "cleanup");
        let cm: ConfigMap = host.object("a", "x").expect("other/keep still holds it");
        assert_eq!(cm.metadata.finalizers.unwrap(), ["other/keep"]);
        run(&host, &mut seen).unwrap();
        assert_eq!(seen.len(), 3, "nothing runs once our finalizer is gone");
    }

    #[test]
    fn a_failed_cleanup_keeps_the_finalizer_and_the_object() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "x",
            "finalizers": [NAME], "deletionTimestamp": "2000-01-01T00:00:00Z"}}));
        let cms = Api::<ConfigMap>::namespaced("a");
        let cm = cms.get("x").unwrap().unwrap();
        let err = finalizer(&cms, NAME, cm, |_| Err(Error::other("bucket busy"))).unwrap_err();
        assert_eq!(err, Error::Other("bucket busy".into()));
        assert!(host.object::<ConfigMap>("a", "x").is_some());
        assert!(host.writes().is_empty());
    }

    #[test]
    fn adding_the_finalizer_to_a_stale_object_fails_instead_of_overwriting() {
        let host = FakeHost::new();
        host.seed_json::<ConfigMap>(json!({"metadata": {"namespace": "a", "name": "x"}}));
        host.set_cache_lag(true);
        let cms = Api::<ConfigMap>::namespaced("a");
        cms.patch(
            "x",
            &Patch::Merge(json!({"metadata": {"finalizers": ["other/new"]}})),
        )
        .unwrap();
        let stale = cms.get("x").unwrap().unwrap();
        let err = finalizer(&cms, NAME, stale, |_| Ok(Action::done())).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        let cm: ConfigMap = host.object("a", "x").unwrap();
        assert_eq!(cm.metadata.finalizers.unwrap(), ["other/new"]);
        assert_eq!(
            host.writes()
                .iter()
                .filter(|w| w.call == Call::Patch)
                .count(),
            1
        );
    }
}
