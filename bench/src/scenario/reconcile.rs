//! Figures 3 and 4: reconcile throughput (no-op and realistic) and event-to-reconcile-start
//! latency, kubewasm's manager running the bench-peer-ops plugin against a kube-runtime
//! `Controller` with the same logic, each on a fresh embedded API server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubewasm::runtime::Plugin;
use kubewasm::{Manager, ManagerConfig};
use serde_json::json;

use super::{CONCURRENCY, Ctx, PEER_PLUGIN, micros, millis};
use crate::cpu::CpuClock;
use crate::fixture::Cluster;
use crate::peer::NativeController;
use crate::report::{Figure, Goal, Side, Unit};

/// How long a run may take before the scenario gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One side of a comparison: kubewasm's manager with the plugin, or the native controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Kubewasm,
    Native,
}

/// A controller of either kind, running.
enum Running {
    Kubewasm(Manager),
    Native(NativeController),
}

impl Running {
    fn start(which: Which, ctx: &Ctx, cluster: &Cluster, plugin: &Plugin) -> anyhow::Result<Self> {
        Ok(match which {
            Which::Kubewasm => {
                let manager = Manager::new(cluster.client.clone(), ManagerConfig::default());
                manager
                    .start(plugin.clone())
                    .context("starting the plugin")?;
                Self::Kubewasm(manager)
            }
            Which::Native => Self::Native(NativeController::spawn(
                cluster.client.clone(),
                Arc::clone(&ctx.probe),
                CONCURRENCY,
            )),
        })
    }

    async fn stop(self) {
        match self {
            Self::Kubewasm(m) => m.shutdown().await,
            Self::Native(c) => c.stop(),
        }
    }
}

/// Figure 3: keys/s for no-op and realistic reconciles.
///
/// # Errors
/// When a cluster, the plugin or a run fails or times out.
pub async fn throughput(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let runtime = ctx.runtime()?;
    let plugin = kubewasm::loader::load_file(
        &runtime,
        &ctx.test_plugin(PEER_PLUGIN)?,
        kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
    )
    .await
    .context("loading the bench-peer-ops plugin")?;
    let n = ctx.sizes.throughput_keys;
    let mut figures = Vec::new();
    for (id, title, prefix, goal, note) in [
        (
            "reconcile.noop.throughput",
            "no-op reconcile throughput",
            "noop",
            0.5,
            "",
        ),
        (
            "reconcile.realistic.throughput",
            "realistic reconcile throughput (get + decode + merge-patch through the API server)",
            "patch",
            0.9,
            "each key is patched once; the watch event of that patch reconciles it again (a no-op then), on both sides",
        ),
    ] {
        let mut rates = Vec::new();
        let mut cpu = Vec::new();
        for which in [Which::Kubewasm, Which::Native] {
            let mut side_rates = Vec::new();
            let mut side_cpu = Vec::new();
            for _ in 0..ctx.sizes.throughput_rounds {
                let r = round(ctx, which, &plugin, prefix, n).await?;
                side_rates.push(r.keys_per_sec);
                side_cpu.push(r.cpu_per_key_us);
            }
            rates.push(side_rates);
            cpu.push(side_cpu);
        }
        let (go_rates, go_cpu) = match go_rounds(ctx, prefix, n).await? {
            Ok((rates, cpu)) => (
                Side::from_samples(go_label(), &rates),
                Side::from_samples(go_label(), &cpu),
            ),
            Err(why) => (
                Side::missing("Go peer", &why),
                Side::missing("Go peer", why),
            ),
        };
        let kubewasm =
            format!("kubewasm Manager + bench-peer-ops plugin, concurrency {CONCURRENCY}");
        let native = format!("kube-runtime Controller, concurrency {CONCURRENCY}");
        figures.push(
            Figure::new(
                id,
                3,
                title,
                Unit::KeysPerSec,
                Side::from_samples(&kubewasm, &rates[0]),
                Side::from_samples(&native, &rates[1]),
            )
            .go(go_rates)
            .goal(Goal::RatioAtLeast { value: goal })
            .note(format!(
                "{n} pre-created ConfigMaps per round, one round per sample on a fresh API server; keys/s = {n} / (first reconcile start -> {n}th distinct key done). {note}"
            )),
        );
        figures.push(
            Figure::new(
                &format!("{id}.cpu_per_key"),
                3,
                &format!("{title}: CPU per key"),
                Unit::Micros,
                Side::from_samples(&kubewasm, &cpu[0]),
                Side::from_samples(&native, &cpu[1]),
            )
            .go(go_cpu)
            .note(format!(
                "CPU time of the whole bench process (API server, client and controller share it) from the controller's start to the {n}th distinct key done, / {n}; the API server's share is the same work on both sides, so the difference is what the controller costs; Go: the bench process (the API server) over the same window plus the Go process from its manager's start"
            )),
        );
    }
    Ok(figures)
}

/// What one throughput round measured.
struct Round {
    keys_per_sec: f64,
    /// CPU microseconds of the whole process per key.
    cpu_per_key_us: f64,
}

/// One throughput round: `n` ConfigMaps named `{prefix}-{i}` on a fresh server, then the
/// controller starts.
async fn round(
    ctx: &Ctx,
    which: Which,
    plugin: &Plugin,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Round> {
    let cluster = Cluster::start().await?;
    cluster
        .create_config_maps("tput", (0..n).map(|i| format!("{prefix}-{i}")))
        .await?;
    ctx.probe.reset(n);
    let cpu = CpuClock::now().context("reading this process's CPU time")?;
    let running = Running::start(which, ctx, &cluster, plugin)?;
    let deadline = Instant::now() + RUN_TIMEOUT;
    let (elapsed, cpu) = loop {
        let run = ctx.probe.run();
        if let Some(elapsed) = run.elapsed {
            break (
                elapsed,
                cpu.elapsed().context("reading this process's CPU time")?,
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{which:?} {prefix} round: only {} of {n} keys reconciled after {RUN_TIMEOUT:?}",
                run.distinct
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    running.stop().await;
    cluster.stop().await;
    Ok(Round {
        keys_per_sec: n as f64 / elapsed.as_secs_f64(),
        cpu_per_key_us: micros(cpu) / n as f64,
    })
}

/// The Go peer's label in the throughput figures.
fn go_label() -> String {
    format!("controller-runtime Reconciler (Go), MaxConcurrentReconciles {CONCURRENCY}")
}

/// The Go peer's throughput rounds: keys/s and CPU µs per key, one per round; or why there are
/// none (the peer is not built).
async fn go_rounds(
    ctx: &Ctx,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Result<(Vec<f64>, Vec<f64>), String>> {
    let go = match ctx.go() {
        Ok(go) => go,
        Err(why) => return Ok(Err(why.to_owned())),
    };
    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    let started = Instant::now();
    for _ in 0..ctx.sizes.throughput_rounds {
        let cluster = Cluster::start().await?;
        cluster
            .create_config_maps("tput", (0..n).map(|i| format!("{prefix}-{i}")))
            .await?;
        let dir = tempfile::tempdir().context("a temporary folder")?;
        let kubeconfig = dir.path().join("kubeconfig");
        cluster
            .server
            .write_kubeconfig(&kubeconfig)
            .context("writing the kubeconfig")?;
        // The API server's share is this process's CPU over the Go peer's run.
        let server_cpu = CpuClock::now().context("reading this process's CPU time")?;
        let round = go
            .reconcile(&kubeconfig, n, CONCURRENCY)
            .await
            .with_context(|| format!("the Go peer's {prefix} round"))?;
        let server_cpu = server_cpu
            .elapsed()
            .context("reading this process's CPU time")?;
        cluster.stop().await;
        rates.push(n as f64 / round.secs);
        cpu.push((micros(server_cpu) + round.cpu_ns / 1e3) / n as f64);
    }
    eprintln!("  Go peer, {prefix}: {:.1?}", started.elapsed());
    Ok(Ok((rates, cpu)))
}

/// Figure 4: from a write sent to the API server to the start of the reconcile it causes, with
/// a writer at the mode's event rate.
///
/// # Errors
/// When a cluster, the plugin, a write or a run fails.
pub async fn latency(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let runtime = ctx.runtime()?;
    let plugin = kubewasm::loader::load_file(
        &runtime,
        &ctx.test_plugin(PEER_PLUGIN)?,
        kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE,
    )
    .await
    .context("loading the bench-peer-ops plugin")?;
    let mut sides = Vec::new();
    let mut rates = Vec::new();
    for which in [Which::Kubewasm, Which::Native] {
        let (samples, rate) = latency_side(ctx, which, &plugin).await?;
        sides.push(samples);
        rates.push(rate);
    }
    let s = &ctx.sizes;
    Ok(vec![Figure::new(
        "event.latency",
        4,
        "event to reconcile start latency",
        Unit::Millis,
        Side::from_samples("kubewasm (reconcile span opened)", &sides[0]),
        Side::from_samples("kube-runtime Controller (reconcile fn entered)", &sides[1]),
    )
    .note(format!(
        "merge patches to {} ConfigMaps at {} events/s for {} s (achieved {:.0} and {:.0}/s); measured from just before the patch is sent to the start of the reconcile that sees it",
        s.event_keys, s.event_rate, s.event_secs, rates[0], rates[1]
    ))])
}

async fn latency_side(ctx: &Ctx, which: Which, plugin: &Plugin) -> anyhow::Result<(Vec<f64>, f64)> {
    let s = &ctx.sizes;
    let cluster = Cluster::start().await?;
    cluster
        .create_config_maps("lat", (0..s.event_keys).map(|i| format!("lat-{i}")))
        .await?;
    ctx.probe.reset(s.event_keys);
    let running = Running::start(which, ctx, &cluster, plugin)?;
    // The initial list reconciles every key once; events start after that.
    let deadline = Instant::now() + RUN_TIMEOUT;
    while ctx.probe.run().elapsed.is_none() {
        if Instant::now() > deadline {
            bail!("{which:?}: the initial reconciles did not finish in {RUN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = ctx.probe.take_latencies();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "lat");
    let total = s.event_rate as usize * s.event_secs as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / s.event_rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let name = format!("lat-{}", i % s.event_keys);
        let api = api.clone();
        ctx.probe.sent(&format!("lat/{name}"), Instant::now());
        writes.spawn(async move {
            let patch = Patch::Merge(json!({"data": {"n": i.to_string()}}));
            api.patch(&name, &PatchParams::default(), &patch).await
        });
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    while let Some(write) = writes.join_next().await {
        write.context("a writer task")?.context("a patch")?;
    }
    // Wait until every write has been seen by a reconcile (or give up on the stragglers).
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx.probe.pending() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unseen = ctx.probe.pending();
    if unseen > 0 {
        eprintln!("  {which:?}: {unseen} written keys never reconciled within 10 s");
    }
    let latencies = ctx.probe.take_latencies();
    running.stop().await;
    cluster.stop().await;
    Ok((latencies.into_iter().map(millis).collect(), rate))
}
