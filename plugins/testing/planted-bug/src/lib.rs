//! Test plugin with a planted bug, for the perturbation tests (`kubewasm test-plugin`): every
//! ConfigMap in namespace `planted` labelled `planted.kubewasm.dev/copy=true` gets a copy,
//! `<name>-copy`, with the same data.
//!
//! The bug: it marks the source `planted.kubewasm.dev/copied=true` *before* it creates the
//! copy, and trusts that mark on later reconciles. Nothing goes wrong in a clean run, nor with
//! stale reads or mangled watch events (it reads its own mark back, and creating a copy that
//! exists is no error); only a crash between the two writes loses the copy for good: the
//! mark says it was made, so it never is. The perturbation test shows exactly that run, "crash
//! after write 1", ending with the copy missing. Writing the mark after the copy (or checking
//! the copy instead of a mark) fixes it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{Action, Api, Error, Manifest, Patch, Plugin, Request, Result, Verb};
use serde_json::json;

/// The label that asks for a copy.
const WANTS_COPY: &str = "planted.kubewasm.dev/copy";
/// The mark the plugin trusts: "the copy was made".
const COPIED: &str = "planted.kubewasm.dev/copied";

struct Planted;

impl Plugin for Planted {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace("planted")
            .permit::<ConfigMap>(&[Verb::Create, Verb::Patch])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let cms = Api::<ConfigMap>::namespaced(&req.namespace);
        let Some(cm) = cms.get(&req.name)? else {
            return Ok(Action::done());
        };
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        if labels.get(WANTS_COPY).map(String::as_str) != Some("true") {
            return Ok(Action::done());
        }
        let annotations = cm.metadata.annotations.clone().unwrap_or_default();
        if annotations.get(COPIED).map(String::as_str) == Some("true") {
            return Ok(Action::done()); // trusts the mark: the planted bug's second half
        }
        // The planted bug: the mark goes first.
        cms.patch(
            &req.name,
            &Patch::merge(json!({"metadata": {"annotations": {COPIED: "true"}}}))?,
        )?;
        let copy = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("{}-copy", req.name)),
                namespace: Some(req.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "planted.kubewasm.dev/copy-of".to_owned(),
                    req.name.clone(),
                )])),
                ..ObjectMeta::default()
            },
            data: cm.data.clone(),
            ..ConfigMap::default()
        };
        match cms.create(&copy) {
            Ok(_) | Err(Error::AlreadyExists(_)) => Ok(Action::done()),
            Err(e) => Err(e),
        }
    }
}

kubewasm_sdk::export_plugin!(Planted);
