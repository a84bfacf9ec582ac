//! Test plugin: tries one thing its manifest does not allow (chosen by the request's name)
//! and returns the host's answer as its own result, so tests can assert on each denial.
//!
//! The manifest reconciles ConfigMaps, declares an index `by-owner` on them and grants
//! nothing else: reads of ConfigMaps are implied, every write and every other kind is not.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, Event, ListParams, Manifest, Patch, Plugin, Request, Result,
};
use serde_json::json;

struct Probe;

impl Plugin for Probe {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>().index::<ConfigMap>("by-owner", "metadata.labels.owner")
    }

    fn reconcile(req: Request) -> Result<Action> {
        let ns = req.namespace.as_str();
        let cms = Api::<ConfigMap>::namespaced(ns);
        let by_index = |index: &str, value: &str| ListParams::default().index(index, value);
        match req.name.as_str() {
            // Allowed: proves the probe itself works.
            "get-configmap" => cms.get("cm").map(drop),
            "list-by-declared-index" => cms.list(&by_index("by-owner", "me")).map(drop),
            // Undeclared kinds.
            "get-secret" => Api::<Secret>::namespaced(ns).get("token").map(drop),
            "list-pods" => Api::<Pod>::namespaced(ns)
                .list(&ListParams::default())
                .map(drop),
            "create-pod" => {
                let pod: Pod =
                    serde_json::from_value(json!({"metadata": {"name": "p", "namespace": ns}}))?;
                Api::<Pod>::namespaced(ns).create(&pod).map(drop)
            }
            "event-on-secret" => {
                Api::<Secret>::namespaced(ns).event("token", &Event::normal("Probe", "probe"))
            }
            // Undeclared verbs on the declared kind.
            "patch-configmap" => {
                let patch = Patch::merge(json!({"data": {"x": "y"}}))?;
                cms.patch("cm", &patch).map(drop)
            }
            "replace-configmap" => {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": "cm", "namespace": ns}}))?;
                cms.replace("cm", &cm).map(drop)
            }
            "delete-configmap" => cms.delete("cm", &DeleteParams::default()),
            "create-configmap" => {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": "new", "namespace": ns}}))?;
                cms.create(&cm).map(drop)
            }
            // An index that was never declared.
            "list-by-undeclared-index" => cms.list(&by_index("by-node", "n1")).map(drop),
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
