//! `kubewasm:controller/log`: plugin log lines into `tracing`, on the reconcile's span.

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
        match level {
            Level::Trace => tracing::trace!(target: "kubewasm::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "kubewasm::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "kubewasm::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "kubewasm::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "kubewasm::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
