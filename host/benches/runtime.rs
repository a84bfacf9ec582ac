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
//!   the host-side projection of one Pod.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kubewasm::runtime::{
    Backend, Kind, MemoryBackend, Plugin, Projection, Reason, Request, Runtime, RuntimeConfig,
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

/// A realistic Pod of about 4 KB.
fn pod(i: usize) -> Value {
    let conditions: Vec<Value> = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"}))
        .collect();
    let statuses: Vec<Value> = ["web", "sidecar"]
        .iter()
        .map(|n| {
            json!({"name": n, "ready": true, "restartCount": 0, "started": true,
                "image": format!("registry.example.com/team/{n}:1.2.3"),
                "imageID": format!("registry.example.com/team/{n}@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                "containerID": "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}})
        })
        .collect();
    let env: Vec<Value> =
        (0..8).map(|e| json!({"name": format!("ENV_VAR_{e}"), "value": format!("value-{e}-for-the-web-container")})).collect();
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("pod-{i}"),
            "namespace": "bench",
            "uid": format!("7c0e0f7a-1d2b-4c3d-9e8f-{i:012}"),
            "resourceVersion": format!("{}", 1000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "bench", "tier": "frontend", "pod-template-hash": "5d8f7c9b6d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6d",
                                 "uid": "0a1b2c3d-4e5f-6789-abcd-ef0123456789", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": "node-0",
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "containers": [{
                "name": "web",
                "image": "registry.example.com/team/web:1.2.3",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 10, "failureThreshold": 3},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
            }, {
                "name": "sidecar",
                "image": "registry.example.com/team/proxy:4.5.6",
                "args": ["--listen=:9090", "--upstream=127.0.0.1:8080", "--log-level=info"],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}
            }],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.10",
            "podIP": format!("10.244.{}.{}", i / 250, i % 250),
            "startTime": "2026-01-01T00:00:01Z",
            "qosClass": "Burstable",
            "conditions": conditions,
            "containerStatuses": statuses
        }
    });
    // Pad with annotations to just over 4 KB.
    let mut n = 0;
    while serde_json::to_vec(&pod).map_or(0, |v| v.len()) < 4096 {
        pod["metadata"]["annotations"][format!("example.com/note-{n}")] =
            json!("padding so the pod is about four kilobytes");
        n += 1;
    }
    pod
}

fn plugin_path() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/bench.wasm");
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

/// What `op` costs over a no-op reconcile: the median, over `batches`, of a batch of `op`
/// minus a batch of no-ops run right before it, so load from other processes on a shared
/// machine hits both sides of each difference alike.
async fn over_noop(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    n: u32,
    batches: u32,
) -> Duration {
    let mut deltas = Vec::new();
    for _ in 0..batches {
        let noop = measure(plugin, backend, "noop", n, 1).await;
        let t = measure(plugin, backend, op, n, 1).await;
        deltas.push(t.saturating_sub(noop));
    }
    deltas.sort();
    deltas[deltas.len() / 2]
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
    let plugin = pooled.load(&path).await.expect("bench plugin loads");
    let compile = start.elapsed();
    let start = Instant::now();
    let plugin_od = on_demand.load(&path).await.expect("bench plugin loads");
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
        let items = memory.list(&kind, Some("bench"), None).expect("lists");
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
    // under `perf record`), and prints the mean time per reconcile.
    if let Ok(ops) = std::env::var("BENCH_PROFILE") {
        println!("{:<20} {}", "load (cold compile)", ms(compile));
        for op in ops.split(',') {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < Duration::from_secs(3) {
                plugin
                    .reconcile(
                        backend.clone(),
                        Request::new("bench-own", op, Reason::Resync),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{op}: {e}"));
                n += 1;
            }
            println!("{op:<20} {}", us(start.elapsed() / n.max(1)));
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
        let t = over_noop(&plugin, &backend, op, 1000, 9).await;
        println!("{:<60} {}", format!("{what} (minus no-op)"), us(t));
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
        let t = over_noop(&plugin, &backend, op, n, 5).await;
        println!("{:<60} {}", format!("{what} (minus no-op)"), ms(t));
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
}
