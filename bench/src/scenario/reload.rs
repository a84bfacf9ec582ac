//! Figure 5: hot reload, from a plugin file replaced to the first reconcile on the new version,
//! with a cold compile and with a compile-cache hit; native peer: restarting a kube-runtime
//! controller (a new `Controller`, its re-list, its first reconcile), which is what a native
//! operator does to change its code (without building and rolling out an image).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubewasm::reload::{PluginWatcher, ReloadEvent, WatchOptions};
use kubewasm::runtime::{Runtime, RuntimeConfig, version_of};
use kubewasm::{Manager, ManagerConfig};
use serde_json::json;
use tokio::sync::broadcast;

use super::{CONCURRENCY, Ctx, PEER_PLUGIN, millis};
use crate::fixture::Cluster;
use crate::peer::NativeController;
use crate::report::{Figure, Goal, Side, Unit};

const OBJECTS: usize = 50;
const NAME: &str = "bench-reload";
const TIMEOUT: Duration = Duration::from_secs(120);

/// The same component with a custom section appended: new bytes (a new version, a cold
/// compile), same behaviour.
pub fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"kubewasm-bench";
    let payload = name.len() + 1 + tag.len();
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(&mut out, payload);
    leb128(&mut out, name.len());
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

fn leb128(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reconciles finished by `version` of the reload plugin.
fn reconciled(manager: &Manager, version: &str) -> u64 {
    manager
        .versions(NAME)
        .iter()
        .filter(|s| s.version == version)
        .map(|s| s.ok + s.errors + s.faults)
        .sum()
}

/// How a new plugin file is written into the watched folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Written in full to a temporary name in the folder, then renamed over the plugin file (an
    /// atomic replace: `cp x.wasm .x.tmp; mv .x.tmp x.wasm`). The rename completes it.
    Rename,
    /// The plugin file truncated and written in place (`cp new.wasm x.wasm`). The close after
    /// writing completes it.
    InPlace,
}

/// One reload, timed from the write that completes the file (the rename, or the close).
struct Timed {
    /// Until the new version serves (the watcher's `Reloaded` event).
    serving: Duration,
    /// Until the first reconcile on the new version finished.
    reconciled: Duration,
}

/// Writes `bytes` over `file` the way `how` says and times the reload it causes.
async fn replace_and_time(
    manager: &Manager,
    watcher: &PluginWatcher,
    file: &Path,
    bytes: &[u8],
    how: Write,
) -> anyhow::Result<Timed> {
    use std::io::Write as _;
    let version = version_of(bytes);
    let before = reconciled(manager, &version);
    let mut events = watcher.subscribe();
    let started = match how {
        Write::Rename => {
            let tmp = file.with_file_name(".bench.tmp");
            std::fs::write(&tmp, bytes).context("writing the new plugin file")?;
            let started = Instant::now();
            std::fs::rename(&tmp, file).context("renaming the new plugin file into place")?;
            started
        }
        Write::InPlace => {
            let mut open = std::fs::File::create(file).context("opening the plugin file")?;
            open.write_all(bytes)
                .context("writing the new plugin file in place")?;
            let started = Instant::now();
            drop(open);
            started
        }
    };
    let serving = loop {
        let left = TIMEOUT.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(ReloadEvent::Reloaded { to, .. })) if to == version => break started.elapsed(),
            Ok(Ok(ReloadEvent::Failed { reason, .. })) => {
                bail!("the watcher did not load the new version: {reason}")
            }
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("the watcher stopped"),
            Err(_) => bail!("the new version did not serve within {TIMEOUT:?}"),
        }
    };
    loop {
        if reconciled(manager, &version) > before {
            return Ok(Timed {
                serving,
                reconciled: started.elapsed(),
            });
        }
        if started.elapsed() > TIMEOUT {
            bail!("no reconcile on the new version after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs figure 5.
///
/// # Errors
/// When the cluster, a plugin file or a reload fails.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let original = std::fs::read(ctx.test_plugin(PEER_PLUGIN)?).context("reading the plugin")?;
    let cluster = Cluster::start().await?;
    cluster
        .create_config_maps("reload", (0..OBJECTS).map(|i| format!("reload-{i}")))
        .await?;
    // A steady stream of changes, so a new version gets a reconcile soon after it serves.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "reload");
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let patch = Patch::Merge(json!({"data": {"n": n.to_string()}}));
                let _ = api
                    .patch(
                        &format!("reload-{}", n % OBJECTS),
                        &PatchParams::default(),
                        &patch,
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    // kubewasm: a watched plugin folder, a fresh compile cache (so new bytes compile cold).
    let cache = tempfile::tempdir().context("a temporary compile cache")?;
    let dir = tempfile::tempdir().context("a temporary plugin folder")?;
    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .context("starting the plugin runtime")?;
    let file = dir.path().join(format!("{NAME}.wasm"));
    std::fs::write(&file, &original).context("writing the plugin file")?;
    let manager = Manager::new(cluster.client.clone(), ManagerConfig::default());
    let watcher = PluginWatcher::start(
        runtime.clone(),
        manager.clone(),
        dir.path(),
        WatchOptions::default(),
    )
    .await
    .context("watching the plugin folder")?;
    manager.wait_synced().await;
    let stamp = jiff::Timestamp::now().as_nanosecond();
    let mut cold = Vec::new();
    for i in 0..ctx.sizes.reloads {
        let bytes = variant(&original, &format!("cold-{stamp}-{i}"));
        let timed = replace_and_time(&manager, &watcher, &file, &bytes, Write::Rename).await?;
        cold.push(millis(timed.reconciled));
    }
    // Compile-cache hits: versions never served, compiled beforehand into the same cache (a
    // version served before keeps its counters, which would blur "first reconcile on it").
    let (mut renamed, mut in_place, mut renamed_reconciled) = (Vec::new(), Vec::new(), Vec::new());
    let compiler = Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .context("starting a second runtime on the same compile cache")?;
    for i in 0..ctx.sizes.cached_reloads {
        for how in [Write::Rename, Write::InPlace] {
            let bytes = variant(&original, &format!("cached-{how:?}-{stamp}-{i}"));
            compiler
                .load(&dir.path().join(".precompile.wasm"), bytes.clone())
                .await
                .context("compiling a variant into the cache")?;
            let timed = replace_and_time(&manager, &watcher, &file, &bytes, how).await?;
            match how {
                Write::Rename => {
                    renamed.push(millis(timed.serving));
                    renamed_reconciled.push(millis(timed.reconciled));
                }
                Write::InPlace => in_place.push(millis(timed.serving)),
            }
        }
    }
    watcher.stop().await;
    manager.shutdown().await;

    // Native: stop the controller, start a new one, time to its first reconcile.
    let mut restarts = Vec::new();
    let mut controller =
        NativeController::spawn(cluster.client.clone(), Arc::clone(&ctx.probe), CONCURRENCY);
    controller.ready(OBJECTS).await?;
    for _ in 0..ctx.sizes.reloads {
        ctx.probe.reset(1);
        let started = Instant::now();
        controller.stop();
        controller =
            NativeController::spawn(cluster.client.clone(), Arc::clone(&ctx.probe), CONCURRENCY);
        while ctx.probe.run().elapsed.is_none() {
            if started.elapsed() > TIMEOUT {
                bail!("the restarted native controller did not reconcile in {TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        restarts.push(millis(started.elapsed()));
    }
    controller.stop();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    cluster.stop().await;

    let native =
        "native controller restart: new kube-runtime Controller, re-list, first reconcile done";
    let size = original.len() as f64 / 1e6;
    let common = format!(
        "{size:.1} MB plugin; the clock starts at the write that completes the file (the rename into place, or the close after writing in place), which the watcher acts on at once (its 300 ms quiet time is only for writes not known to be complete); {OBJECTS} ConfigMaps patched every ~2 ms so a new version reconciles soon; the native figure has no compile (rebuilding and rolling out a native binary is not timed)"
    );
    let cached = |id: &str, title: &str, label: &str, samples: &[f64]| {
        Figure::new(
            id,
            5,
            title,
            Unit::Millis,
            Side::from_samples(label, samples),
            Side::from_samples(native, &restarts),
        )
        .goal(Goal::P95AtMost { value: 50.0 })
    };
    let reconciled_p50 = crate::stats::Summary::of(&renamed_reconciled).map_or(f64::NAN, |s| s.p50);
    Ok(vec![
        Figure::new(
            "reload.cold",
            5,
            "hot reload, cold compile (rename into place -> first reconcile on the new version)",
            Unit::Millis,
            Side::from_samples("kubewasm PluginWatcher, empty compile cache", &cold),
            Side::from_samples(native, &restarts),
        )
        .note(format!("{common}; until the first reconcile on the new version finished")),
        cached(
            "reload.cached",
            "hot reload, compile-cache hit (rename into place -> new version serving)",
            "kubewasm PluginWatcher, bytes compiled before, renamed into place",
            &renamed,
        )
        .note(format!("{common}; until the new version serves (the first reconcile on it finished {reconciled_p50:.1} ms after the rename, p50)")),
        cached(
            "reload.cached.in_place",
            "hot reload, compile-cache hit (written in place, closed -> new version serving)",
            "kubewasm PluginWatcher, bytes compiled before, written in place",
            &in_place,
        )
        .note(format!("{common}; the file truncated and written in place, timed from its close until the new version serves")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_appends_a_well_formed_custom_section() {
        let tag = "x".repeat(200);
        let out = variant(b"\0asm", &tag);
        let section = &out[4..];
        assert_eq!(section[0], 0, "custom section id");
        // payload = 1 (name length) + 14 (name) + 200 = 215 = 0xd7 -> LEB128 0xd7 0x01
        assert_eq!(&section[1..3], &[0xd7, 0x01]);
        assert_eq!(section[3] as usize, b"kubewasm-bench".len());
        assert_eq!(section.len(), 3 + 215);
    }
}
