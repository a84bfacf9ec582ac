//! Project tasks, run as `cargo xtask <task>`. Needs cargo and rustup, python3 for the
//! Python plugins (`python.rs`) and Go for the real control plane (`cluster.rs`).
//!
//! `cargo xtask` with no task lists the tasks.

mod apt;
mod bench;
mod cluster;
mod cycles;
mod faults;
mod gobuild;
mod perturbation;
mod python;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";

const TASKS: &[(&str, &str)] = &[
    (
        "dev [ARGS]",
        "build the example plugins, then run `kubewasm dev` (embedded API server + host)",
    ),
    (
        "test [ARGS]",
        "build the plugins and the control-plane tools, install chromium for the browser tests and docker-registry for the OCI tests if missing, start a real control plane, run the plugins' native unit tests (SDK fake host), then every test in the workspace with cargo-nextest (ARGS go to nextest)",
    ),
    (
        "plugins",
        "build every plugin in plugins/ for wasm32-wasip2 (Python ones with componentize-py) into target/plugins and target/test-plugins",
    ),
    (
        "cluster-tools",
        "build kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok from Go modules (tools/) into target/k8s-bin (--force, --kubernetes VERSION; see --help)",
    ),
    (
        "cluster up|down|status",
        "run a real control plane in the background (admin kubeconfig in target/k8s-cluster/kubeconfig), stop it, or say whether one runs",
    ),
    (
        "lint",
        "the module-cycle check (no module uses one that uses it back), cargo fmt --check, and cargo clippy -D warnings over the host workspace and the plugins",
    ),
    (
        "ci",
        "what CI runs: lint, then test with the `ci` nextest profile (no retries; a test running over 5 minutes is killed)",
    ),
    (
        "bench [ARGS]",
        "build the plugins, kubewasm and kubewasm-bench in release, then run the benchmark suite (--full, --json FILE, --only GROUPS; see bench/README.md)",
    ),
];

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let task = args.next().and_then(|t| t.into_string().ok());
    let rest: Vec<OsString> = args.collect();
    let result = match task.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print_help();
            Ok(())
        }
        Some("plugins") => build_plugins(),
        Some("test") => build_plugins().and_then(|()| test(&rest, None)),
        Some("dev") => build_plugins().and_then(|()| dev(&rest)),
        Some("lint") => lint(),
        Some("cluster-tools") => cluster::tools(&rest),
        Some("cluster") => cluster::cluster(&rest),
        Some("bench") => build_plugins().and_then(|()| bench::bench(&rest)),
        Some("ci") => lint()
            .and_then(|()| build_plugins())
            .and_then(|()| test(&rest, Some("ci"))),
        Some(other) => {
            eprintln!("unknown task `{other}`\n");
            print_help();
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!("usage: cargo xtask <task>\n\ntasks:");
    for (name, what) in TASKS {
        println!("  {name:<24} {what}");
    }
}

type Result<T = (), E = String> = std::result::Result<T, E>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(what: &str, cmd: &mut Command) -> Result {
    eprintln!("==> {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Installs the wasm32-wasip2 standard library through rustup when it is missing.
fn ensure_wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| {
            format!(
                "rustup is needed to install the {WASM_TARGET} target, but it could not be run: {e}"
            )
        })?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(
        &format!("installing the {WASM_TARGET} target (once)"),
        Command::new("rustup").args(["target", "add", WASM_TARGET]),
    )
}

/// A plugin's source folder and where its component goes.
pub(crate) struct PluginSource {
    /// Folder name, which is also the package or component name.
    pub(crate) name: String,
    /// The plugin's folder.
    pub(crate) dir: PathBuf,
    /// `target/plugins` for examples, `target/test-plugins` for test plugins.
    pub(crate) out_dir: PathBuf,
}

/// The plugin folders under `<root>/<base>` (examples, into `target/plugins`) and
/// `<root>/<base>/testing` (test plugins, into `target/test-plugins`) that `keep` accepts,
/// sorted by name.
pub(crate) fn scan_plugins(
    root: &Path,
    base: &str,
    mut keep: impl FnMut(&Path) -> Result<bool>,
) -> Result<Vec<PluginSource>> {
    let mut found = Vec::new();
    for (dir, out_dir) in [
        (root.join(base), root.join("target/plugins")),
        (
            root.join(base).join("testing"),
            root.join("target/test-plugins"),
        ),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let path = entry.path();
            if path.is_dir() && keep(&path)? {
                found.push(PluginSource {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    dir: path,
                    out_dir: out_dir.clone(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The Rust plugin crates: folders whose Cargo.toml builds a component (cdylib) and belongs
/// to the plugins workspace.
fn plugin_crates(root: &Path) -> Result<Vec<PluginSource>> {
    scan_plugins(root, "plugins", |path| {
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            return Ok(false);
        }
        let text = fs::read_to_string(&manifest)
            .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
        // Only crates that build a component (cdylib) produce a plugin.
        if !text.contains("cdylib") {
            return Ok(false);
        }
        // A crate with a `[workspace]` of its own (e.g. fresh from `kubewasm plugin new`)
        // is not a member of the plugins workspace: cargo could not build it with `-p`.
        if text.lines().any(|l| l.trim() == "[workspace]") {
            eprintln!(
                "==> skipping {}: it is a workspace of its own (to build it here, remove its \
                 [workspace] table and add it to `members` in plugins/Cargo.toml)",
                path.display()
            );
            return Ok(false);
        }
        Ok(true)
    })
}

fn build_plugins() -> Result {
    let root = root();
    ensure_wasm_target()?;
    let crates = plugin_crates(&root)?;
    if crates.is_empty() {
        return Err("no plugin crates found under plugins/".into());
    }
    let target_dir = root.join("target/wasm");
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    let mut cmd = cargo();
    cmd.current_dir(root.join("plugins"))
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for name in &names {
        cmd.args(["-p", name]);
    }
    run(
        &format!("building {} plugin(s): {}", names.len(), names.join(", ")),
        &mut cmd,
    )?;
    for c in &crates {
        let artifact = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", c.name.replace('-', "_")));
        fs::create_dir_all(&c.out_dir)
            .map_err(|e| format!("creating {}: {e}", c.out_dir.display()))?;
        let dest = c.out_dir.join(format!("{}.wasm", c.name));
        // Copy to a temporary name and rename, so a host watching the folder never sees half a file.
        let tmp = c.out_dir.join(format!(".{}.wasm.tmp", c.name));
        fs::copy(&artifact, &tmp)
            .map_err(|e| format!("copying {} to {}: {e}", artifact.display(), tmp.display()))?;
        fs::rename(&tmp, &dest).map_err(|e| format!("renaming to {}: {e}", dest.display()))?;
    }
    let built: Vec<PathBuf> = crates
        .iter()
        .map(|c| c.out_dir.join(format!("{}.wasm", c.name)))
        .collect();
    python::build_plugins(&root, &built)?;
    eprintln!(
        "==> plugins are in {} and {}",
        root.join("target/plugins").display(),
        root.join("target/test-plugins").display()
    );
    Ok(())
}

/// The cargo-nextest release `cargo xtask test` installs when it is missing.
const NEXTEST_VERSION: &str = "0.9.151";

/// Installs cargo-nextest (pinned, with `--locked`) unless that version is already installed.
fn ensure_nextest() -> Result {
    let installed = cargo()
        .args(["nextest", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if installed
        .as_deref()
        .is_some_and(|v| v.split_whitespace().nth(1) == Some(NEXTEST_VERSION))
    {
        return Ok(());
    }
    run(
        &format!(
            "installing cargo-nextest {NEXTEST_VERSION} (once, a few minutes; found: {})",
            installed.as_deref().map_or("none", str::trim)
        ),
        cargo().args([
            "install",
            "--locked",
            "cargo-nextest",
            "--version",
            NEXTEST_VERSION,
        ]),
    )
}

/// Runs every test. `profile` names the nextest profile (`.config/nextest.toml`); without it,
/// nextest takes `NEXTEST_PROFILE` or its default profile (`.ci/run` sets `ci`).
///
/// A real control plane (built from Go modules, see `cluster.rs`) runs for the whole test
/// run; its admin kubeconfig reaches the tests in `KUBEWASM_REAL_CLUSTER_KUBECONFIG`. It is
/// stopped when the tests end, also when they fail; if this process is killed, the kernel
/// kills it too.
fn test(extra: &[OsString], profile: Option<&str>) -> Result {
    let root = root();
    ensure_nextest()?;
    apt::ensure_test_packages()?;
    plugin_unit_tests(&root)?;
    // The bench's smoke test runs the Go peer too.
    bench::build_go_peer(&root).map_err(bench::GoPeerError::into_message)?;
    faults::clear(&root);
    perturbation::clear(&root);
    let plane = cluster::start_for_tests(&root)?;
    let (env, kubeconfig) = cluster::test_env(&plane);
    let mut nextest = cargo();
    nextest.current_dir(&root).env(env, kubeconfig).args([
        "nextest",
        "run",
        "--workspace",
        "--no-fail-fast",
    ]);
    if let Some(profile) = profile {
        nextest.args(["--profile", profile]);
    }
    let tests = run(
        "running the workspace tests (cargo nextest)",
        nextest.args(extra),
    );
    plane.stop();
    faults::print_summary(&root);
    print_fidelity(&root);
    perturbation::print_table(&root);
    tests?;
    // nextest does not run doc tests.
    run(
        "running the doc tests",
        cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--doc"]),
    )
}

/// Prints the fidelity suite's figure (the embedded API server against kube-apiserver), from
/// the report the suite wrote, if it ran.
fn print_fidelity(root: &Path) {
    let report = root.join("target/fidelity/report.md");
    let Ok(text) = fs::read_to_string(&report) else {
        return;
    };
    if let Some(figure) = text.lines().find(|l| l.starts_with("matched ")) {
        let against = text
            .lines()
            .next()
            .and_then(|l| l.rsplit_once(' '))
            .map_or("", |(_, v)| v);
        eprintln!(
            "==> fidelity of the embedded API server against kube-apiserver {against}: {figure} (every difference: {})",
            report.display()
        );
    }
}

/// Runs the native unit tests of the plugins that use the SDK's fake host (crates whose
/// dev-dependencies enable kubewasm-sdk's `testing` feature): `cargo test`, not wasm.
fn plugin_unit_tests(root: &Path) -> Result {
    let mut names = Vec::new();
    for c in plugin_crates(root)? {
        let text = fs::read_to_string(c.dir.join("Cargo.toml")).unwrap_or_default();
        if text.contains("features = [\"testing\"]") {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let mut cmd = cargo();
    cmd.current_dir(root.join("plugins")).arg("test");
    for name in &names {
        cmd.args(["-p", name]);
    }
    run(
        &format!(
            "running the plugins' unit tests natively on the SDK's fake host: {}",
            names.join(", ")
        ),
        &mut cmd,
    )
}

fn dev(extra: &[OsString]) -> Result {
    let root = root();
    run(
        "starting kubewasm dev",
        cargo()
            .current_dir(&root)
            .args(["run", "--package", "kubewasm", "--", "dev", "--plugins"])
            .arg(root.join("target/plugins"))
            .args(extra),
    )
}

fn lint() -> Result {
    let root = root();
    eprintln!("==> module cycles (no module uses one that uses it back)");
    let cycles = cycles::find(&root).map_err(|e| format!("reading the sources: {e}"))?;
    if !cycles.is_empty() {
        return Err(format!(
            "modules that use each other in a circle (move what both need below both):\n  {}",
            cycles.join("\n  ")
        ));
    }
    run(
        "cargo fmt --check",
        cargo()
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy (host workspace)",
        cargo().current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    ensure_wasm_target()?;
    run(
        "cargo clippy (plugins, wasm32-wasip2)",
        cargo()
            .current_dir(root.join("plugins"))
            .args([
                "clippy",
                "--workspace",
                "--target",
                WASM_TARGET,
                "--target-dir",
            ])
            .arg(root.join("target/wasm"))
            .args(["--", "-D", "warnings"]),
    )
}
