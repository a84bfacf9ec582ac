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
/// - a live object without the finalizer gets it first, then `reconcile` runs with
///   [`FinalizerEvent::Apply`] on the patched object;
/// - a live object with the finalizer: [`FinalizerEvent::Apply`];
/// - an object being deleted (`metadata.deletionTimestamp`) with the finalizer:
///   [`FinalizerEvent::Cleanup`], then the finalizer is removed;
/// - an object being deleted without it: nothing to do, [`Action::done`];
/// - no object (`None`: pass what [`Api::get`] returned, and an object that is gone from the
///   cache needs nothing): [`Action::done`].
///
/// Both writes are merge patches of `metadata.finalizers` that carry the object's
/// `resourceVersion` as a precondition, so they never drop a finalizer someone else added
/// meanwhile: when the cache was behind, they fail with [`Error::Conflict`] and nothing
/// changes (requeue, or return the error, and the next reconcile sees the fresh object).
/// Needs `patch` on `K`.
///
/// ```
/// # let host = kubewasm_sdk::testing::FakeHost::new();
/// # host.seed_json::<ConfigMap>(serde_json::json!({"metadata": {"namespace": "demo", "name": "x"}}));
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubewasm_sdk::{Action, Api, FinalizerEvent, finalizer};
///
/// let cms = Api::<ConfigMap>::namespaced("demo");
/// let action = finalizer(&cms, "example.com/cleanup", cms.get("x")?, |event| match event {
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
    obj: impl Into<Option<K>>,
    reconcile: impl FnOnce(FinalizerEvent<K>) -> Result<Action>,
) -> Result<Action> {
    let Some(obj) = obj.into() else {
        return Ok(Action::done());
    };
    let meta = obj.meta();
    let object_name = meta
        .name
        .clone()
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", K::KIND)))?;
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    let has = finalizers.iter().any(|f| f == name);
    let deleting = meta.deletion_timestamp.is_some();
    // The finalizers to write, guarded by the resourceVersion the decision was made on.
    let write = |finalizers: Vec<&str>| {
        let value = if finalizers.is_empty() {
            serde_json::Value::Null
        } else {
            finalizers.into()
        };
        Patch::Merge(serde_json::json!({"metadata": {
            "resourceVersion": meta.resource_version,
            "finalizers": value,
        }}))
    };
    match (deleting, has) {
        (false, true) => reconcile(FinalizerEvent::Apply(obj)),
        (false, false) => {
            let patch = write(
                finalizers
                    .iter()
                    .map(String::as_str)
                    .chain([name])
                    .collect(),
            );
            let obj = api.patch(&object_name, &patch)?;
            reconcile(FinalizerEvent::Apply(obj))
        }
        (true, true) => {
            let patch = write(
                finalizers
                    .iter()
                    .map(String::as_str)
                    .filter(|f| *f != name)
                    .collect(),
            );
            let action = reconcile(FinalizerEvent::Cleanup(obj))?;
            match api.patch(&object_name, &patch) {
                // Gone already: nothing left to remove.
                Ok(_) | Err(Error::NotFound(_)) => Ok(action),
                Err(e) => Err(e),
            }
        }
        (true, false) => Ok(Action::done()),
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
    fn an_object_that_is_gone_needs_nothing() {
        let _host = FakeHost::new();
        let cms = Api::<ConfigMap>::namespaced("a");
        let mut ran = false;
        let action = finalizer(&cms, NAME, cms.get("gone").unwrap(), |_| {
            ran = true;
            Ok(Action::requeue(std::time::Duration::from_secs(1)))
        });
        assert_eq!(action, Ok(Action::done()));
        assert!(!ran, "reconcile must not run without an object");
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
        assert!(err.is_conflict(), "{err}");
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
