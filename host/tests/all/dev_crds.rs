//! `kubewasm dev` installs the CRDs a plugin ships (its manifest's `custom-resources`) into its
//! API server: when the plugin loads, so its kind is served with no `kubectl apply`; when a new
//! version with a changed CRD is hot-reloaded, by updating it in place; and a CRD the server
//! refuses is a line saying why while the plugin runs on. `kubewasm dev` runs as a process, its
//! stdout in a file; kubectl talks to it.
//!
//! The changed and the refused CRD come from the `scale-schedule` example with one string of its
//! component rewritten, same length, so the bytes stay a valid component: its schema's
//! description (a changed spec), or the key `openAPIV3Schema` (a version without a schema, which
//! the host loads and the API server refuses).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use crate::support;
use crate::support::wait::wait;

const CRD: &str = "scaleschedules.demo.kubewasm.dev";
const INSTALLED: &str = "installed CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule";
const DESCRIPTION: &str = "Keeps a Deployment in the same namespace at `replicas`.";

/// `kubewasm dev` on a plugins folder of its own, killed when dropped.
struct Dev {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Starts `kubewasm dev` with `plugins` (file name, bytes) and waits for its banner.
    fn start(plugins: &[(&str, Vec<u8>)]) -> Dev {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("plugins")).expect("the plugins folder");
        for (name, bytes) in plugins {
            std::fs::write(dir.path().join("plugins").join(name), bytes).expect("a plugin file");
        }
        let out = std::fs::File::create(dir.path().join("dev.out")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("dev.err")).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .arg("dev")
            .arg("--plugins")
            .arg(dir.path().join("plugins"))
            .args(["--listen", "127.0.0.1:0", "--no-simulate"])
            .arg("--kubeconfig-out")
            .arg(dir.path().join("kubeconfig"))
            .arg("--compile-cache")
            .arg(support::process::compile_cache())
            .env_remove("KUBEWASM_POLICY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("kubewasm dev starts");
        let dev = Dev { child, dir };
        dev.wait_line("the banner", |l| l == "Press Ctrl-C to stop.");
        dev
    }

    fn plugin_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("plugins").join(name)
    }

    /// What dev printed on stdout so far.
    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.out")).unwrap_or_default()
    }

    /// Both of dev's outputs, for a failure message.
    fn dump(&self) -> String {
        let err = std::fs::read_to_string(self.dir.path().join("dev.err")).unwrap_or_default();
        format!(
            "--- kubewasm dev stdout ---\n{}--- stderr ---\n{err}",
            self.stdout()
        )
    }

    /// Waits for a stdout line that `matches` (described as `what`).
    fn wait_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        wait(what, || {
            self.stdout()
                .lines()
                .find(|l| matches(l))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("kubewasm dev never printed {what}\n{}", self.dump()))
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--request-timeout=20s")
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl on PATH?): {e}"));
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("kubectl's stdin");
        }
        drop(input);
        child.wait_with_output().expect("kubectl's output")
    }

    /// `kubectl get ... -o jsonpath=...`, when it succeeds.
    fn get(&self, object: &[&str], jsonpath: &str) -> Option<String> {
        let mut args = vec!["get"];
        args.extend_from_slice(object);
        let jp = format!("jsonpath={jsonpath}");
        args.extend_from_slice(&["-o", &jp]);
        let out = self.kubectl(&args, None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls until `kubectl get ... -o jsonpath=...` prints `want`.
    fn field_is(&self, what: &str, object: &[&str], jsonpath: &str, want: &str) {
        let mut last = None;
        wait(what, || {
            last = self.get(object, jsonpath);
            (last.as_deref() == Some(want)).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}: {jsonpath} is {last:?}, not {want:?}\n{}",
                self.dump()
            )
        });
    }

    fn apply(&self, yaml: &str) -> Output {
        self.kubectl(&["apply", "-f", "-"], Some(yaml))
    }
}

fn scale_schedule() -> Vec<u8> {
    std::fs::read(support::example("scale-schedule")).expect("the scale-schedule example")
}

/// `bytes` with every `from` replaced by `to` (same length: the component stays valid); fails
/// when `from` is not there.
fn rewritten(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "a same-length rewrite");
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut out = bytes.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(
        found > 0,
        "{:?} is not in the component",
        String::from_utf8_lossy(from)
    );
    out
}

const NIGHTLY: &str = "apiVersion: demo.kubewasm.dev/v1
kind: ScaleSchedule
metadata:
  name: nightly
  namespace: default
spec:
  deployment: web
  replicas: 5
";

#[test]
fn the_crd_a_plugin_ships_is_served_without_kubectl_apply_and_its_objects_reconciled() {
    let dev = Dev::start(&[("scale-schedule.wasm", scale_schedule())]);
    let banner = dev.stdout();
    let installed = banner
        .find(INSTALLED)
        .unwrap_or_else(|| panic!("dev did not say it installed the CRD:\n{}", dev.dump()));
    assert!(
        installed < banner.find("kubewasm dev is running.").expect("the banner"),
        "installed as the plugin loaded, before the banner:\n{banner}"
    );
    assert_eq!(
        dev.get(&["crd", CRD], "{.spec.names.kind}").as_deref(),
        Some("ScaleSchedule"),
        "{}",
        dev.dump()
    );
    let out = dev.apply(NIGHTLY);
    assert!(
        out.status.success(),
        "a ScaleSchedule can be created: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plugin's informer found its kind served: it reconciled the object (no Deployment web).
    dev.field_is(
        "nightly to be reconciled",
        &["scaleschedule", "nightly"],
        "{.status.phase}",
        "DeploymentMissing",
    );
    let stderr = std::fs::read_to_string(dev.dir.path().join("dev.err")).unwrap_or_default();
    assert!(
        !stderr.contains("scaleschedules"),
        "no informer ever had to wait for the kind:\n{stderr}"
    );
}

#[test]
fn a_hot_reload_with_a_changed_crd_updates_it_in_place() {
    let dev = Dev::start(&[("scale-schedule.wasm", scale_schedule())]);
    dev.wait_line("the CRD installed", |l| l == INSTALLED);
    let out = dev.apply(NIGHTLY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let description = "{.spec.versions[0].schema.openAPIV3Schema.description}";
    let before = dev
        .get(&["crd", CRD], "{.metadata.uid}/{.metadata.resourceVersion}")
        .expect("the CRD");
    assert_eq!(
        dev.get(&["crd", CRD], description).as_deref(),
        Some(DESCRIPTION)
    );

    let changed = DESCRIPTION.replace("Keeps", "Holds");
    let next = rewritten(&scale_schedule(), DESCRIPTION, &changed);
    let staged = dev.dir.path().join("next.wasm.tmp");
    std::fs::write(&staged, &next).expect("the new version");
    std::fs::rename(&staged, dev.plugin_file("scale-schedule.wasm")).expect("renamed into place");

    let updated = "updated CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule";
    dev.wait_line("the CRD updated", |l| l == updated);
    assert_eq!(
        dev.get(&["crd", CRD], description).as_deref(),
        Some(changed.as_str()),
        "{}",
        dev.dump()
    );
    let after = dev
        .get(&["crd", CRD], "{.metadata.uid}/{.metadata.resourceVersion}")
        .expect("the CRD");
    let (uid, _) = before.split_once('/').expect("uid/rv");
    assert!(
        after.starts_with(&format!("{uid}/")) && after != before,
        "updated in place (same uid, new resourceVersion): {before} -> {after}"
    );
    assert_eq!(
        dev.get(&["scaleschedule", "nightly"], "{.spec.replicas}")
            .as_deref(),
        Some("5"),
        "the objects of the kind are kept"
    );
    dev.wait_line("the new version serving", |l| {
        l.starts_with("plugin scale-schedule: reloaded ")
    });

    // Back to the first version: its CRD is put back too, said once more.
    std::fs::write(&staged, scale_schedule()).expect("the first version again");
    std::fs::rename(&staged, dev.plugin_file("scale-schedule.wasm")).expect("renamed into place");
    dev.field_is(
        "the first description back",
        &["crd", CRD],
        description,
        DESCRIPTION,
    );
    let crd_lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains(CRD))
            .map(str::to_owned)
            .collect()
    };
    wait("the second update said", || {
        (crd_lines(&dev.stdout()).len() == 3).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", dev.dump()));
    assert_eq!(
        crd_lines(&dev.stdout()),
        [INSTALLED, updated, updated],
        "{}",
        dev.dump()
    );
}

#[test]
fn a_version_with_the_same_crd_says_nothing_about_it() {
    let dev = Dev::start(&[("scale-schedule.wasm", scale_schedule())]);
    dev.wait_line("the CRD installed", |l| l == INSTALLED);
    // Another version (an Event message rewritten, not the CRD) of the same plugin.
    let next = rewritten(
        &scale_schedule(),
        "no longer scaled by",
        "no longer scaled BY",
    );
    let staged = dev.dir.path().join("next.wasm.tmp");
    std::fs::write(&staged, &next).expect("the new version");
    std::fs::rename(&staged, dev.plugin_file("scale-schedule.wasm")).expect("renamed into place");
    dev.wait_line("the new version serving", |l| {
        l.starts_with("plugin scale-schedule: reloaded ")
    });
    let out = dev.stdout();
    assert_eq!(
        out.lines().filter(|l| l.contains(CRD)).count(),
        1,
        "the CRD is said once, when installed:\n{out}"
    );
}

#[test]
fn a_crd_the_server_refuses_is_a_line_saying_why_and_the_plugin_runs_on() {
    // `openAPIV3Schema` renamed: the CRD's version has no schema, which the host's own check
    // lets through and the API server refuses.
    let refused = rewritten(&scale_schedule(), "openAPIV3Schema", "openAPIV3Schemx");
    let dev = Dev::start(&[("scale-schedule.wasm", refused)]);
    let line = dev.wait_line("the refusal", |l| {
        l.starts_with(
            "CRD scaleschedules.demo.kubewasm.dev from plugin scale-schedule not installed: ",
        )
    });
    assert!(
        line.contains("openAPIV3Schema") && line.contains("Required value"),
        "the server's reason, as it said it: {line}"
    );
    let banner = dev.stdout();
    assert!(
        banner.contains("  plugins:     scale-schedule"),
        "the plugin runs anyway:\n{}",
        dev.dump()
    );
    assert!(
        dev.get(&["crd", CRD], "{.metadata.name}").is_none(),
        "nothing was installed"
    );
    // Still serving: an object of another kind is answered, and dev did not exit.
    assert!(
        dev.get(&["namespace", "default"], "{.metadata.name}")
            .is_some()
    );
}

#[test]
fn run_says_it_leaves_crds_to_the_operator_and_dev_that_it_installs_them() {
    let help = |command: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .args([command, "--help"])
            .output()
            .expect("kubewasm runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let run = help("run");
    assert!(
        run.contains("are not installed")
            && run.contains("kubewasm plugin crd FILE.wasm | kubectl apply -f -"),
        "{run}"
    );
    let dev = help("dev");
    assert!(dev.contains("are installed into that server"), "{dev}");
}
