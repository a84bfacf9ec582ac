//! Test plugin for sharding: reconciles ConfigMaps in namespace `shards` and logs
//! `shard-probe start <name>` when a reconcile begins and `shard-probe end <name>` when it ends,
//! with a cache read and some work between, so that a test reading the logs of several replicas
//! (each line stamped by its host) can tell which replica reconciled which key, and when.

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Api, Manifest, Plugin, Request, Result, log};

/// The namespace reconciled.
const NAMESPACE: &str = "shards";

struct ShardProbe;

impl Plugin for ShardProbe {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace(NAMESPACE)
            .concurrency(2)
    }

    fn reconcile(req: Request) -> Result<Action> {
        log::info(format!("shard-probe start {}", req.name));
        let cm = Api::<ConfigMap>::namespaced(NAMESPACE).get(&req.name)?;
        // Some work, so that a reconcile lasts long enough for overlaps to show.
        let mut h: u64 = cm.map_or(0, |c| c.metadata.name.map_or(0, |n| n.len() as u64));
        for i in 0..200_000u64 {
            h = h.rotate_left(5) ^ i;
        }
        log::info(format!("shard-probe end {} {}", req.name, h % 10));
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(ShardProbe);
