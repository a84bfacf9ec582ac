//! The control plane's binaries, as `cargo xtask cluster-tools` leaves them in `target/k8s-bin`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// A binary the control plane runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    Etcd,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Kwok,
}

impl Tool {
    /// Every tool, in build order.
    pub const ALL: [Self; 5] = [
        Self::KubeApiserver,
        Self::KubeControllerManager,
        Self::KubeScheduler,
        Self::Etcd,
        Self::Kwok,
    ];

    /// The file name in the binaries folder.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::KubeApiserver => "kube-apiserver",
            Self::KubeControllerManager => "kube-controller-manager",
            Self::KubeScheduler => "kube-scheduler",
            Self::Kwok => "kwok",
        }
    }

    /// The Go module folder under `tools/` that builds it.
    pub fn module_dir(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::KubeApiserver | Self::KubeControllerManager | Self::KubeScheduler => "k8s",
            Self::Kwok => "kwok",
        }
    }

    /// The Go package of its `main`.
    pub fn package(self) -> &'static str {
        match self {
            Self::Etcd => "go.etcd.io/etcd/server/v3",
            Self::KubeApiserver => "k8s.io/kubernetes/cmd/kube-apiserver",
            Self::KubeControllerManager => "k8s.io/kubernetes/cmd/kube-controller-manager",
            Self::KubeScheduler => "k8s.io/kubernetes/cmd/kube-scheduler",
            Self::Kwok => "sigs.k8s.io/kwok/cmd/kwok",
        }
    }

    /// Whether a control plane can do without it (kwok: Pods then stay Pending).
    pub fn optional(self) -> bool {
        self == Self::Kwok
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary())
    }
}

/// The folder holding the binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `tool` is (whether or not it was built).
    pub fn path(&self, tool: Tool) -> PathBuf {
        self.dir.join(tool.binary())
    }

    /// The path of `tool`, or an error saying how to build it.
    ///
    /// # Errors
    /// [`Error::MissingBinary`] when it was not built.
    pub fn require(&self, tool: Tool) -> Result<PathBuf> {
        let path = self.path(tool);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingBinary {
                tool,
                dir: self.dir.clone(),
            })
        }
    }

    /// kwok's stages (`kwok-stages.yaml`: how fake Nodes become Ready and Pods Running,
    /// taken from the kwok module's `kustomize/stage` by `cargo xtask cluster-tools`).
    pub fn kwok_stages(&self) -> PathBuf {
        self.dir.join("kwok-stages.yaml")
    }

    /// What `tool --version` prints, first line (e.g. `Kubernetes v1.37.2`).
    ///
    /// # Errors
    /// When the binary is missing or does not run.
    pub fn version(&self, tool: Tool) -> Result<String> {
        let path = self.require(tool)?;
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .map_err(|e| Error::io(format!("running {} --version", path.display()), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let text = if text.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr)
        } else {
            text
        };
        Ok(text.lines().next().unwrap_or_default().trim().to_owned())
    }
}
