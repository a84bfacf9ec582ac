//! Debian packages the tests need, installed with apt-get (as root, or through sudo) when their
//! programs are missing; apt-get's own progress is shown.
//!
//! - `chromium` and `chromium-driver` (its WebDriver server) for the status page's browser
//!   tests. Not pinned: Debian replaces a stable release's Chromium with each security update
//!   and drops the old one from the archive, so a pinned version stops installing; the tests need
//!   only a Chromium whose chromedriver matches it, which the two packages guarantee.
//! - `docker-registry` (the CNCF distribution registry, 2.8) for the plugin push/pull tests
//!   (`host/tests/all/oci.rs`), pinned to the version the tests were written against; the tests
//!   start it themselves (a free port on 127.0.0.1, plain HTTP, a temporary storage folder).

use std::process::Command;

use crate::{Result, run};

/// A package (as apt-get is given it, maybe `name=version`) and the program it puts on PATH.
struct Package {
    spec: &'static str,
    program: &'static str,
}

/// What needs a set of packages, for messages: "the status page's browser tests".
struct Need {
    what: &'static str,
    packages: &'static [Package],
    /// Leave out the packages they recommend.
    no_recommends: bool,
}

const BROWSER: Need = Need {
    what: "the status page's browser tests",
    packages: &[
        Package {
            spec: "chromium",
            program: "chromium",
        },
        Package {
            spec: "chromium-driver",
            program: "chromedriver",
        },
    ],
    no_recommends: false,
};

const REGISTRY: Need = Need {
    what: "the OCI push/pull tests",
    packages: &[Package {
        spec: "docker-registry=2.8.2+ds1-1",
        program: "docker-registry",
    }],
    no_recommends: true,
};

/// Installs what the browser and OCI tests need, unless their programs are on PATH.
pub(crate) fn ensure_test_packages() -> Result {
    ensure(&BROWSER)?;
    ensure(&REGISTRY)
}

fn ensure(need: &Need) -> Result {
    let missing: Vec<&str> = need
        .packages
        .iter()
        .filter(|p| !on_path(p.program))
        .map(|p| p.spec)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.join(" ");
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
        &format!("updating the apt package lists (for {})", need.what),
        &mut apt(&["update"]),
    )
    .and_then(|()| {
        let mut install = apt(&["install", "-y"]);
        if need.no_recommends {
            install.arg("--no-install-recommends");
        }
        install.args(&missing);
        run(
            &format!("installing {names} for {} (once)", need.what),
            &mut install,
        )
    })
    .map_err(|e| {
        format!(
            "{e}: {} need Debian's {names}; install with `apt-get install -y {names}`",
            need.what
        )
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
