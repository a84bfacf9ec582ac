//! Test plugin for the fault suite's conflict scenario: many writers on one object. Every
//! ConfigMap labelled `tally.kubewasm.dev/source=true` in namespace `conflicts` copies its
//! `data.value` into `data[<its name>]` of the shared ConfigMap `conflicts/tally`, by reading
//! the tally from the cache and replacing it with the cached `resourceVersion`. Concurrent
//! writers (this plugin's workers and anyone else) make most replaces stale: the API server
//! answers 409 Conflict, and the plugin returns that error so that the host requeues the
//! source with backoff. No update may be lost: in the end the tally holds every source's value.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Api, Error, Manifest, Plugin, Request, Result, Verb};

/// Where sources and the tally live.
const NAMESPACE: &str = "conflicts";
/// The shared object every source writes into.
const TALLY: &str = "tally";
/// The label (value `true`) that makes a ConfigMap a source.
const SOURCE_LABEL: &str = "tally.kubewasm.dev/source";

struct Tally;

impl Plugin for Tally {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace(NAMESPACE)
            .permit::<ConfigMap>(&[Verb::Update])
            .concurrency(4)
    }

    fn reconcile(req: Request) -> Result<Action> {
        // Every ConfigMap of the namespace is reconciled (a label selector would keep the tally
        // out of the cache); only sources do anything.
        let cms = Api::<ConfigMap>::namespaced(NAMESPACE);
        let Some(source) = cms.get(&req.name)? else {
            return Ok(Action::done());
        };
        let labels = source.metadata.labels.as_ref();
        if labels.and_then(|l| l.get(SOURCE_LABEL)).map(String::as_str) != Some("true") {
            return Ok(Action::done());
        }
        let Some(value) = source.data.as_ref().and_then(|d| d.get("value")).cloned() else {
            return Ok(Action::done());
        };
        let Some(mut tally) = cms.get(TALLY)? else {
            // The test creates the tally first; until the cache has it, try again later.
            return Err(Error::NotFound(format!(
                "{NAMESPACE}/{TALLY} is not cached yet"
            )));
        };
        let data = tally.data.get_or_insert_default();
        if data.get(&req.name) == Some(&value) {
            return Ok(Action::done());
        }
        data.insert(req.name.clone(), value);
        // Conditional on the cached resourceVersion: a stale read fails with Conflict, which
        // is returned so that the host retries with backoff.
        cms.replace(TALLY, &tally)?;
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Tally);
