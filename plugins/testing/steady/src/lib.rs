//! Test plugin for the fault suite: a healthy controller beside faulty ones. It reconciles
//! ConfigMaps in namespace `healthy` only and bumps the annotation `steady.kubewasm.dev/count`
//! by one per reconcile (a cache read and a merge patch) until it reaches `data.target`; each
//! patch triggers the next reconcile, so a batch of ConfigMaps is a fixed amount of real work
//! whose completion time gives the plugin's reconcile rate.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Api, Error, Manifest, Patch, Plugin, Request, Result, Verb};
use serde_json::json;

/// The counter annotation.
const COUNT: &str = "steady.kubewasm.dev/count";

struct Steady;

impl Plugin for Steady {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace("healthy")
            .permit::<ConfigMap>(&[Verb::Patch])
            .concurrency(2)
    }

    fn reconcile(req: Request) -> Result<Action> {
        let cms = Api::<ConfigMap>::namespaced(&req.namespace);
        let Some(cm) = cms.get(&req.name)? else {
            return Ok(Action::done());
        };
        let number = |v: Option<&String>| -> Result<u64> {
            v.map_or(Ok(0), |s| {
                s.parse()
                    .map_err(|e| Error::Invalid(format!("{s:?} is not a number: {e}")))
            })
        };
        let target = number(cm.data.as_ref().and_then(|d| d.get("target")))?;
        let count = number(cm.metadata.annotations.as_ref().and_then(|a| a.get(COUNT)))?;
        if count >= target {
            return Ok(Action::done());
        }
        let patch =
            Patch::merge(json!({"metadata": {"annotations": {COUNT: (count + 1).to_string()}}}))?;
        cms.patch(&req.name, &patch)?;
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Steady);
