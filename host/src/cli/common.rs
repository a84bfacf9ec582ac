//! Pieces shared by the subcommands: logging, signals, durations and the runtime options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kubewasm::runtime::{CompileCache, RuntimeConfig};
use tracing_subscriber::EnvFilter;

/// What `kubewasm run` (and every other subcommand but `dev`) logs when `RUST_LOG` is not set:
/// `info`, with the Kubernetes client's and the HTTP stack's own chatter at `warn`. Filter
/// targets match by prefix, so each crate is named whole (`kube=warn` would also quiet
/// `kubewasm`).
const DEFAULT_FILTER: &str =
    "info,kube_client=warn,kube_runtime=warn,kube_core=warn,tower=warn,hyper=warn,hyper_util=warn";

/// What `kubewasm dev` logs when `RUST_LOG` is not set: warnings and errors, and what the
/// plugins log, on the `reconcile` span (plugin, version, key; `kubewasm::runtime::plugin` emits
/// no event of its own). The host's own progress is dev's plain lines on stdout (the banner,
/// reloads, one line per reconcile), not log lines.
const DEV_FILTER: &str = "warn,kubewasm::runtime::plugin=info";

/// The tracing target of the lines plugins log (`log.log` calls; `host/src/runtime/imports/log.rs`).
const PLUGIN_TARGET: &str = "kubewasm::plugin";

/// Which subcommand logs: `dev` keeps the host's own lines to warnings (see [`DEV_FILTER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDefaults {
    /// `kubewasm dev`.
    Dev,
    /// `kubewasm test-plugin` and `replay`: they print their own report, errors only besides
    /// (the faults a perturbation causes on purpose would bury it in warnings).
    Report,
    /// Every other subcommand.
    Service,
}

/// The least severe level of plugins' log lines that is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginLogLevel {
    /// None of them.
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl PluginLogLevel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// The plugin log option, shared by `run` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Show plugins' log lines at this level and above (`warn` quiets their info lines, `off`
    /// hides them all) [default: info]. `RUST_LOG`, when set, decides instead (the plugins'
    /// target is `kubewasm::plugin`).
    #[arg(long, value_enum, value_name = "LEVEL", env = "KUBEWASM_PLUGIN_LOG")]
    pub plugin_log: Option<PluginLogLevel>,
}

/// The filter directives used when `RUST_LOG` is not set.
fn default_directives(defaults: LogDefaults, plugin_log: Option<PluginLogLevel>) -> String {
    let (base, plugins) = match defaults {
        LogDefaults::Dev => (DEV_FILTER, PluginLogLevel::Info),
        LogDefaults::Report => ("error", PluginLogLevel::Error),
        LogDefaults::Service => (DEFAULT_FILTER, PluginLogLevel::Info),
    };
    let plugins = plugin_log.unwrap_or(plugins);
    format!("{base},{PLUGIN_TARGET}={}", plugins.as_str())
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Logs to stderr. `RUST_LOG`, when set, is the filter; otherwise the subcommand's default
/// ([`DEFAULT_FILTER`], [`DEV_FILTER`], or errors only for the commands that print a report) with
/// Colours only on a terminal without `NO_COLOR`.
pub fn init_logging(json: bool, defaults: LogDefaults, plugin_log: Option<PluginLogLevel>) {
    use std::io::IsTerminal as _;
    // Said once logging is up: (message, whether it is a warning).
    let mut notes: Vec<String> = Vec::new();
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match from_env {
        Some(text) => match EnvFilter::try_new(&text) {
            Ok(filter) => {
                if let Some(level) = plugin_log {
                    notes.push(format!(
                        "--plugin-log {} is ignored: RUST_LOG is set and decides what is logged \
                         (add {PLUGIN_TARGET}={} to it)",
                        level.as_str(),
                        level.as_str()
                    ));
                }
                filter
            }
            Err(e) => {
                notes.push(format!(
                    "RUST_LOG={text:?} is not a valid filter ({e}); using the default"
                ));
                EnvFilter::new(default_directives(defaults, plugin_log))
            }
        },
        None => EnvFilter::new(default_directives(defaults, plugin_log)),
    };
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    for note in notes {
        tracing::warn!("{note}");
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

/// Recording reconciles, shared by `run` and `dev` (see docs/recording.md).
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Record every reconcile (request, each host call with its answer, outcome) as JSON lines
    /// into this folder, one series of files per plugin; replay them with `kubewasm replay`.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,

    /// Record only this plugin (by name; repeatable). Default: every plugin.
    #[arg(long = "record-plugin", value_name = "NAME", requires = "record")]
    pub record_plugin: Vec<String>,

    /// What the recording folder may hold; past it the oldest files are deleted.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256MiB", requires = "record")]
    pub record_max_bytes: usize,

    /// Keep Secrets' data and stringData in the recording (redacted by default).
    #[arg(long, requires = "record")]
    pub record_secrets: bool,
}

impl RecordArgs {
    /// `config` with the recorder as a layer when `--record` is given, and the recorder (for the
    /// status page's links to records).
    pub fn apply(
        &self,
        mut config: kubewasm::ManagerConfig,
    ) -> anyhow::Result<(
        kubewasm::ManagerConfig,
        Option<std::sync::Arc<kubewasm::record::Recorder>>,
    )> {
        let Some(dir) = &self.record else {
            return Ok((config, None));
        };
        let recorder = kubewasm::record::Recorder::start(kubewasm::record::RecordConfig {
            dir: dir.clone(),
            plugins: self.record_plugin.clone(),
            max_bytes: self.record_max_bytes as u64,
            secrets: self.record_secrets,
        })?;
        tracing::info!(dir = %dir.display(), "recording reconciles");
        // Outermost: the recording holds what the plugin saw and did, whatever other layers do.
        let layer: std::sync::Arc<dyn kubewasm::layer::ReconcileLayer> = recorder.clone();
        config.layers = config.layers.with_outermost(layer);
        Ok((config, Some(recorder)))
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
/// `before_serve` is awaited for each plugin (version) that loads, before it starts or serves.
pub async fn start_plugins(
    runtime: &kubewasm::runtime::Runtime,
    manager: &kubewasm::Manager,
    dir: &std::path::Path,
    watch: &WatchArgs,
    before_serve: Option<kubewasm::reload::BeforeServe>,
) -> anyhow::Result<(usize, kubewasm::reload::PluginWatcher)> {
    let options = kubewasm::reload::WatchOptions {
        watch: !watch.no_watch,
        max_plugin_size: watch.size.max_bytes(),
        ..kubewasm::reload::WatchOptions::default()
    };
    let watcher = kubewasm::reload::PluginWatcher::start_with(
        runtime.clone(),
        manager.clone(),
        dir,
        options,
        before_serve,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_and_never_with_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(
            !use_colour(false, None),
            "a pipe or file gets no escape codes"
        );
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is as if unset (no-color.org)"
        );
    }

    #[test]
    fn the_default_filter_shows_plugin_lines_at_info_and_the_flag_changes_that() {
        let enabled = |directives: String, target: &str, level: tracing::Level| {
            use tracing_subscriber::layer::SubscriberExt as _;
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = std::sync::Arc::clone(&seen);
            let subscriber = tracing_subscriber::registry()
                .with(EnvFilter::new(directives))
                .with(Seen(flag));
            tracing::subscriber::with_default(subscriber, || match (target, level) {
                ("kubewasm::plugin", tracing::Level::INFO) => {
                    tracing::info!(target: "kubewasm::plugin", "x");
                }
                ("kubewasm::plugin", _) => tracing::warn!(target: "kubewasm::plugin", "x"),
                ("kubewasm::reload", _) => tracing::info!(target: "kubewasm::reload", "x"),
                (_, _) => tracing::info!(target: "kube_client::client", "x"),
            });
            seen.load(std::sync::atomic::Ordering::Relaxed)
        };
        use tracing::Level;
        for defaults in [LogDefaults::Dev, LogDefaults::Service] {
            let d = || default_directives(defaults, None);
            assert!(
                enabled(d(), "kubewasm::plugin", Level::INFO),
                "{defaults:?}"
            );
            assert!(!enabled(d(), "kube_client", Level::INFO), "{defaults:?}");
            let quiet = || default_directives(defaults, Some(PluginLogLevel::Warn));
            assert!(!enabled(quiet(), "kubewasm::plugin", Level::INFO));
            assert!(enabled(quiet(), "kubewasm::plugin", Level::WARN));
        }
        // `kube=warn` once quieted every kubewasm target too (targets match by prefix).
        assert!(enabled(
            default_directives(LogDefaults::Service, None),
            "kubewasm::reload",
            Level::INFO
        ));
        assert!(!enabled(
            default_directives(LogDefaults::Dev, None),
            "kubewasm::reload",
            Level::INFO
        ));
    }

    /// Records whether any event got through the filter.
    struct Seen(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
