//! `cargo xtask bench [--full] [--json FILE] [--only GROUPS]`: builds the plugins, the Go peer
//! (`tools/bench-go-peer`), then `kubewasm-bench` and `kubewasm` in release, and runs the
//! benchmark suite.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, root, run};

/// Builds what the suite needs in release and runs it with `args` (passed to `kubewasm-bench`).
pub(crate) fn bench(args: &[OsString]) -> Result {
    let root = root();
    let go_peer = match build_go_peer(&root) {
        Ok(bin) => Some(bin),
        Err(GoPeerError::NoGo(why)) => {
            eprintln!("warning: {why}; the report's Go column will say it was not measured");
            None
        }
        Err(GoPeerError::Build(e)) => return Err(e),
    };
    run(
        "cargo build --release -p kubewasm-bench -p kubewasm",
        cargo().current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "kubewasm-bench",
            "-p",
            "kubewasm",
        ]),
    )?;
    let bin = root.join("target/release/kubewasm-bench");
    let mut cmd = Command::new(&bin);
    cmd.current_dir(&root)
        .arg("--kubewasm-bin")
        .arg(root.join("target/release/kubewasm"))
        .arg("--plugins")
        .arg(root.join("target/test-plugins"));
    if let Some(go_peer) = go_peer {
        cmd.arg("--go-peer-bin").arg(go_peer);
    }
    run("kubewasm-bench (the benchmark suite)", cmd.args(args))
}

/// Why the Go peer was not built.
pub(crate) enum GoPeerError {
    /// `go` is not installed: the bench runs without the Go column.
    NoGo(String),
    /// The build failed.
    Build(String),
}

impl GoPeerError {
    /// What went wrong, for a task that cannot go on without the Go peer (`cargo xtask test`:
    /// the bench's smoke test checks its figures).
    pub(crate) fn into_message(self) -> String {
        match self {
            Self::NoGo(why) | Self::Build(why) => why,
        }
    }
}

/// Where `cargo xtask` puts the Go peer (`kubewasm-bench` looks there by default).
pub(crate) fn go_peer_bin(root: &Path) -> PathBuf {
    root.join("target/bench-go-peer/bench-go-peer")
}

/// Builds the Go peer (`tools/bench-go-peer`: client-go and controller-runtime) into
/// [`go_peer_bin`] with the machine's Go, showing how many packages were compiled every 15 s.
/// Modules come from the Go module proxy into the Go module cache and compiled packages go to
/// the Go build cache, both outside the clone, so a rebuild takes seconds; the whole output is
/// in `target/bench-go-peer/build.log`.
///
/// # Errors
/// [`GoPeerError::NoGo`] when `go` cannot be run, [`GoPeerError::Build`] when the build fails.
pub(crate) fn build_go_peer(root: &Path) -> std::result::Result<PathBuf, GoPeerError> {
    let module = root.join("tools/bench-go-peer");
    let out = go_peer_bin(root);
    let build = |e: String| GoPeerError::Build(e);
    let dir = out.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| build(format!("creating {}: {e}", dir.display())))?;
    let go = || {
        let mut cmd = Command::new("go");
        // The machine's Go builds it: never download another toolchain.
        cmd.current_dir(&module)
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0");
        cmd
    };
    let total = match go().args(["list", "-deps", "."]).output() {
        Ok(o) if o.status.success() => o.stdout.split(|b| *b == b'\n').count() - 1,
        Ok(_) => 0,
        Err(e) => {
            return Err(GoPeerError::NoGo(format!(
                "the Go peer of the benchmark (tools/bench-go-peer) needs Go 1.26 or newer, but \
                 `go` could not be run: {e}"
            )));
        }
    };
    eprintln!(
        "==> building the Go peer (tools/bench-go-peer, {total} packages; a first build takes a \
         few minutes on 2 cores, later ones reuse the Go build cache)"
    );
    let log_path = dir.join("build.log");
    let mut cmd = go();
    cmd.args(["build", "-v", "-trimpath", "-pgo=off", "-o"])
        .arg(&out)
        .arg(".");
    let built = crate::gobuild::run(cmd, "bench-go-peer", &log_path).map_err(GoPeerError::NoGo)?;
    if !built.status.success() {
        let tail: Vec<&str> = built.output.lines().rev().take(20).collect();
        return Err(build(format!(
            "building the Go peer failed ({}); the whole output is in {}:\n{}",
            built.status,
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    eprintln!(
        "==> built {} in {:.0} s ({} packages compiled, the rest from the Go build cache)",
        out.display(),
        built.took.as_secs_f64(),
        built.compiled
    );
    Ok(out)
}
