//! Pieces shared by the subcommands: logging, signals, durations and the runtime options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::runtime::{CompileCache, RuntimeConfig};
use tracing_subscriber::EnvFilter;

/// Logs to stderr: `RUST_LOG` filters (default `info`, with kube's own chatter at `warn`).
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,kube=warn,kube_runtime=warn,tower=warn,hyper=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        () = term => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses `64MiB`, `512KiB`, `1GiB`, `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 64MiB)"))?;
    let factor = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Plugin runtime limits, shared by `run` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Wall-clock budget of one reconcile; a plugin past it is interrupted and the key retried.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub deadline: Duration,

    /// Memory cap of one reconcile's sandbox.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    pub memory_cap: usize,

    /// Where compiled plugins are cached, so a restart does not recompile
    /// [default: $XDG_CACHE_HOME/kubewasm/components or ~/.cache/kubewasm/components]. Created
    /// with mode 0700 if missing; a folder owned by another user or writable by its group or
    /// others is refused (its files are loaded as native code).
    #[arg(long, env = "KUBEWASM_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,

    /// Compile every plugin at start, without the on-disk cache.
    #[arg(long, conflicts_with = "compile_cache")]
    pub no_compile_cache: bool,
}

impl RuntimeArgs {
    pub fn config(&self) -> RuntimeConfig {
        RuntimeConfig {
            deadline: self.deadline,
            memory_cap: self.memory_cap,
            compile_cache_dir: if self.no_compile_cache {
                None
            } else {
                self.compile_cache
                    .clone()
                    .or_else(CompileCache::default_dir)
            },
            ..RuntimeConfig::default()
        }
    }
}

/// The operator's policy, shared by `run`, `dev` and `rbac`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// A policy file (YAML) that narrows what plugins' manifests ask for: the kinds, verbs and
    /// namespaces each plugin may use (see docs/operating.md, "Policy"). It never widens a
    /// manifest. Read once at start (edits take effect at the next start); a bad file stops the
    /// start with an error naming the problem.
    #[arg(long, env = "KUBEWASM_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl PolicyArgs {
    /// `config` with the policy file read and validated, if one was given.
    pub fn apply(&self, mut config: RuntimeConfig) -> anyhow::Result<RuntimeConfig> {
        if let Some(path) = &self.policy {
            // The error's message already carries its cause: printed once, not as a chain.
            let policy =
                kubewasm::policy::Policy::from_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::info!(policy = %path.display(), "policy in force: plugins' manifests are narrowed by it");
            config.policy = Some(std::sync::Arc::new(policy));
        }
        Ok(config)
    }
}

/// Informer options, shared by `run` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Make each informer's first list a streaming watch (sendInitialEvents) instead of a paged
    /// LIST; needs Kubernetes 1.27+ with the WatchList feature.
    #[arg(long)]
    pub streaming_lists: bool,

    /// Keep metadata.managedFields in cached objects (dropped by default: 20-25% of the bytes).
    #[arg(long)]
    pub keep_managed_fields: bool,

    /// Queue every reconciled object again this often (e.g. 10m); off by default.
    #[arg(long, value_parser = parse_duration)]
    pub resync: Option<Duration>,
}

impl CacheArgs {
    pub fn config(&self) -> kubewasm::ManagerConfig {
        kubewasm::ManagerConfig {
            initial_list: if self.streaming_lists {
                kubewasm_controller::InitialList::StreamingList
            } else {
                kubewasm_controller::InitialList::default()
            },
            keep_managed_fields: self.keep_managed_fields,
            resync: self.resync,
            ..kubewasm::ManagerConfig::default()
        }
    }
}

/// Hot reload options, shared by `run` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Load the plugins folder once at start instead of following its changes (hot reload is
    /// on by default: added, changed and removed plugin files take effect while running).
    #[arg(long)]
    pub no_watch: bool,
    #[command(flatten)]
    pub size: PluginSizeArgs,
}

/// The plugin file size cap, shared by `run`, `dev` and `plugin check`.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginSizeArgs {
    /// Largest plugin file read (e.g. 64MiB); a bigger one is refused, unread, with an error
    /// naming its size.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    max_plugin_size: usize,
}

impl PluginSizeArgs {
    /// The cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_plugin_size as u64
    }
}

/// Loads the plugins in `dir`, starts them on `manager` and (unless `--no-watch`) keeps them in
/// step with the folder; returns how many run and the watcher (keep it alive while running).
pub async fn start_plugins(
    runtime: &kubewasm::runtime::Runtime,
    manager: &kubewasm::Manager,
    dir: &std::path::Path,
    watch: &WatchArgs,
) -> anyhow::Result<(usize, kubewasm::reload::PluginWatcher)> {
    let options = kubewasm::reload::WatchOptions {
        watch: !watch.no_watch,
        max_plugin_size: watch.size.max_bytes(),
        ..kubewasm::reload::WatchOptions::default()
    };
    let watcher =
        kubewasm::reload::PluginWatcher::start(runtime.clone(), manager.clone(), dir, options)
            .await
            .with_context(|| format!("loading plugins from {}", dir.display()))?;
    let failed = watcher
        .files()
        .iter()
        .filter(|(_, f)| f.error.is_some())
        .count();
    if failed > 0 {
        tracing::warn!(
            "{failed} plugin file(s) in {} failed to load (see the errors above)",
            dir.display()
        );
    }
    if let Some(policy) = &runtime.config().policy {
        // An entry for a plugin that is not there is most likely a typo: say so, since that
        // plugin would silently get `default` instead.
        let files = watcher.files();
        let present = |name: &str| {
            files
                .iter()
                .any(|(path, _)| path.file_stem().is_some_and(|s| s == name))
        };
        for name in policy.plugin_names().filter(|n| !present(n)) {
            tracing::warn!(
                policy = %policy.source_name(),
                "the policy has an entry for plugin {name}, but {} holds no {name}.wasm:                  the entry applies to nothing (plugins are named after their file)",
                dir.display()
            );
        }
    }
    Ok((manager.status().len(), watcher))
}
