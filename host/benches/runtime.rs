//! Runtime benchmark: prints what a reconcile costs across the WebAssembly boundary.
//!
//! Run with `cargo xtask plugins && cargo bench -p kubewasm --bench runtime`. Figures are
//! per reconcile (fresh store + instance + call), median of several batches:
//! - a no-op reconcile, with the pooling allocator and without;
//! - a cache get of a ~4 KB Pod, raw (bytes only) and decoded into k8s-openapi's `Pod`;
//! - the same get projected to 5 fields (`get-fields`) and decoded;
//! - a cache list of 1,000 such Pods by namespace, by index and by label selector: raw,
//!   decoded, and projected to 5 fields + decoded;
//! - a realistic reconcile: get + decode + merge patch of an annotation (in-memory API);
//! - native baselines: decoding the same Pod / 1,000 Pods with serde_json on the host, and
//!   the host-side projection of one Pod;
//! - a Python plugin's (componentize-py) no-op reconcile, with a fresh instance per reconcile
//!   (`py-faults`) and with `reuse-instances` (`py-counter`, the instance kept).
//!   `BENCH_PYTHON=only` prints just these (after the loads).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kubewasm::runtime::{
    Backend, Kind, ListQuery, MemoryBackend, Plugin, Projection, Reason, Request, Runtime,
    RuntimeConfig,
};
use serde_json::{Value, json};

const PODS: usize = 1000;

fn pods() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
        namespaced: true,
    }
}

#[path = "../../bench/src/pod.rs"]
mod fixture;

/// The benchmarks' realistic ~4 KB Pod, `pod-{i}` in namespace `bench`.
fn pod(i: usize) -> Value {
    fixture::pod(&fixture::PodSpec::new(i, "bench", "node-0", "bench"))
}

/// The bench plugin: `target/test-plugins/bench.wasm`, or the file `BENCH_PLUGIN` names (to
/// set two builds of it against each other with the same host).
fn plugin_path() -> std::path::PathBuf {
    let p = std::env::var_os("BENCH_PLUGIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/bench.wasm"),
        std::path::PathBuf::from,
    );
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask plugins` first",
        p.display()
    );
    p
}

/// Median per-call time over `batches` batches of `n` calls.
async fn measure(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    n: u32,
    batches: u32,
) -> Duration {
    let call = || plugin.reconcile(backend.clone(), Request::new("", op, Reason::Resync));
    for _ in 0..n.min(50) {
        call().await.unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    let mut times = Vec::new();
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..n {
            call().await.unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        times.push(start.elapsed() / n);
    }
    times.sort();
    times[times.len() / 2]
}

/// What one `op` costs: `reps` of it inside one guest call (the bench plugin's
/// `<op>.x<reps>`), the call's time divided by `reps`, the median over `batches` batches of `n`
/// calls. The call's fixed cost (a fresh store and instance, ~10 µs) is spread over `reps`
/// rather than subtracted: subtracting a separately measured no-op from a noisy call could
/// come out as 0.
async fn per_op(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    reps: u32,
    n: u32,
    batches: u32,
) -> Duration {
    measure(plugin, backend, &format!("{op}.x{reps}"), n, batches).await / reps
}

fn native<T>(n: u32, f: impl Fn() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    start.elapsed() / n
}

fn us(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:>10.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = tempfile::tempdir().expect("a temp dir");
    let config = |pooling| RuntimeConfig {
        pooling,
        compile_cache_dir: Some(cache.path().to_owned()),
        // `BENCH_KEEP_RESIDENT=<bytes>` compares pool reset strategies.
        pool_keep_resident: std::env::var("BENCH_KEEP_RESIDENT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RuntimeConfig::default().pool_keep_resident),
        ..RuntimeConfig::default()
    };
    let pooled = Runtime::new(config(true)).expect("runtime");
    let on_demand = Runtime::new(config(false)).expect("runtime");
    let path = plugin_path();
    let start = Instant::now();
    let plugin =
        kubewasm::loader::load_file(&pooled, &path, kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE)
            .await
            .expect("bench plugin loads");
    let compile = start.elapsed();
    let start = Instant::now();
    let plugin_od =
        kubewasm::loader::load_file(&on_demand, &path, kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE)
            .await
            .expect("bench plugin loads");
    let cached_load = start.elapsed();

    let memory = Arc::new(MemoryBackend::new());
    let kind = pods();
    let mut bytes_one = Bytes::new();
    for i in 0..PODS {
        let bytes = Bytes::from(serde_json::to_vec(&pod(i)).expect("encodes"));
        if i == 0 {
            bytes_one = bytes.clone();
        }
        memory.insert_raw(&kind, Some("bench"), &format!("pod-{i}"), bytes);
    }
    let list_json: Vec<u8> = {
        let items = memory
            .list(&kind, &ListQuery::namespace(Some("bench")))
            .expect("lists");
        let mut v = b"[".to_vec();
        for (i, b) in items.iter().enumerate() {
            if i > 0 {
                v.push(b',');
            }
            v.extend_from_slice(b);
        }
        v.push(b']');
        v
    };
    let mut own = pod(0);
    own["metadata"]["namespace"] = json!("bench-own");
    own["metadata"]["name"] = json!("realistic");
    memory.insert(&kind, own).expect("inserts");
    let backend: Arc<dyn Backend> = memory;

    // `BENCH_PROFILE=<op>[,<op>...] cargo bench ...` runs only those ops, 3 s each (e.g.
    // under `perf record`), and prints the mean and the median time per reconcile (the median
    // shrugs off other processes' bursts on a shared machine).
    if let Ok(ops) = std::env::var("BENCH_PROFILE") {
        println!("{:<20} {}", "load (cold compile)", ms(compile));
        for op in ops.split(',') {
            let start = Instant::now();
            let mut times = Vec::new();
            while start.elapsed() < Duration::from_secs(3) {
                let call = Instant::now();
                plugin
                    .reconcile(
                        backend.clone(),
                        Request::new("bench-own", op, Reason::Resync),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{op}: {e}"));
                times.push(call.elapsed());
            }
            let n = u32::try_from(times.len()).unwrap_or(u32::MAX).max(1);
            times.sort();
            println!(
                "{op:<20} {} mean {} median",
                us(start.elapsed() / n),
                us(times[times.len() / 2])
            );
        }
        return;
    }
    println!(
        "kubewasm runtime benchmark (bench plugin {} KB, Pod {} bytes, list {} KB)",
        std::fs::metadata(&path).map_or(0, |m| m.len() / 1024),
        bytes_one.len(),
        list_json.len() / 1024
    );
    println!(
        "{:<60} {}",
        "load: compile (cranelift, cold cache)",
        ms(compile)
    );
    println!(
        "{:<60} {}",
        "load: from the compile cache + manifest",
        ms(cached_load)
    );

    if std::env::var("BENCH_PYTHON").as_deref() == Ok("only") {
        python(&pooled, &backend).await;
        return;
    }
    let noop = measure(&plugin, &backend, "noop", 2000, 5).await;
    let noop_od = measure(&plugin_od, &backend, "noop", 2000, 5).await;
    println!(
        "{:<60} {}",
        "reconcile no-op: fresh store+instance+call, pooling",
        us(noop)
    );
    println!(
        "{:<60} {}",
        "reconcile no-op: fresh store+instance+call, on-demand",
        us(noop_od)
    );
    for (op, what) in [
        ("get-raw", "cache get ~4 KB Pod, raw bytes"),
        ("get-decoded", "cache get ~4 KB Pod, decoded into Pod"),
        (
            "get-fields",
            "cache get ~4 KB Pod, 5 fields projected + decoded",
        ),
    ] {
        let t = per_op(&plugin, &backend, op, 100, 20, 9).await;
        println!("{:<60} {}", format!("{what} (÷100 in one call)"), us(t));
    }
    let native_pod = native(5000, || {
        serde_json::from_slice::<k8s_openapi::api::core::v1::Pod>(&bytes_one).expect("decodes")
    });
    println!(
        "{:<60} {}",
        "  native: serde_json decode of the Pod",
        us(native_pod)
    );
    let projection = Projection::new(&[
        "metadata.name",
        "metadata.namespace",
        "metadata.labels",
        "spec.nodeName",
        "status.phase",
    ])
    .expect("paths parse");
    let native_project = native(5000, || projection.project(&bytes_one).expect("projects"));
    println!(
        "{:<60} {}",
        "  native: host-side projection of the Pod",
        us(native_project)
    );

    for (op, what, n) in [
        ("list-raw", "list 1k Pods (namespace), raw JSON", 50),
        ("list-decoded", "list 1k Pods (namespace), decoded", 10),
        (
            "list-fields",
            "list 1k Pods (namespace), projected + decoded",
            20,
        ),
        ("list-index-raw", "list 1k Pods by index, raw JSON", 50),
        ("list-index-decoded", "list 1k Pods by index, decoded", 10),
        (
            "list-index-fields",
            "list 1k Pods by index, projected + decoded",
            20,
        ),
        (
            "list-index-summary",
            "list 1k Pods by index, projected, into a small struct",
            20,
        ),
        ("list-label-raw", "list 1k Pods by label, raw JSON", 50),
        ("list-label-decoded", "list 1k Pods by label, decoded", 10),
        (
            "list-label-fields",
            "list 1k Pods by label, projected + decoded",
            20,
        ),
    ] {
        let t = per_op(&plugin, &backend, op, 5, n, 5).await;
        println!("{:<60} {}", format!("{what} (÷5 in one call)"), ms(t));
    }
    let native_list = native(10, || {
        serde_json::from_slice::<Vec<k8s_openapi::api::core::v1::Pod>>(&list_json).expect("decodes")
    });
    println!(
        "{:<60} {}",
        "  native: serde_json decode of the 1k list",
        ms(native_list)
    );
    let realistic = {
        let call = || {
            plugin.reconcile(
                backend.clone(),
                Request::new("bench-own", "realistic", Reason::Resync),
            )
        };
        let start = Instant::now();
        for _ in 0..500 {
            call().await.unwrap_or_else(|e| panic!("realistic: {e}"));
        }
        start.elapsed() / 500
    };
    println!(
        "{:<60} {}",
        "realistic: get + decode + merge patch (in-memory API)",
        us(realistic)
    );
    python(&pooled, &backend).await;
}

/// A Python plugin's no-op reconcile: a fresh instance (CPython started from its snapshot)
/// for every reconcile, then the instance kept (`reuse-instances`).
async fn python(runtime: &Runtime, backend: &Arc<dyn Backend>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins");
    let load = |name: &str| {
        let path = dir.join(format!("{name}.wasm"));
        async move {
            assert!(
                path.is_file(),
                "{} is missing: run `cargo xtask plugins` first",
                path.display()
            );
            let start = Instant::now();
            let plugin = kubewasm::loader::load_file(
                runtime,
                &path,
                kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            (plugin, start.elapsed())
        }
    };
    let (fresh, compile) = load("py-faults").await;
    let (kept, _) = load("py-counter").await;
    assert!(!fresh.reuses_instances() && kept.reuses_instances());
    println!(
        "{:<60} {}",
        "Python plugin load: compile (cranelift, cold cache)",
        ms(compile)
    );
    let fresh = measure(&fresh, backend, "noop", 300, 5).await;
    let kept = measure(&kept, backend, "noop", 3000, 5).await;
    println!(
        "{:<60} {}",
        "Python no-op reconcile: fresh instance, pooling",
        us(fresh)
    );
    println!(
        "{:<60} {}",
        "Python no-op reconcile: kept instance (reuse-instances)",
        us(kept)
    );
}
