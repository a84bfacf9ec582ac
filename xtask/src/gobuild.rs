//! `go build -v` with progress, shared by the control-plane tools and the bench's Go peer.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How a `go build` ended.
pub struct GoBuilt {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed (also written to the log file).
    pub output: String,
    /// Packages it compiled (the rest came from the Go build cache).
    pub compiled: usize,
    /// How long it took.
    pub took: Duration,
}

/// Runs `cmd` (a `go build -v ...`; its stdout is dropped, its stderr read here) and prints
/// `    {label}: N packages compiled, T s` every 15 s while it runs. The whole output goes to
/// `log`. An error only when the command cannot be run or waited for.
pub fn run(mut cmd: Command, label: &str, log: &Path) -> Result<GoBuilt, String> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`go build` could not be run: {e}"))?;
    let stderr = child.stderr.take().ok_or("go build has no stderr")?;
    let compiled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&compiled);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::io::Result::ok)
        {
            // `go build -v` prints each package it compiles on a line of its own.
            if !line.contains(' ') {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let started = Instant::now();
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for go build: {e}"))?
        {
            break status;
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            eprintln!(
                "    {label}: {} packages compiled, {:.0} s",
                compiled.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = reader.join().unwrap_or_default();
    let _ = std::fs::write(log, &output);
    Ok(GoBuilt {
        status,
        output,
        compiled: compiled.load(Ordering::Relaxed),
        took: started.elapsed(),
    })
}
