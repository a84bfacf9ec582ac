//! Test plugin for the host's read-your-writes guard: the writing-plugins guide's finalizer
//! pattern, stretched over several reconciles. It reconciles ConfigMaps in namespace `ryw`:
//! the first reconcile patches the finalizer `ryw.kubewasm.dev/cleanup` on, each later one
//! bumps the annotation `ryw.kubewasm.dev/steps` by one until it reaches `data.target`; every
//! patch is a merge patch carrying the `resourceVersion` the plugin just read from its cache
//! (conditional, as the guide does), and every reconcile that wrote asks to run again at once.
//!
//! So each reconcile reads the object its previous reconcile wrote. If the host handed the
//! key back before its cache held that write, the read is stale and the patch gets 409
//! Conflict (returned as the reconcile's error, so the host retries with backoff).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Api, Error, Manifest, Patch, Plugin, Request, Result, Verb};
use serde_json::json;

const FINALIZER: &str = "ryw.kubewasm.dev/cleanup";
const STEPS: &str = "ryw.kubewasm.dev/steps";

struct ReadYourWrites;

impl Plugin for ReadYourWrites {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace("ryw")
            .permit::<ConfigMap>(&[Verb::Patch])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let api = Api::<ConfigMap>::namespaced(&req.namespace);
        let Some(cm) = api.get(&req.name)? else {
            return Ok(Action::done());
        };
        let rv = cm.metadata.resource_version.clone();
        let mut finalizers = cm.metadata.finalizers.clone().unwrap_or_default();
        if cm.metadata.deletion_timestamp.is_some() {
            if finalizers.iter().any(|f| f == FINALIZER) {
                finalizers.retain(|f| f != FINALIZER);
                let patch = Patch::merge(
                    json!({"metadata": {"finalizers": finalizers, "resourceVersion": rv}}),
                )?;
                api.patch(&req.name, &patch)?;
            }
            return Ok(Action::done());
        }
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(FINALIZER.into());
            let patch = Patch::merge(
                json!({"metadata": {"finalizers": finalizers, "resourceVersion": rv}}),
            )?;
            api.patch(&req.name, &patch)?;
            return Ok(Action::requeue(Duration::ZERO));
        }
        let number = |v: Option<&String>| -> Result<u64> {
            v.map_or(Ok(0), |s| {
                s.parse()
                    .map_err(|e| Error::Invalid(format!("{s:?} is not a number: {e}")))
            })
        };
        let target = number(cm.data.as_ref().and_then(|d| d.get("target")))?;
        let steps = number(cm.metadata.annotations.as_ref().and_then(|a| a.get(STEPS)))?;
        if steps >= target {
            return Ok(Action::done());
        }
        let patch = Patch::merge(json!({"metadata": {
            "annotations": {STEPS: (steps + 1).to_string()},
            "resourceVersion": rv,
        }}))?;
        api.patch(&req.name, &patch)?;
        Ok(Action::requeue(Duration::ZERO))
    }
}

kubewasm_sdk::export_plugin!(ReadYourWrites);
