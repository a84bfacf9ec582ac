//! Test plugin: never returns from reconcile, so tests see the epoch deadline stop it.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Manifest, Plugin, Request, Result};

struct Spin;

impl Plugin for Spin {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
    }

    fn reconcile(req: Request) -> Result<Action> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(req.name.len() as u64));
        }
    }
}

kubewasm_sdk::export_plugin!(Spin);
