//! A real OCI registry for the tests: Debian's `docker-registry` (the CNCF distribution
//! registry, 2.8) on 127.0.0.1, on a port it picks itself, plain HTTP (loopback only, so no
//! TLS), with its storage in a temporary folder; stopped when dropped.
//!
//! `cargo xtask test` installs the package when missing; without it a test fails with the
//! command to run, never skips.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use parking_lot::Mutex;

use super::wait::wait;

/// The registry program, and how to install it.
const PROGRAM: &str = "docker-registry";
const INSTALL: &str = "apt-get install -y docker-registry=2.8.2+ds1-1";

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`: the registry part of a reference.
    pub addr: String,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    /// Starts a registry with empty storage, open to anyone, and waits until `/v2/` answers.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that wants basic auth as `user` with the password whose bcrypt hash
    /// is `bcrypt` (an htpasswd line), and waits until it answers.
    pub fn with_basic_auth(user: &str, bcrypt: &str) -> Self {
        Self::start_with(Some((user, bcrypt)))
    }

    fn start_with(htpasswd: Option<(&str, &str)>) -> Self {
        let program = which(PROGRAM).unwrap_or_else(|| {
            panic!(
                "`{PROGRAM}` is not on PATH: the OCI tests need Debian's docker-registry. Run \
                 `cargo xtask test` (it installs it) or `{INSTALL}`"
            )
        });
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("config.yml");
        let auth = match htpasswd {
            Some((user, bcrypt)) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{bcrypt}\n")).expect("htpasswd is written");
                format!(
                    "auth:\n  htpasswd:\n    realm: kubewasm-tests\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        // Port 0: the registry binds a free port and logs it ("listening on 127.0.0.1:N").
        // No blob descriptor cache, so what a test writes into storage is what is served.
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:0\n  secret: kubewasm-tests\n{auth}",
                dir.path().join("storage").display()
            ),
        )
        .expect("the registry config is written");
        let mut child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().push(line);
            }
        });
        let mut registry = Self {
            child,
            addr: String::new(),
            dir,
            log,
        };
        let addr = wait("the registry to say its address", || {
            registry.log.lock().iter().find_map(|l| {
                let rest = l.split("listening on ").nth(1)?;
                Some(rest.split(['"', ' ']).next()?.to_owned())
            })
        });
        let Some(addr) = addr else {
            panic!("the registry did not start:\n{}", registry.dump());
        };
        registry.addr = addr;
        // 401 when it wants credentials: it answers, which is all this waits for.
        let up = wait("the registry's /v2/ to answer", || {
            super::process::http_get(&registry.addr, "/v2/")
                .filter(|(status, _)| *status == 200 || *status == 401)
        });
        assert!(
            up.is_some(),
            "the registry's /v2/ did not answer:\n{}",
            registry.dump()
        );
        registry
    }

    /// `127.0.0.1:PORT/REPOSITORY`.
    pub fn repo(&self, repository: &str) -> String {
        format!("{}/{repository}", self.addr)
    }

    /// The file the registry serves blob `digest` (`sha256:...`) from.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's log so far.
    pub fn dump(&self) -> String {
        self.log.lock().join("\n")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| Path::is_file(p))
    })
}
