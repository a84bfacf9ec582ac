//! Example kubewasm plugin: stamps every ConfigMap with how many keys it has and how many
//! ConfigMaps share its namespace, and records an Event when the stamp changes.
//!
//! Exercises a cache get, a cache list, a merge patch and an Event.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Event, Manifest, Patch, Plugin, Request, Result, Verb, log};
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
        let Some(cm) = kubewasm_sdk::get::<ConfigMap>(&req.namespace, &req.name)? else {
            return Ok(Action::done()); // deleted since the event; nothing to stamp
        };
        let keys = cm.data.as_ref().map_or(0, |d| d.len()).to_string();
        let siblings = kubewasm_sdk::list::<ConfigMap>(&req.namespace, "")?
            .len()
            .to_string();
        let annotations = cm.metadata.annotations.unwrap_or_default();
        if annotations.get(KEYS) == Some(&keys) && annotations.get(SIBLINGS) == Some(&siblings) {
            return Ok(Action::done()); // already stamped: reconciles must be idempotent
        }
        let patch =
            Patch::merge(json!({"metadata": {"annotations": {KEYS: keys, SIBLINGS: siblings}}}))?;
        let cm: ConfigMap = kubewasm_sdk::patch(&req.namespace, &req.name, &patch)?;
        let note = format!("{keys} keys, {siblings} ConfigMaps in the namespace");
        kubewasm_sdk::event(&cm, &Event::normal("Stamped", &note).action("Patch"))?;
        log::info(format!("stamped {}/{}: {note}", req.namespace, req.name));
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Hello);
