//! Test plugin for the benchmarks: the request's name picks the operation.
//!
//! # Naming
//! A request named `<op>` or `<op>.<anything>` runs `<op>` (the text before the first `.`),
//! so many distinct keys (`noop.0`, `noop.1`, ...) can run the same operation, e.g. for
//! throughput. `<op>.x<N>` (e.g. `get-raw.x100`) runs it N times in the one call (the
//! sandbox has no clock: the benchmark divides the call's time by N, so the call's own cost
//! shrinks to 1/N of it). An unknown op fails the reconcile with
//! `other("bench: unknown operation ...")`.
//!
//! # Fixture the ops expect
//! Pods in namespace `bench`, one named `pod-0`, the listed ones labelled `app=bench` and
//! with `spec.nodeName: node-0` (the manifest declares the index `by-node` on
//! `spec.nodeName`). A list that comes back empty fails the reconcile (so a wrong fixture is
//! loud, never a fast no-op).
//!
//! # Operations
//! | op                   | what it does                                                                 |
//! |----------------------|------------------------------------------------------------------------------|
//! | `noop`               | nothing (the cost of a reconcile)                                            |
//! | `get-raw`            | cache get of `bench/pod-0`, JSON bytes only                                  |
//! | `get-decoded`        | cache get of `bench/pod-0`, decoded into k8s-openapi's `Pod`                 |
//! | `get-fields`         | cache get of `bench/pod-0` projected to [`FIELDS`], decoded into `Pod`       |
//! | `list-raw`           | cache list of every Pod in `bench`, JSON array only                          |
//! | `list-decoded`       | the same, decoded into `Vec<Pod>`                                            |
//! | `list-fields`        | the same projected to [`FIELDS`], decoded into `Vec<Pod>`                    |
//! | `list-index-raw`     | cache list by index `by-node` = `node-0`, JSON array only                    |
//! | `list-index-decoded` | the same, decoded into `Vec<Pod>`                                            |
//! | `list-index-fields`  | the same projected to [`FIELDS`], decoded into `Vec<Pod>`                    |
//! | `list-label-raw`     | cache list of Pods in `bench` with label selector `app=bench`, JSON only     |
//! | `list-label-decoded` | the same, decoded into `Vec<Pod>`                                            |
//! | `list-label-fields`  | the same projected to [`FIELDS`], decoded into `Vec<Pod>`                    |
//! | `list-keys`          | the keys (namespace, name) of every Pod in `bench`, answered by the host      |
//! | `list-count`         | how many Pods `bench` holds, answered by the host                            |
//! | `list-index-keys`    | the keys by index `by-node` = `node-0`                                       |
//! | `list-index-count`   | the count by index `by-node` = `node-0`                                      |
//! | `list-label-keys`    | the keys of the Pods in `bench` with label selector `app=bench`              |
//! | `list-label-count`   | the count of the Pods in `bench` with label selector `app=bench`             |
//! | `list-index-summary` | `list-index-fields` decoded into a small struct of just those fields instead |
//! |                      | of `Pod` (the cheapest way to read a list: what a tuned plugin does)         |
//! | `fresh`              | fails unless the guest's memory is fresh: bumps a static counter and fails   |
//! |                      | if an earlier reconcile already bumped it                                    |
//! | `realistic`          | get the request's own Pod (namespace of the request, `bench` when empty;    |
//! |                      | name = the full request name, e.g. `realistic.7`) from the cache, decode it, |
//! |                      | then merge-patch the annotation `bench/seen=<its resourceVersion>` through   |
//! |                      | the API server. A missing Pod is a no-op (deleted meanwhile).                |
//!
//! "Projected" means only what a typical plugin reads: [`FIELDS`] = `metadata.name`,
//! `metadata.namespace`, `metadata.labels`, `spec.nodeName`, `status.phase` (the host adds
//! apiVersion, kind, resourceVersion and uid).

use k8s_openapi::api::core::v1::Pod;
use kubewasm_sdk::{
    Action, Api, Error, ListParams, Manifest, Patch, Plugin, Request, Result, Verb,
};

/// The fields the `-fields` operations ask for.
pub const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.labels",
    "spec.nodeName",
    "status.phase",
];

const NAMESPACE: &str = "bench";
const POD: &str = "pod-0";
const INDEX: &str = "by-node";
const NODE: &str = "node-0";
const SELECTOR: &str = "app=bench";

struct Bench;

/// [`FIELDS`] of a Pod, borrowing its strings from the JSON (no copies).
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read only through black_box
struct PodSummary<'a> {
    #[serde(borrow)]
    metadata: SummaryMeta<'a>,
    #[serde(borrow, default)]
    spec: Option<SummarySpec<'a>>,
    #[serde(borrow, default)]
    status: Option<SummaryStatus<'a>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct SummaryMeta<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    labels: std::collections::BTreeMap<std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct SummarySpec<'a> {
    #[serde(borrow, default, rename = "nodeName")]
    node_name: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct SummaryStatus<'a> {
    #[serde(borrow, default)]
    phase: Option<std::borrow::Cow<'a, str>>,
}

/// Bumped by `fresh`; a reconcile that finds it set runs in memory an earlier one used.
static TOUCHED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn fresh() -> Result<()> {
    let before = TOUCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if before != 0 {
        return Err(Error::other(format!(
            "bench: memory is not fresh (a static already counted {before} reconciles)"
        )));
    }
    Ok(())
}

fn nonempty<T>(items: Vec<T>, what: &str) -> Result<Vec<T>> {
    if items.is_empty() {
        return Err(Error::other(format!("bench: {what} returned no Pods")));
    }
    Ok(items)
}

fn nonzero(count: u64, what: &str) -> Result<u64> {
    if count == 0 {
        return Err(Error::other(format!("bench: {what} counted no Pods")));
    }
    Ok(count)
}

fn nonempty_raw(json: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    if json.as_slice() == b"[]" {
        return Err(Error::other(format!("bench: {what} returned no Pods")));
    }
    Ok(json)
}

fn found<T>(item: Option<T>) -> Result<T> {
    item.ok_or_else(|| Error::other(format!("bench: Pod {NAMESPACE}/{POD} is missing")))
}

fn realistic(req: &Request) -> Result<()> {
    let namespace = if req.namespace.is_empty() {
        NAMESPACE
    } else {
        req.namespace.as_str()
    };
    let pods = Api::<Pod>::namespaced(namespace);
    let Some(pod) = pods.get(&req.name)? else {
        return Ok(());
    };
    let rv = pod.metadata.resource_version.unwrap_or_default();
    let patch = Patch::merge(serde_json::json!({
        "metadata": {"annotations": {"bench/seen": rv}}
    }))?;
    std::hint::black_box(pods.patch(&req.name, &patch)?);
    Ok(())
}

impl Plugin for Bench {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Pod>()
            .index::<Pod>(INDEX, "spec.nodeName")
            .permit::<Pod>(&[Verb::Patch])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let mut parts = req.name.split('.');
        let op = parts.next().unwrap_or_default();
        // `<op>.x<N>` runs the operation N times in this one call: the benchmark divides the
        // call's time by N to get one operation's cost, without subtracting a separate call.
        let times = parts
            .next()
            .and_then(|p| p.strip_prefix('x'))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1);
        for _ in 0..times {
            run(op, &req)?;
        }
        Ok(Action::done())
    }
}

/// Runs operation `op` once.
fn run(op: &str, req: &Request) -> Result<()> {
    let pods = Api::<Pod>::namespaced(NAMESPACE);
    let every = ListParams::default();
    let labelled = ListParams::default().labels(SELECTOR);
    let indexed = ListParams::default().index(INDEX, NODE);
    let anywhere = Api::<Pod>::all();
    match op {
        "noop" => {}
        "get-raw" => {
            std::hint::black_box(found(pods.get_raw(POD)?)?);
        }
        "get-decoded" => {
            std::hint::black_box(found(pods.get(POD)?)?);
        }
        "get-fields" => {
            std::hint::black_box(found(pods.get_fields::<Pod>(POD, FIELDS)?)?);
        }
        "list-raw" => {
            std::hint::black_box(nonempty_raw(pods.list_raw(&every)?, op)?);
        }
        "list-decoded" => {
            std::hint::black_box(nonempty(pods.list(&every)?, op)?);
        }
        "list-fields" => {
            let pods = pods.list_fields::<Pod>(&every, FIELDS)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "list-index-raw" => {
            let json = anywhere.list_raw(&indexed)?;
            std::hint::black_box(nonempty_raw(json, op)?);
        }
        "list-index-decoded" => {
            let pods = anywhere.list(&indexed)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "list-index-fields" => {
            let pods = anywhere.list_fields::<Pod>(&indexed, FIELDS)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "list-label-raw" => {
            let json = pods.list_raw(&labelled)?;
            std::hint::black_box(nonempty_raw(json, op)?);
        }
        "list-label-decoded" => {
            let pods = pods.list(&labelled)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "list-label-fields" => {
            let pods = pods.list_fields::<Pod>(&labelled, FIELDS)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "list-keys" => {
            std::hint::black_box(nonempty(pods.keys(&every)?, op)?);
        }
        "list-count" => {
            std::hint::black_box(nonzero(pods.count(&every)?, op)?);
        }
        "list-index-keys" => {
            std::hint::black_box(nonempty(anywhere.keys(&indexed)?, op)?);
        }
        "list-index-count" => {
            std::hint::black_box(nonzero(anywhere.count(&indexed)?, op)?);
        }
        "list-label-keys" => {
            std::hint::black_box(nonempty(pods.keys(&labelled)?, op)?);
        }
        "list-label-count" => {
            std::hint::black_box(nonzero(pods.count(&labelled)?, op)?);
        }
        "list-index-summary" => {
            let json = anywhere.list_fields_raw(&indexed, FIELDS)?;
            let pods: Vec<PodSummary<'_>> = serde_json::from_slice(&json)?;
            std::hint::black_box(nonempty(pods, op)?);
        }
        "fresh" => fresh()?,
        "realistic" => realistic(req)?,
        other => return Err(Error::other(format!("bench: unknown operation {other}"))),
    }
    Ok(())
}

kubewasm_sdk::export_plugin!(Bench);
