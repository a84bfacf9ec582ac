//! The headless browser the status page's browser tests drive: Debian's `chromium` and
//! `chromium-driver` (its WebDriver server), installed with apt-get when missing.
//!
//! The versions are not pinned: Debian replaces a stable release's Chromium with each security
//! update and drops the old one from the archive, so a pinned version stops installing; the
//! tests need only a Chromium whose chromedriver matches it, which the two packages guarantee.

use std::process::Command;

use crate::{Result, run};

/// The packages, and the program each must put on PATH.
const PACKAGES: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
];

/// Installs `chromium` and `chromium-driver` with apt-get (as root, or through sudo) unless
/// both programs are on PATH; apt-get's own progress is shown.
pub(crate) fn ensure() -> Result {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, program)| !on_path(program))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let how = format!("apt-get install -y {}", missing.join(" "));
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
        "updating the apt package lists (for the browser tests' chromium)",
        &mut apt(&["update"]),
    )
    .and_then(|()| {
        let mut install = apt(&["install", "-y"]);
        install.args(&missing);
        run(
            &format!(
                "installing {} for the status page's browser tests (once)",
                missing.join(" and ")
            ),
            &mut install,
        )
    })
    .map_err(|e| {
        format!("{e}: the browser tests need Debian's chromium and chromium-driver; install them with `{how}`")
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
