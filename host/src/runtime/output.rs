//! Guest stdout/stderr: captured per store, then written to `tracing` line by line.

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How much of stderr a trap report quotes (the end, where a panic message is).
const STDERR_TAIL: usize = 2048;

/// Emits every captured line at info (stdout) or warn (stderr) level with the plugin and
/// object key, and returns the tail of stderr for error reports.
pub(crate) fn drain(
    plugin: &str,
    key: &str,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> String {
    let out = stdout.contents();
    for line in String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.is_empty())
    {
        tracing::info!(target: "kubewasm::plugin", plugin, key, stream = "stdout", "{line}");
    }
    let err = stderr.contents();
    let text = String::from_utf8_lossy(&err);
    for line in text.lines().filter(|l| !l.is_empty()) {
        tracing::warn!(target: "kubewasm::plugin", plugin, key, stream = "stderr", "{line}");
    }
    let trimmed = text.trim_end();
    let mut start = trimmed.len().saturating_sub(STDERR_TAIL);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    trimmed[start..].to_owned()
}
