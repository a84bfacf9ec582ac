//! Test plugin for the benchmark suite (`bench/`): the same logic as its native kube-rs peer.
//!
//! Reconciles ConfigMaps (concurrency 2) and keeps a cache of Pods it never reconciles (so the
//! memory figures can fill the cache without queueing work). The ConfigMap's name picks what a
//! reconcile does:
//! - `patch-*`: get the ConfigMap from the cache, decode it into k8s-openapi's `ConfigMap`, and
//!   when it lacks the annotation `bench.kubewasm.io/reconciled`, merge-patch it on through the
//!   API server (the "realistic" reconcile);
//! - anything else: nothing (the no-op reconcile).

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kubewasm_sdk::{Action, Api, Manifest, Patch, Plugin, Request, Result, Verb};

/// The annotation the realistic reconcile sets; the native peer uses the same one.
const ANNOTATION: &str = "bench.kubewasm.io/reconciled";

struct BenchPeerOps;

impl Plugin for BenchPeerOps {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .permit::<ConfigMap>(&[Verb::Patch])
            .permit::<Pod>(&[Verb::Get, Verb::List])
            .concurrency(2)
    }

    fn reconcile(req: Request) -> Result<Action> {
        if req.name.starts_with("patch-") {
            let cms = Api::<ConfigMap>::namespaced(&req.namespace);
            let Some(cm) = cms.get(&req.name)? else {
                return Ok(Action::done());
            };
            let done = cm
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION));
            if !done {
                let patch = Patch::merge(serde_json::json!({
                    "metadata": {"annotations": {ANNOTATION: "true"}}
                }))?;
                cms.patch(&req.name, &patch)?;
            }
        }
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(BenchPeerOps);
