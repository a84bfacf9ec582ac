//! [`Runtime`]: the one wasmtime engine, its linker, the epoch ticker and the compile cache.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::compile_cache::{CompileCache, CompileCacheError};
use super::kept::KeptInstances;
use super::kinds::KindResolver;
use super::state::HostState;

/// A failure to build the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine rejected the configuration.
    #[error("failed to create the wasmtime engine: {0}")]
    Engine(String),
    /// The host functions could not be linked.
    #[error("failed to link the host functions: {0}")]
    Link(String),
    /// The compile cache directory could not be created.
    #[error(transparent)]
    CompileCache(#[from] CompileCacheError),
    /// The epoch ticker thread could not start.
    #[error("failed to start the epoch ticker: {0}")]
    Ticker(#[source] std::io::Error),
}

/// Limits and tuning of the runtime. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Wall-clock budget of one reconcile (guest compute and host calls). Default 10 s.
    pub deadline: Duration,
    /// Linear-memory cap of one reconcile's store. Default 64 MiB.
    pub memory_cap: usize,
    /// Where compiled components are cached; `None` disables the cache.
    /// Default [`CompileCache::default_dir`].
    pub compile_cache_dir: Option<PathBuf>,
    /// Use wasmtime's pooling allocator (pre-reserved slots: faster instantiation, fixed
    /// maximum of concurrent stores, see `pool_slots`). Default on.
    pub pooling: bool,
    /// Concurrent stores the pool holds when `pooling` is on. Default 128.
    pub pool_slots: u32,
    /// Epoch tick: deadline granularity, and how long a guest computes before it yields its
    /// thread to other tasks. Default 1 ms (with 10 ms, a spinning plugin beside a healthy one
    /// cut the healthy plugin's reconcile rate by 10-40% on 2 cores; with 1 ms, by 3-8%).
    pub epoch_tick: Duration,
    /// With `pooling`, how many bytes of each linear memory stay mapped when a store ends:
    /// the pages the reconcile dirtied (found with Linux's `PAGEMAP_SCAN` where the kernel
    /// has it, 6.7+) are zeroed with `memset` instead of being unmapped, so the next
    /// reconcile in that slot takes no page faults on them. Memory is still reset to its
    /// initial image between reconciles: nothing leaks from one store to the next.
    /// `0` unmaps everything (wasmtime's default). Default 8 MiB.
    pub pool_keep_resident: usize,
    /// The operator's policy: every plugin loaded gets its manifest narrowed by it (see
    /// [`crate::policy`]). Default none.
    pub policy: Option<Arc<crate::policy::Policy>>,
    /// Where the plural and scope of a `kubewasm:controller@0.2.0` plugin's kinds are looked
    /// up when it loads: the cluster's API discovery
    /// ([`crate::cluster::DiscoveryResolver`]). `None` (the default) works offline: the
    /// manifest's CRDs, a table of built-in kinds, else a guess with a warning (see
    /// `kinds.rs`).
    pub resolver: Option<Arc<dyn KindResolver>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            memory_cap: 64 << 20,
            compile_cache_dir: CompileCache::default_dir(),
            pooling: true,
            pool_slots: 128,
            pool_keep_resident: 8 << 20,
            epoch_tick: Duration::from_millis(1),
            policy: None,
            resolver: None,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    pub(crate) cache: Option<CompileCache>,
    /// Every plugin's kept instances (`reuse-instances`), to release the idle ones when the
    /// instance pool is full (see [`Runtime::release_kept`]).
    pub(crate) kept: parking_lot::Mutex<Vec<Weak<KeptInstances>>>,
}

/// Loads plugins and runs them. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl Runtime {
    /// Builds the engine (Cranelift, component model, async, epoch interruption), links
    /// the WIT imports and WASI p2 (nothing granted), and starts the epoch ticker thread
    /// (it stops when the last clone of the runtime is dropped).
    ///
    /// # Errors
    /// [`RuntimeError`] when the engine, linker, cache directory or ticker cannot be set up.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut wc = Config::new();
        wc.wasm_component_model(true).epoch_interruption(true);
        // `KUBEWASM_PERF_MAP=1`: name the compiled guest functions in /tmp/perf-<pid>.map, so
        // `perf record`/`perf report` attribute plugin time to the plugin's own functions.
        if std::env::var_os("KUBEWASM_PERF_MAP").is_some_and(|v| v == "1") {
            wc.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if config.pooling {
            let slots = config.pool_slots.max(1);
            let mut pool = PoolingAllocationConfig::default();
            // A Rust plugin is a component of a few core instances (the program plus shims).
            pool.total_component_instances(slots)
                .total_core_instances(slots * 8)
                .total_memories(slots * 2)
                .total_tables(slots * 4)
                .total_stacks(slots)
                .max_memory_size(config.memory_cap)
                .linear_memory_keep_resident(config.pool_keep_resident)
                .table_keep_resident(config.pool_keep_resident.min(1 << 20))
                .pagemap_scan(Enabled::Auto);
            wc.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wc).map_err(|e| RuntimeError::Engine(chain(&e)))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Link(chain(&e)))?;
        // Both versions of the contract: a component imports one of them.
        bindings::v2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Link(chain(&e)))?;
        bindings::v1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Link(chain(&e)))?;
        let cache = config
            .compile_cache_dir
            .as_ref()
            .map(CompileCache::new)
            .transpose()?;

        let weak = engine.weak();
        let tick = config.epoch_tick;
        std::thread::Builder::new()
            .name("kubewasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })
            .map_err(RuntimeError::Ticker)?;

        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                cache,
                kept: parking_lot::Mutex::new(Vec::new()),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The wasmtime engine (shared by every plugin).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The compile cache, if enabled.
    pub fn compile_cache(&self) -> Option<&CompileCache> {
        self.inner.cache.as_ref()
    }

    /// Registers a plugin's kept instances, so that [`Runtime::release_kept`] reaches them.
    pub(crate) fn register_kept(&self, kept: &Arc<KeptInstances>) {
        let mut all = self.inner.kept.lock();
        all.retain(|k| k.strong_count() > 0);
        all.push(Arc::downgrade(kept));
    }

    /// Drops every plugin's idle kept instances, giving their slots back to the instance pool;
    /// returns how many were dropped. Called when an instantiation fails: idle instances must
    /// not starve a reconcile that needs a fresh one (with pooling, a kept store holds its slot).
    pub(crate) fn release_kept(&self) -> usize {
        let all: Vec<_> = self
            .inner
            .kept
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        all.iter().map(|k| k.clear()).sum()
    }
}
