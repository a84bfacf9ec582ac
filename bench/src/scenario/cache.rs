//! Figures 1 and 2: a cache get of a Pod and lists of 1k Pods from inside a plugin, against a
//! kube-rs reflector `Store<Pod>` over the same API server.
//!
//! kubewasm: the `bench` test plugin called in a loop (a fresh sandbox per call, as every
//! reconcile gets) over the real informer store; each call runs the read N times (`<op>.x<N>`)
//! and each sample is the call's time divided by N, so the call's own cost is spread over N
//! reads rather than subtracted as a separate, noisy no-op call. Native: the same read on the reflector
//! store, whose objects are already decoded structs (so the native "decoded" read is an `Arc`
//! clone); separate rows give what decoding the same JSON costs natively with serde_json.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{ObjectRef, Store};
use kubewasm::ClusterBackend;
use kubewasm::runtime::{Backend, Kind, Plugin, Reason, Request};
use kubewasm_controller::{FieldPath, InformerFactory, InformerKey, InformerOptions};

use super::{Ctx, micros, millis};
use crate::fixture::Cluster;
use crate::gopeer::{CacheOp, cache_side};
use crate::peer::pod_reflector;
use crate::pod::PodSpec;
use crate::report::{Figure, Goal, Side, Unit};

/// The node every listed Pod runs on (the by-index figures look it up).
pub const NODE: &str = "node-0";
/// The `app` label every listed Pod has (the by-label figures select `app=bench`).
pub const APP: &str = "bench";
/// The namespace of the listed Pods; Pod `pod-0` there is the one the get figures read.
pub const NAMESPACE: &str = "bench";

/// The operations of the `bench` plugin each figure calls, and the native read it is set
/// against.
struct ListCase {
    id: String,
    title: String,
    op: String,
    form: ListForm,
    native: fn(&Store<Pod>) -> Vec<Arc<Pod>>,
    native_label: String,
    /// The Go peer's operation for the same list (`bench-go-peer cache`).
    go_op: String,
}

/// One way a plugin reads a list: the op suffix, how many lists one guest call runs, the goal.
#[derive(Clone, Copy)]
struct ListForm {
    /// The figure and op suffix: `raw`, `decoded`, `fields`, `keys`, `count`.
    name: &'static str,
    /// What the title says it reads.
    what: &'static str,
    /// Lists per guest call: enough that the call's own ~10 µs is under 1% of a sample (a
    /// decoded list takes tens of ms, so one is enough there), few enough to keep quick mode
    /// quick.
    per_call: usize,
    /// Native reads per timed batch (a count or a key list is too short to time alone).
    native_batch: u32,
    /// The goal on kubewasm's p95, in ms.
    goal: Option<f64>,
    /// Added to the figure's note.
    note: &'static str,
}

impl ListForm {
    const ALL: [Self; 5] = [
        Self {
            name: "raw",
            what: "raw JSON",
            per_call: 5,
            native_batch: 1,
            goal: Some(0.5),
            note: "",
        },
        Self {
            name: "decoded",
            what: "decoded into k8s-openapi Pods",
            per_call: 1,
            native_batch: 1,
            goal: Some(10.0),
            note: "; the goal for a full decode is 10 ms",
        },
        Self {
            name: "fields",
            what: "only what the plugin needs (5 fields), decoded",
            per_call: 5,
            native_batch: 1,
            goal: Some(0.5),
            note: "",
        },
        Self {
            name: "keys",
            what: "only their keys (namespace, name), answered by the host",
            per_call: 10,
            native_batch: 1,
            goal: Some(0.5),
            note: "; WIT 0.2 cache.keys (SDK Api::keys): no object crosses into the sandbox",
        },
        Self {
            name: "count",
            what: "only how many, answered by the host",
            per_call: 100,
            native_batch: 10,
            goal: Some(0.5),
            note: "; WIT 0.2 cache.count (SDK Api::count)",
        },
    ];

    /// The Go peer's form of the same list: a decoded list is deep-copied (objects a controller
    /// may change, as the plugin's are), raw and projected reads are the lister's objects.
    fn go_form(self) -> &'static str {
        match self.name {
            "decoded" => "copied",
            "keys" => "keys",
            "count" => "count",
            _ => "objects",
        }
    }

    /// What the native label adds: the reflector's objects are decoded already.
    fn native_note(self) -> &'static str {
        match self.name {
            "raw" => "",
            "keys" => ", then an ObjectRef per Pod",
            "count" => ", then its length",
            _ => " (objects already decoded)",
        }
    }
}

fn pods_kind() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
        namespaced: true,
    }
}

/// Runs figures 1 and 2.
///
/// # Errors
/// When the cluster, the plugin or a native read fails.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let n = ctx.sizes.list_pods;
    let cluster = Cluster::start().await?;
    // The listed Pods, and as many others (another namespace, node and app) that every index
    // and selector must skip.
    let listed = (0..n).map(|i| PodSpec::new(i, NAMESPACE, NODE, APP));
    let others = (0..n).map(|i| PodSpec::new(i, "other", "node-1", "api"));
    cluster.create_pods(listed.chain(others)).await?;

    // kubewasm: the real informer store (with the host's spec.nodeName index) behind the plugin.
    let factory = InformerFactory::new(cluster.client.clone());
    let field = FieldPath::parse("spec.nodeName").context("the index path")?;
    let informer = factory
        .acquire(
            InformerKey::all(ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("", "v1", "Pod"),
                "pods",
            )),
            InformerOptions {
                indexes: vec![(field.canonical(), field)],
                ..InformerOptions::default()
            },
        )
        .context("starting the Pod informer")?;
    informer.wait_synced().await;
    // The host's own backend, as the manager builds it for a plugin (the bench plugin only reads).
    let backend: Arc<dyn Backend> = Arc::new(ClusterBackend::new(
        cluster.client.clone(),
        [(&pods_kind(), informer.clone())],
        "kubewasm-bench".to_owned(),
    ));
    let runtime = ctx.runtime()?;
    let plugin = kubewasm::loader::load_file(
        &runtime,
        &ctx.test_plugin(super::CACHE_PLUGIN)?,
        kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
    )
    .await
    .context("loading the bench plugin")?;

    // Native: a reflector over the same server.
    let (store, reflector_task) = pod_reflector(cluster.client.clone());
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    while store.len() < 2 * n {
        if Instant::now() > deadline {
            bail!(
                "the native reflector holds {} of {} Pods after 5 minutes",
                store.len(),
                2 * n
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    let s = &ctx.sizes;
    // Go: client-go's informer and lister over the same server, in a process of its own.
    let go_ops = go_cache(ctx, &cluster, 2 * n).await?;
    let go_ops = go_ops.as_ref().map_err(String::as_str);
    let mut figures = Vec::new();

    // Figure 1: get.
    let pod0 = ObjectRef::<Pod>::new("pod-0").within(NAMESPACE);
    let native_get = batched_micros(s.get_samples, 100, || {
        black_box(store.get(&pod0));
    });
    let raw_bytes = informer
        .store()
        .get(Some(NAMESPACE), "pod-0")
        .map(|e| e.json().clone())
        .context("pod-0 is not cached")?;
    let native_decode = batched_micros(s.get_samples, 10, || {
        black_box(serde_json::from_slice::<Pod>(&raw_bytes).ok());
    });
    let get_raw = get_samples(&plugin, &backend, "get-raw", s.get_samples).await?;
    let get_decoded = get_samples(&plugin, &backend, "get-decoded", s.get_samples).await?;
    let kube_get = "kube-rs reflector Store::get (an Arc clone of a decoded Pod)";
    figures.push(
        Figure::new(
            "cache.get.raw",
            1,
            "cache get of a Pod, raw bytes",
            Unit::Micros,
            per_get("bench plugin get-raw", get_raw.as_deref()),
            Side::from_samples(kube_get, &native_get),
        )
        .go(cache_side(go_ops, "get", 1e3))
        .goal(Goal::P95AtMost { value: 1.0 })
        .note(format!(
            "{} B Pod; anchor: client-go cache hit 35 µs p95; each sample is one guest call of {GETS_PER_CALL} gets, divided by {GETS_PER_CALL}",
            raw_bytes.len()
        )),
    );
    figures.push(
        Figure::new(
            "cache.get.decoded",
            1,
            "cache get of a Pod, decoded into k8s-openapi Pod",
            Unit::Micros,
            per_get("bench plugin get-decoded", get_decoded.as_deref()),
            Side::from_samples(kube_get, &native_get),
        )
        .go(cache_side(go_ops, "get", 1e3))
        .goal(Goal::P95AtMost { value: 15.0 })
        .note("native objects are decoded once, when the watch event arrives: its get decodes nothing"),
    );
    let get_fields = get_samples(&plugin, &backend, "get-fields", s.get_samples).await?;
    figures.push(
        Figure::new(
            "cache.get.fields",
            1,
            "cache get of a Pod, only what the plugin needs (5 fields), decoded",
            Unit::Micros,
            per_get("bench plugin get-fields", get_fields.as_deref()),
            Side::from_samples(kube_get, &native_get),
        )
        .go(cache_side(go_ops, "get", 1e3))
        .goal(Goal::P95AtMost { value: 10.0 }),
    );
    figures.push(
        Figure::new(
            "cache.get.decoded_vs_serde",
            1,
            "cache get decoded, against a native serde_json decode of the same bytes",
            Unit::Micros,
            per_get("bench plugin get-decoded", get_decoded.as_deref()),
            Side::from_samples(
                "serde_json::from_slice::<Pod> of the cached bytes, native",
                &native_decode,
            ),
        )
        .go(cache_side(go_ops, "get.decode", 1e3)),
    );

    // Figure 2: lists. Each guest call runs the list `per_call` times and each sample is the
    // call's time divided by that, as for the gets: no separate no-op is subtracted.
    let mut cases = Vec::new();
    for form in ListForm::ALL {
        let native_note = form.native_note();
        cases.push(ListCase {
            id: format!("list.namespace.{}", form.name),
            title: format!("list 1k Pods of a namespace, {}", form.what),
            op: format!("list-{}", form.name),
            form,
            native: by_namespace,
            go_op: format!("list.namespace.{}", form.go_form()),
            native_label: format!("reflector Store::state_filter on namespace{native_note}"),
        });
        cases.push(ListCase {
            id: format!("list.index.{}", form.name),
            title: format!("list 1k Pods by index (spec.nodeName), {}", form.what),
            op: format!("list-index-{}", form.name),
            form,
            native: by_node,
            go_op: format!("list.index.{}", form.go_form()),
            native_label: format!(
                "reflector Store::state_filter on spec.nodeName (kube-rs stores have no indexes){native_note}"
            ),
        });
        cases.push(ListCase {
            id: format!("list.label.{}", form.name),
            title: format!("list 1k Pods by label selector, {}", form.what),
            op: format!("list-label-{}", form.name),
            form,
            native: by_label,
            go_op: format!("list.label.{}", form.go_form()),
            native_label: format!(
                "reflector Store::state_filter on namespace and app label{native_note}"
            ),
        });
    }
    for case in &cases {
        let found = (case.native)(&store).len();
        if found != n {
            bail!(
                "the native list for {} found {found} Pods, not {n}",
                case.id
            );
        }
        let native = batched_millis(s.list_samples, case.form.native_batch, || {
            match case.form.name {
                "keys" => {
                    black_box(
                        (case.native)(&store)
                            .iter()
                            .map(|p| ObjectRef::from_obj(&**p))
                            .collect::<Vec<_>>(),
                    );
                }
                "count" => {
                    black_box((case.native)(&store).len());
                }
                _ => {
                    black_box((case.native)(&store));
                }
            }
        });
        let wasm = looped_samples(
            &plugin,
            &backend,
            &case.op,
            case.form.per_call,
            s.list_samples,
            millis,
        )
        .await?;
        let mut figure = Figure::new(
            &case.id,
            2,
            &case.title,
            Unit::Millis,
            per_op(
                &format!("bench plugin {}", case.op),
                case.form.per_call,
                wasm.as_deref(),
            ),
            Side::from_samples(&case.native_label, &native),
        )
        .go(cache_side(go_ops, &case.go_op, 1e6))
        .note(format!(
            "{n} Pods listed out of {} cached; anchor: client-go 1.7 ms p95{}",
            2 * n,
            case.form.note
        ));
        if let Some(goal) = case.form.goal {
            figure = figure.goal(Goal::P95AtMost { value: goal });
        }
        figures.push(figure);
    }
    let entries = informer.store().list(Some(NAMESPACE), None);
    let list_json = {
        let mut v = b"[".to_vec();
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                v.push(b',');
            }
            v.extend_from_slice(e.json());
        }
        v.push(b']');
        v
    };
    let native_list_decode = batched_millis(s.list_samples, 1, || {
        black_box(serde_json::from_slice::<Vec<Pod>>(&list_json).ok());
    });
    let decoded = ListForm::ALL
        .into_iter()
        .find(|f| f.name == "decoded")
        .map_or(1, |f| f.per_call);
    let list_decoded = looped_samples(
        &plugin,
        &backend,
        "list-decoded",
        decoded,
        s.list_samples,
        millis,
    )
    .await?;
    figures.push(
        Figure::new(
            "list.namespace.decoded_vs_serde",
            2,
            "list 1k Pods decoded, against a native serde_json decode of the same bytes",
            Unit::Millis,
            per_op(
                "bench plugin list-decoded",
                decoded,
                list_decoded.as_deref(),
            ),
            Side::from_samples(
                "serde_json::from_slice::<Vec<Pod>> of the cached bytes, native",
                &native_list_decode,
            ),
        )
        .go(cache_side(go_ops, "list.decode", 1e6)),
    );

    reflector_task.abort();
    drop(informer);
    cluster.stop().await;
    Ok(figures)
}

/// Runs `bench-go-peer cache` over the cluster once `pods` Pods are cached; its operations by
/// id, or why there are none (the peer is not built). Checks that every list saw the 1k Pods.
async fn go_cache(
    ctx: &Ctx,
    cluster: &Cluster,
    pods: usize,
) -> anyhow::Result<Result<HashMap<String, CacheOp>, String>> {
    let go = match ctx.go() {
        Ok(go) => go,
        Err(why) => return Ok(Err(why.to_owned())),
    };
    let dir = tempfile::tempdir().context("a temporary folder")?;
    let kubeconfig = dir.path().join("kubeconfig");
    cluster
        .server
        .write_kubeconfig(&kubeconfig)
        .context("writing the kubeconfig")?;
    let s = &ctx.sizes;
    let started = Instant::now();
    let ops = go
        .cache(&kubeconfig, pods, s.get_samples, s.list_samples)
        .await?;
    eprintln!("  Go peer: {:.1?}", started.elapsed());
    for (id, op) in &ops {
        let want = match id.as_str() {
            "get" => 1,
            // Bytes decoded, not Pods.
            "get.decode" | "list.decode" => continue,
            _ => pods / 2,
        };
        if op.found != want {
            bail!("the Go peer's {id} saw {} Pods, not {want}", op.found);
        }
    }
    Ok(Ok(ops))
}

fn by_namespace(store: &Store<Pod>) -> Vec<Arc<Pod>> {
    store.state_filter(|p| p.metadata.namespace.as_deref() == Some(NAMESPACE))
}

fn by_node(store: &Store<Pod>) -> Vec<Arc<Pod>> {
    store.state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE))
}

fn by_label(store: &Store<Pod>) -> Vec<Arc<Pod>> {
    store.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(NAMESPACE)
            && p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .is_some_and(|a| a == APP)
    })
}

/// Gets per guest call in the get figures: the call's own cost (~10 µs) shrinks to 1/100 of it.
const GETS_PER_CALL: usize = 100;

/// `n` samples of one get by operation `op` (see [`looped_samples`]), in µs.
async fn get_samples(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    n: usize,
) -> anyhow::Result<Option<Vec<f64>>> {
    looped_samples(plugin, backend, op, GETS_PER_CALL, n, micros).await
}

/// `n` samples of one run of operation `op` in `unit`: each is one guest call running it
/// `per_call` times (`<op>.x<N>`), divided by `per_call`; `None` when the plugin lacks `op`.
///
/// # Errors
/// When a call fails for another reason.
async fn looped_samples(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    per_call: usize,
    n: usize,
    unit: fn(std::time::Duration) -> f64,
) -> anyhow::Result<Option<Vec<f64>>> {
    let looped = format!("{op}.x{per_call}");
    let samples = call_samples(plugin, backend, &looped, n, unit).await?;
    Ok(samples.map(|s| s.into_iter().map(|t| t / per_call as f64).collect()))
}

/// The kubewasm side of a get figure, or why there is none.
fn per_get(label: &str, samples: Option<&[f64]>) -> Side {
    per_op(label, GETS_PER_CALL, samples)
}

/// The kubewasm side of a looped figure (`per_call` runs in one guest call), or why there is
/// none.
fn per_op(label: &str, per_call: usize, samples: Option<&[f64]>) -> Side {
    let label = if per_call == 1 {
        format!("{label}, one per call")
    } else {
        format!("{label}, mean of {per_call} in one call")
    };
    match samples {
        Some(s) => Side::from_samples(label, s),
        None => Side::missing(
            label,
            "the bench plugin has no such operation yet (plugins/testing/bench)",
        ),
    }
}

/// Times `n` calls of operation `op` (after a warm-up), each in `unit`; `None` when the plugin
/// does not know the operation.
///
/// # Errors
/// When a call fails for another reason.
async fn call_samples(
    plugin: &Plugin,
    backend: &Arc<dyn Backend>,
    op: &str,
    n: usize,
    unit: fn(std::time::Duration) -> f64,
) -> anyhow::Result<Option<Vec<f64>>> {
    let call = || plugin.reconcile(Arc::clone(backend), Request::new("", op, Reason::Resync));
    match call().await {
        Ok(_) => {}
        Err(e) if e.to_string().contains("unknown operation") => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("bench plugin operation {op}")),
    }
    for _ in 0..(n / 10).clamp(1, 50) {
        call()
            .await
            .with_context(|| format!("bench plugin operation {op}"))?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        call()
            .await
            .with_context(|| format!("bench plugin operation {op}"))?;
        samples.push(unit(start.elapsed()));
    }
    Ok(Some(samples))
}

/// `n` samples, each the mean time of `batch` calls of `f`, in µs (single native calls are too
/// short to time one by one).
fn batched_micros(n: usize, batch: u32, mut f: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            micros(start.elapsed() / batch)
        })
        .collect()
}

/// As [`batched_micros`], in ms.
fn batched_millis(n: usize, batch: u32, f: impl FnMut()) -> Vec<f64> {
    batched_micros(n, batch, f)
        .into_iter()
        .map(|us| us / 1e3)
        .collect()
}
