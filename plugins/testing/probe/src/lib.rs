//! Test plugin: tries one thing its manifest does not allow (chosen by the request's name)
//! and returns the host's answer as its own result, so tests can assert on each denial.
//!
//! The manifest reconciles ConfigMaps, declares an index `by-owner` on them and grants
//! nothing else: reads of ConfigMaps are implied, every write and every other kind is not.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kubewasm_sdk::{Action, Error, Event, Manifest, Patch, Plugin, Request, Result};
use serde_json::json;

struct Probe;

impl Plugin for Probe {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>().index::<ConfigMap>("by-owner", "metadata.labels.owner")
    }

    fn reconcile(req: Request) -> Result<Action> {
        let ns = req.namespace.as_str();
        match req.name.as_str() {
            // Allowed: proves the probe itself works.
            "get-configmap" => kubewasm_sdk::get::<ConfigMap>(ns, "cm").map(drop),
            "list-by-declared-index" => {
                kubewasm_sdk::list_by_index::<ConfigMap>("by-owner", "me").map(drop)
            }
            // Undeclared kinds.
            "get-secret" => kubewasm_sdk::get::<Secret>(ns, "token").map(drop),
            "list-pods" => kubewasm_sdk::list::<Pod>(ns, "").map(drop),
            "create-pod" => {
                let pod: Pod =
                    serde_json::from_value(json!({"metadata": {"name": "p", "namespace": ns}}))?;
                kubewasm_sdk::create(&pod).map(drop)
            }
            "event-on-secret" => {
                kubewasm_sdk::event_for::<Secret>(ns, "token", &Event::normal("Probe", "probe"))
            }
            // Undeclared verbs on the declared kind.
            "patch-configmap" => {
                let patch = Patch::merge(json!({"data": {"x": "y"}}))?;
                kubewasm_sdk::patch::<ConfigMap>(ns, "cm", &patch).map(drop)
            }
            "replace-configmap" => {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": "cm", "namespace": ns}}))?;
                kubewasm_sdk::replace(&cm).map(drop)
            }
            "delete-configmap" => kubewasm_sdk::delete::<ConfigMap>(ns, "cm"),
            "create-configmap" => {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": "new", "namespace": ns}}))?;
                kubewasm_sdk::create(&cm).map(drop)
            }
            // An index that was never declared.
            "list-by-undeclared-index" => {
                kubewasm_sdk::list_by_index::<ConfigMap>("by-node", "n1").map(drop)
            }
            // What the sandbox lets through: reported as an error message for the test to read.
            "sandbox" => {
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let fs = std::fs::read_dir("/").is_ok() || std::fs::read("/etc/hostname").is_ok();
                let net = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
                Err(Error::other(format!(
                    "env={env} args={args} fs={fs} net={net}"
                )))
            }
            other => Err(Error::other(format!("probe: unknown probe {other}"))),
        }
        .map(|()| Action::done())
    }
}

kubewasm_sdk::export_plugin!(Probe);
