//! Guest stdout/stderr: captured per store, then written to `tracing` line by line.

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How much of stderr a trap report quotes (the end, where a panic message is).
const STDERR_TAIL: usize = 2048;

/// Most lines of one stream one reconcile sends to the log; the rest are dropped and counted in
/// one warning (a plugin printing in a loop fills its 1 MiB pipe with up to ~500,000 lines).
pub(crate) const MAX_LINES_PER_STREAM: usize = 1000;

/// The non-empty lines of `text` that are logged, and how many lines and bytes are dropped.
fn kept_lines(text: &str) -> (Vec<&str>, usize, usize) {
    let mut kept = Vec::new();
    let (mut dropped, mut dropped_bytes) = (0, 0);
    for line in text.lines().filter(|l| !l.is_empty()) {
        if kept.len() < MAX_LINES_PER_STREAM {
            kept.push(line);
        } else {
            dropped += 1;
            dropped_bytes += line.len();
        }
    }
    (kept, dropped, dropped_bytes)
}

fn flood_warning(plugin: &str, key: &str, stream: &str, dropped: usize, bytes: usize) {
    if dropped > 0 {
        tracing::warn!(
            target: "kubewasm::plugin",
            plugin,
            key,
            stream,
            "plugin {stream} flood: dropped {dropped} lines ({bytes} bytes) past the limit of {MAX_LINES_PER_STREAM} lines per reconcile"
        );
    }
}

/// Emits the captured lines (at most [`MAX_LINES_PER_STREAM`] per stream, then one warning
/// saying how many were dropped) at info (stdout) or warn (stderr) level with the plugin and
/// object key, and returns the tail of stderr for error reports.
pub(crate) fn drain(
    plugin: &str,
    key: &str,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> String {
    let out = stdout.contents();
    let out = String::from_utf8_lossy(&out);
    let (lines, dropped, bytes) = kept_lines(&out);
    for line in lines {
        tracing::info!(target: "kubewasm::plugin", plugin, key, stream = "stdout", "{line}");
    }
    flood_warning(plugin, key, "stdout", dropped, bytes);
    let err = stderr.contents();
    let text = String::from_utf8_lossy(&err);
    let (lines, dropped, bytes) = kept_lines(&text);
    for line in lines {
        tracing::warn!(target: "kubewasm::plugin", plugin, key, stream = "stderr", "{line}");
    }
    flood_warning(plugin, key, "stderr", dropped, bytes);
    let trimmed = text.trim_end();
    let mut start = trimmed.len().saturating_sub(STDERR_TAIL);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    trimmed[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_print_flood_keeps_the_first_lines_and_counts_the_rest() {
        let text: String = (0..3000).map(|i| format!("line {i:04}\n\n")).collect();
        let (kept, dropped, bytes) = kept_lines(&text);
        assert_eq!(kept.len(), MAX_LINES_PER_STREAM);
        assert_eq!(kept[0], "line 0000");
        assert_eq!(dropped, 2000);
        assert_eq!(bytes, 2000 * "line 0000".len());
        assert_eq!(kept_lines("a\nb\n"), (vec!["a", "b"], 0, 0));
    }
}
