//! `deploy/` renders offline with `kubectl kustomize`, every manifest deserializes into its
//! k8s-openapi type, and what it carries (flags, plugins, RBAC) matches the host it deploys.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Deserialize as _;

use crate::support;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn render() -> Vec<serde_yaml::Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir())
        .output()
        .expect("kubectl must be installed for this test (it renders deploy/ with kustomize)");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("a YAML document"))
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(doc: &serde_yaml::Value, kind: &str) -> T {
    serde_yaml::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{kind} does not deserialize into its k8s-openapi type: {e}"))
}

#[derive(Default)]
struct Rendered {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
}

fn rendered() -> Rendered {
    let mut r = Rendered::default();
    for doc in render() {
        let kind = doc["kind"]
            .as_str()
            .expect("every document has a kind")
            .to_owned();
        match kind.as_str() {
            "Namespace" => r.namespaces.push(typed(&doc, &kind)),
            "ServiceAccount" => r.service_accounts.push(typed(&doc, &kind)),
            "ClusterRole" => r.cluster_roles.push(typed(&doc, &kind)),
            "ClusterRoleBinding" => r.cluster_role_bindings.push(typed(&doc, &kind)),
            "Role" => r.roles.push(typed(&doc, &kind)),
            "RoleBinding" => r.role_bindings.push(typed(&doc, &kind)),
            "ConfigMap" => {
                // kustomize wraps binaryData at 70 columns; Kubernetes' base64 decoder skips
                // the newlines, k8s-openapi's does not: unwrap them as the API server would.
                let mut doc = doc.clone();
                if let Some(data) = doc
                    .get_mut("binaryData")
                    .and_then(serde_yaml::Value::as_mapping_mut)
                {
                    for (_, v) in data.iter_mut() {
                        if let Some(text) = v.as_str() {
                            *v = text.split_whitespace().collect::<String>().into();
                        }
                    }
                }
                r.config_maps.push(typed(&doc, &kind));
            }
            "Service" => r.services.push(typed(&doc, &kind)),
            "Deployment" => r.deployments.push(typed(&doc, &kind)),
            other => panic!("unexpected kind {other} in deploy/"),
        }
    }
    r
}

#[test]
fn kustomize_renders_every_manifest_into_its_kubernetes_type() {
    let r = rendered();
    assert_eq!(r.namespaces.len(), 1);
    assert_eq!(r.service_accounts.len(), 1);
    assert_eq!(r.cluster_roles.len(), 1);
    assert_eq!(r.cluster_role_bindings.len(), 1);
    assert_eq!(r.roles.len(), 1);
    assert_eq!(r.role_bindings.len(), 1);
    assert_eq!(r.config_maps.len(), 1);
    assert_eq!(r.services.len(), 1);
    assert_eq!(r.deployments.len(), 1);
    let ns = r.namespaces[0]
        .metadata
        .name
        .clone()
        .expect("namespace name");
    let sa = r.service_accounts[0]
        .metadata
        .name
        .clone()
        .expect("sa name");
    for subjects in r
        .cluster_role_bindings
        .iter()
        .map(|b| &b.subjects)
        .chain(r.role_bindings.iter().map(|b| &b.subjects))
    {
        let s = &subjects.as_deref().expect("subjects")[0];
        assert_eq!(
            (s.name.as_str(), s.namespace.as_deref()),
            (sa.as_str(), Some(ns.as_str()))
        );
    }

    let d = &r.deployments[0];
    let spec = d.spec.as_ref().expect("deployment spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(sa.as_str()));
    let c = &pod.containers[0];
    let args = c.args.clone().expect("args");
    assert!(args.contains(&"--leader-elect=true".to_owned()), "{args:?}");
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/readyz"));
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .expect("resource requests");
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    let security = pod.security_context.as_ref().expect("pod security context");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.run_as_user, Some(65532));
    let plugins_volume = pod
        .volumes
        .as_deref()
        .expect("volumes")
        .iter()
        .find_map(|v| v.config_map.as_ref())
        .expect("a ConfigMap volume carries the plugins");
    let cm = &r.config_maps[0];
    assert_eq!(cm.metadata.name, Some(plugins_volume.name.clone()));

    // The ConfigMap carries the plugin bytes as they are in deploy/plugins, under the 1 MiB limit.
    let data = cm.binary_data.as_ref().expect("binaryData");
    let hello = std::fs::read(deploy_dir().join("plugins/hello.wasm")).expect("deploy plugin");
    assert_eq!(data.get("hello.wasm").map(|b| &b.0), Some(&hello));
    let total: usize = data.values().map(|b| b.0.len() * 4 / 3).sum();
    assert!(total < 1 << 20, "the plugin ConfigMap is over 1 MiB");
}

#[test]
fn the_deployments_arguments_are_accepted_by_the_host() {
    let r = rendered();
    let pod = r.deployments[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod spec");
    let args = pod.containers[0].args.clone().expect("args");
    // Parsing succeeds (clap exits with 2 on an unknown flag or bad value); running then fails
    // on the missing kubeconfig, after the arguments were accepted and before binding anything.
    let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(&args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .expect("kubewasm runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "arguments rejected: {stderr}");
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
}

#[test]
fn the_shipped_rbac_is_what_kubewasm_rbac_prints_for_the_shipped_plugins() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("rbac")
        .arg(deploy_dir().join("plugins"))
        .args(["--namespace", "kubewasm-system"])
        .arg("--compile-cache")
        .arg(support::process::compile_cache())
        .output()
        .expect("kubewasm rbac runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::fs::read_to_string(deploy_dir().join("rbac.yaml")).expect("rbac.yaml");
    let shipped: String = shipped
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        shipped,
        String::from_utf8(out.stdout).expect("utf-8"),
        "deploy/rbac.yaml is stale: regenerate it with the command in its first line"
    );
}

#[tokio::test]
async fn the_shipped_plugin_loads_in_this_host() {
    let runtime = support::runtime();
    let plugin = support::load(&runtime, &deploy_dir().join("plugins/hello.wasm")).await;
    assert_eq!(plugin.name(), "hello");
}

#[test]
fn the_container_build_is_multi_stage_and_runs_as_non_root() {
    let dockerfile =
        std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("deploy/Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    let runtime_stage = dockerfile.rsplit("FROM ").next().expect("runtime stage");
    assert!(runtime_stage.contains("USER 65532"), "{runtime_stage}");
    assert!(runtime_stage.contains("COPY --from=build"));
    // The image ships the stripped `dist` build, and that profile exists in the workspace.
    assert!(
        dockerfile.contains("cargo build --profile dist")
            && dockerfile.contains("target/dist/kubewasm"),
        "{dockerfile}"
    );
    let workspace =
        std::fs::read_to_string(deploy_dir().join("../Cargo.toml")).expect("Cargo.toml");
    let dist = workspace
        .split("[profile.dist]")
        .nth(1)
        .expect("a [profile.dist] in the workspace Cargo.toml");
    let dist = dist.split("\n[").next().unwrap_or(dist);
    assert!(dist.contains("strip = \"symbols\""), "{dist}");
}
