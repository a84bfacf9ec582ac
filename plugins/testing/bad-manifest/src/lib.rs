//! Test plugin: its manifest has an empty kind, an index on a kind it never declared and
//! concurrency 0; the host must refuse to load it and say why.

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kubewasm_sdk::{Action, Kind, Manifest, Plugin, Request, Result};

struct BadManifest;

impl Plugin for BadManifest {
    fn manifest() -> Manifest {
        let empty = Kind {
            group: "",
            version: "v1",
            kind: "",
            namespaced: true,
        };
        Manifest::reconcile_kind(empty)
            .index::<Node>("by-zone", "metadata.labels.zone")
            .permit::<ConfigMap>(&[])
            .concurrency(0)
    }

    fn reconcile(_req: Request) -> Result<Action> {
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(BadManifest);
