//! Running kubectl (the machine's `kubectl`; its dispatcher picks the client matching the server's
//! version, v1.32 for the embedded server's v1.37) against a server. Fails, never skips, when kubectl
//! is not installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kubewasm_apiserver::ApiServer;
use serde_json::Value;
use tokio::process::Command;

/// kubectl with its own kubeconfig and cache folder.
pub struct Kubectl {
    /// The kubeconfig every command is given.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache.
    pub cache: PathBuf,
    /// The folder [`Kubectl::temp`] made for them, removed on drop.
    own: Option<tempfile::TempDir>,
}

/// What one kubectl command printed.
pub struct Out {
    /// Exit status 0.
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// kubectl for `server`, keeping its files in `dir`.
    pub fn for_server(server: &ApiServer, dir: &Path) -> Kubectl {
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Kubectl {
            kubeconfig,
            cache: dir.join("kubectl-cache"),
            own: None,
        }
    }

    /// kubectl for `server`, keeping its files in a temporary folder of its own.
    pub fn temp(server: &ApiServer) -> Kubectl {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = Kubectl::for_server(server, dir.path());
        Kubectl {
            own: Some(dir),
            ..k
        }
    }

    /// `kubectl apply -f` of a manifest given as text (written next to the kubeconfig).
    pub async fn apply(&self, manifest: &str) -> String {
        let dir = self.kubeconfig.parent().expect("the kubeconfig's folder");
        let path = write(dir, &format!("manifest-{}.yaml", manifest.len()), manifest);
        self.ok(&["apply", "-f", &path]).await
    }

    /// The command, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs a command (two minutes at most: kubectl's first discovery on a busy machine is slow).
    pub async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::time::timeout(Duration::from_secs(120), self.cmd(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 120s"))
            .unwrap_or_else(|e| {
                panic!("failed to run kubectl ({e}); install kubectl 1.32+ and put it on PATH to run this test")
            });
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert!(
            o.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    /// Runs a command that must fail; its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert!(
            !o.ok,
            "kubectl {args:?} succeeded but should have failed:\nstdout: {}",
            o.stdout
        );
        o.stderr
    }

    /// Runs a command that prints JSON (`-o json`); the parsed output.
    pub async fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {args:?} printed invalid JSON ({e}): {out}"))
    }
}

/// Writes `text` to `dir/name`; the path as a string for kubectl's `-f`.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}
