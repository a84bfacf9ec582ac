//! The OCI registry the plugin push/pull tests (`host/tests/all/oci.rs`) start on loopback:
//! Debian's `docker-registry` package (the CNCF distribution registry, 2.8), installed with
//! apt-get when missing.
//!
//! The version is pinned to the one the tests were written against; the tests start it
//! themselves (a free port on 127.0.0.1, plain HTTP, a temporary storage folder).

use std::process::Command;

use crate::{Result, run};

/// The package, pinned, and the program it puts on PATH.
const PACKAGE: &str = "docker-registry=2.8.2+ds1-1";
const PROGRAM: &str = "docker-registry";

/// Installs `docker-registry` with apt-get (as root, or through sudo) unless the program is on
/// PATH; apt-get's own progress is shown.
pub(crate) fn ensure() -> Result {
    if on_path(PROGRAM) {
        return Ok(());
    }
    let how = format!("apt-get install -y {PACKAGE}");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(
        "updating the apt package lists (for the OCI tests' registry)",
        &mut apt(&["update"]),
    )
    .and_then(|()| {
        run(
            "installing docker-registry for the OCI push/pull tests (once)",
            &mut apt(&["install", "-y", "--no-install-recommends", PACKAGE]),
        )
    })
    .map_err(|e| {
        format!("{e}: the OCI tests need Debian's docker-registry; install it with `{how}`")
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
