//! Guest stdout/stderr: captured per reconcile ([`Capture`]), then written to `tracing` line by
//! line.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// An in-memory stdout or stderr of at most `capacity` bytes per reconcile: like wasmtime's
/// `MemoryOutputPipe`, but [`Capture::take`] empties it, so a kept instance (a plugin with
/// `reuse-instances`) writing to the stream it opened in an earlier reconcile gets the full
/// capacity again in each reconcile, and each reconcile's log holds only its own lines.
#[derive(Clone)]
pub(crate) struct Capture {
    capacity: usize,
    buffer: Arc<Mutex<BytesMut>>,
}

impl Capture {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            buffer: Arc::default(),
        }
    }

    /// What was written since the last take; the buffer is empty afterwards.
    pub(crate) fn take(&self) -> Bytes {
        self.buffer.lock().split().freeze()
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut buf = self.buffer.lock();
        if bytes.len() > self.capacity - buf.len() {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write beyond the {} bytes of output a reconcile may write",
                self.capacity
            )));
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let used = self.buffer.lock().len();
        if used < self.capacity {
            Ok(self.capacity - used)
        } else {
            Err(StreamError::Closed)
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.buffer.lock();
        let n = buf.len().min(self.capacity - buffer.len());
        buffer.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

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

/// Emits the lines captured since the last drain (at most [`MAX_LINES_PER_STREAM`] per stream,
/// then one warning saying how many were dropped) at info (stdout) or warn (stderr) level with
/// the plugin and object key, empties both captures, and returns the tail of stderr for error
/// reports.
pub(crate) fn drain(plugin: &str, key: &str, stdout: &Capture, stderr: &Capture) -> String {
    let out = stdout.take();
    let out = String::from_utf8_lossy(&out);
    let (lines, dropped, bytes) = kept_lines(&out);
    for line in lines {
        tracing::info!(target: "kubewasm::plugin", plugin, key, stream = "stdout", "{line}");
    }
    flood_warning(plugin, key, "stdout", dropped, bytes);
    let err = stderr.take();
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

    #[test]
    fn a_take_empties_the_capture_and_gives_back_its_capacity() {
        let capture = Capture::new(8);
        let mut stream = capture.clone();
        stream.write(Bytes::from_static(b"12345678")).unwrap();
        assert!(matches!(stream.check_write(), Err(StreamError::Closed)));
        assert!(stream.write(Bytes::from_static(b"9")).is_err());
        assert_eq!(&capture.take()[..], b"12345678");
        assert_eq!(stream.check_write().unwrap(), 8);
        stream.write(Bytes::from_static(b"next")).unwrap();
        assert_eq!(&capture.take()[..], b"next");
        assert!(capture.take().is_empty());
    }
}
