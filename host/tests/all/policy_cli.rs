//! `--policy FILE` on the command line: a bad file stops `run` and `dev` with a clear message,
//! `rbac` prints the narrowed rules, and `kubewasm run --policy` logs what it dropped, an entry
//! for a plugin that is not there, and every denial while it runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding};
use kube::Api;
use kube::api::PostParams;
use kubewasm_apiserver::{ApiServer, Config};
use serde::Deserialize as _;

use crate::support;
use crate::support::process::{Host, plugin_dir};
use crate::support::wait::wait;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the file is written");
    path
}

fn kubewasm(args: &[&str], policy: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(args)
        .arg("--policy")
        .arg(policy)
        .arg("--compile-cache")
        .arg(support::process::compile_cache())
        .env_remove("KUBEWASM_POLICY")
        .output()
        .expect("kubewasm runs")
}

/// Asserts the command failed, without a panic, saying every needle on stderr.
fn fails_saying(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} missing from: {stderr}");
    }
}

#[test]
fn run_and_dev_refuse_to_start_with_a_bad_policy_file_and_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "unknown-key.yaml",
            "default:\n  namespace: [apps]\n",
            vec!["unknown-key.yaml", "unknown field `namespace`"],
        ),
        (
            "bad-kind.yaml",
            "plugins:\n  x:\n    kinds: [statefulset.apps]\n",
            vec![
                "bad-kind.yaml",
                "\"statefulset.apps\" is not a CamelCase kind name",
            ],
        ),
        (
            "bad-verb.yaml",
            "default:\n  verbs: {Secret: [read]}\n",
            vec!["bad-verb.yaml", "unknown verb \"read\""],
        ),
    ];
    let plugins = dir.path().join("no-plugins-here");
    let kubeconfig = dir.path().join("no-kubeconfig");
    let mut commands = 0;
    for (name, text, needles) in &cases {
        let policy = write(dir.path(), name, text);
        let run = [
            "run",
            "--plugins",
            plugins.to_str().expect("utf-8 path"),
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
        ];
        fails_saying(&kubewasm(&run, &policy), needles);
        let dev = [
            "dev",
            "--plugins",
            plugins.to_str().expect("utf-8 path"),
            "--kubeconfig-out",
            kubeconfig.to_str().expect("utf-8 path"),
        ];
        fails_saying(&kubewasm(&dev, &policy), needles);
        commands += 2;
    }
    let missing = dir.path().join("missing.yaml");
    fails_saying(
        &kubewasm(&["run", "--plugins", "x"], &missing),
        &["failed to read the policy file", "missing.yaml"],
    );
    assert!(
        !kubeconfig.exists(),
        "dev stopped before starting its API server"
    );
    support::fault_report::record(
        "policy",
        "bad policy file (CLI)",
        "run/dev --policy with an unknown key, a bad kind, a bad verb, a missing file",
        &format!(
            "{} starts refused, each naming the file and the problem; no panic",
            commands + 1
        ),
        None,
    );
}

type Rules = std::collections::BTreeMap<(String, String), Vec<String>>;

fn rules(rules: Option<&[PolicyRule]>) -> Rules {
    rules
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                (
                    r.api_groups.as_deref().unwrap_or_default().join(","),
                    r.resources.as_deref().unwrap_or_default().join(","),
                ),
                r.verbs.clone(),
            )
        })
        .collect()
}

fn key(group: &str, resource: &str) -> (String, String) {
    (group.to_owned(), resource.to_owned())
}

fn verbs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn documents(stdout: &[u8]) -> Vec<serde_yaml::Value> {
    let text = std::str::from_utf8(stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("a YAML document"))
        .collect()
}

#[test]
fn rbac_with_a_policy_grants_only_the_narrowed_manifest_with_writes_in_namespaced_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trespass = support::test_plugin("trespass");
    let trespass = trespass.to_str().expect("utf-8 path");
    let policy = write(
        dir.path(),
        "policy.yaml",
        "default:\n  namespaces: [apps, staging]\nplugins:\n  trespass:\n    kinds: [ConfigMap, Secret]\n    verbs: {Secret: [get, list, watch]}\n",
    );
    let out = kubewasm(&["rbac", trespass], &policy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let docs = documents(&out.stdout);
    assert_eq!(
        docs.len(),
        8,
        "4 objects + a Role and binding per namespace"
    );
    let cluster_role: ClusterRole = serde_yaml::from_value(docs[0].clone()).expect("ClusterRole");
    let cluster = rules(cluster_role.rules.as_deref());
    assert_eq!(
        cluster.get(&key("", "configmaps")),
        Some(&verbs(&["get", "list", "watch"])),
        "writes are not cluster-wide: {cluster:?}"
    );
    assert_eq!(
        cluster.get(&key("", "secrets")),
        Some(&verbs(&["get", "list", "watch"]))
    );
    assert!(
        !cluster.contains_key(&key("", "namespaces")),
        "the policy drops Namespace: {cluster:?}"
    );
    let mut namespaces = Vec::new();
    for pair in docs[4..].chunks(2) {
        let role: Role = serde_yaml::from_value(pair[0].clone()).expect("Role");
        let binding: RoleBinding = serde_yaml::from_value(pair[1].clone()).expect("RoleBinding");
        assert_eq!(role.metadata.name.as_deref(), Some("kubewasm-plugins"));
        assert_eq!(binding.role_ref.name, "kubewasm-plugins");
        assert_eq!(binding.metadata.namespace, role.metadata.namespace);
        let r = rules(role.rules.as_deref());
        assert_eq!(
            r.get(&key("", "configmaps")),
            Some(&verbs(&["create", "update", "patch", "delete"])),
            "{r:?}"
        );
        assert!(!r.contains_key(&key("", "secrets")), "{r:?}");
        namespaces.push(role.metadata.namespace.expect("namespaced"));
    }
    assert_eq!(namespaces, ["apps", "staging"]);

    // Without the policy the manifest's writes are cluster-wide, Namespace included.
    let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(["rbac", trespass, "--compile-cache"])
        .arg(support::process::compile_cache())
        .env_remove("KUBEWASM_POLICY")
        .output()
        .expect("kubewasm rbac runs");
    assert!(out.status.success());
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 4);
    let cluster_role: ClusterRole = serde_yaml::from_value(docs[0].clone()).expect("ClusterRole");
    let cluster = rules(cluster_role.rules.as_deref());
    assert_eq!(
        cluster.get(&key("", "namespaces")),
        Some(&verbs(&["create"]))
    );
    assert!(
        cluster[&key("", "configmaps")].contains(&"delete".to_owned()),
        "{cluster:?}"
    );

    // A policy that refuses the plugin is an error naming it.
    let refusing = write(
        dir.path(),
        "refusing.yaml",
        "plugins: {trespass: {kinds: [Secret]}}\n",
    );
    fails_saying(
        &kubewasm(&["rbac", trespass], &refusing),
        &["refusing.yaml", "trespass", "reconciles ConfigMap"],
    );
    support::fault_report::record(
        "policy",
        "rbac --policy (CLI)",
        "namespaces apps+staging, Secret read-only, Namespace dropped",
        "ClusterRole keeps only reads; writes in Roles in apps and staging; a refused plugin is an error",
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubewasm_run_with_a_policy_logs_what_it_dropped_and_each_denial() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::test_plugin("trespass")]);
    let policy = write(
        dir.path(),
        "policy.yaml",
        "default:\n  namespaces: [default]\nplugins:\n  trespass:\n    verbs: {Secret: [get, list, watch]}\n  tresspass:\n    namespaces: ['*']\n",
    );
    let policy_arg = policy.to_str().expect("utf-8 path");
    let mut host = Host::start(
        "host",
        &plugins,
        &kubeconfig,
        &["--leader-elect=false", "--policy", policy_arg],
    );
    let find = |needle: &str| {
        wait(&format!("a log line containing {needle:?}"), || {
            host.lines
                .lock()
                .iter()
                .find(|l| {
                    l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(needle))
                })
                .cloned()
        })
        .unwrap_or_else(|| panic!("{}", host.dump()))
    };
    let dropped = find("dropped:");
    let message = dropped["fields"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("create, delete on Secret") && message.contains("create on Namespace"),
        "{message}"
    );
    assert_eq!(dropped["fields"]["policy"].as_str(), Some(policy_arg));
    find("caches synced");
    let typo = find("the entry applies to nothing");
    assert!(
        typo["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("plugin tresspass")),
        "{typo}"
    );

    let client = support::cluster::client_for(&server);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let order: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "order"},
        "data": {"attempts": "create Secret default token\ncreate ConfigMap kube-system x"},
    }))
    .expect("a ConfigMap");
    api.create(&PostParams::default(), &order)
        .await
        .expect("the order is created");
    let denied = find("denied by the policy");
    assert_eq!(denied["fields"]["plugin"].as_str(), Some("trespass"));
    let denial = find("in namespace kube-system");
    assert!(
        denial["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("policy.yaml")),
        "{denial}"
    );
    host.signal("TERM");
    let status = host.wait_exit();
    assert!(status.success(), "{}", host.dump());
    server.shutdown().await;
}

#[test]
fn kubewasm_dev_with_a_policy_runs_the_allowed_plugins_and_says_which_it_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugin_dir(
        dir.path(),
        &[
            support::test_plugin("trespass"),
            support::test_plugin("probe"),
        ],
    );
    let policy = write(
        dir.path(),
        "policy.yaml",
        "default:\n  namespaces: [default]\nplugins:\n  trespass:\n    kinds: [Secret]\n",
    );
    let banner = support::process::dev_banner(
        dir.path(),
        &plugins,
        &["--policy".as_ref(), policy.as_os_str()],
    );
    assert!(banner.contains("plugins:     probe\n"), "{banner}");
    let refused = banner
        .lines()
        .find(|l| l.contains("not loaded:") && l.contains("trespass.wasm"))
        .unwrap_or_else(|| panic!("trespass is reported as not loaded: {banner}"));
    assert!(
        refused.contains("policy.yaml")
            && refused.contains("does not allow plugin trespass to run")
            && refused.contains("reconciles ConfigMap"),
        "{refused}"
    );
}
