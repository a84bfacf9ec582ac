//! Test plugin: panics in reconcile, so tests see the host survive a guest panic.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Manifest, Plugin, Request, Result};

struct Panic;

impl Plugin for Panic {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
    }

    fn reconcile(req: Request) -> Result<Action> {
        panic!("plugin panicked on purpose while reconciling {}", req.name);
    }
}

kubewasm_sdk::export_plugin!(Panic);
