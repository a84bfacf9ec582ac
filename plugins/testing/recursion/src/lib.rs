//! Test plugin: recurses without bound, so tests see a stack-overflow trap.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Manifest, Plugin, Request, Result};

struct Recursion;

#[inline(never)]
fn descend(depth: u64, pad: [u64; 8]) -> u64 {
    let pad = std::hint::black_box(pad);
    if depth == u64::MAX {
        return 0; // never: only here so the recursion is not unconditional
    }
    std::hint::black_box(descend(depth + 1, pad)) + pad[(depth % 8) as usize]
}

impl Plugin for Recursion {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
    }

    fn reconcile(req: Request) -> Result<Action> {
        let depth = descend(req.name.len() as u64, [1; 8]);
        Err(kubewasm_sdk::Error::other(format!(
            "unreachable: returned from depth {depth}"
        )))
    }
}

kubewasm_sdk::export_plugin!(Recursion);
