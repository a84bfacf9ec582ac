//! Test plugin on the frozen `kubewasm:controller@0.1.0` (`wit/0.1.0/`, bound with
//! wit-bindgen, no SDK): each reconcile of a ConfigMap calls the 0.1.0 imports the host serves
//! through its adapter (`get-fields`, `list-by-index`, `list-fields`, `replace-status`,
//! `patch`, `delete`, `record-event`, `log`), writes what it read into the annotation
//! `v1-calls.kubewasm.dev/seen`, and asks to be requeued after 1500 milliseconds (0.1.0's unit).
#![allow(unsafe_code)]

wit_bindgen::generate!({ world: "plugin", path: "../../../wit/0.1.0" });

use exports::kubewasm::controller::reconciler::{
    Action, Guest, Index, Manifest, Permission, Reconciles, Request, Verb,
};
use kubewasm::controller::client::PatchBody;
use kubewasm::controller::events::{Event, EventType};
use kubewasm::controller::types::{Error, Kind, ObjectRef};
use kubewasm::controller::{cache, client, events, log};
use serde_json::{Value, json};

struct Calls;

fn config_maps() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: None,
        namespaced: true,
    }
}

fn json(bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Other(e.to_string()))
}

impl Guest for Calls {
    fn get_manifest() -> Manifest {
        Manifest {
            reconciles: Reconciles {
                kind: config_maps(),
                namespace: None,
                label_selector: None,
            },
            owns: vec![],
            watches: vec![],
            indexes: vec![Index {
                name: "by-app".into(),
                kind: config_maps(),
                field: "metadata.labels.app".into(),
            }],
            permissions: vec![Permission {
                kind: config_maps(),
                verbs: vec![Verb::Update, Verb::Patch, Verb::Delete],
            }],
            concurrency: 1,
        }
    }

    fn reconcile(req: Request) -> Result<Action, Error> {
        let ns = req.namespace.clone();
        let Some(own) =
            cache::get_fields(&config_maps(), ns.as_deref(), &req.name, &["data".into()])?
        else {
            return Ok(Action::Done);
        };
        let own = json(&own)?;
        let by_index = json(&cache::list_by_index(&config_maps(), "by-app", "web")?)?;
        let listed = json(&cache::list_fields(
            &config_maps(),
            ns.as_deref(),
            Some("app=web"),
            &["metadata.name".into()],
        )?)?;
        let mut names: Vec<&str> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.pointer("/metadata/name")?.as_str())
            .collect();
        names.sort_unstable();
        let seen = format!(
            "data={} index={} list={}",
            own["data"].as_object().map_or(0, |d| d.len()),
            by_index.as_array().map_or(0, Vec::len),
            names.join(",")
        );
        let status =
            serde_json::to_vec(&json!({"metadata": {"name": req.name}, "status": {"seen": seen}}))
                .map_err(|e| Error::Other(e.to_string()))?;
        client::replace_status(&config_maps(), ns.as_deref(), &req.name, &status)?;
        let patch = serde_json::to_vec(
            &json!({"metadata": {"annotations": {"v1-calls.kubewasm.dev/seen": seen}}}),
        )
        .map_err(|e| Error::Other(e.to_string()))?;
        client::patch(
            &config_maps(),
            ns.as_deref(),
            &req.name,
            &PatchBody::Merge(patch),
            false,
        )?;
        match client::delete(&config_maps(), ns.as_deref(), "doomed") {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        events::record_event(&Event {
            regarding: ObjectRef {
                kind: config_maps(),
                namespace: ns.clone(),
                name: req.name.clone(),
            },
            event_type: EventType::Normal,
            reason: "Seen".into(),
            note: seen.clone(),
            action: String::new(),
        })?;
        log::log(log::Level::Info, &format!("seen {seen}"));
        Ok(Action::RequeueAfter(1500))
    }
}

export!(Calls);
