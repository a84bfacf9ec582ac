//! The real Kubernetes control plane: `cluster-tools` builds its binaries from Go modules
//! (`tools/k8s`, `tools/etcd`, `tools/kwok`) into `target/k8s-bin`; `cluster up|down|status`
//! runs one in the background; `test` starts one for the whole test run.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kubewasm_controlplane::{Binaries, ControlPlane, KUBECONFIG_ENV, Options, Tool};

use crate::{Result, root, run};

/// The kwok stages (files of the kwok module's `kustomize/stage`) concatenated into
/// `target/k8s-bin/kwok-stages.yaml`: Nodes become Ready and renew a node Lease, as a kubelet
/// does (status only every ~10 minutes, so Node watchers are not woken by heartbeats); Pods become
/// Running and Ready, complete, and go when deleted, as a kubelet would make them.
const KWOK_STAGES: &[&str] = &[
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
];

/// The published go.mod of `k8s.io/kubernetes` requires its staging modules at this version
/// and replaces them with `./staging/...`, which a module depending on it cannot use.
const STAGING_PLACEHOLDER: &str = "v0.0.0";

pub fn bin_dir(root: &Path) -> PathBuf {
    root.join("target/k8s-bin")
}

fn go() -> Command {
    let mut cmd = Command::new("go");
    // The machine's Go builds the tools: never download another toolchain.
    cmd.env("GOTOOLCHAIN", "local").env("CGO_ENABLED", "0");
    cmd
}

/// `go env`-like output of one command, trimmed.
fn go_output(dir: &Path, args: &[&str]) -> Result<String> {
    let out = go()
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| go_missing(&e))?;
    if !out.status.success() {
        return Err(format!(
            "`go {}` in {} failed:\n{}",
            args.join(" "),
            dir.display(),
            diagnose(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn go_missing(e: &std::io::Error) -> String {
    format!(
        "Go is needed to build the control plane (kube-apiserver, etcd, ...) but `go` could not \
         be run: {e}. Install Go 1.26 or newer and put it on PATH."
    )
}

/// Names every module the Go module proxy refused in `stderr`, then the output itself.
fn diagnose(stderr: &str) -> String {
    let mut refused = Vec::new();
    for line in stderr.lines() {
        // e.g. "go: k8s.io/foo@v0.37.2: reading https://proxy.golang.org/...: 404 Not Found"
        let Some(rest) = line.trim().strip_prefix("go: ") else {
            continue;
        };
        let Some((module, reason)) = rest.split_once(": ") else {
            continue;
        };
        if module.contains('@')
            && (reason.contains("reading http")
                || reason.contains("not found")
                || reason.contains("unknown revision")
                || reason.contains("invalid version"))
        {
            let why = reason.rsplit(": ").next().unwrap_or(reason);
            refused.push(format!("  {module} ({why})"));
        }
    }
    let tail: Vec<&str> = stderr.lines().collect();
    let tail = tail[tail.len().saturating_sub(30)..].join("\n");
    if refused.is_empty() {
        tail
    } else {
        format!(
            "the Go module proxy did not serve:\n{}\n(pin another version in the tools module's \
             go.mod, or check GOPROXY)\n{tail}",
            refused.join("\n")
        )
    }
}

/// The version a module requires (`k8s.io/kubernetes v1.37.2` -> `v1.37.2`) in a go.mod.
fn required_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let first = words.next()?;
        let (name, version) = if first == "require" {
            (words.next()?, words.next()?)
        } else {
            (first, words.next()?)
        };
        (name == module && version.starts_with('v')).then(|| version.to_owned())
    })
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The Kubernetes version `tools/k8s/go.mod` pins.
fn kubernetes_version(root: &Path) -> Result<String> {
    let path = root.join("tools/k8s/go.mod");
    required_version(&read(&path)?, "k8s.io/kubernetes")
        .ok_or_else(|| format!("{} does not require k8s.io/kubernetes", path.display()))
}

/// `-ldflags` for a tool: stripped, and for the Kubernetes binaries the version stamps, so
/// `/version` and `--version` report the real release instead of `v0.0.0-master`.
fn ldflags(root: &Path, tool: Tool) -> Result<String> {
    let mut flags = String::from("-s -w");
    if tool.module_dir() == "k8s" {
        let version = kubernetes_version(root)?;
        let minor = version
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .ok_or_else(|| format!("{version} is not vMAJOR.MINOR.PATCH"))?;
        for (var, value) in [
            ("k8s.io/component-base/version.gitVersion", version.as_str()),
            ("k8s.io/component-base/version.gitMajor", "1"),
            ("k8s.io/component-base/version.gitMinor", minor),
            ("k8s.io/component-base/version.gitTreeState", "clean"),
            ("k8s.io/client-go/pkg/version.gitVersion", version.as_str()),
            ("k8s.io/client-go/pkg/version.gitMajor", "1"),
            ("k8s.io/client-go/pkg/version.gitMinor", minor),
        ] {
            flags.push_str(&format!(" -X {var}={value}"));
        }
    }
    Ok(flags)
}

/// What a built binary was built from: when it changes, the binary is rebuilt.
fn fingerprint(root: &Path, tool: Tool, go_version: &str) -> Result<String> {
    let module = root.join("tools").join(tool.module_dir());
    Ok(format!(
        "{go_version}\n{}\n{}\n--- go.mod\n{}--- go.sum\n{}",
        tool.package(),
        ldflags(root, tool)?,
        read(&module.join("go.mod"))?,
        read(&module.join("go.sum"))?
    ))
}

/// Options of `cargo xtask cluster-tools`.
#[derive(Default)]
struct ToolsArgs {
    kubernetes: Option<String>,
    force: bool,
}

fn parse_tools_args(args: &[OsString]) -> Result<ToolsArgs> {
    let mut parsed = ToolsArgs::default();
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--force" => parsed.force = true,
            "--kubernetes" => {
                parsed.kubernetes = Some(
                    args.next()
                        .ok_or("--kubernetes needs a version, e.g. 1.37.2")?,
                );
            }
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask cluster-tools [--force] [--kubernetes VERSION]\n\n\
                     Builds kube-apiserver, kube-controller-manager, kube-scheduler (tools/k8s), etcd\n\
                     (tools/etcd) and kwok (tools/kwok) from Go modules into target/k8s-bin, reusing\n\
                     the Go build cache; a binary whose inputs did not change is kept.\n\n\
                     --force                rebuild every binary\n\
                     --kubernetes VERSION   regenerate tools/k8s/go.mod for k8s.io/kubernetes VERSION\n\
                     \x20                      (every staging module replaced by its matching v0.x.y) first"
                );
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "cluster-tools: unknown argument `{other}` (see --help)"
                ));
            }
        }
    }
    Ok(parsed)
}

/// `cargo xtask cluster-tools`.
pub fn tools(args: &[OsString]) -> Result {
    let args = parse_tools_args(args)?;
    let root = root();
    if let Some(version) = &args.kubernetes {
        regenerate_k8s_module(&root, version)?;
    }
    build_tools(&root, args.force)
}

/// Builds every tool that is missing or out of date into `target/k8s-bin`.
pub fn build_tools(root: &Path, force: bool) -> Result {
    let go_version = go_output(root, &["version"])?;
    let bins = bin_dir(root);
    fs::create_dir_all(&bins).map_err(|e| format!("creating {}: {e}", bins.display()))?;
    let binaries = Binaries::new(&bins);
    let started = Instant::now();
    let mut downloaded = Vec::new();
    for tool in Tool::ALL {
        let module = root.join("tools").join(tool.module_dir());
        let out = binaries.path(tool);
        let stamp = bins.join(format!(".{}.built-from", tool.binary()));
        let wanted = fingerprint(root, tool, &go_version)?;
        let extra_ok = tool != Tool::Kwok || binaries.kwok_stages().is_file();
        if !force
            && out.is_file()
            && extra_ok
            && fs::read_to_string(&stamp).ok() == Some(wanted.clone())
        {
            continue;
        }
        if !downloaded.contains(&tool.module_dir()) {
            run(
                &format!(
                    "downloading the Go modules of tools/{} (from the Go module proxy; cached in \
                     the Go module cache)",
                    tool.module_dir()
                ),
                go().current_dir(&module).args(["mod", "download"]),
            )
            .map_err(|e| format!("{e}\n{}", download_diagnosis(&module)))?;
            downloaded.push(tool.module_dir());
        }
        go_build(root, tool, &module, &out)?;
        if tool == Tool::Kwok {
            write_kwok_stages(&module, &binaries.kwok_stages())?;
        }
        fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    }
    eprintln!(
        "==> control-plane tools in {} ({:.0} s):",
        bins.display(),
        started.elapsed().as_secs_f64()
    );
    for tool in Tool::ALL {
        let version = binaries.version(tool).map_err(|e| e.to_string())?;
        eprintln!("    {:<24} {version}", tool.binary());
    }
    Ok(())
}

/// Runs `go mod download` again with its output captured, to name what the proxy refused.
fn download_diagnosis(module: &Path) -> String {
    match go().current_dir(module).args(["mod", "download"]).output() {
        Ok(out) => diagnose(&String::from_utf8_lossy(&out.stderr)),
        Err(e) => go_missing(&e),
    }
}

/// `go build` of one tool with progress: how many packages were compiled so far, every 15 s.
/// The whole output goes to `target/k8s-bin/<tool>.build.log`.
fn go_build(root: &Path, tool: Tool, module: &Path, out: &Path) -> Result {
    let total = go_output(module, &["list", "-deps", tool.package()])
        .map(|deps| deps.lines().count())
        .unwrap_or(0);
    eprintln!(
        "==> building {} from {} ({} packages; a first build takes minutes on 2 cores, later ones \
         reuse the Go build cache)",
        tool.binary(),
        tool.package(),
        total
    );
    let log_path = out.with_extension("build.log");
    let mut cmd = go();
    cmd.current_dir(module)
        .args(["build", "-v", "-trimpath", "-pgo=off", "-ldflags"])
        .arg(ldflags(root, tool)?)
        .arg("-o")
        .arg(out)
        .arg(tool.package());
    let built = crate::gobuild::run(cmd, tool.binary(), &log_path)?;
    if !built.status.success() {
        return Err(format!(
            "building {} failed ({}); the whole output is in {}:\n{}",
            tool.binary(),
            built.status,
            log_path.display(),
            diagnose(&built.output)
        ));
    }
    eprintln!(
        "==> built {} in {:.0} s ({} packages compiled, the rest from the Go build cache)",
        tool.binary(),
        built.took.as_secs_f64(),
        built.compiled
    );
    Ok(())
}

/// Concatenates kwok's default stages from the kwok module in the Go module cache.
fn write_kwok_stages(module: &Path, dest: &Path) -> Result {
    let kwok_dir = go_output(
        module,
        &["list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
    )?;
    let mut text = String::from(
        "# kwok's stages, from the sigs.k8s.io/kwok module (written by `cargo xtask cluster-tools`).\n",
    );
    for stage in KWOK_STAGES {
        let path = Path::new(&kwok_dir).join(stage);
        text.push_str(&format!("---\n# {stage}\n"));
        text.push_str(&read(&path)?);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    fs::write(dest, text).map_err(|e| format!("writing {}: {e}", dest.display()))
}

/// Rewrites `tools/k8s/go.mod` for `k8s.io/kubernetes` `version`: its `go` line, the three
/// commands as `tool`s, and a `replace` of every staging module (those the published go.mod
/// requires at v0.0.0) by the matching `v0.<minor>.<patch>`; then `go mod tidy`.
fn regenerate_k8s_module(root: &Path, version: &str) -> Result {
    let version = version.trim_start_matches('v');
    let minor_patch = version
        .strip_prefix("1.")
        .filter(|rest| rest.split('.').count() == 2)
        .ok_or_else(|| format!("--kubernetes {version}: expected 1.MINOR.PATCH"))?;
    let module = root.join("tools/k8s");
    eprintln!("==> reading the go.mod of k8s.io/kubernetes v{version} from the Go module proxy");
    let info = go_output(
        &module,
        &[
            "mod",
            "download",
            "-json",
            &format!("k8s.io/kubernetes@v{version}"),
        ],
    )?;
    let info: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| format!("go mod download -json: {e}"))?;
    let published = info["GoMod"]
        .as_str()
        .ok_or("go mod download -json gave no GoMod path")?;
    let published = read(Path::new(published))?;
    let go_line = published
        .lines()
        .find(|l| l.starts_with("go "))
        .ok_or("the published go.mod has no go line")?;
    let mut staging: Vec<&str> = published
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            (words.next()? == STAGING_PLACEHOLDER && name.starts_with("k8s.io/")).then_some(name)
        })
        .collect();
    staging.sort_unstable();
    staging.dedup();
    let mut text = format!(
        "// Generated by `cargo xtask cluster-tools --kubernetes {version}` from the published go.mod of\n\
         // k8s.io/kubernetes v{version}: every staging module it requires at v0.0.0 is replaced by the\n\
         // matching v0.{minor_patch} (kubernetes/kubernetes#79384). Do not edit by hand.\n\
         module kubewasm.dev/tools/k8s\n\n{go_line}\n\ntool (\n"
    );
    for tool in [
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
    ] {
        text.push_str(&format!("\t{}\n", tool.package()));
    }
    text.push_str(&format!(
        ")\n\nrequire k8s.io/kubernetes v{version}\n\nreplace (\n"
    ));
    for m in &staging {
        text.push_str(&format!("\t{m} => {m} v0.{minor_patch}\n"));
    }
    text.push_str(")\n");
    let go_mod = module.join("go.mod");
    fs::write(&go_mod, text).map_err(|e| format!("writing {}: {e}", go_mod.display()))?;
    eprintln!(
        "==> {} staging modules replaced by v0.{minor_patch}; resolving the rest (go mod tidy)",
        staging.len()
    );
    run(
        "go mod tidy (tools/k8s)",
        go().current_dir(&module).args(["mod", "tidy"]),
    )
}

/// Where `cargo xtask cluster up` keeps its control plane.
fn cluster_dir(root: &Path) -> PathBuf {
    root.join("target/k8s-cluster")
}

/// `cargo xtask cluster up|down|status`.
pub fn cluster(args: &[OsString]) -> Result {
    let root = root();
    let dir = cluster_dir(&root);
    let sub = args.first().map(|a| a.to_string_lossy().into_owned());
    match sub.as_deref() {
        Some("up") => {
            build_tools(&root, false)?;
            if kubewasm_controlplane::stop_detached(&dir) > 0 {
                eprintln!(
                    "==> stopped the control plane that was running in {}",
                    dir.display()
                );
            }
            let mut options = Options::new(bin_dir(&root), &dir);
            options.detached = true;
            options.verbose = true;
            let plane = ControlPlane::start(options).map_err(|e| e.to_string())?;
            println!(
                "A control plane is running (kube-apiserver at {}; logs in {}).\n\n    \
                 export KUBECONFIG={}\n    kubectl get nodes\n\nStop it with `cargo xtask cluster down`.",
                plane.url(),
                dir.join("logs").display(),
                plane.kubeconfig().display()
            );
            plane.leave_running();
            Ok(())
        }
        Some("down") => {
            let stopped = kubewasm_controlplane::stop_detached(&dir);
            let _ = fs::remove_dir_all(&dir);
            println!("stopped {stopped} control-plane process(es)");
            Ok(())
        }
        Some("status") => {
            match fs::read_to_string(dir.join("state.json")) {
                Ok(state) => println!("{state}"),
                Err(_) => println!(
                    "no control plane is running (start one with `cargo xtask cluster up`)"
                ),
            }
            Ok(())
        }
        _ => Err(
            "usage: cargo xtask cluster up|down|status\n\n  up      start a real control plane \
             (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) in the \
             background; prints its kubeconfig\n  down    stop it\n  status  say whether one runs"
                .into(),
        ),
    }
}

/// Starts the control plane a test run shares and puts its kubeconfig in the environment
/// the test runner inherits.
pub fn start_for_tests(root: &Path) -> Result<ControlPlane> {
    build_tools(root, false)?;
    let dir = root.join("target/tmp/real-cluster");
    let mut options = Options::new(bin_dir(root), &dir);
    options.verbose = true;
    let plane = ControlPlane::start(options)
        .map_err(|e| format!("starting the shared control plane for the tests: {e}"))?;
    eprintln!(
        "==> the real-cluster tests use {} ({})",
        plane.url(),
        plane.kubeconfig().display()
    );
    Ok(plane)
}

/// The environment variable and value that hand `plane` to the tests.
pub fn test_env(plane: &ControlPlane) -> (&'static str, OsString) {
    (KUBECONFIG_ENV, plane.kubeconfig().as_os_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_the_proxy_refuses_is_named_with_its_reason() {
        let stderr = "go: downloading k8s.io/api v0.37.2\n\
                      go: k8s.io/nope@v0.37.9: reading https://proxy.golang.org/k8s.io/nope/@v/v0.37.9.info: 404 Not Found\n\
                      \tserver response: not found\n";
        let text = diagnose(stderr);
        assert!(
            text.starts_with(
                "the Go module proxy did not serve:\n  k8s.io/nope@v0.37.9 (404 Not Found)"
            ),
            "{text}"
        );
        assert!(
            text.contains("server response: not found"),
            "the output follows: {text}"
        );
    }

    #[test]
    fn a_build_error_that_is_not_about_modules_is_shown_as_it_is() {
        let text = diagnose("# k8s.io/x\n./a.go:1: syntax error\n");
        assert!(!text.contains("proxy"), "{text}");
        assert!(text.contains("syntax error"));
    }

    #[test]
    fn the_pinned_version_is_read_from_a_require_block_or_line() {
        let go_mod = "module m\n\nrequire k8s.io/kubernetes v1.37.2 // indirect\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 v3.7.3\n)\n";
        assert_eq!(
            required_version(go_mod, "k8s.io/kubernetes").as_deref(),
            Some("v1.37.2")
        );
        assert_eq!(
            required_version(go_mod, "go.etcd.io/etcd/server/v3").as_deref(),
            Some("v3.7.3")
        );
        assert_eq!(required_version(go_mod, "k8s.io/api"), None);
    }

    #[test]
    fn the_kubernetes_binaries_are_stamped_with_the_pinned_release() {
        let flags = ldflags(&root(), Tool::KubeApiserver).unwrap();
        let version = kubernetes_version(&root()).unwrap();
        assert!(flags.contains(&format!(
            "k8s.io/component-base/version.gitVersion={version}"
        )));
        assert!(
            flags.contains("k8s.io/component-base/version.gitMinor=37"),
            "{flags}"
        );
        assert_eq!(ldflags(&root(), Tool::Etcd).unwrap(), "-s -w");
    }
}
