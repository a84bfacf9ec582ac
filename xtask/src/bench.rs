//! `cargo xtask bench [--full] [--json FILE] [--only GROUPS]`: builds the plugins, then
//! `kubewasm-bench` and `kubewasm` in release, and runs the benchmark suite.

use std::ffi::OsString;

use crate::{Result, cargo, root, run};

/// Builds what the suite needs in release and runs it with `args` (passed to `kubewasm-bench`).
pub(crate) fn bench(args: &[OsString]) -> Result {
    let root = root();
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
    run(
        "kubewasm-bench (the benchmark suite)",
        std::process::Command::new(&bin)
            .current_dir(&root)
            .arg("--kubewasm-bin")
            .arg(root.join("target/release/kubewasm"))
            .arg("--plugins")
            .arg(root.join("target/test-plugins"))
            .args(args),
    )
}
