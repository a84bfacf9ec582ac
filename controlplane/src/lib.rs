//! A real Kubernetes control plane on loopback, started the way controller-runtime's envtest
//! starts one, from the binaries `cargo xtask cluster-tools` builds from Go modules into
//! `target/k8s-bin/`: etcd, kube-apiserver (RBAC, a serving certificate, an admin token,
//! service-account signing keys), kube-controller-manager (garbage collector, namespace,
//! workload and service-account controllers), kube-scheduler and kwok (fake Nodes on which
//! Pods become Running).
//!
//! Start here: [`ControlPlane::start`] with [`Options`]; [`ControlPlane::kubeconfig`] is the
//! admin kubeconfig. `cargo xtask test` starts one control plane for the whole test run and
//! hands its kubeconfig to the tests in [`KUBECONFIG_ENV`]; tests that restart a component
//! start their own. Every process started here dies with the process that started it
//! (see `process.rs`), unless [`Options::detached`] asks otherwise (`cargo xtask cluster up`).

mod binaries;
pub mod http;
mod pki;
mod process;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub use binaries::{Binaries, Tool};
pub use pki::{ADMIN_USER, Pki};

/// The environment variable through which `cargo xtask test` hands the shared control plane's
/// admin kubeconfig to the tests.
pub const KUBECONFIG_ENV: &str = "KUBEWASM_REAL_CLUSTER_KUBECONFIG";

/// The annotation kwok manages Nodes by (`--manage-nodes-with-annotation-selector`).
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The controllers kube-controller-manager runs (names from `cmd/kube-controller-manager/names`).
pub const CONTROLLERS: &[&str] = &[
    "garbage-collector-controller",
    "namespace-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "pod-garbage-collector-controller",
    // Lifts the not-ready taint admission puts on new Nodes once kwok reports them Ready.
    "node-lifecycle-controller",
];

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary is not in the binaries folder.
    #[error("{tool} is not built in {dir}: run `cargo xtask cluster-tools` first")]
    MissingBinary { tool: Tool, dir: PathBuf },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Keys or certificates could not be made or read.
    #[error("pki: {0}")]
    Pki(String),
    /// A request of the control plane's own failed.
    #[error("{0}")]
    Http(String),
    /// A component exited or did not become ready in time.
    #[error("{component} {problem}; the end of its log ({log}):\n{tail}")]
    NotReady {
        component: Component,
        problem: String,
        log: PathBuf,
        tail: String,
    },
}

impl Error {
    fn io(what: String, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One process of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    Etcd,
    ApiServer,
    ControllerManager,
    Scheduler,
    Kwok,
}

impl Component {
    /// In start order.
    pub const ALL: [Self; 5] = [
        Self::Etcd,
        Self::ApiServer,
        Self::ControllerManager,
        Self::Scheduler,
        Self::Kwok,
    ];

    /// The binary it runs.
    pub fn tool(self) -> Tool {
        match self {
            Self::Etcd => Tool::Etcd,
            Self::ApiServer => Tool::KubeApiserver,
            Self::ControllerManager => Tool::KubeControllerManager,
            Self::Scheduler => Tool::KubeScheduler,
            Self::Kwok => Tool::Kwok,
        }
    }

    fn name(self) -> &'static str {
        self.tool().binary()
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to start and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the binaries are (`target/k8s-bin`).
    pub bin_dir: PathBuf,
    /// The control plane's own folder: etcd's data, keys, logs, the kubeconfig. Created if
    /// missing; an existing one is emptied first.
    pub dir: PathBuf,
    /// Run kube-controller-manager (on by default).
    pub controller_manager: bool,
    /// Run kube-scheduler (on by default).
    pub scheduler: bool,
    /// Run kwok with this many fake Nodes (`kwok-node-0`, ...) when its binary was built;
    /// 0 turns kwok off. Default 1.
    pub kwok_nodes: usize,
    /// Start the processes in their own session and leave them running when this process
    /// ends (`cargo xtask cluster up`); stop them with [`stop_detached`].
    pub detached: bool,
    /// Say on stderr what starts and how long it took.
    pub verbose: bool,
    /// Extra kube-apiserver flags.
    pub apiserver_args: Vec<String>,
}

impl Options {
    /// Every component, one kwok Node, attached, quiet.
    pub fn new(bin_dir: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self {
            bin_dir: bin_dir.into(),
            dir: dir.into(),
            controller_manager: true,
            scheduler: true,
            kwok_nodes: 1,
            detached: false,
            verbose: false,
            apiserver_args: Vec::new(),
        }
    }
}

/// The loopback ports the control plane listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
}

/// A running control plane. Dropping it stops every process it started (unless detached).
pub struct ControlPlane {
    options: Options,
    binaries: Binaries,
    ports: Ports,
    pki: Pki,
    kubeconfig: PathBuf,
    children: BTreeMap<Component, Child>,
    /// Set by [`ControlPlane::leave_running`]: dropping stops nothing.
    left_running: bool,
}

impl fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlane")
            .field("dir", &self.options.dir)
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and the components `options` asks for, and waits until
    /// each is ready: etcd healthy, `/readyz` answering 200, the `default` ServiceAccount
    /// created (the controller manager works), the fake Nodes Ready (kwok works).
    ///
    /// # Errors
    /// A missing binary, a component that exits or is not ready within a minute (with the
    /// end of its log), or a file that cannot be written. Whatever was started is stopped.
    pub fn start(options: Options) -> Result<Self> {
        let binaries = Binaries::new(&options.bin_dir);
        for tool in [Tool::Etcd, Tool::KubeApiserver] {
            binaries.require(tool)?;
        }
        if options.controller_manager {
            binaries.require(Tool::KubeControllerManager)?;
        }
        if options.scheduler {
            binaries.require(Tool::KubeScheduler)?;
        }
        let dir = &options.dir;
        if dir.exists() {
            stop_detached(dir);
            fs::remove_dir_all(dir)
                .map_err(|e| Error::io(format!("emptying {}", dir.display()), e))?;
        }
        for sub in ["etcd", "logs", "pki", "apiserver-certs"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        }
        let pki = Pki::generate(&dir.join("pki"))?;
        let ports = Ports {
            etcd_client: free_port()?,
            etcd_peer: free_port()?,
            apiserver: free_port()?,
        };
        let mut plane = Self {
            kubeconfig: dir.join("kubeconfig"),
            options,
            binaries,
            ports,
            pki,
            children: BTreeMap::new(),
            left_running: false,
        };
        plane.write_kubeconfig(
            &plane.kubeconfig.clone(),
            &plane.pki.admin_token.clone(),
            ADMIN_USER,
        )?;
        for component in Component::ALL {
            if plane.wanted(component) {
                plane.start_on_free_ports(component)?;
            }
        }
        plane.write_state()?;
        Ok(plane)
    }

    /// Starts `component` for the first time. A port found free a moment before can be taken
    /// by another process before etcd or kube-apiserver binds it (tests start control planes
    /// and servers side by side): when the component exits saying so, it gets new ports and
    /// another try, up to three.
    fn start_on_free_ports(&mut self, component: Component) -> Result<()> {
        let mut tries = 0;
        loop {
            match self.start_component(component) {
                Err(Error::NotReady { tail, .. })
                    if tries < 3 && tail.contains("address already in use") =>
                {
                    tries += 1;
                    match component {
                        Component::Etcd => {
                            self.ports.etcd_client = free_port()?;
                            self.ports.etcd_peer = free_port()?;
                        }
                        Component::ApiServer => {
                            self.ports.apiserver = free_port()?;
                            self.write_kubeconfig(
                                &self.kubeconfig.clone(),
                                &self.pki.admin_token.clone(),
                                ADMIN_USER,
                            )?;
                        }
                        // The others listen on no port of ours (`--secure-port=0`).
                        _ => {}
                    }
                    if self.options.verbose {
                        eprintln!("==> {component}: its port was taken meanwhile; new ports");
                    }
                }
                other => return other,
            }
        }
    }

    fn wanted(&self, component: Component) -> bool {
        match component {
            Component::Etcd | Component::ApiServer => true,
            Component::ControllerManager => self.options.controller_manager,
            Component::Scheduler => self.options.scheduler,
            Component::Kwok => self.kwok_enabled(),
        }
    }

    /// True when kwok runs (its binary was built and Nodes were asked for).
    pub fn kwok_enabled(&self) -> bool {
        self.options.kwok_nodes > 0
            && self.binaries.path(Tool::Kwok).is_file()
            && self.binaries.kwok_stages().is_file()
    }

    /// The admin kubeconfig (user `kubewasm-admin`, group `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// kube-apiserver's URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.apiserver)
    }

    /// The CA certificate (PEM) that the serving certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.pki.admin_token
    }

    /// The control plane's folder.
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// etcd's client URL, `http://127.0.0.1:<port>`.
    pub fn etcd_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.etcd_client)
    }

    /// A client for kube-apiserver with the admin token.
    ///
    /// # Errors
    /// Only if the CA is unusable.
    pub fn admin(&self) -> Result<http::Client> {
        http::Client::https(
            loopback(self.ports.apiserver),
            &self.pki.ca_der,
            &self.pki.admin_token,
        )
    }

    /// Writes a kubeconfig for this control plane that authenticates with `token` (as
    /// `user`, the name it has in the file), e.g. a ServiceAccount's token from the
    /// TokenRequest API: what a pod's in-cluster configuration amounts to.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path, token: &str, user: &str) -> Result<()> {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.pki.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubewasm-controlplane\n  cluster:\n    \
             server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    \
             token: {token}\ncontexts:\n- name: kubewasm-controlplane\n  context:\n    cluster: \
             kubewasm-controlplane\n    user: {user}\n    namespace: default\ncurrent-context: \
             kubewasm-controlplane\n",
            url = self.url(),
        );
        fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    fn log_path(&self, component: Component) -> PathBuf {
        self.options
            .dir
            .join("logs")
            .join(format!("{}.log", component.name()))
    }

    fn command(&self, component: Component) -> Command {
        let dir = &self.options.dir;
        let p = &self.pki;
        let path = |p: &Path| p.display().to_string();
        let mut cmd = Command::new(self.binaries.path(component.tool()));
        match component {
            Component::Etcd => {
                let client = format!("http://127.0.0.1:{}", self.ports.etcd_client);
                let peer = format!("http://127.0.0.1:{}", self.ports.etcd_peer);
                cmd.args([
                    "--name=controlplane".to_owned(),
                    format!("--data-dir={}", path(&dir.join("etcd"))),
                    format!("--listen-client-urls={client}"),
                    format!("--advertise-client-urls={client}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-advertise-peer-urls={peer}"),
                    format!("--initial-cluster=controlplane={peer}"),
                    "--unsafe-no-fsync=true".to_owned(),
                    "--log-level=warn".to_owned(),
                ]);
            }
            Component::ApiServer => {
                cmd.args([
                    format!("--etcd-servers={}", self.etcd_url()),
                    "--bind-address=127.0.0.1".to_owned(),
                    "--advertise-address=127.0.0.1".to_owned(),
                    format!("--secure-port={}", self.ports.apiserver),
                    format!("--tls-cert-file={}", path(&p.serving_cert)),
                    format!("--tls-private-key-file={}", path(&p.serving_key)),
                    format!("--client-ca-file={}", path(&p.ca_file)),
                    format!("--token-auth-file={}", path(&p.token_file)),
                    "--authorization-mode=RBAC".to_owned(),
                    "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
                    "--allow-privileged=true".to_owned(),
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local"
                        .to_owned(),
                    format!("--service-account-key-file={}", path(&p.sa_pub)),
                    format!("--service-account-signing-key-file={}", path(&p.sa_key)),
                    // Endpoints of the `kubernetes` Service would point at loopback, which
                    // validation refuses: do not reconcile them.
                    "--endpoint-reconciler-type=none".to_owned(),
                    format!("--cert-dir={}", path(&dir.join("apiserver-certs"))),
                    "--profiling=false".to_owned(),
                    // Setting blockOwnerDeletion needs the right to update the owner's
                    // finalizers, as on clusters that enable this plugin.
                    "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".to_owned(),
                ]);
                cmd.args(&self.options.apiserver_args);
            }
            Component::ControllerManager => {
                cmd.args([
                    format!("--kubeconfig={}", path(&self.kubeconfig)),
                    "--leader-elect=false".to_owned(),
                    "--bind-address=127.0.0.1".to_owned(),
                    "--secure-port=0".to_owned(),
                    format!("--controllers={}", CONTROLLERS.join(",")),
                    format!("--service-account-private-key-file={}", path(&p.sa_key)),
                    format!("--root-ca-file={}", path(&p.ca_file)),
                ]);
            }
            Component::Scheduler => {
                cmd.args([
                    format!("--kubeconfig={}", path(&self.kubeconfig)),
                    "--leader-elect=false".to_owned(),
                    "--bind-address=127.0.0.1".to_owned(),
                    "--secure-port=0".to_owned(),
                ]);
            }
            Component::Kwok => {
                cmd.args([
                    format!("--kubeconfig={}", path(&self.kubeconfig)),
                    format!("--config={}", path(&self.binaries.kwok_stages())),
                    "--manage-all-nodes=false".to_owned(),
                    format!("--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake"),
                    "--node-ip=10.0.1.1".to_owned(),
                    // Heartbeats renew a Lease in kube-node-lease, as a kubelet's do.
                    "--node-lease-duration-seconds=40".to_owned(),
                    "--cidr=10.0.2.0/24".to_owned(),
                ]);
            }
        }
        cmd
    }

    /// Starts `component` (again) and waits until it is ready.
    ///
    /// # Errors
    /// As [`ControlPlane::start`].
    pub fn start_component(&mut self, component: Component) -> Result<()> {
        let started = Instant::now();
        if self.options.verbose {
            eprintln!("==> starting {component}");
        }
        let log_path = self.log_path(component);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let err = log
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let mut cmd = self.command(component);
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        let child = process::spawn(cmd, self.options.detached)
            .map_err(|e| Error::io(format!("starting {component}"), e))?;
        self.children.insert(component, child);
        if let Err(e) = self.wait_ready(component) {
            self.stop_component(component);
            return Err(e);
        }
        if self.options.verbose {
            eprintln!(
                "==> {component} is ready ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        if self.options.detached {
            self.write_state()?;
        }
        Ok(())
    }

    /// Stops `component`: SIGTERM, then SIGKILL after a grace period (5 s for kube-apiserver,
    /// which stops listening at once but then lingers for half a minute draining connections;
    /// 10 s for the others). Nothing happens if it is not running.
    pub fn stop_component(&mut self, component: Component) {
        if let Some(mut child) = self.children.remove(&component) {
            let grace = match component {
                Component::ApiServer => Duration::from_secs(5),
                _ => Duration::from_secs(10),
            };
            process::stop(&mut child, grace);
        }
    }

    /// Kills `component` with SIGKILL, as a crash would.
    pub fn kill_component(&mut self, component: Component) {
        if let Some(mut child) = self.children.remove(&component) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops `component` and starts it again on the same ports and data.
    ///
    /// # Errors
    /// As [`ControlPlane::start_component`].
    pub fn restart_component(&mut self, component: Component) -> Result<()> {
        self.stop_component(component);
        self.start_component(component)
    }

    /// Compacts etcd's history (what kube-apiserver does every five minutes), so that every
    /// watch resuming from a resourceVersion before now gets `410 Gone`: first writes a key of
    /// its own outside `/registry` (which no client of kube-apiserver sees) so the revision
    /// moves past anything a client may have seen, then compacts at that revision. Returns it.
    ///
    /// # Errors
    /// When etcd does not answer as expected.
    pub fn compact_etcd(&self) -> Result<i64> {
        let etcd = http::Client::plain(loopback(self.ports.etcd_client));
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let put = etcd.request(
            "POST",
            "/v3/kv/put",
            Some(&json!({"key": b64("/kubewasm-controlplane/compaction"), "value": b64("1")})),
        )?;
        let revision: i64 = put.json()["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                Error::Http(format!("etcd's put answer has no revision: {}", put.body))
            })?;
        let compacted = etcd.request(
            "POST",
            "/v3/kv/compaction",
            Some(&json!({"revision": revision.to_string(), "physical": true})),
        )?;
        if compacted.status != 200 {
            return Err(Error::Http(format!(
                "etcd refused to compact at {revision}: {} {}",
                compacted.status, compacted.body
            )));
        }
        Ok(revision)
    }

    fn wait_ready(&mut self, component: Component) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(child) = self.children.get_mut(&component)
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.not_ready(component, format!("exited ({status})")));
            }
            let missing = match self.check_ready(component) {
                Ok(None) => return Ok(()),
                Ok(Some(why)) | Err(Error::Http(why)) => why,
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(self.not_ready(
                    component,
                    format!("was not ready within 90 s (last check: {missing})"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `None` when ready, else what is still missing.
    fn check_ready(&self, component: Component) -> Result<Option<String>> {
        match component {
            Component::Etcd => {
                let r = http::Client::plain(loopback(self.ports.etcd_client)).get("/health")?;
                Ok((r.json()["health"] != "true").then(|| format!("/health: {}", r.body)))
            }
            Component::ApiServer => {
                let r = self.admin()?.get("/readyz")?;
                Ok((r.status != 200).then(|| format!("/readyz: {} {}", r.status, r.body)))
            }
            Component::ControllerManager => {
                // The serviceaccount controller fills every namespace with a `default`
                // ServiceAccount: once it exists in `default`, the controllers run.
                let r = self
                    .admin()?
                    .get("/api/v1/namespaces/default/serviceaccounts/default")?;
                Ok((r.status != 200).then(|| "no default ServiceAccount yet".to_owned()))
            }
            Component::Scheduler => {
                // No port to ask: alive after start is all there is (exit is caught above).
                Ok(None)
            }
            Component::Kwok => self.ensure_kwok_nodes(),
        }
    }

    /// Creates the fake Nodes (once) and reports whether kwok made them Ready.
    fn ensure_kwok_nodes(&self) -> Result<Option<String>> {
        let admin = self.admin()?;
        for i in 0..self.options.kwok_nodes {
            let name = format!("kwok-node-{i}");
            let path = format!("/api/v1/nodes/{name}");
            let node = admin.get(&path)?;
            if node.status == 404 {
                let created = admin.request("POST", "/api/v1/nodes", Some(&kwok_node(&name)))?;
                if created.status != 201 && created.status != 409 {
                    return Err(Error::Http(format!(
                        "creating Node {name}: {} {}",
                        created.status, created.body
                    )));
                }
                return Ok(Some(format!("Node {name} created")));
            }
            let ready = node.json()["status"]["conditions"]
                .as_array()
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            // Admission taints a new Node not-ready; the node lifecycle controller lifts the
            // taint once kwok reports it Ready. Pods schedule only after that.
            let tainted = node.json()["spec"]["taints"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["key"] == "node.kubernetes.io/not-ready"));
            if !ready || tainted {
                return Ok(Some(format!("Node {name} not Ready and untainted yet")));
            }
        }
        Ok(None)
    }

    fn not_ready(&self, component: Component, problem: String) -> Error {
        let log = self.log_path(component);
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        Error::NotReady {
            component,
            problem,
            log,
            tail,
        }
    }

    /// `state.json`: what `stop_detached` and `cargo xtask cluster status` read.
    fn write_state(&self) -> Result<()> {
        let pids: serde_json::Map<String, Value> = self
            .children
            .iter()
            .map(|(c, child)| (c.name().to_owned(), json!(child.id())))
            .collect();
        let state = json!({
            "url": self.url(),
            "kubeconfig": self.kubeconfig,
            "etcd": self.etcd_url(),
            "detached": self.options.detached,
            "pids": pids,
        });
        let path = self.options.dir.join("state.json");
        fs::write(&path, format!("{state:#}\n"))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Stops every process, in reverse start order.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        if self.left_running {
            return;
        }
        for component in Component::ALL.into_iter().rev() {
            self.stop_component(component);
        }
        let _ = fs::remove_file(self.options.dir.join("state.json"));
    }

    /// Leaves a detached control plane running: drops the handles without stopping anything
    /// (its `state.json` stays for [`stop_detached`]).
    pub fn leave_running(mut self) {
        self.children.clear();
        self.left_running = true;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Stops the processes a control plane in `dir` left running (detached, or left behind by a
/// process that could not clean up); returns how many were running.
pub fn stop_detached(dir: &Path) -> usize {
    let Ok(text) = fs::read_to_string(dir.join("state.json")) else {
        return 0;
    };
    let state: Value = serde_json::from_str(&text).unwrap_or_default();
    let mut stopped = 0;
    // Reverse start order: kwok, scheduler, controller manager, kube-apiserver, etcd.
    for component in Component::ALL.into_iter().rev() {
        let Some(pid) = state["pids"][component.name()].as_u64() else {
            continue;
        };
        let Ok(pid) = u32::try_from(pid) else {
            continue;
        };
        // A recycled pid belongs to another program: only stop our binary.
        let ours = fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == component.name()));
        if ours && process::alive(pid) {
            process::stop_pid(pid, Duration::from_secs(10));
            stopped += 1;
        }
    }
    let _ = fs::remove_file(dir.join("state.json"));
    stopped
}

/// A fake Node for kwok named `name`: capacity for many Pods, Ready (and its Pods Running) once
/// kwok takes it over.
pub fn kwok_node(name: &str) -> Value {
    let capacity = json!({"cpu": "64", "memory": "256Gi", "pods": "1000"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(loopback(0))
        .map_err(|e| Error::io("finding a free loopback port".into(), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free loopback port".into(), e))
}
