//! [`HostState`]: the data of one reconcile's `Store` — WASI context, limits, backend, manifest.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::backend::Backend;
use super::manifest::Manifest;

/// How much guest stdout/stderr one reconcile may write (each); more fails the write.
pub(crate) const OUTPUT_CAPACITY: usize = 1 << 20;

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

/// Everything one store holds. Built fresh for every reconcile (and for the manifest read).
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) backend: Arc<dyn Backend>,
    /// `None` while the manifest itself is being read: imports are then refused.
    pub(crate) manifest: Option<Arc<Manifest>>,
    pub(crate) plugin: Arc<str>,
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
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
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
        }
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
