//! [`HostState`]: the data of a plugin's `Store` — WASI context, limits, backend, manifest — and
//! what of it is reset for each reconcile ([`HostState::begin`]).

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::backend::Backend;
use super::manifest::Manifest;
use super::output::Capture;
use super::projection::ProjectionCache;

/// How much guest stdout/stderr one reconcile may write (each); more fails the write.
pub(crate) const OUTPUT_CAPACITY: usize = 1 << 20;

/// How many plugin log lines one reconcile may emit, and how many bytes in all; past either, lines
/// are dropped and counted, and one line at the end of the reconcile says how many.
pub(crate) const LOG_LINES_PER_RECONCILE: u32 = 1000;
pub(crate) const LOG_BYTES_PER_RECONCILE: usize = 256 << 10;

/// What one store may still log, and what it dropped.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    lines: u32,
    bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    /// Whether a line of `len` bytes may be logged; counts it either way.
    pub(crate) fn admit(&mut self, len: usize) -> bool {
        if self.lines < LOG_LINES_PER_RECONCILE && self.bytes + len <= LOG_BYTES_PER_RECONCILE {
            self.lines += 1;
            self.bytes += len;
            true
        } else {
            self.dropped_lines += 1;
            self.dropped_bytes += len as u64;
            false
        }
    }

    /// Logs one warning when lines were dropped.
    pub(crate) fn report(&self, plugin: &str) {
        if self.dropped_lines > 0 {
            tracing::warn!(
                target: "kubewasm::plugin",
                plugin,
                dropped_lines = self.dropped_lines,
                dropped_bytes = self.dropped_bytes,
                "plugin log flood: dropped {} log lines ({} bytes) past the limit of {} lines or {} bytes per reconcile",
                self.dropped_lines,
                self.dropped_bytes,
                LOG_LINES_PER_RECONCILE,
                LOG_BYTES_PER_RECONCILE
            );
        }
    }
}

/// Memory and table limits of one store, remembering whether the memory cap was hit so a
/// trap that follows can be reported as "memory cap" rather than a generic trap.
pub(crate) struct Limiter {
    memory_cap: usize,
    pub(crate) memory_cap_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_cap_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }
}

/// Everything one store holds. Built fresh for every reconcile (and for the manifest read), or,
/// for a plugin with `reuse-instances`, once per kept instance and reset by
/// [`HostState::begin`] at the start of each reconcile.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    /// The reconcile's backend (the plugin loop's read-your-writes recording).
    pub(crate) backend: Arc<dyn Backend>,
    /// `None` while the manifest itself is being read: imports are then refused.
    pub(crate) manifest: Option<Arc<Manifest>>,
    pub(crate) plugin: Arc<str>,
    /// What the plugin may still log in this reconcile.
    pub(crate) log_budget: LogBudget,
    /// The plugin's projection memo (shared by its reconciles); `None` projects directly.
    pub(crate) projections: Option<Arc<ProjectionCache>>,
}

impl HostState {
    /// A store's data with WASI granting nothing: no files, network, environment or
    /// arguments; stdout/stderr captured (and later sent to `tracing`); clocks and random
    /// as WASI provides them.
    pub(crate) fn new(
        plugin: Arc<str>,
        manifest: Option<Arc<Manifest>>,
        backend: Arc<dyn Backend>,
        memory_cap: usize,
    ) -> Self {
        let stdout = Capture::new(OUTPUT_CAPACITY);
        let stderr = Capture::new(OUTPUT_CAPACITY);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap,
                memory_cap_hit: false,
            },
            stdout,
            stderr,
            backend,
            manifest,
            plugin,
            log_budget: LogBudget::default(),
            projections: None,
        }
    }
}

impl HostState {
    /// Readies a kept store for its next reconcile: the reconcile's own backend, a full log
    /// budget, no memory cap hit yet, and empty stdout/stderr (drained after the previous
    /// reconcile; emptied again so nothing written since can reach this reconcile's log).
    /// What stays is what the plugin may keep: its instance's memory and resources.
    pub(crate) fn begin(&mut self, backend: Arc<dyn Backend>) {
        self.backend = backend;
        self.log_budget = LogBudget::default();
        self.limiter.memory_cap_hit = false;
        self.stdout.take();
        self.stderr.take();
    }

    /// Lets go of the reconcile's backend once it ended, so an idle kept store does not hold
    /// the reconcile's recording (and the caches it reaches) until its next reconcile.
    pub(crate) fn end(&mut self, idle: Arc<dyn Backend>) {
        self.backend = idle;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_flood_is_cut_at_the_line_limit_and_counted() {
        let mut budget = LogBudget::default();
        let admitted = (0..5000).filter(|_| budget.admit(10)).count();
        assert_eq!(admitted, LOG_LINES_PER_RECONCILE as usize);
        assert_eq!(budget.dropped_lines, 4000);
        assert_eq!(budget.dropped_bytes, 40_000);
    }

    #[test]
    fn long_lines_are_cut_at_the_byte_limit() {
        let mut budget = LogBudget::default();
        let admitted = (0..100).filter(|_| budget.admit(16 << 10)).count();
        assert_eq!(admitted, 16);
        assert_eq!(budget.dropped_lines, 84);
    }
}
