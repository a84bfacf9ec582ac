//! The command line: one file per subcommand.

mod apiserver;
mod common;
mod dev;
mod leader;
mod plugin;
mod rbac;
mod replay;
mod run;
mod test_plugin;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Run Kubernetes reconcilers written as sandboxed WebAssembly components.
///
/// The host owns the informers, the indexed caches and the work queues; plugins (.wasm
/// components) read the cache and write to the API server through the kubewasm:controller WIT
/// interface, and can do nothing their manifest does not declare.
#[derive(Debug, Parser)]
#[command(name = "kubewasm", version, propagate_version = true)]
struct Cli {
    /// Log format: readable text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "KUBEWASM_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Development mode: the embedded API server and the host in one process.
    ///
    /// Starts an in-memory Kubernetes API server, writes a kubeconfig for kubectl, loads the
    /// plugins in --plugins and runs them against it, hot-reloading changed files. The CRDs a
    /// plugin ships (its manifest's custom-resources) are installed into that server as it loads
    /// and updated when a new version changes them. Prints one line per reconcile (plugin, key,
    /// why, how long, how it ended; at most 20 a second).
    Dev(dev::Args),
    /// Run plugins against a cluster (kubeconfig or in-cluster service account).
    ///
    /// The CRDs plugins ship (their manifest's custom-resources) are not installed: apply them
    /// first, `kubewasm plugin crd FILE.wasm | kubectl apply -f -` (only `kubewasm dev` installs
    /// them, into its own API server). Until a kind is served, the host logs that it cannot be
    /// listed yet and keeps retrying.
    Run(run::Args),
    /// Run only the embedded, in-memory Kubernetes API server.
    Apiserver(apiserver::Args),
    /// Print the least-privilege RBAC (ClusterRole, Role and bindings) for a set of plugins.
    Rbac(rbac::Args),
    /// Write and validate plugins: `plugin new NAME` scaffolds a crate, `plugin check FILE`
    /// validates a component and prints its manifest and permissions.
    Plugin(plugin::Args),
    /// Re-run recorded reconciles (`--record DIR`) on a plugin build and report each divergence.
    Replay(replay::Args),
    /// Perturbation tests: run a plugin on a scenario against a fresh embedded API server,
    /// then again with a reconcile crashed after each write, a stale view, missed, duplicate
    /// and reordered watch events; print which runs still reach the expected end state.
    ///
    /// Exits non-zero when any run does not.
    TestPlugin(test_plugin::Args),
}

/// Parses the command line, sets up logging and runs the subcommand on a tokio runtime.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.log_format == LogFormat::Json;
    let (defaults, plugin_log) = match &cli.command {
        Command::Dev(args) => (common::LogDefaults::Dev, args.log.plugin_log),
        Command::Run(args) => (common::LogDefaults::Service, args.log.plugin_log),
        Command::TestPlugin(_) | Command::Replay(_) => (common::LogDefaults::Report, None),
        _ => (common::LogDefaults::Service, None),
    };
    common::init_logging(json, defaults, plugin_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubewasm: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Run(args) => run::run(args).await,
            Command::Apiserver(args) => apiserver::run(args).await,
            Command::Rbac(args) => rbac::run(args).await,
            Command::Plugin(args) => plugin::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::TestPlugin(args) => test_plugin::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<plugin::UsageError>() => {
            eprintln!("kubewasm: {}", error_text(&e));
            ExitCode::from(2)
        }
        Err(e) => {
            // Said once: as a JSON log line for a log collector, else as a plain line.
            if json {
                tracing::error!("{}", error_text(&e));
            } else {
                eprintln!("kubewasm: {}", error_text(&e));
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `outer: cause: ...`, each said once: a cause whose
/// text its outer message already carries (`failed to load x: {source}`) is not repeated.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to load plugin x.wasm: {source}")]
    struct Carries {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn an_error_says_each_cause_once() {
        let inner = std::io::Error::other("invalid manifest: empty kind");
        let e = anyhow::Error::new(Carries { source: inner });
        assert_eq!(
            error_text(&e),
            "failed to load plugin x.wasm: invalid manifest: empty kind"
        );
        let e = anyhow::Error::new(std::io::Error::other("permission denied"))
            .context("loading plugins from p");
        assert_eq!(
            error_text(&e),
            "loading plugins from p: permission denied",
            "a context that does not carry its cause still names it"
        );
    }
}
