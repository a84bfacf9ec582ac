//! [`Plugin`]: a loaded plugin (compiled component, pre-instantiation, validated manifest),
//! and [`Plugin::reconcile`], which runs one reconcile in a fresh store (or, for a plugin
//! whose manifest sets `reuse-instances`, on an instance it kept: `kept.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubewasm_core::Request;
use tracing::Instrument;
use wasmtime::component::{Component, ComponentType, Lift, Lower};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::api_error::ApiError;
use super::backend::Backend;
use super::bindings::{v1, v2};
use super::compile_cache::CompileSource;
use super::engine::Runtime;
use super::kept::{Instance, Kept, KeptInstances};
use super::manifest::{Manifest, ManifestError};
use super::memory::MemoryBackend;
use super::output;
use super::projection::ProjectionCache;
use super::request::{request_v1, request_v2};
use super::state::HostState;

/// Why a plugin's bytes could not be loaded. Every case names the file they were read from
/// (reading it is the loader's part: [`crate::loader::FileError`]).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not start with the WebAssembly magic number.
    #[error("failed to load plugin {path}: not a WebAssembly file (no \\0asm header)")]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A core module rather than a component.
    #[error(
        "failed to load plugin {path}: it is a core WebAssembly module, not a component \
         (build it for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component does not validate or compile.
    #[error("failed to compile plugin {path}: {reason}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// The component targets another world or a version of the WIT package the host does not
    /// load (it loads `kubewasm:controller@0.2.0` and `@0.1.0`); the reason names what the
    /// component exports or imports instead.
    #[error(
        "failed to load plugin {path}: it does not implement world kubewasm:controller/plugin@0.2.0 \
         (nor the older kubewasm:controller/plugin@0.1.0): {reason}"
    )]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What is missing or mismatched.
        reason: String,
    },
    /// The plugin trapped or failed while returning its manifest.
    #[error("failed to load plugin {path}: reading its manifest failed: {reason}")]
    ManifestCall {
        /// The file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The manifest declares nonsense.
    #[error("failed to load plugin {path}: {source}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        #[source]
        source: ManifestError,
    },
    /// The operator's policy ([`RuntimeConfig::policy`](super::RuntimeConfig::policy)) does not
    /// let the plugin run: its reconciled kind or namespace is not allowed.
    #[error("failed to load plugin {path}: {source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What the policy does not allow.
        #[source]
        source: crate::policy::PolicyError,
    },
}

// Loading lives beside the plugin it makes (the engine knows nothing of plugins).
impl Runtime {
    /// Loads a plugin from `bytes` read from `path` (named after the file stem): compiles it
    /// (or takes it from the compile cache), pre-instantiates it against the host's imports,
    /// then reads and validates its manifest. Hot reload hashes the bytes it read and loads
    /// exactly those, so the version it reports is the code that runs even if the file changes
    /// again meanwhile. Reading files is the loader's part ([`crate::loader::load_file`]).
    ///
    /// # Errors
    /// [`LoadError`] naming the file and the reason: not WebAssembly, a core module instead of
    /// a component, another world or WIT version (the host loads `kubewasm:controller@0.2.0`
    /// and `@0.1.0`), a trap while returning the manifest, or an invalid manifest (a 0.2.0
    /// manifest's `custom-resources` included). Nothing else is affected.
    ///
    /// The plural and scope of a 0.2.0 plugin's kinds are resolved here (see `kinds.rs`):
    /// from [`RuntimeConfig::resolver`](super::RuntimeConfig::resolver), then the manifest's
    /// CRDs, else guessed with a warning.
    pub async fn load(&self, path: &Path, bytes: Vec<u8>) -> Result<Plugin, LoadError> {
        let name = path
            .file_stem()
            .map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
        Plugin::load(self.clone(), name, path.to_owned(), bytes).await
    }
}

/// Why one reconcile failed. The host carries on in every case; only this reconcile fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconcileError {
    /// The plugin returned an error (its own, or one it got from a host call).
    #[error("plugin {plugin} returned an error: {error}")]
    Plugin {
        /// Plugin name.
        plugin: String,
        /// The error.
        error: ApiError,
    },
    /// The plugin trapped: a panic, an out-of-bounds access, a stack overflow...
    #[error("plugin {plugin} trapped: {trap}{}", stderr_suffix(.stderr))]
    Trap {
        /// Plugin name.
        plugin: String,
        /// Wasmtime's description of the trap.
        trap: String,
        /// The end of the plugin's stderr (where a panic message is).
        stderr: String,
    },
    /// The reconcile ran past its deadline and was interrupted.
    #[error("plugin {plugin} exceeded its deadline of {deadline:?}")]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin {plugin} exceeded its memory cap of {cap} bytes{}", stderr_suffix(.stderr))]
    MemoryCap {
        /// Plugin name.
        plugin: String,
        /// The cap.
        cap: usize,
        /// The end of the plugin's stderr.
        stderr: String,
    },
    /// The store could not be instantiated (e.g. the pooling allocator is full).
    #[error("failed to instantiate plugin {plugin}: {reason}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {stderr})")
    }
}

impl ReconcileError {
    /// Whose fault the failure is: the plugin's in every case but
    /// [`ReconcileError::Instantiate`].
    pub fn blame(&self) -> Blame {
        match self {
            Self::Instantiate { .. } => Blame::Host,
            _ => Blame::Plugin,
        }
    }
}

/// Whose fault a failed reconcile is (on the `reconcile` span, in the log and in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The plugin's: it returned an error, trapped, ran past its deadline or hit its memory cap.
    Plugin,
    /// The host's: the plugin could not be instantiated (e.g. the instance pool is full).
    Host,
}

impl Blame {
    /// `plugin` or `host`, as in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Host => "host",
        }
    }
}

/// Which version of the WIT package `kubewasm:controller` a plugin was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    /// `kubewasm:controller@0.1.0` (`wit/0.1.0/`), served through an adapter.
    V0_1,
    /// `kubewasm:controller@0.2.0` (`wit/`).
    V0_2,
}

impl WitVersion {
    /// `0.1.0` or `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1.0",
            Self::V0_2 => "0.2.0",
        }
    }

    /// The version whose reconciler interface the component exports.
    fn of(engine: &wasmtime::Engine, component: &Component) -> Result<Self, String> {
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        if exports.contains(&v2::RECONCILER) {
            Ok(Self::V0_2)
        } else if exports.contains(&v1::RECONCILER) {
            Ok(Self::V0_1)
        } else {
            let found = if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            };
            Err(format!(
                "it exports {found}, not {} or {}",
                v2::RECONCILER,
                v1::RECONCILER
            ))
        }
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pre-instantiation, typed by the plugin's WIT version.
enum Pre {
    V1(v1::PluginPre<HostState>),
    V2(v2::PluginPre<HostState>),
}

/// What a successful reconcile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change.
    Done,
    /// Reconcile the key again after this long.
    RequeueAfter(Duration),
}

/// A loaded plugin: cheap to clone, safe to share between tasks; every reconcile gets its
/// own store, so reconciles of one plugin run in parallel without sharing guest state. A
/// plugin whose manifest sets `reuse-instances` ([`Plugin::reuses_instances`]) keeps each
/// store and instance once its reconcile returned, for a later reconcile: still one store per
/// reconcile at a time, but guest state survives from one reconcile to the next.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Runtime,
    name: Arc<str>,
    path: PathBuf,
    pre: Pre,
    manifest: Arc<Manifest>,
    /// The CRDs of the manifest's `custom-resources` (0.2.0 only), validated.
    custom_resources: Vec<serde_json::Value>,
    source: CompileSource,
    version: Arc<str>,
    /// Projections memoised across this plugin's reconciles (see `ProjectionCache`).
    projections: Arc<ProjectionCache>,
    /// The idle instances kept between reconciles, when the manifest sets `reuse-instances`
    /// (0.2.0 only); `None` gives every reconcile a fresh store.
    kept: Option<Arc<KeptInstances>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The manifest a component returned, in its WIT version.
enum WitManifest {
    V1(v1::exports::kubewasm::controller::reconciler::Manifest),
    V2(v2::exports::kubewasm::controller::reconciler::Manifest),
}

/// How a store's call ended, before classification.
enum Ended<T> {
    Returned(T),
    Failed(wasmtime::Error),
    TimedOut,
}

fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl Plugin {
    pub(crate) async fn load(
        runtime: Runtime,
        name: String,
        path: PathBuf,
        bytes: Vec<u8>,
    ) -> Result<Self, LoadError> {
        if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
            return Err(LoadError::NotWasm { path });
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err(LoadError::CoreModule { path });
        }
        let version: Arc<str> = version_of(&bytes).into();
        let (component, source) = compile(&runtime, &path, bytes).await?;
        let instance_pre = runtime
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Incompatible {
                path: path.clone(),
                reason: chain(&e),
            })?;
        let wit = WitVersion::of(&runtime.inner.engine, &component).map_err(|reason| {
            LoadError::Incompatible {
                path: path.clone(),
                reason,
            }
        })?;
        let incompatible = |e: wasmtime::Error| LoadError::Incompatible {
            path: path.clone(),
            reason: chain(&e),
        };
        let pre = match wit {
            WitVersion::V0_2 => {
                Pre::V2(v2::PluginPre::new(instance_pre.clone()).map_err(incompatible)?)
            }
            WitVersion::V0_1 => {
                Pre::V1(v1::PluginPre::new(instance_pre.clone()).map_err(incompatible)?)
            }
        };

        // Read the manifest once, in a store where every import is refused. Both exports are
        // type-checked first: wasmtime would otherwise only check `reconcile` at its first call.
        let name: Arc<str> = name.into();
        let cfg = &runtime.inner.config;
        // With no manifest every import answers `forbidden` before reaching a backend, so an
        // empty in-memory one stands in.
        let state = HostState::new(
            name.clone(),
            None,
            Arc::new(MemoryBackend::new()),
            cfg.memory_cap,
        );
        let mut store = new_store(&runtime, state);
        let raw =
            match tokio::time::timeout(cfg.deadline, instance_pre.instantiate_async(&mut store))
                .await
            {
                Ok(Ok(raw)) => raw,
                Ok(Err(e)) => {
                    return Err(LoadError::ManifestCall {
                        path,
                        reason: format!("instantiation failed: {}", chain(&e)),
                    });
                }
                Err(_) => {
                    return Err(LoadError::ManifestCall {
                        path,
                        reason: "instantiation timed out".into(),
                    });
                }
            };
        let checked = match wit {
            WitVersion::V0_2 => typecheck::<
                v2::exports::kubewasm::controller::reconciler::Manifest,
                v2::exports::kubewasm::controller::reconciler::Request,
                Result<
                    v2::exports::kubewasm::controller::reconciler::Action,
                    v2::kubewasm::controller::types::Error,
                >,
            >(&component, &raw, &mut store, v2::RECONCILER),
            WitVersion::V0_1 => typecheck::<
                v1::exports::kubewasm::controller::reconciler::Manifest,
                v1::exports::kubewasm::controller::reconciler::Request,
                Result<
                    v1::exports::kubewasm::controller::reconciler::Action,
                    v1::kubewasm::controller::types::Error,
                >,
            >(&component, &raw, &mut store, v1::RECONCILER),
        };
        if let Err(reason) = checked {
            return Err(LoadError::Incompatible { path, reason });
        }
        let call = async {
            Ok(match wit {
                WitVersion::V0_2 => WitManifest::V2(
                    v2::Plugin::new(&mut store, &raw)?
                        .kubewasm_controller_reconciler()
                        .call_get_manifest(&mut store)
                        .await?,
                ),
                WitVersion::V0_1 => WitManifest::V1(
                    v1::Plugin::new(&mut store, &raw)?
                        .kubewasm_controller_reconciler()
                        .call_get_manifest(&mut store)
                        .await?,
                ),
            })
        };
        let ended = match tokio::time::timeout(cfg.deadline, call).await {
            Ok(Ok(m)) => Ended::Returned(m),
            Ok(Err(e)) => Ended::Failed(e),
            Err(_) => Ended::TimedOut,
        };
        let stderr = output::drain(
            &name,
            "<manifest>",
            &store.data().stdout,
            &store.data().stderr,
        );
        let wit_manifest = match ended {
            Ended::Returned(m) => m,
            Ended::Failed(e) => {
                let reason =
                    describe_failure(&e, store.data().limiter.memory_cap_hit, cfg, &stderr);
                return Err(LoadError::ManifestCall { path, reason });
            }
            Ended::TimedOut => {
                return Err(LoadError::ManifestCall {
                    path,
                    reason: format!("timed out after {:?}", cfg.deadline),
                });
            }
        };
        let invalid = |source| LoadError::Manifest {
            path: path.clone(),
            source,
        };
        // 0.1.0 has no `reuse-instances`: its plugins always get a fresh store.
        let (manifest, custom_resources, reuse_instances) = match wit_manifest {
            WitManifest::V1(m) => (
                super::manifest::from_v1(m).map_err(invalid)?,
                Vec::new(),
                false,
            ),
            WitManifest::V2(m) => {
                let reuse_instances = m.reuse_instances;
                let crds =
                    super::manifest::custom_resources(&m.custom_resources).map_err(invalid)?;
                let resolved = super::kinds::resolve(
                    &name,
                    cfg.resolver.as_deref(),
                    &crds,
                    super::manifest::v2_kinds(&m),
                )
                .await;
                (
                    super::manifest::from_v2(m, &resolved).map_err(invalid)?,
                    crds,
                    reuse_instances,
                )
            }
        };
        let mut manifest = manifest;
        if let Some(policy) = &cfg.policy {
            manifest = policy
                .narrow(&name, manifest)
                .map_err(|source| LoadError::Policy {
                    path: path.clone(),
                    source,
                })?;
        }
        // As many kept as can run at once (the policy may have narrowed the concurrency).
        let kept = reuse_instances.then(|| {
            let kept = Arc::new(KeptInstances::new(manifest.concurrency as usize));
            runtime.register_kept(&kept);
            kept
        });
        Ok(Self {
            inner: Arc::new(PluginInner {
                runtime,
                name,
                path,
                pre,
                manifest: Arc::new(manifest),
                custom_resources,
                source,
                version,
                projections: Arc::new(ProjectionCache::new(PROJECTION_MEMO_CAP)),
                kept,
            }),
        })
    }

    /// The plugin's name (its file stem).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }

    /// Its validated manifest.
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.inner.manifest
    }

    /// The CustomResourceDefinitions its manifest carries (`custom-resources`, a 0.2.0
    /// manifest; empty for 0.1.0), each a validated `apiextensions.k8s.io/v1` CRD as JSON, in
    /// the manifest's order: what `kubewasm plugin crd` prints and `kubewasm dev` installs.
    pub fn custom_resources(&self) -> &[serde_json::Value] {
        &self.inner.custom_resources
    }

    /// Whether the plugin keeps its instances between reconciles (its manifest sets
    /// `reuse-instances`; never for a 0.1.0 plugin). Then a worker's reconcile runs on the
    /// instance an earlier reconcile left, unless that one faulted.
    pub fn reuses_instances(&self) -> bool {
        self.inner.kept.is_some()
    }

    /// The version of the WIT package the plugin was built against.
    pub fn wit_version(&self) -> WitVersion {
        match self.inner.pre {
            Pre::V1(_) => WitVersion::V0_1,
            Pre::V2(_) => WitVersion::V0_2,
        }
    }

    /// The interfaces the component imports and exports, by name (`wasi:io/streams@0.2.6`,
    /// `kubewasm:controller/reconciler@0.2.0`), sorted: what its type says, not a guess.
    pub fn interfaces(&self) -> Vec<String> {
        let component = match &self.inner.pre {
            Pre::V1(p) => p.instance_pre().component(),
            Pre::V2(p) => p.instance_pre().component(),
        };
        let engine = &self.inner.runtime.inner.engine;
        let ty = component.component_type();
        let mut names: Vec<String> = ty
            .imports(engine)
            .chain(ty.exports(engine))
            .map(|(name, _)| name.to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// This version's identity: the first 12 hex digits of the SHA-256 of the component's
    /// bytes. Logged with every reconcile (`version`), so a reload shows which code ran.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The name and version, shared (cheap to clone into every reconcile's record).
    pub(crate) fn identity(&self) -> (Arc<str>, Arc<str>) {
        (
            Arc::clone(&self.inner.name),
            Arc::clone(&self.inner.version),
        )
    }

    /// True when the compiled component came from the compile cache (no compilation).
    pub fn loaded_from_cache(&self) -> bool {
        self.inner.source == CompileSource::Cache
    }

    /// Runs one reconcile in a fresh store: instantiates the pre-instantiated component,
    /// calls `reconcile` under the runtime's deadline and memory cap, and drops the store.
    /// Guest stdout/stderr and log calls go to `tracing` with the plugin name and key.
    ///
    /// With `reuse-instances` ([`Plugin::reuses_instances`]) it takes an instance an earlier
    /// reconcile returned from, if one is idle, and gives it this reconcile's backend, a
    /// deadline and log budget counted from now, and empty stdout/stderr; the instance is kept
    /// again only if the reconcile returned (`Ok` or the plugin's own error). After a trap,
    /// the deadline or the memory cap it is dropped, and the next reconcile starts fresh.
    ///
    /// # Errors
    /// [`ReconcileError`] saying whether the plugin returned an error, trapped, ran out of
    /// time or hit the memory cap. The runtime and other reconciles are unaffected.
    pub async fn reconcile(
        &self,
        backend: Arc<dyn Backend>,
        request: Request,
    ) -> Result<Action, ReconcileError> {
        let key = request.key();
        let span = tracing::info_span!(
            "reconcile",
            plugin = %self.inner.name,
            version = %self.inner.version,
            key = %key,
            fault = tracing::field::Empty,
        );
        let result = self
            .reconcile_inner(backend, request, key)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            // Whose fault a failure is, for every log line of this reconcile's span.
            span.record("fault", e.blame().as_str());
        }
        result
    }

    async fn reconcile_inner(
        &self,
        backend: Arc<dyn Backend>,
        request: Request,
        key: String,
    ) -> Result<Action, ReconcileError> {
        let inner = &*self.inner;
        let cfg = &inner.runtime.inner.config;
        let plugin = || inner.name.to_string();
        // A kept instance when the plugin asked for them and one is idle, else a fresh store.
        let kept = match &inner.kept {
            Some(pool) => pool.take(Arc::clone(&backend)),
            None => None,
        };
        let Kept {
            mut store,
            instance,
        } = match kept {
            Some(mut kept) => {
                arm_deadline(&mut kept.store, cfg.deadline);
                kept
            }
            None => self.instantiate(backend).await?,
        };
        // The epoch deadline stops guest compute (a spinning guest never yields, so only the
        // epoch can stop it); this timeout, a little later, bounds time spent waiting in host
        // calls (API writes). Either is reported as the deadline.
        let limit = cfg.deadline + cfg.deadline / 4;
        // One call per WIT version; only the request, the action and its requeue unit differ.
        let call = async {
            match &instance {
                Instance::V2(instance) => {
                    use v2::exports::kubewasm::controller::reconciler::Action as A;
                    let request = request_v2(request);
                    let r = instance
                        .kubewasm_controller_reconciler()
                        .call_reconcile(&mut store, &request)
                        .await?;
                    Ok(r.map_err(ApiError::from).map(|a| match a {
                        A::Done => Action::Done,
                        A::RequeueAfter(ns) => Action::RequeueAfter(Duration::from_nanos(ns)),
                    }))
                }
                Instance::V1(instance) => {
                    use v1::exports::kubewasm::controller::reconciler::Action as A;
                    let request = request_v1(request);
                    let r = instance
                        .kubewasm_controller_reconciler()
                        .call_reconcile(&mut store, &request)
                        .await?;
                    Ok(r.map_err(ApiError::from).map(|a| match a {
                        A::Done => Action::Done,
                        A::RequeueAfter(ms) => Action::RequeueAfter(Duration::from_millis(ms)),
                    }))
                }
            }
        };
        let ended = match tokio::time::timeout(limit, call).await {
            Ok(Ok(r)) => Ended::Returned(r),
            Ok(Err(e)) => Ended::Failed(e),
            Err(_) => Ended::TimedOut,
        };
        let stderr = output::drain(
            &inner.name,
            &key,
            &store.data().stdout,
            &store.data().stderr,
        );
        store.data().log_budget.report(&inner.name);
        let memory_cap_hit = store.data().limiter.memory_cap_hit;
        // Only an instance that returned is kept: after a trap or an interruption its state is
        // whatever the fault left. A refused memory growth counts as a fault even when the
        // plugin coped with it (a Python `MemoryError` caught and returned as an error).
        if let Some(pool) = &inner.kept
            && matches!(ended, Ended::Returned(_))
            && !memory_cap_hit
        {
            pool.put(Kept { store, instance });
        }
        match ended {
            Ended::Returned(Ok(action)) => Ok(action),
            Ended::Returned(Err(error)) => Err(ReconcileError::Plugin {
                plugin: plugin(),
                error: cap_message(error),
            }),
            Ended::TimedOut => Err(ReconcileError::Deadline {
                plugin: plugin(),
                deadline: cfg.deadline,
            }),
            Ended::Failed(e) => {
                if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    Err(ReconcileError::Deadline {
                        plugin: plugin(),
                        deadline: cfg.deadline,
                    })
                } else if memory_cap_hit {
                    Err(ReconcileError::MemoryCap {
                        plugin: plugin(),
                        cap: cfg.memory_cap,
                        stderr,
                    })
                } else {
                    Err(ReconcileError::Trap {
                        plugin: plugin(),
                        trap: trap_text(&e),
                        stderr,
                    })
                }
            }
        }
    }

    /// A fresh store for one reconcile with `backend`, and the component instantiated in it.
    async fn instantiate(&self, backend: Arc<dyn Backend>) -> Result<Kept, ReconcileError> {
        let inner = &*self.inner;
        let mut state = HostState::new(
            inner.name.clone(),
            Some(inner.manifest.clone()),
            backend,
            inner.runtime.inner.config.memory_cap,
        );
        state.projections = Some(inner.projections.clone());
        let mut store = new_store(&inner.runtime, state);
        let instance = match self.instantiate_in(&mut store).await {
            // The instance pool may be full of idle kept instances (`reuse-instances`):
            // release them and try once more, in a new store.
            Err(_) if inner.runtime.release_kept() > 0 => {
                store = new_store(&inner.runtime, store.into_data());
                self.instantiate_in(&mut store).await
            }
            instance => instance,
        }
        .map_err(|e| ReconcileError::Instantiate {
            plugin: inner.name.to_string(),
            reason: chain(&e),
        })?;
        Ok(Kept { store, instance })
    }

    async fn instantiate_in(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        match &self.inner.pre {
            Pre::V2(pre) => pre.instantiate_async(store).await.map(Instance::V2),
            Pre::V1(pre) => pre.instantiate_async(store).await.map(Instance::V1),
        }
    }
}

/// Longest error message of a plugin's own `reconcile` error that the host keeps (logs, metrics,
/// status): a plugin returning megabytes of error text must not flood the log on every retry.
pub(crate) const MAX_ERROR_MESSAGE: usize = 4096;

/// Cuts the message of `error` to [`MAX_ERROR_MESSAGE`] bytes, saying how much was cut.
fn cap_message(error: ApiError) -> ApiError {
    fn cut(m: String) -> String {
        if m.len() <= MAX_ERROR_MESSAGE {
            return m;
        }
        let mut end = MAX_ERROR_MESSAGE;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}... ({} more bytes of the plugin's error message cut by the host)",
            &m[..end],
            m.len() - end
        )
    }
    match error {
        ApiError::NotFound(m) => ApiError::NotFound(cut(m)),
        ApiError::AlreadyExists(m) => ApiError::AlreadyExists(cut(m)),
        ApiError::Conflict(m) => ApiError::Conflict(cut(m)),
        ApiError::Forbidden(m) => ApiError::Forbidden(cut(m)),
        ApiError::Invalid(m) => ApiError::Invalid(cut(m)),
        ApiError::NotSynced(m) => ApiError::NotSynced(cut(m)),
        ApiError::Unavailable(m) => ApiError::Unavailable(cut(m)),
        ApiError::Internal(m) => ApiError::Internal(cut(m)),
        ApiError::Other(m) => ApiError::Other(cut(m)),
    }
}

/// Source bytes a plugin's projection memo may retain per field set (64 MiB).
const PROJECTION_MEMO_CAP: usize = 64 << 20;

/// Checks that both exports of `iface` have exactly the types of the host's WIT of that
/// version: `get-manifest: func() -> M` and `reconcile: func(Rq) -> Rs`.
fn typecheck<M, Rq, Rs>(
    component: &Component,
    raw: &wasmtime::component::Instance,
    store: &mut Store<HostState>,
    iface: &str,
) -> Result<(), String>
where
    M: ComponentType + Lift + 'static,
    Rq: ComponentType + Lower + 'static,
    Rs: ComponentType + Lift + 'static,
{
    let func = |store: &mut Store<HostState>, name: &str| {
        let idx = component.get_export_index(None, iface);
        component
            .get_export_index(idx.as_ref(), name)
            .and_then(|idx| raw.get_func(&mut *store, idx))
            .ok_or_else(|| format!("{iface} has no function {name}"))
    };
    func(store, "get-manifest")?
        .typed::<(), (M,)>(&*store)
        .map_err(|e| format!("export get-manifest has the wrong type: {}", chain(&e)))?;
    func(store, "reconcile")?
        .typed::<(Rq,), (Rs,)>(&*store)
        .map_err(|e| format!("export reconcile has the wrong type: {}", chain(&e)))?;
    Ok(())
}

/// A store for one call: memory capped, and guest compute stopped at the deadline.
///
/// At every epoch tick (1 ms by default) a guest still computing yields its thread back to the
/// async runtime, so a plugin that spins never holds a worker thread for its whole deadline:
/// other plugins' reconciles, informers and the API client keep running beside it (measured in
/// the fault suite: a spinning plugin cut a healthy plugin's reconcile rate to 0.6 without the
/// yield). Once the deadline has passed, the next tick traps with `Trap::Interrupt`.
fn new_store(runtime: &Runtime, state: HostState) -> Store<HostState> {
    let mut store = Store::new(&runtime.inner.engine, state);
    store.limiter(|s| &mut s.limiter);
    arm_deadline(&mut store, runtime.inner.config.deadline);
    store
}

/// Starts the deadline of a call in `store` now (for a kept store, again at every reconcile):
/// see [`new_store`].
fn arm_deadline(store: &mut Store<HostState>, deadline: Duration) {
    let started = std::time::Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if started.elapsed() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
        })
    });
}

/// The trap's own description, plus its first context line (where in the guest).
fn trap_text(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow (call stack exhausted)".into(),
        Some(t) => t.to_string(),
        None => chain(e),
    }
}

fn describe_failure(
    e: &wasmtime::Error,
    memory_cap_hit: bool,
    cfg: &super::engine::RuntimeConfig,
    stderr: &str,
) -> String {
    let what = if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        format!("exceeded the deadline of {:?}", cfg.deadline)
    } else if memory_cap_hit {
        format!("exceeded the memory cap of {} bytes", cfg.memory_cap)
    } else {
        format!("trapped: {}", trap_text(e))
    };
    format!("{what}{}", stderr_suffix(stderr))
}

/// The short content hash that identifies a plugin version (see [`Plugin::version`]).
pub fn version_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    hex::encode(&digest[..6])
}

async fn compile(
    runtime: &Runtime,
    path: &std::path::Path,
    bytes: Vec<u8>,
) -> Result<(Component, CompileSource), LoadError> {
    let engine = runtime.inner.engine.clone();
    let cache = runtime.inner.cache.clone();
    let path_owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let cached = cache.as_ref().map(|c| (c.path_for(&engine, &bytes), c));
        if let Some((file, c)) = &cached
            && let Some(component) = c.get(&engine, file)
        {
            return Ok((component, CompileSource::Cache));
        }
        let component = Component::new(&engine, &bytes).map_err(|e| LoadError::Compile {
            path: path_owned.clone(),
            reason: chain(&e),
        })?;
        if let Some((file, c)) = &cached {
            c.put(file, &component);
        }
        Ok((component, CompileSource::Compiled))
    })
    .await
    .map_err(|e| LoadError::Compile {
        path: path.to_owned(),
        reason: format!("the compile task failed: {e}"),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_error_message_is_cut_saying_how_much_was_cut() {
        let cut = cap_message(ApiError::Other("é".repeat(1 << 20)));
        let ApiError::Other(m) = cut else {
            panic!("the case is kept: {cut:?}")
        };
        assert!(m.len() < MAX_ERROR_MESSAGE + 100, "{}", m.len());
        assert!(
            m.ends_with("... (2093056 more bytes of the plugin's error message cut by the host)"),
            "{}",
            &m[m.len() - 100..]
        );
        let short = ApiError::Conflict("stale".into());
        assert_eq!(cap_message(short.clone()), short);
    }
}
