//! Benchmark of the store and the work queue; prints a table.
//!
//! Run with `cargo bench -p kubewasm-controller` (optimized bench profile). Figures: store get / list-by-index / list-by-label at 10k and 100k objects, bytes held per object
//! against the object's JSON size, event-to-entry cost, queue throughput with 1 and N workers.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use kubewasm_controller::{
    Action, Entry, FieldPath, Item, LabelSelector, RawObject, Reason, Store, WorkQueue, run_workers,
};
use serde_json::json;

const NODES: usize = 100;
const APPS: usize = 200;
const NAMESPACES: usize = 20;

fn pods() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods")
}

/// A realistic Pod of ~3 KB of JSON with managedFields (as a real API server returns it).
fn pod(i: usize) -> serde_json::Value {
    let app = format!("app-{}", i % APPS);
    let ns = format!("ns-{}", i % NAMESPACES);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{app}-{i:08x}"), "namespace": ns, "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "resourceVersion": (1000 + i).to_string(), "creationTimestamp": "2026-01-01T00:00:00Z",
            "generateName": format!("{app}-"),
            "labels": {"app": app, "tier": if i.is_multiple_of(3) { "front" } else { "back" }, "pod-template-hash": format!("{:x}", i % 977)},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-rs"),
                                 "uid": format!("rs-{}", i % APPS), "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:tier": {}},
                   "f:ownerReferences": {".": {}, "k:{\"uid\":\"x\"}": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}},
                   "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
                   "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "subresource": "status",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"ContainersReady\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                   "k:{\"type\":\"Initialized\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                   "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                   "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {".": {}, "k:{\"ip\":\"10.0.0.1\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}}
            ]
        },
        "spec": {
            "nodeName": format!("node-{}", i % NODES),
            "containers": [{"name": "main", "image": format!("registry.example.com/{app}:1.2.3"), "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]
        },
        "status": {
            "phase": "Running", "hostIP": "192.168.0.10", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "qosClass": "Burstable",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:05Z"}
            ],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "started": true,
                                   "image": format!("registry.example.com/{app}:1.2.3"), "imageID": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                   "containerID": "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                   "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}, "lastState": {}}]
        }
    })
}

fn per_op(total: Duration, ops: usize) -> String {
    let ns = total.as_nanos() as f64 / ops as f64;
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Runs `f` `iters` times and returns the total time.
fn time(iters: usize, mut f: impl FnMut(usize)) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t.elapsed()
}

fn row(what: &str, n: usize, value: &str, note: &str) {
    println!("| {what:<44} | {n:>7} | {value:>14} | {note} |");
}

fn bench_store(n: usize) {
    let raw: Vec<Vec<u8>> = (0..n)
        .map(|i| serde_json::to_vec(&pod(i)).expect("json"))
        .collect();
    let raw_bytes: usize = raw.iter().map(Vec::len).sum();

    // Event to entry: what an informer pays per object (decode from the wire + compact re-encode).
    let sample = raw.len().min(5_000);
    let decode_value = time(sample, |i| {
        black_box(serde_json::from_slice::<serde_json::Value>(&raw[i]).expect("decode"));
    });
    let resource = pods();
    row(
        "decode wire JSON -> serde_json::Value",
        n,
        &per_op(decode_value, sample),
        "per object (raw-JSON alternative)",
    );
    let raw_to_entry = time(sample, |i| {
        let o: RawObject = serde_json::from_slice(&raw[i]).expect("decode");
        black_box(Entry::from_raw(o, &resource, false).expect("entry"));
    });
    let node = FieldPath::parse("spec.nodeName").expect("path");
    let raw_index = time(sample, |i| {
        let o: RawObject = serde_json::from_slice(&raw[i]).expect("decode");
        black_box(node.values_in_text(o.json()));
        black_box(Entry::from_raw(o, &resource, false).expect("entry"));
    });
    row(
        "RawObject + build Entry (drop managedFields)",
        n,
        &per_op(raw_to_entry, sample),
        "per object, per event: what informers do",
    );
    row(
        "RawObject + Entry + one field index value",
        n,
        &per_op(raw_index, sample),
        "per object, per event, one field index",
    );

    let store = Store::new(pods(), false);
    store
        .add_index("node", FieldPath::parse("spec.nodeName").expect("path"))
        .expect("index");
    let objs: Vec<RawObject> = raw
        .iter()
        .map(|r| serde_json::from_slice(r).expect("decode"))
        .collect();
    let t = Instant::now();
    let (_, errors) = store.replace(objs);
    let fill = t.elapsed();
    assert!(errors.is_empty());
    row(
        "initial list into the store (replace)",
        n,
        &per_op(fill, n),
        "per object, incl. indexing",
    );

    let names: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("ns-{}", i % NAMESPACES),
                format!("app-{}-{i:08x}", i % APPS),
            )
        })
        .collect();
    let iters = 200_000;
    let get = time(iters, |i| {
        let (ns, name) = &names[(i * 7919) % n];
        black_box(store.get(Some(ns), name).expect("hit"));
    });
    row(
        "get(namespace, name)",
        n,
        &per_op(get, iters),
        "hit, returns Arc<Entry>",
    );

    let iters = 2_000;
    let by_index = time(iters, |i| {
        black_box(
            store
                .list_by_index("node", &format!("node-{}", i % NODES))
                .expect("index"),
        );
    });
    row(
        "list_by_index(spec.nodeName)",
        n,
        &per_op(by_index, iters),
        &format!("{} objects per call", n / NODES),
    );

    let selectors: Vec<LabelSelector> = (0..APPS)
        .map(|a| LabelSelector::parse(&format!("app=app-{a},tier=front")).expect("sel"))
        .collect();
    let by_label = time(iters, |i| {
        black_box(store.list(None, Some(&selectors[i % APPS])));
    });
    let per_call = store.list(None, Some(&selectors[0])).len();
    row(
        "list(all ns, app=X,tier=front)",
        n,
        &per_op(by_label, iters),
        &format!("{per_call} objects per call, label index"),
    );
    let ns_sel = LabelSelector::parse("tier=front").expect("sel");
    let by_ns_label = time(200, |i| {
        black_box(store.list(Some(&format!("ns-{}", i % NAMESPACES)), Some(&ns_sel)));
    });
    let per_call = store.list(Some("ns-0"), Some(&ns_sel)).len();
    row(
        "list(one ns, tier=front)",
        n,
        &per_op(by_ns_label, 200),
        &format!("{per_call} objects per call"),
    );
    let neg = LabelSelector::parse("tier!=back").expect("sel");
    let scan = time(20, |_| {
        black_box(store.list(None, Some(&neg)));
    });
    row(
        "list(all ns, tier!=back) (negative: scan)",
        n,
        &per_op(scan, 20),
        "full scan, for comparison",
    );

    let t = Instant::now();
    store
        .add_index(
            "app",
            FieldPath::parse("metadata.labels.app").expect("path"),
        )
        .expect("index");
    row(
        "add_index backfill (hot reload declares one)",
        n,
        &per_op(t.elapsed(), n),
        "per cached object",
    );

    let st = store.stats();
    let wire = raw_bytes as f64 / n as f64;
    let stored_json = st.json_bytes as f64 / n as f64;
    let held = (st.entry_bytes + st.index_bytes) as f64 / n as f64;
    row(
        "wire JSON per object (with managedFields)",
        n,
        &format!("{wire:.0} B"),
        "input",
    );
    row(
        "stored JSON per object (compact, no mF)",
        n,
        &format!("{stored_json:.0} B"),
        &format!("{:.0}% of wire", 100.0 * stored_json / wire),
    );
    row(
        "bytes held per object (entry + indexes)",
        n,
        &format!("{held:.0} B"),
        &format!(
            "{:.2}x wire JSON, {:.2}x stored JSON",
            held / wire,
            held / stored_json
        ),
    );

    // The estimate above, checked against a real process: a child fills a store one event at a
    // time from nothing and reports how much its resident set grew.
    if let Some(per) = measured_rss_per_object(n) {
        row(
            "RSS growth per object (measured in a child)",
            n,
            &format!("{per:.0} B"),
            &format!(
                "{:.2}x wire JSON, {:.2}x stored JSON",
                per / wire,
                per / stored_json
            ),
        );
    }
}

/// Runs this binary as `--rss N` and parses the bytes per object it prints.
fn measured_rss_per_object(n: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--rss", &n.to_string()])
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The `--rss N` child: fill a store with N Pods, one decode + apply at a time, print RSS growth / N.
fn rss_child(n: usize) {
    let store = Store::new(pods(), false);
    store
        .add_index("node", FieldPath::parse("spec.nodeName").expect("path"))
        .expect("index");
    // Warm up the allocator and serde with a few objects that are then dropped.
    for i in 0..100 {
        let bytes = serde_json::to_vec(&pod(n + i)).expect("json");
        black_box(serde_json::from_slice::<RawObject>(&bytes).expect("decode"));
    }
    let before = rss_bytes().unwrap_or(0);
    for i in 0..n {
        let bytes = serde_json::to_vec(&pod(i)).expect("json");
        store
            .apply(serde_json::from_slice::<RawObject>(&bytes).expect("decode"))
            .expect("apply");
    }
    let after = rss_bytes().unwrap_or(0);
    black_box(&store);
    println!("{}", after.saturating_sub(before) as f64 / n as f64);
}

/// Resident set size of this process, from /proc/self/statm (Linux).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Throughput when each reconcile waits `io` (an API call), to show what the concurrency limit buys.
fn bench_queue_io(workers: usize, keys: usize, io: Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let queue: WorkQueue<u64> = WorkQueue::default();
        for k in 0..keys as u64 {
            queue.add(k, Reason::Resync);
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (d, q) = (done.clone(), queue.clone());
        let t = Instant::now();
        run_workers(queue.clone(), workers, move |_item: Item<u64>| {
            let (d, q) = (d.clone(), q.clone());
            async move {
                tokio::time::sleep(io).await;
                if d.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == keys {
                    q.shutdown();
                }
                Ok::<_, String>(Action::done())
            }
        })
        .await;
        let took = t.elapsed();
        row(
            &format!(
                "reconcile waiting {} ms, {workers} worker(s)",
                io.as_millis()
            ),
            keys,
            &format!("{:.0} keys/s", keys as f64 / took.as_secs_f64()),
            "concurrency limit at work",
        );
    });
}

fn bench_queue(workers: usize, keys: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let queue: WorkQueue<u64> = WorkQueue::default();
        let t = Instant::now();
        for k in 0..keys as u64 {
            queue.add(k, Reason::Resync);
        }
        let add = t.elapsed();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let d = done.clone();
        let q = queue.clone();
        let t = Instant::now();
        let run = tokio::spawn(run_workers(
            queue.clone(),
            workers,
            move |_item: Item<u64>| {
                let d = d.clone();
                let q = q.clone();
                async move {
                    if d.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == keys {
                        q.shutdown();
                    }
                    Ok::<_, String>(Action::done())
                }
            },
        ));
        run.await.expect("workers");
        let drain = t.elapsed();
        row(
            &format!("queue add (dedup map + deque), {workers} worker(s)"),
            keys,
            &per_op(add, keys),
            "per add",
        );
        row(
            &format!("queue get+reconcile(no-op)+done, {workers} worker(s)"),
            keys,
            &format!("{:.0} keys/s", keys as f64 / drain.as_secs_f64()),
            &per_op(drain, keys),
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--rss") {
        let n = args
            .get(pos + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        rss_child(n);
        return;
    }
    let profile = if cfg!(debug_assertions) {
        "debug (figures not representative)"
    } else {
        "release"
    };
    println!(
        "kubewasm-controller benchmark, {profile} build, {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| {:<44} | {:>7} | {:>14} | note |",
        "operation", "objects", "time / value"
    );
    println!("|{:-<46}|{:-<9}|{:-<16}|------|", "", "", "");
    for n in [10_000, 100_000] {
        bench_store(n);
    }
    for workers in [1, 4] {
        bench_queue(workers, 200_000);
    }
    for workers in [1, 4, 16] {
        bench_queue_io(workers, 2_000, Duration::from_millis(1));
    }
}
