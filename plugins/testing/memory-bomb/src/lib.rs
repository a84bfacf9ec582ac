//! Test plugin: allocates memory until the host's per-store memory cap stops it.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Manifest, Plugin, Request, Result};

struct MemoryBomb;

impl Plugin for MemoryBomb {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
    }

    fn reconcile(_req: Request) -> Result<Action> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // 1 MiB at a time, touched so it is really committed.
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

kubewasm_sdk::export_plugin!(MemoryBomb);
