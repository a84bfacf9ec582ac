//! `kubewasm:controller/log`: plugin log lines into `tracing`, on the reconcile's span, and to
//! the reconcile's backend ([`Backend::log`](super::super::Backend::log)).

use super::super::bindings::v2::kubewasm::controller::log::{Host, Level};
use super::super::state::HostState;

/// Longest log line kept; longer ones are cut (a plugin cannot flood the log with one call).
/// Lines per reconcile are capped too (see `LogBudget`).
const MAX_LINE: usize = 16 * 1024;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let mut end = message.len().min(MAX_LINE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        if !self.log_budget.admit(message.len()) {
            return Ok(());
        }
        let plugin = &*self.plugin;
        let level = match level {
            Level::Trace => {
                tracing::trace!(target: "kubewasm::plugin", plugin, "{message}");
                tracing::Level::TRACE
            }
            Level::Debug => {
                tracing::debug!(target: "kubewasm::plugin", plugin, "{message}");
                tracing::Level::DEBUG
            }
            Level::Info => {
                tracing::info!(target: "kubewasm::plugin", plugin, "{message}");
                tracing::Level::INFO
            }
            Level::Warn => {
                tracing::warn!(target: "kubewasm::plugin", plugin, "{message}");
                tracing::Level::WARN
            }
            Level::Error => {
                tracing::error!(target: "kubewasm::plugin", plugin, "{message}");
                tracing::Level::ERROR
            }
        };
        // The reconcile's backend sees the line too (a recorder keeps it with the reconcile).
        self.backend.log(level, message);
        Ok(())
    }
}
