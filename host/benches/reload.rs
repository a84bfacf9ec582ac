//! Hot reload benchmark: prints what replacing a plugin file costs a running host.
//!
//! Run with `cargo xtask plugins && cargo bench -p kubewasm --bench reload` (release), or
//! `cargo test -p kubewasm --bench reload --release`/without `--release` for a quicker build.
//! Against the embedded API server, with the `hello` plugin reconciling 50 ConfigMaps while a
//! writer keeps changing them, it measures:
//! - file replaced -> first reconcile on the new version, with a cold compile (new bytes, empty
//!   compile cache) and with a compile-cache hit (bytes compiled before);
//! - reconciles per second in steady state, and in windows that each contain a (cold) reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kubewasm::reload::{PluginWatcher, WatchOptions};
use kubewasm::runtime::{Runtime, RuntimeConfig, version_of};
use kubewasm::{Manager, ManagerConfig};
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::json;

const OBJECTS: usize = 50;
const NAME: &str = "bench-reload";

fn hello() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/hello.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `cargo xtask plugins` first",
            path.display()
        )
    })
}

/// The same component with a custom section appended: new bytes (a new version, a cold compile),
/// same behaviour.
fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"kubewasm-bench";
    let len = 1 + name.len() + tag.len();
    assert!(len < 128, "one-byte LEB128 sizes only");
    let mut out = bytes.to_vec();
    out.extend_from_slice(&[0, len as u8, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// Reconciles finished so far by every version, and by `version`.
fn reconciled(manager: &Manager, version: &str) -> (u64, u64) {
    let stats = manager.versions(NAME);
    let total = |s: &kubewasm::VersionStats| s.ok + s.errors + s.faults;
    (
        stats.iter().map(total).sum(),
        stats
            .iter()
            .filter(|s| s.version == version)
            .map(total)
            .sum(),
    )
}

/// Writes `bytes` over `file` (write to a temporary name, rename into place) and returns how long
/// until the first reconcile on the new version finished.
async fn replace_and_time(manager: &Manager, file: &Path, bytes: &[u8]) -> Duration {
    let version = version_of(bytes);
    let (_, before) = reconciled(manager, &version);
    let tmp = file.with_file_name(".bench.tmp");
    let started = Instant::now();
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, file).expect("rename");
    loop {
        if reconciled(manager, &version).1 > before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no reconcile on the new version after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cache = tempfile::tempdir().expect("a temp dir");
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server");
    let mut kc = kube::Config::new(server.url().parse().expect("url"));
    kc.default_namespace = "default".into();
    let client = kube::Client::try_from(kc).expect("client");
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "ConfigMap"),
        "configmaps",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    for i in 0..OBJECTS {
        let cm: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "default"},
            "data": {"n": "0"}
        }))
        .expect("a ConfigMap");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let hello = hello();
    let file: PathBuf = dir.path().join(format!("{NAME}.wasm"));
    std::fs::write(&file, &hello).expect("write");
    let manager = Manager::new(client, ManagerConfig::default());
    let watcher = PluginWatcher::start(
        runtime.clone(),
        manager.clone(),
        dir.path(),
        WatchOptions::default(),
    )
    .await
    .expect("watch");
    manager.wait_synced().await;

    // A steady stream of changes: two writers, each patching ConfigMaps round-robin.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (api, stop) = (api.clone(), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let name = format!("cm-{}", (n as usize * 2 + w) % OBJECTS);
                let patch = Patch::Merge(json!({"data": {"n": n.to_string(), "w": w.to_string()}}));
                let _ = api.patch(&name, &PatchParams::default(), &patch).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Steady state.
    let window = Duration::from_secs(4);
    let mut steady = Vec::new();
    for _ in 0..3 {
        let (before, _) = reconciled(&manager, "");
        tokio::time::sleep(window).await;
        let (after, _) = reconciled(&manager, "");
        steady.push((after - before) as f64 / window.as_secs_f64());
    }

    // Cold compiles, each in a window of the same length to measure the rate around it.
    let mut cold = Vec::new();
    let mut during = Vec::new();
    let mut versions = Vec::new();
    for i in 0..3 {
        let bytes = variant(&hello, &format!("cold-{i}"));
        let (before, _) = reconciled(&manager, "");
        let window_start = Instant::now();
        cold.push(replace_and_time(&manager, &file, &bytes).await);
        if let Some(rest) = window.checked_sub(window_start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        let (after, _) = reconciled(&manager, "");
        during.push((after - before) as f64 / window_start.elapsed().as_secs_f64());
        versions.push(bytes);
    }
    // Compile-cache hits: bytes compiled above, served again.
    let mut warm = Vec::new();
    for bytes in versions.iter().take(2).chain(versions.iter().take(2)) {
        warm.push(replace_and_time(&manager, &file, bytes).await);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "hot reload ({profile} build, hello plugin {:.1} MB, {OBJECTS} ConfigMaps under a steady stream of changes)",
        hello.len() as f64 / 1e6
    );
    println!(
        "  (files are renamed into place, which the watcher acts on at once; its {:?} quiet time is for writes still under way)",
        WatchOptions::default().debounce
    );
    println!(
        "  file replaced -> first reconcile on the new version, cold compile:  median {:>8.1?}  (runs: {cold:.1?})",
        median(cold.clone())
    );
    println!(
        "  file replaced -> first reconcile on the new version, cache hit:     median {:>8.1?}  (runs: {warm:.1?})",
        median(warm.clone())
    );
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "  reconciles/s, steady state ({window:?} windows):       {:>7.0}  (windows: {:.0?})",
        avg(&steady),
        steady
    );
    println!(
        "  reconciles/s, windows containing a cold reload:      {:>7.0}  (windows: {:.0?})",
        avg(&during),
        during
    );
    let stats = manager.versions(NAME);
    let faults: u64 = stats.iter().map(|s| s.faults + s.errors).sum();
    println!(
        "  versions served: {}, failed reconciles: {faults}, load failures: {}",
        stats.len(),
        watcher.failures()
    );
    watcher.stop().await;
    manager.shutdown().await;
    server.shutdown().await;
}
