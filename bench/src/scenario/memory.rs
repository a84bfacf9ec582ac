//! Figures 6 and 7: host memory and time to ready, each side as its own process so the RSS is
//! its own: the release `kubewasm run` binary against the bench's embedded API server, and the
//! native peer (`kubewasm-bench peer`: a reflector over every Pod and N kube-runtime
//! ConfigMap controllers). Also the store's bytes per object from the informer store's stats.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use kubewasm_controller::{InformerFactory, InformerKey, InformerOptions};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

use super::{Ctx, PEER_PLUGIN, millis};
use crate::fixture::Cluster;
use crate::gopeer::GoPeer;
use crate::pod::PodSpec;
use crate::report::{Figure, Side, Unit};
use crate::stats::Summary;

const READY_TIMEOUT: Duration = Duration::from_secs(300);
const MIB: f64 = 1024.0 * 1024.0;

/// What one process run measured.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ready: Duration,
    rss: u64,
}

/// The two sides' processes, set up once.
struct Procs<'a> {
    ctx: &'a Ctx,
    work: &'a Path,
    kubeconfig: PathBuf,
    one: PathBuf,
    many: PathBuf,
    compile_cache: PathBuf,
}

impl Procs<'_> {
    /// Starts `kubewasm run` on the plugin folder `dir`, waits for /readyz, lets it settle and
    /// reads its RSS.
    async fn kubewasm(&self, dir: &Path) -> anyhow::Result<Sample> {
        let port = free_port()?;
        let log = self.work.join(format!("kubewasm-{port}.log"));
        let started = Instant::now();
        let mut child = Command::new(&self.ctx.kubewasm_bin)
            .arg("run")
            .arg("--plugins")
            .arg(dir)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--leader-elect=false")
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--metrics-addr", "off", "--no-watch"])
            .arg("--compile-cache")
            .arg(&self.compile_cache)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("creating the kubewasm log")?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.ctx.kubewasm_bin.display()))?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "kubewasm run exited ({status}) before it was ready: {}",
                    tail(&log)
                );
            }
            if readyz(port).await {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "kubewasm run not ready after {READY_TIMEOUT:?}: {}",
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready = started.elapsed();
        self.settle_and_measure(child, ready).await
    }

    /// Starts the native peer with `controllers` controllers and waits for its `ready` line.
    async fn native(&self, controllers: usize, pods: usize) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let mut child = Command::new(&self.ctx.self_bin)
            .arg("peer")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--controllers")
            .arg(controllers.to_string())
            .arg("--pods")
            .arg(pods.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} peer", self.ctx.self_bin.display()))?;
        let stdout = child.stdout.take().context("the peer's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
            .await
            .context("the native peer was not ready in time")?
            .context("reading the native peer's stdout")?;
        match line {
            Some(l) if l.starts_with("ready") => {}
            other => bail!("the native peer exited before it was ready (said {other:?})"),
        }
        let ready = started.elapsed();
        self.settle_and_measure(child, ready).await
    }

    /// Starts the Go peer (`bench-go-peer memory`: a controller-runtime manager caching every
    /// Pod, with `controllers` ConfigMap controllers) and waits for its `ready` line.
    async fn go(&self, go: &GoPeer, controllers: usize, pods: usize) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let mut cmd = go.command("memory", &self.kubeconfig);
        let mut child = cmd
            .arg("-controllers")
            .arg(controllers.to_string())
            .arg("-pods")
            .arg(pods.to_string())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} memory", go.bin.display()))?;
        let stdout = child.stdout.take().context("the Go peer's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
            .await
            .context("the Go peer was not ready in time")?
            .context("reading the Go peer's stdout")?;
        match line {
            Some(l) if l.starts_with("ready") => {}
            other => bail!("the Go peer exited before it was ready (said {other:?})"),
        }
        let ready = started.elapsed();
        self.settle_and_measure(child, ready).await
    }

    async fn settle_and_measure(
        &self,
        mut child: Child,
        ready: Duration,
    ) -> anyhow::Result<Sample> {
        tokio::time::sleep(match self.ctx.mode {
            crate::mode::Mode::Smoke => Duration::from_millis(200),
            _ => Duration::from_secs(1),
        })
        .await;
        let pid = child.id().context("the process exited")?;
        let rss = rss_bytes(pid).with_context(|| format!("reading the RSS of process {pid}"))?;
        let _ = child.start_kill();
        let _ = child.wait().await;
        Ok(Sample { ready, rss })
    }
}

/// Runs figures 6 and 7.
///
/// # Errors
/// When the cluster, a process or a measurement fails.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    if !ctx.kubewasm_bin.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p kubewasm` (or run `cargo xtask bench`)",
            ctx.kubewasm_bin.display()
        );
    }
    let plugin = ctx.test_plugin(PEER_PLUGIN)?;
    let work = tempfile::tempdir().context("a temporary folder")?;
    let plugins = ctx.sizes.memory_plugins;
    let one = work.path().join("one");
    let many = work.path().join("many");
    std::fs::create_dir_all(&one)?;
    std::fs::create_dir_all(&many)?;
    std::fs::copy(&plugin, one.join("bench-mem-00.wasm")).context("copying the plugin")?;
    for i in 0..plugins {
        std::fs::copy(&plugin, many.join(format!("bench-mem-{i:02}.wasm")))
            .context("copying the plugin")?;
    }
    let cluster = Cluster::start().await?;
    let kubeconfig = work.path().join("kubeconfig");
    cluster
        .server
        .write_kubeconfig(&kubeconfig)
        .context("writing the kubeconfig")?;
    let procs = Procs {
        ctx,
        work: work.path(),
        kubeconfig,
        one,
        many,
        compile_cache: work.path().join("compile-cache"),
    };
    // Warm the compile cache: every later start loads compiled code, as a restarted host does.
    procs
        .kubewasm(&procs.one)
        .await
        .context("warming the compile cache")?;

    let k_one = procs.kubewasm(&procs.one).await?;
    let k_many = procs.kubewasm(&procs.many).await?;
    let n_one = procs.native(1, 0).await?;
    let n_many = procs.native(plugins, 0).await?;
    // The Go peer with 1 and with N controllers, no Pods: (go, one, many).
    let go_empty = match ctx.go() {
        Ok(go) => Ok((
            go,
            procs.go(go, 1, 0).await?,
            procs.go(go, plugins, 0).await?,
        )),
        Err(why) => Err(why),
    };
    let go_missing = |why: &str| Side::missing("Go peer", why);
    let per_plugin =
        |many: u64, one: u64| (many as f64 - one as f64) / MIB / (plugins - 1).max(1) as f64;

    let mut figures = Vec::new();
    let mut created = 0;
    let mut first: Option<(usize, Sample, Sample, Option<Sample>)> = None;
    for (step, &pods) in ctx.sizes.memory_pods.iter().enumerate() {
        let started = Instant::now();
        cluster
            .create_pods((created..pods).map(|i| {
                PodSpec::new(
                    i,
                    &format!("mem-{}", i % 10),
                    &format!("node-{}", i % 50),
                    "web",
                )
            }))
            .await?;
        eprintln!(
            "  created {} Pods in {:.1?}",
            pods - created,
            started.elapsed()
        );
        created = pods;
        let runs = if step == 0 {
            ctx.sizes.startup_runs.max(1)
        } else {
            1
        };
        let mut k = Vec::new();
        let mut n = Vec::new();
        let mut g = Vec::new();
        for _ in 0..runs {
            k.push(procs.kubewasm(&procs.many).await?);
            n.push(procs.native(plugins, pods).await?);
            if let Ok((go, _, _)) = &go_empty {
                g.push(procs.go(go, plugins, pods).await?);
            }
        }
        let go_side = |values: Vec<f64>, label: String| match &go_empty {
            Ok(_) => Side::from_samples(label, &values),
            Err(why) => go_missing(why),
        };
        let rss = |v: &[Sample]| v.iter().map(|s| s.rss as f64 / MIB).collect::<Vec<_>>();
        figures.push(
            Figure::new(
                if step == 0 {
                    "memory.rss"
                } else {
                    "memory.rss.100k_pods"
                },
                6,
                &format!("host RSS, {pods} Pods cached, {plugins} plugins"),
                Unit::MiB,
                Side::from_samples(format!("kubewasm run, {plugins} plugins"), &rss(&k)),
                Side::from_samples(
                    format!(
                        "native peer process: Pod reflector + {plugins} kube-runtime Controllers"
                    ),
                    &rss(&n),
                ),
            )
            .go(go_side(
                rss(&g),
                format!(
                    "Go peer process: controller-runtime manager caching every Pod + {plugins} Reconcilers (one shared ConfigMap informer)"
                ),
            ))
            .note("RSS 1 s after ready (VmRSS)"),
        );
        if step == 0 {
            let ready = |v: &[Sample]| v.iter().map(|s| millis(s.ready)).collect::<Vec<_>>();
            figures.push(
                Figure::new(
                    "startup.ready",
                    7,
                    &format!("start to ready with {pods} Pods cached"),
                    Unit::Millis,
                    Side::from_samples(
                        format!("kubewasm run, {plugins} plugins, compile cache warm: spawn -> /readyz 200"),
                        &ready(&k),
                    ),
                    Side::from_samples(
                        "native peer process: spawn -> every cache holds its objects",
                        &ready(&n),
                    ),
                )
                .go(go_side(
                    ready(&g),
                    "Go peer process: spawn -> every cache holds its objects".to_owned(),
                ))
                .note("process start included on both sides"),
            );
            first = Some((pods, k[0], n[0], g.first().copied()));
        }
    }
    for &pods in &[100_000usize] {
        if !ctx.sizes.memory_pods.contains(&pods) {
            figures.push(
                Figure::new(
                    "memory.rss.100k_pods",
                    6,
                    &format!("host RSS, {pods} Pods cached, {plugins} plugins"),
                    Unit::MiB,
                    Side::missing("kubewasm run", "full mode only (cargo xtask bench --full)"),
                    Side::missing("native peer", "full mode only (cargo xtask bench --full)"),
                )
                .go(Side::missing(
                    "Go peer",
                    "full mode only (cargo xtask bench --full)",
                )),
            );
        }
    }
    if let Some((pods, k, n, g)) = first {
        let per_pod =
            |full: Sample, empty: Sample| (full.rss as f64 - empty.rss as f64) / pods as f64;
        figures.push(
            Figure::new(
                "memory.rss_per_pod",
                6,
                "host RSS per cached Pod",
                Unit::Bytes,
                Side::measured(
                    "kubewasm run: (RSS with the Pods - RSS without) / Pods",
                    Summary::single(per_pod(k, k_many)),
                ),
                Side::measured(
                    "native peer: (RSS with the Pods - RSS without) / Pods",
                    Summary::single(per_pod(n, n_many)),
                ),
            )
            .go(match (&go_empty, g) {
                (Ok((_, _, many)), Some(g)) => Side::measured(
                    "Go peer: (RSS with the Pods - RSS without) / Pods",
                    Summary::single(per_pod(g, *many)),
                ),
                (Err(why), _) => go_missing(why),
                (Ok(_), None) => go_missing("no Go run with the Pods"),
            })
            .note(format!("{pods} Pods of about 4 KB of JSON each")),
        );
    }
    figures.push(store_bytes(&cluster, created).await?);
    figures.push(
        Figure::new(
            "memory.idle_per_plugin",
            6,
            "idle memory per loaded plugin",
            Unit::MiB,
            Side::measured(
                format!(
                    "kubewasm run: (RSS {plugins} plugins - RSS 1) / {}",
                    plugins - 1
                ),
                Summary::single(per_plugin(k_many.rss, k_one.rss)),
            ),
            Side::measured(
                format!(
                    "native peer: (RSS {plugins} controllers - RSS 1) / {}",
                    plugins - 1
                ),
                Summary::single(per_plugin(n_many.rss, n_one.rss)),
            ),
        )
        .go(match &go_empty {
            Ok((_, one, many)) => Side::measured(
                format!(
                    "Go peer: (RSS {plugins} Reconcilers - RSS 1) / {}",
                    plugins - 1
                ),
                Summary::single(per_plugin(many.rss, one.rss)),
            ),
            Err(why) => go_missing(why),
        })
        .note(format!(
            "no objects cached; absolute RSS with 1 plugin: kubewasm {:.1} MiB, native {:.1} MiB{}",
            k_one.rss as f64 / MIB,
            n_one.rss as f64 / MIB,
            go_empty
                .as_ref()
                .map(|(_, one, _)| format!(", Go {:.1} MiB", one.rss as f64 / MIB))
                .unwrap_or_default()
        )),
    );
    cluster.stop().await;
    Ok(figures)
}

/// Bytes the informer store holds per Pod against the Pods' JSON size.
async fn store_bytes(cluster: &Cluster, pods: usize) -> anyhow::Result<Figure> {
    let factory = InformerFactory::new(cluster.client.clone());
    let informer = factory
        .acquire(
            InformerKey::all(ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("", "v1", "Pod"),
                "pods",
            )),
            InformerOptions::default(),
        )
        .context("starting the Pod informer")?;
    informer.wait_synced().await;
    let stats = informer.store().stats();
    if stats.objects != pods {
        bail!(
            "the store holds {} Pods, {pods} were created",
            stats.objects
        );
    }
    let n = stats.objects.max(1) as f64;
    Ok(Figure::new(
        "memory.store_bytes_per_object",
        6,
        "store bytes per cached Pod, against its JSON size",
        Unit::Bytes,
        Side::measured(
            "kubewasm informer store: entry + index bytes / Pods",
            Summary::single((stats.entry_bytes + stats.index_bytes) as f64 / n),
        ),
        Side::measured(
            "reference: the Pod's JSON size (as cached, without managedFields)",
            Summary::single(stats.json_bytes as f64 / n),
        ),
    )
    .note("the ratio is store bytes / JSON bytes; the native peer's per-Pod cost is the RSS row above"))
}

/// A free loopback port (bound and released; the child binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether `GET /readyz` on 127.0.0.1:`port` answers 200.
async fn readyz(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b" 200")
}

/// The resident set size of process `pid`, from /proc.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")?;
    Ok(kb * 1024)
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
