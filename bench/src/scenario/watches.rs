//! Figure 8: watch connections the API server sees for one kind when 50 plugins reconcile it
//! (kubewasm shares one informer per kind), against 50 kube-runtime Controllers (each opens its
//! own watch unless the author wires a shared reflector by hand).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::{Manager, ManagerConfig};

use super::{CONCURRENCY, Ctx, PEER_PLUGIN, load_as};
use crate::fixture::Cluster;
use crate::peer::NativeController;
use crate::report::{Figure, Goal, Side, Unit};
use crate::stats::Summary;

/// Watch requests for `resource` in the server's request log.
fn watches(cluster: &Cluster, resource: &str) -> usize {
    cluster
        .server
        .faults()
        .requests()
        .iter()
        .filter(|r| r.watch && r.resource.as_deref() == Some(resource))
        .count()
}

/// Runs figure 8.
///
/// # Errors
/// When a cluster or a plugin fails.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let n = ctx.sizes.watch_plugins;
    let path = ctx.test_plugin(PEER_PLUGIN)?;
    let runtime = ctx.runtime()?;

    let cluster = Cluster::start().await?;
    cluster
        .create_config_maps("watch", (0..10).map(|i| format!("cm-{i}")))
        .await?;
    let manager = Manager::new(cluster.client.clone(), ManagerConfig::default());
    for i in 0..n {
        // The host names a plugin after its file: 50 distinct names.
        let plugin = load_as(&runtime, &path, &format!("bench-watch-{i:02}")).await?;
        manager.start(plugin).context("starting a plugin")?;
    }
    manager.wait_synced().await;
    // Let any late watch open before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wasm_cm = watches(&cluster, "configmaps");
    let wasm_pods = watches(&cluster, "pods");
    let running = manager.status().len();
    manager.shutdown().await;
    cluster.stop().await;

    let cluster = Cluster::start().await?;
    cluster
        .create_config_maps("watch", (0..10).map(|i| format!("cm-{i}")))
        .await?;
    let controllers: Vec<NativeController> = (0..n)
        .map(|_| {
            NativeController::spawn(cluster.client.clone(), Arc::clone(&ctx.probe), CONCURRENCY)
        })
        .collect();
    for c in &controllers {
        c.ready(10).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let native_cm = watches(&cluster, "configmaps");
    for c in controllers {
        c.stop();
    }
    cluster.stop().await;

    Ok(vec![
        Figure::new(
            "watch.connections",
            8,
            &format!("watch connections for {n} plugins on one kind"),
            Unit::Count,
            Side::measured(
                format!("kubewasm, {running} plugins running (watches on configmaps)"),
                Summary::single(wasm_cm as f64),
            ),
            Side::measured(
                format!("{n} kube-runtime Controllers (watches on configmaps)"),
                Summary::single(native_cm as f64),
            ),
        )
        .goal(Goal::Exactly { value: 1.0 })
        .note(format!(
            "counted in the embedded API server's request log; kubewasm also opened {wasm_pods} watch(es) on pods for the Pod cache all {n} plugins declare"
        )),
    ])
}
