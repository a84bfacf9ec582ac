//! `kubewasm rbac` gives exactly the rules the example plugins need, and what the host needs.

use std::collections::BTreeMap;
use std::process::Command;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use kubewasm::rbac::plugin_rules;
use serde::Deserialize as _;

use crate::support;

type Expected = BTreeMap<(String, String), Vec<String>>;

fn expected(rules: &[(&str, &str, &[&str])]) -> Expected {
    rules
        .iter()
        .map(|(g, r, v)| {
            (
                ((*g).to_owned(), (*r).to_owned()),
                v.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

fn from_policy(rules: &[PolicyRule]) -> Expected {
    let mut out = Expected::new();
    for r in rules {
        let groups = r.api_groups.clone().unwrap_or_default();
        let resources = r.resources.clone().unwrap_or_default();
        assert_eq!(
            (groups.len(), resources.len()),
            (1, 1),
            "one rule per group and resource: {r:?}"
        );
        let previous = out.insert((groups[0].clone(), resources[0].clone()), r.verbs.clone());
        assert!(previous.is_none(), "duplicate rule for {r:?}");
    }
    out
}

const READ: &[&str] = &["get", "list", "watch"];

#[tokio::test]
async fn each_example_plugin_needs_exactly_its_declared_reads_and_writes() {
    let runtime = support::runtime();
    let rules = |name: &str| {
        let runtime = runtime.clone();
        let path = support::example(name);
        async move {
            let plugin = support::load(&runtime, &path).await;
            plugin_rules([plugin.manifest().as_ref()])
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(str::to_owned).collect()))
                .collect::<Expected>()
        }
    };
    assert_eq!(
        rules("hello").await,
        expected(&[
            ("", "configmaps", &["get", "list", "watch", "patch"]),
            ("", "configmaps/status", &["patch"]),
        ])
    );
    assert_eq!(
        rules("rediscluster").await,
        expected(&[
            (
                "",
                "services",
                &["get", "list", "watch", "create", "patch", "delete"]
            ),
            ("", "services/status", &["patch"]),
            (
                "apps",
                "statefulsets",
                &["get", "list", "watch", "create", "patch", "delete"]
            ),
            ("apps", "statefulsets/status", &["patch"]),
            ("apps", "statefulsets/scale", &["patch"]),
            (
                "cache.example.com",
                "redisclusters",
                &["get", "list", "watch", "patch"]
            ),
            // It sets blockOwnerDeletion on what it owns: allowed only to who may update
            // the owner's finalizers (OwnerReferencesPermissionEnforcement).
            ("cache.example.com", "redisclusters/finalizers", &["update"]),
            ("cache.example.com", "redisclusters/status", &["patch"]),
            ("cache.example.com", "redisclusters/scale", &["patch"]),
        ])
    );
    assert_eq!(
        rules("node-pods").await,
        expected(&[
            (
                "",
                "configmaps",
                &["get", "list", "watch", "create", "update", "delete"]
            ),
            ("", "configmaps/status", &["update"]),
            ("", "nodes", READ),
            // Its summaries point at their Node through ownerReferences.
            ("", "nodes/finalizers", &["update"]),
            ("", "pods", READ),
        ])
    );
    assert_eq!(
        rules("configmap-mirror").await,
        expected(&[
            (
                "",
                "configmaps",
                &["get", "list", "watch", "create", "update", "delete"]
            ),
            ("", "configmaps/status", &["update"]),
            ("", "namespaces", READ),
        ])
    );
}

#[test]
fn the_rbac_command_prints_least_privilege_roles_for_all_example_plugins() {
    let hello = support::example("hello");
    let dir = hello.parent().expect("plugins folder");
    let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("rbac")
        .arg(dir)
        .args(["--namespace", "ops", "--service-account", "host"])
        .arg("--compile-cache")
        .arg(support::process::compile_cache())
        .output()
        .expect("kubewasm rbac runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("loading"),
        "progress goes to stderr: {stderr}"
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde_yaml::Value::deserialize(d).expect("a YAML document"))
        .collect();
    assert_eq!(docs.len(), 4, "{stdout}");
    let cluster_role: ClusterRole = serde_yaml::from_value(docs[0].clone()).expect("ClusterRole");
    let cluster_binding: ClusterRoleBinding =
        serde_yaml::from_value(docs[1].clone()).expect("ClusterRoleBinding");
    let role: Role = serde_yaml::from_value(docs[2].clone()).expect("Role");
    let binding: RoleBinding = serde_yaml::from_value(docs[3].clone()).expect("RoleBinding");

    assert_eq!(
        from_policy(cluster_role.rules.as_deref().expect("rules")),
        expected(&[
            (
                "",
                "configmaps",
                &[
                    "get", "list", "watch", "create", "update", "patch", "delete"
                ]
            ),
            ("", "configmaps/status", &["update", "patch"]),
            ("", "events", &["create", "patch"]),
            ("", "namespaces", READ),
            ("", "nodes", READ),
            ("", "nodes/finalizers", &["update"]),
            ("", "pods", READ),
            // The Python labeler reads ServiceAccounts and Services by name.
            ("", "serviceaccounts", READ),
            (
                "",
                "services",
                &["get", "list", "watch", "create", "patch", "delete"]
            ),
            ("", "services/status", &["patch"]),
            (
                "apps",
                "statefulsets",
                &["get", "list", "watch", "create", "patch", "delete"]
            ),
            ("apps", "statefulsets/status", &["patch"]),
            ("apps", "statefulsets/scale", &["patch"]),
            (
                "cache.example.com",
                "redisclusters",
                &["get", "list", "watch", "patch"]
            ),
            ("cache.example.com", "redisclusters/finalizers", &["update"]),
            ("cache.example.com", "redisclusters/status", &["patch"]),
            ("cache.example.com", "redisclusters/scale", &["patch"]),
            ("events.k8s.io", "events", &["create", "patch"]),
            // scale-schedule patches the Deployments its schedules name (their scale) and its
            // own ScaleSchedules.
            ("apps", "deployments", &["get", "list", "watch", "patch"]),
            ("apps", "deployments/status", &["patch"]),
            ("apps", "deployments/scale", &["patch"]),
            (
                "demo.kubewasm.dev",
                "scaleschedules",
                &["get", "list", "watch", "patch"]
            ),
            ("demo.kubewasm.dev", "scaleschedules/status", &["patch"]),
            ("demo.kubewasm.dev", "scaleschedules/scale", &["patch"]),
        ])
    );
    assert_eq!(
        from_policy(role.rules.as_deref().expect("rules")),
        expected(&[(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"]
        )])
    );
    assert_eq!(role.metadata.namespace.as_deref(), Some("ops"));
    for (role_ref, subjects) in [
        (&cluster_binding.role_ref, &cluster_binding.subjects),
        (&binding.role_ref, &binding.subjects),
    ] {
        assert_eq!(role_ref.name, "kubewasm");
        let subjects = subjects.as_deref().expect("subjects");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "host");
        assert_eq!(subjects[0].namespace.as_deref(), Some("ops"));
    }
    assert_eq!(cluster_binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.kind, "Role");
}

#[test]
fn the_rbac_command_refuses_a_path_that_is_not_a_plugin() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(["rbac", "/nonexistent/plugin.wasm"])
        .output()
        .expect("kubewasm rbac runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/plugin.wasm is neither a plugin file nor a folder"),
        "{stderr}"
    );
}
