//! The Go peer: `tools/bench-go-peer`, the same reads and reconcile as a client-go /
//! controller-runtime controller, spawned against the bench's embedded API server. It prints
//! what it measured as JSON lines on stdout; this module runs it and reads them.
//!
//! `cargo xtask bench` builds it into `target/bench-go-peer/bench-go-peer` (Go is needed); when
//! the binary is missing, every Go column says so instead of failing the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use crate::report::Side;

/// What the Go columns say when the binary is missing.
pub const NOT_BUILT: &str = "the Go peer is not built: `cargo xtask bench` builds it (needs Go), or `cd tools/bench-go-peer && go build -o ../../target/bench-go-peer/bench-go-peer .`";

/// How long one Go peer run may take.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The Go peer binary, when it is there.
#[derive(Debug, Clone)]
pub struct GoPeer {
    /// The binary.
    pub bin: PathBuf,
}

/// The samples of one operation of `bench-go-peer cache`.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheOp {
    /// What it does (the label of the Go column).
    pub what: String,
    /// How many operations each sample ran (a sample is their time / this).
    pub per_sample: usize,
    /// How many Pods one operation saw (bytes, for a decode).
    pub found: usize,
    /// Nanoseconds per operation, one per sample.
    pub ns: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct CacheLine {
    id: String,
    #[serde(flatten)]
    op: CacheOp,
}

/// What `bench-go-peer reconcile` measured in one round.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ReconcileRound {
    /// Distinct keys reconciled.
    pub keys: usize,
    /// From the first reconcile's start to the last key done, in seconds.
    pub secs: f64,
    /// CPU time of the Go process from its manager's start to the last key done, in ns.
    pub cpu_ns: f64,
}

impl GoPeer {
    /// The Go peer at `bin`, or `None` when it has not been built.
    pub fn at(bin: PathBuf) -> Option<Self> {
        bin.is_file().then_some(Self { bin })
    }

    /// A command running `bench-go-peer <sub> -kubeconfig <kubeconfig>`.
    pub fn command(&self, sub: &str, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(sub)
            .arg("-kubeconfig")
            .arg(kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `bench-go-peer cache` and returns its operations by id (`get`, `get.decode`,
    /// `list.<namespace|index|label>.<objects|copied|keys|count>`, `list.decode`).
    ///
    /// # Errors
    /// When the process fails or prints something that is not its JSON lines.
    pub async fn cache(
        &self,
        kubeconfig: &Path,
        pods: usize,
        get_samples: usize,
        list_samples: usize,
    ) -> anyhow::Result<HashMap<String, CacheOp>> {
        let mut cmd = self.command("cache", kubeconfig);
        cmd.arg("-pods")
            .arg(pods.to_string())
            .arg("-get-samples")
            .arg(get_samples.to_string())
            .arg("-list-samples")
            .arg(list_samples.to_string());
        let stdout = self.output(cmd, "cache").await?;
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<CacheLine>(l)
                    .map(|c| (c.id, c.op))
                    .with_context(|| format!("bench-go-peer cache printed {l:?}"))
            })
            .collect()
    }

    /// Runs one `bench-go-peer reconcile` round over `keys` pre-created ConfigMaps.
    ///
    /// # Errors
    /// When the process fails or does not print its result.
    pub async fn reconcile(
        &self,
        kubeconfig: &Path,
        keys: usize,
        concurrency: u16,
    ) -> anyhow::Result<ReconcileRound> {
        let mut cmd = self.command("reconcile", kubeconfig);
        cmd.arg("-keys")
            .arg(keys.to_string())
            .arg("-concurrency")
            .arg(concurrency.to_string());
        let stdout = self.output(cmd, "reconcile").await?;
        let line = stdout.lines().next().unwrap_or_default();
        let round: ReconcileRound = serde_json::from_str(line)
            .with_context(|| format!("bench-go-peer reconcile printed {line:?}"))?;
        if round.keys != keys || round.secs.is_nan() || round.secs <= 0.0 {
            bail!("bench-go-peer reconcile reported {round:?} for {keys} keys");
        }
        Ok(round)
    }

    /// Runs `cmd` to its end; its stdout, or an error with its stderr.
    async fn output(&self, mut cmd: Command, what: &str) -> anyhow::Result<String> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} {what}", self.bin.display()))?;
        let mut stdout = child.stdout.take().context("the Go peer's stdout")?;
        let mut stderr = child.stderr.take().context("the Go peer's stderr")?;
        let run = async {
            let mut out = String::new();
            let mut err = String::new();
            let (o, e) = tokio::join!(
                stdout.read_to_string(&mut out),
                stderr.read_to_string(&mut err)
            );
            o.context("reading the Go peer's stdout")?;
            e.context("reading the Go peer's stderr")?;
            let status = child.wait().await.context("waiting for the Go peer")?;
            anyhow::Ok((status, out, err))
        };
        let (status, out, err) = tokio::time::timeout(TIMEOUT, run)
            .await
            .with_context(|| format!("bench-go-peer {what} did not finish in {TIMEOUT:?}"))??;
        if !status.success() {
            bail!("bench-go-peer {what} failed ({status}): {}", err.trim());
        }
        Ok(out)
    }
}

/// The Go column of a figure from operation `id` of a cache run, in ms or µs (`scale` divides
/// the nanoseconds); missing with the reason when the peer or the operation is absent.
pub fn cache_side(ops: Result<&HashMap<String, CacheOp>, &str>, id: &str, scale: f64) -> Side {
    match ops {
        Err(why) => Side::missing("Go peer", why),
        Ok(ops) => match ops.get(id) {
            None => Side::missing("Go peer", format!("bench-go-peer printed no {id}")),
            Some(op) => {
                let label = if op.per_sample == 1 {
                    format!("{}, one per sample", op.what)
                } else {
                    format!("{}, mean of {} per sample", op.what, op.per_sample)
                };
                let samples: Vec<f64> = op.ns.iter().map(|ns| ns / scale).collect();
                Side::from_samples(label, &samples)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_no_peer() {
        assert!(GoPeer::at(PathBuf::from("/nonexistent/bench-go-peer")).is_none());
    }

    #[test]
    fn a_cache_line_becomes_a_go_side_in_the_figures_unit() {
        let line = r#"{"id":"get","what":"client-go lister Get + DeepCopy","per_sample":100,"found":1,"ns":[2000,4000]}"#;
        let parsed: CacheLine = serde_json::from_str(line).expect("a cache line");
        let ops = HashMap::from([(parsed.id, parsed.op)]);
        let side = cache_side(Ok(&ops), "get", 1e3);
        let summary = side.summary.expect("measured");
        assert_eq!((summary.n, summary.min, summary.max), (2, 2.0, 4.0));
        assert_eq!(
            side.label,
            "client-go lister Get + DeepCopy, mean of 100 per sample"
        );
    }

    #[test]
    fn a_go_side_without_numbers_says_why() {
        let ops = HashMap::new();
        let side = cache_side(Ok(&ops), "list.index.keys", 1e6);
        assert!(side.summary.is_none());
        assert_eq!(
            side.not_measured.as_deref(),
            Some("bench-go-peer printed no list.index.keys")
        );
        let side = cache_side(Err(NOT_BUILT), "get", 1e3);
        assert_eq!(side.not_measured.as_deref(), Some(NOT_BUILT));
    }
}
