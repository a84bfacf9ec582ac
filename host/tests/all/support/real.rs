//! A real Kubernetes control plane in tests (kube-apiserver, etcd, kube-controller-manager,
//! kube-scheduler and kwok built from Go modules; see `controlplane/`).
//!
//! [`RealCluster::shared`] uses the control plane `cargo xtask test` started for the whole run
//! (its admin kubeconfig is in `KUBEWASM_REAL_CLUSTER_KUBECONFIG`) and gives the test a
//! namespace of its own; without that variable the test fails, it never skips.
//! [`RealCluster::own`] starts a control plane for one test, for tests that restart
//! kube-apiserver or etcd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubewasm_controlplane::{ControlPlane, KUBECONFIG_ENV, Options};
use serde_json::json;

/// A real control plane, a namespace of the test's own on it, and an admin client.
pub struct RealCluster {
    // Dropped first: the processes stop before their folder goes.
    plane: Option<ControlPlane>,
    /// Admin (`system:masters`) client.
    pub client: kube::Client,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The test's namespace (created, empty).
    pub namespace: String,
    /// The test's scratch folder (kubeconfigs, plugin folders, policies).
    pub dir: tempfile::TempDir,
}

/// A DNS label from `test` and a random suffix: the test's namespace (and name prefix for
/// cluster-scoped things such as ClusterRoles and Nodes).
fn unique_name(test: &str) -> String {
    let mut base: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    base.truncate(40);
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{}-{suffix}", base.trim_matches('-'))
}

/// An admin client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("using {}: {e}", kubeconfig.display()));
    kube::Client::try_from(config).expect("a client for the real control plane")
}

/// Waits until the controller manager has given `namespace` its `default` ServiceAccount:
/// until then the ServiceAccount admission plugin refuses Pods there.
pub async fn wait_for_default_service_account(client: &kube::Client, namespace: &str) {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    super::eventually(
        &format!("the default ServiceAccount of {namespace}"),
        || async { sas.get_opt("default").await.ok().flatten() },
    )
    .await;
}

/// Creates namespace `name` with `labels` and waits for its default ServiceAccount.
pub async fn create_namespace(client: &kube::Client, name: &str, labels: serde_json::Value) {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}
    }))
    .expect("a Namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    wait_for_default_service_account(client, name).await;
}

impl RealCluster {
    /// The control plane `cargo xtask test` shares between the tests, with a new namespace
    /// named after `test`.
    ///
    /// # Panics
    /// When `KUBEWASM_REAL_CLUSTER_KUBECONFIG` is not set: real-cluster tests fail loudly
    /// instead of skipping.
    pub async fn shared(test: &str) -> Self {
        let kubeconfig = std::env::var_os(KUBECONFIG_ENV).unwrap_or_else(|| {
            panic!(
                "{KUBECONFIG_ENV} is not set: this test needs a real control plane. Run the tests \
                 with `cargo xtask test` (it starts one), or start one with `cargo xtask cluster up` \
                 and `export {KUBECONFIG_ENV}=$PWD/target/k8s-cluster/kubeconfig`"
            )
        });
        Self::with_namespace(PathBuf::from(kubeconfig), test, None).await
    }

    /// A control plane of the test's own (started now, stopped when this is dropped), with a
    /// namespace named after `test`.
    pub async fn own(test: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kubewasm-own-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let bin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/k8s-bin");
        let options = Options::new(bin_dir, dir.path().join("plane"));
        // Starting blocks for a few seconds; the processes are forked by the control plane's
        // own spawner thread, so they die with this process whichever thread asks.
        let plane = tokio::task::block_in_place(|| ControlPlane::start(options))
            .unwrap_or_else(|e| panic!("the test's own control plane did not start: {e}"));
        let kubeconfig = plane.kubeconfig().to_owned();
        let mut cluster = Self::with_namespace(kubeconfig, test, Some(plane)).await;
        // Keep the control plane's folder for as long as the cluster lives.
        cluster.dir = dir;
        cluster
    }

    async fn with_namespace(kubeconfig: PathBuf, test: &str, plane: Option<ControlPlane>) -> Self {
        let client = client_from(&kubeconfig).await;
        let namespace = unique_name(test);
        create_namespace(&client, &namespace, json!({"kubewasm.dev/test": test})).await;
        Self {
            client,
            kubeconfig,
            namespace,
            dir: tempfile::tempdir().expect("a temporary directory"),
            plane,
        }
    }

    /// The test's own control plane.
    ///
    /// # Panics
    /// On the shared one (tests must not restart what other tests use).
    pub fn plane(&mut self) -> &mut ControlPlane {
        self.plane
            .as_mut()
            .expect("only a control plane of the test's own (RealCluster::own) can be changed")
    }

    /// A name unique to this test, for cluster-scoped objects (ClusterRoles, Nodes, Leases).
    pub fn unique(&self, what: &str) -> String {
        format!("{}-{what}", self.namespace)
    }

    /// Runs kubectl with the admin kubeconfig; returns its output whatever the exit status.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl on PATH?): {e}"))
    }

    /// Runs kubectl and fails the test unless it succeeds; returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply --server-side -f -` of `yaml`, as the admin.
    pub fn apply_yaml(&self, yaml: &str) {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("kubectl reads the manifest");
        let out = child.wait_with_output().expect("kubectl finishes");
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates ServiceAccount `name` in the test's namespace and writes a kubeconfig that
    /// holds only its token (from the TokenRequest API, valid one hour): what a pod running
    /// as that ServiceAccount has.
    pub async fn service_account_kubeconfig(&self, name: &str) -> PathBuf {
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.namespace);
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a ServiceAccount");
        sas.create(&PostParams::default(), &sa)
            .await
            .unwrap_or_else(|e| panic!("creating ServiceAccount {name}: {e}"));
        let request: k8s_openapi::api::authentication::v1::TokenRequest =
            serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}}))
                .expect("a TokenRequest");
        let token = sas
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("requesting a token for ServiceAccount {name}: {e}"))
            .status
            .expect("a TokenRequest answer has a status")
            .token;
        let mut kc = Kubeconfig::read_from(&self.kubeconfig).expect("the admin kubeconfig");
        let user = format!("system:serviceaccount:{}:{name}", self.namespace);
        for auth in &mut kc.auth_infos {
            auth.name.clone_from(&user);
            if let Some(info) = auth.auth_info.as_mut() {
                *info = serde_json::from_value(json!({"token": token}))
                    .expect("an AuthInfo with a token");
            }
        }
        for ctx in &mut kc.contexts {
            if let Some(c) = ctx.context.as_mut() {
                c.user = Some(user.clone());
                c.namespace = Some(self.namespace.clone());
            }
        }
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            serde_yaml::to_string(&kc).expect("a kubeconfig serializes"),
        )
        .expect("the kubeconfig is written");
        path
    }

    /// Deletes the test's namespace (best effort; the control plane goes at the end of the
    /// run anyway) and stops an own control plane.
    pub async fn finish(self) {
        if self.plane.is_none() {
            let _ = Api::<Namespace>::all(self.client.clone())
                .delete(&self.namespace, &DeleteParams::background())
                .await;
        }
    }
}

/// What `kubewasm run` needs to run the way a Deployment runs it: as a ServiceAccount of the
/// test's namespace that holds only the RBAC `kubewasm rbac` generated for its plugins.
pub struct Deployment {
    /// The plugins folder.
    pub plugins: PathBuf,
    /// A kubeconfig holding only the ServiceAccount's token.
    pub kubeconfig: PathBuf,
    /// `kubewasm run` arguments: the Lease in the test's namespace, the policy if any.
    pub args: Vec<String>,
    /// The RBAC that was applied (YAML), for failure messages.
    pub rbac: String,
}

impl Deployment {
    /// Leader election flags for a real control plane (lease 4 s, renew deadline 3 s, retry
    /// every 0.5 s) on Lease `<lease>` in the test's namespace (from [`Deployment::args`]).
    pub fn quick_election(lease: &str) -> [&str; 8] {
        [
            "--leader-election-id",
            lease,
            "--lease-duration",
            "4s",
            "--renew-deadline",
            "3s",
            "--retry-period",
            "0.5s",
        ]
    }

    /// [`Deployment::args`] as `&str`s, followed by `extra`.
    pub fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        self.args
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .collect()
    }
}

impl RealCluster {
    /// Copies `plugins` into a folder, writes `policy` (YAML) if given, applies the RBAC that
    /// `kubewasm rbac` prints for them (ClusterRole and Role named after the test), and
    /// creates the ServiceAccount `kubewasm` with a token kubeconfig.
    pub async fn deploy(&self, plugins: &[PathBuf], policy: Option<&str>) -> Deployment {
        let folder = self.dir.path().join("plugins");
        std::fs::create_dir_all(&folder).expect("a plugins folder");
        for p in plugins {
            std::fs::copy(p, folder.join(p.file_name().expect("a file name")))
                .expect("copy plugin");
        }
        let mut args = vec![
            "--leader-election-namespace".to_owned(),
            self.namespace.clone(),
        ];
        let mut rbac = Command::new(env!("CARGO_BIN_EXE_kubewasm"));
        rbac.arg("rbac")
            .arg(&folder)
            .args(["--namespace", &self.namespace])
            .args(["--service-account", "kubewasm"])
            .args(["--name", &self.unique("kubewasm")])
            .env_remove("KUBEWASM_POLICY");
        if let Some(policy) = policy {
            let path = self.dir.path().join("policy.yaml");
            std::fs::write(&path, policy).expect("the policy is written");
            rbac.arg("--policy").arg(&path);
            args.push("--policy".to_owned());
            args.push(path.display().to_string());
        }
        let out = rbac.output().expect("kubewasm rbac runs");
        assert!(
            out.status.success(),
            "kubewasm rbac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rbac = String::from_utf8(out.stdout).expect("RBAC is UTF-8");
        self.apply_yaml(&rbac);
        let kubeconfig = self.service_account_kubeconfig("kubewasm").await;
        Deployment {
            plugins: folder,
            kubeconfig,
            args,
            rbac,
        }
    }
}

impl Deployment {
    /// Sends `request` as the Deployment's ServiceAccount: the real authorizer must refuse it
    /// (403); what the manifest does not declare is refused by the API server too, not only by
    /// the host.
    pub async fn refused(&self, what: &str, request: http::Request<Vec<u8>>) {
        let client = client_from(&self.kubeconfig).await;
        match client.request_text(request).await {
            Err(kube::Error::Api(status)) if status.code == 403 => {}
            other => panic!(
                "{what}: the real authorizer let the host's ServiceAccount through: {other:?}\nthe RBAC:\n{}",
                self.rbac
            ),
        }
    }
}
