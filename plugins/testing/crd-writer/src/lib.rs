//! Test plugin: reconciles `Greeting` (a CRD declared with serde) into two owned ConfigMaps,
//! exercising create, replace, apply, JSON patch, replace-status, delete and an index.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, ListParams, Manifest, Object, Patch, Plugin, Reason, Request,
    Result, Verb,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `greetings.example.com/v1`.
#[derive(Serialize, Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
struct Greeting {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: GreetingSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<GreetingStatus>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
struct GreetingSpec {
    message: String,
}

#[derive(Serialize, Deserialize, Clone, Default)]
struct GreetingStatus {
    observed: String,
}

impl Object for Greeting {
    const GROUP: &'static str = "example.com";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Greeting";
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

const LABEL: &str = "example.com/greeting";

struct CrdWriter;

fn config_map(ns: &str, name: &str, greeting: &str, message: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            labels: Some(BTreeMap::from([(LABEL.to_owned(), greeting.to_owned())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("message".to_owned(), message.to_owned())])),
        ..ConfigMap::default()
    }
}

fn ignore_not_found(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

impl Plugin for CrdWriter {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Greeting>()
            .owns::<ConfigMap>()
            .index::<ConfigMap>("by-greeting", format!("metadata.labels[{LABEL}]"))
            .permit::<Greeting>(&[Verb::Patch, Verb::Update])
            .permit::<ConfigMap>(&[Verb::Create, Verb::Update, Verb::Patch, Verb::Delete])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let (ns, name) = (req.namespace.as_str(), req.name.as_str());
        let (greetings, cms) = (
            Api::<Greeting>::namespaced(ns),
            Api::<ConfigMap>::namespaced(ns),
        );
        let Some(greeting) = greetings.get(name)? else {
            if req.reason == Reason::Deleted {
                for owned in [format!("{name}-greeting"), format!("{name}-applied")] {
                    ignore_not_found(cms.delete(&owned, &DeleteParams::default()))?;
                }
            }
            return Ok(Action::done());
        };
        let message = greeting.spec.message.clone();

        // Create or replace the owned ConfigMap, found through the declared index.
        let existing = cms.list(&ListParams::default().index("by-greeting", name))?;
        let mut desired = config_map(ns, &format!("{name}-greeting"), name, &message);
        match existing
            .iter()
            .find(|c| c.metadata.name == desired.metadata.name)
        {
            None => {
                cms.create(&desired)?;
            }
            Some(current) => {
                desired.metadata.resource_version = current.metadata.resource_version.clone();
                cms.replace(&format!("{name}-greeting"), &desired)?;
            }
        }

        // The second one by server-side apply.
        let applied = config_map(ns, &format!("{name}-applied"), name, &message);
        cms.patch(&format!("{name}-applied"), &Patch::apply(&applied)?.force())?;

        // Annotate the Greeting with a JSON patch, then record what was observed in its status.
        let ops = json!([{"op": "add", "path": "/metadata/annotations", "value": {"example.com/seen": "yes"}}]);
        let patched = greetings.patch(name, &Patch::Json(ops))?;
        let mut with_status = patched.clone();
        with_status.status = Some(GreetingStatus { observed: message });
        let stored = greetings.replace_status(name, &with_status)?;
        if stored.status.map(|s| s.observed) != with_status.status.map(|s| s.observed) {
            return Err(Error::other("status was not stored"));
        }
        Ok(Action::requeue(Duration::from_secs(60)))
    }
}

kubewasm_sdk::export_plugin!(CrdWriter);
