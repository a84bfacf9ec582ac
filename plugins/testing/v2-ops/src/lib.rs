//! Test plugin on `kubewasm:controller@0.2.0`: for each Deployment it reconciles, it uses the
//! host calls 0.2.0 added and writes what it saw into the ConfigMap `<deployment>-report`, so
//! a host test can check each answer against the cluster.
//!
//! - `count`/`keys` of Pods with field selectors (`spec.nodeName=node-1`,
//!   `status.phase=Running,spec.nodeName!=node-1`), and a malformed one (its error);
//! - `keys` of Pods through the index `by-node`, narrowed to the Deployment's namespace;
//! - `count` of Endpoints and of Geese (`geese`, a custom resource): kinds whose plural is not
//!   the guess, so the host must have resolved them;
//! - a strategic merge patch of the Deployment's `app` container image (from the annotation
//!   `ops.kubewasm.dev/image`; the other containers stay) and a scale patch of its replicas
//!   (`ops.kubewasm.dev/replicas`);
//! - deletes of the ConfigMap `<deployment>-doomed`: first with a wrong uid precondition (the
//!   error is reported), then with its real uid; and of `<deployment>-parent` orphaning
//!   what it owns;
//! - an Event about the Deployment with the report as its related object;
//! - a requeue after `ops.kubewasm.dev/requeue-ms` milliseconds when the annotation is set
//!   (0.2.0 sends a duration in nanoseconds).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod};
use kubewasm_sdk::schemars::{self, JsonSchema};
use kubewasm_sdk::{
    Action, Api, CustomResource, DeleteParams, Error, Event, ListParams, Manifest, Patch, Plugin,
    Request, Result, Verb,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// A custom resource whose plural (`geese`) is not the guess (`goose` + `s`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kubewasm(group = "zoo.kubewasm.dev", version = "v1", kind = "Goose", namespaced)]
#[kubewasm(plural = "geese")]
pub struct GooseSpec {
    /// Anything.
    pub honk: String,
}

const IMAGE: &str = "ops.kubewasm.dev/image";
const REPLICAS: &str = "ops.kubewasm.dev/replicas";
const REQUEUE_MS: &str = "ops.kubewasm.dev/requeue-ms";

struct Ops;

/// The error's text, or `ok`.
fn outcome<T>(r: Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn names(keys: Vec<kubewasm_sdk::ObjectKey>) -> String {
    let mut names: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{}/{}", k.namespace.unwrap_or_default(), k.name))
        .collect();
    names.sort();
    names.join(",")
}

impl Plugin for Ops {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Deployment>()
            .permit::<Deployment>(&[Verb::Patch])
            .permit::<ConfigMap>(&[
                Verb::Get,
                Verb::List,
                Verb::Create,
                Verb::Update,
                Verb::Delete,
            ])
            .permit::<Pod>(&[Verb::List])
            .index::<Pod>("by-node", "spec.nodeName")
            .permit::<Endpoints>(&[Verb::List])
            .permit::<Goose>(&[Verb::List])
            .custom_resource::<Goose>()
    }

    fn reconcile(req: Request) -> Result<Action> {
        let ns = req.namespace.as_str();
        let deployments = Api::<Deployment>::namespaced(ns);
        let Some(deployment) = deployments.get(&req.name)? else {
            return Ok(Action::done());
        };
        let pods = Api::<Pod>::namespaced(ns);
        let mut report = BTreeMap::new();
        let on_node_1 = ListParams::default().fields("spec.nodeName=node-1");
        report.insert("count-on-node-1", pods.count(&on_node_1)?.to_string());
        let running_elsewhere =
            ListParams::default().fields("status.phase=Running,spec.nodeName!=node-1");
        report.insert("running-elsewhere", names(pods.keys(&running_elsewhere)?));
        report.insert(
            "bad-selector",
            outcome(pods.count(&ListParams::default().fields("spec.nodeName"))),
        );
        let by_index = ListParams::default().index("by-node", "node-1");
        report.insert("index-here", names(pods.keys(&by_index)?));
        report.insert(
            "index-everywhere",
            Api::<Pod>::all().count(&by_index)?.to_string(),
        );
        report.insert(
            "endpoints",
            Api::<Endpoints>::namespaced(ns)
                .count(&ListParams::default())?
                .to_string(),
        );
        report.insert(
            "geese",
            Api::<Goose>::namespaced(ns)
                .count(&ListParams::default())?
                .to_string(),
        );

        let annotations = deployment.metadata.annotations.clone().unwrap_or_default();
        if let Some(image) = annotations.get(IMAGE) {
            let patch = Patch::strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "app", "image": image}]
            }}}}))?;
            deployments.patch(&req.name, &patch)?;
        }
        if let Some(replicas) = annotations.get(REPLICAS) {
            let replicas: i32 = replicas
                .parse()
                .map_err(|e| Error::Other(format!("{REPLICAS}: {e}")))?;
            let scale = deployments.patch_scale(
                &req.name,
                &Patch::merge(json!({"spec": {"replicas": replicas}}))?,
            )?;
            report.insert(
                "scale",
                scale
                    .spec
                    .and_then(|s| s.replicas)
                    .unwrap_or(-1)
                    .to_string(),
            );
        }

        let cms = Api::<ConfigMap>::namespaced(ns);
        let doomed = format!("{}-doomed", req.name);
        if let Some(cm) = cms.get(&doomed)? {
            let wrong = DeleteParams::default().precondition_uid("not-its-uid");
            report.insert("delete-wrong-uid", outcome(cms.delete(&doomed, &wrong)));
            let uid = cm.metadata.uid.clone().unwrap_or_default();
            let right = DeleteParams::background().precondition_uid(uid);
            report.insert("delete-right-uid", outcome(cms.delete(&doomed, &right)));
        }
        let parent = format!("{}-parent", req.name);
        if cms.get(&parent)?.is_some() {
            let orphan = DeleteParams::orphan();
            report.insert("delete-orphan", outcome(cms.delete(&parent, &orphan)));
        }

        // The report keeps what earlier reconciles found (the doomed ConfigMap is deleted once).
        let name = format!("{}-report", req.name);
        let existing = cms.get(&name)?;
        let mut data = existing
            .as_ref()
            .and_then(|cm| cm.data.clone())
            .unwrap_or_default();
        data.extend(report.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let report: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "data": data,
        }))?;
        let report = match existing {
            None => cms.create(&report)?,
            Some(old) if old.data == report.data => old,
            Some(old) => {
                let mut new = report;
                new.metadata.resource_version = old.metadata.resource_version;
                cms.replace(&name, &new)?
            }
        };
        kubewasm_sdk::event(
            &deployment,
            &Event::normal("Reported", "wrote the report").related(&report),
        )?;
        match annotations.get(REQUEUE_MS) {
            Some(ms) => {
                let ms: u64 = ms
                    .parse()
                    .map_err(|e| Error::Other(format!("{REQUEUE_MS}: {e}")))?;
                Ok(Action::requeue(std::time::Duration::from_millis(ms)))
            }
            None => Ok(Action::done()),
        }
    }
}

kubewasm_sdk::export_plugin!(Ops);
