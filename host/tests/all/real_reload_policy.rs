//! Hot reload and the operator's policy file against a real control plane, one scenario each,
//! with `kubewasm run` as a separate process under the RBAC `kubewasm rbac` generated:
//! - a new plugin version renamed into the folder takes over without a restart, a broken file
//!   leaves it serving;
//! - the `trespass` test plugin, confined by a policy to two namespaces, is refused by the host
//!   everywhere else, and the real authorizer refuses the same writes to its ServiceAccount.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::support;
use crate::support::hello;
use crate::support::process::Host;
use crate::support::real::RealCluster;
use crate::support::trespass::{answer, answers};
use crate::support::{replace_by_rename, variant};

/// The version (span field) of the reconcile in which `host` stamped ConfigMap `name`.
fn stamped_by(host: &Host, ns: &str, name: &str) -> String {
    let prefix = format!("stamped {ns}/{name}:");
    let line = host.wait_log_where(&format!("its stamp of {name}"), |m| m.starts_with(&prefix));
    line["span"]["version"]
        .as_str()
        .expect("the reconcile span's version")
        .to_owned()
}

async fn create_and_wait_stamped(cms: &Api<ConfigMap>, name: &str) {
    hello::create_configmap(cms, name).await;
    hello::wait_stamped(cms, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_version_takes_over_on_a_real_cluster_and_a_broken_file_changes_nothing() {
    let c = RealCluster::shared("real-reload").await;
    let policy = format!("default:\n  namespaces: [{}]\n", c.namespace);
    let deployment = c.deploy(&[support::example("hello")], Some(&policy)).await;
    let host = Host::start(
        "reload",
        &deployment.plugins,
        &deployment.kubeconfig,
        &deployment.args(&[]),
    );
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.namespace);
    let file = deployment.plugins.join("hello.wasm");
    let v1 = std::fs::read(&file).expect("the plugin");
    create_and_wait_stamped(&cms, "first").await;
    let first = stamped_by(&host, &c.namespace, "first");
    assert_eq!(first, kubewasm::runtime::version_of(&v1));

    let v2 = variant(&v1, "real-2");
    let second = kubewasm::runtime::version_of(&v2);
    replace_by_rename(&file, &v2);
    host.wait_log_where("the swap to the new version", |m| {
        m == "plugin version swapped"
    });
    create_and_wait_stamped(&cms, "second").await;
    assert_eq!(stamped_by(&host, &c.namespace, "second"), second);

    // Half a file (a copy caught in the middle): refused, the running version keeps serving.
    std::fs::write(&file, &v2[..v2.len() / 2]).expect("write a truncated file");
    host.wait_log_where("the refusal of the broken file", |m| {
        m.ends_with("the running version keeps serving")
    });
    create_and_wait_stamped(&cms, "third").await;
    assert_eq!(stamped_by(&host, &c.namespace, "third"), second);
    let loads = host.metrics().sum(
        "kubewasm_plugin_loads_total",
        &[("plugin", "hello"), ("result", "error")],
    );
    assert!(loads >= 1.0, "the failed load is counted");
    c.finish().await;
}

/// A ConfigMap in `ns` named `name` carrying `data`, labelled as a `trespass` victim.
fn victim(ns: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "victim", "namespace": ns, "labels": {"trespass": "victim"}},
        "data": {"v": "1"},
    }))
    .expect("a ConfigMap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_confines_a_plugin_on_a_real_cluster_and_the_real_authorizer_agrees() {
    let c = RealCluster::shared("real-policy").await;
    let apps = c.namespace.clone();
    let (staging, other) = (format!("{apps}-staging"), format!("{apps}-other"));
    for ns in [&staging, &other] {
        support::real::create_namespace(&c.client, ns, json!({})).await;
    }
    for ns in [&apps, &staging, &other] {
        Api::<ConfigMap>::namespaced(c.client.clone(), ns)
            .create(&PostParams::default(), &victim(ns))
            .await
            .expect("a victim");
    }
    let policy = format!(
        "default:\n  namespaces: [{apps}, {staging}]\nplugins:\n  trespass:\n    \
         kinds: [ConfigMap, Secret]\n    verbs: {{ Secret: [get, list, watch] }}\n"
    );
    let deployment = c
        .deploy(&[support::test_plugin("trespass")], Some(&policy))
        .await;
    let _host = Host::start(
        "policy",
        &deployment.plugins,
        &deployment.kubeconfig,
        &deployment.args(&[]),
    );
    let attempts = [
        format!("create ConfigMap {apps} made-in-apps"),
        format!("create ConfigMap {staging} made-in-staging"),
        format!("create ConfigMap {other} escaped"),
        format!("patch ConfigMap {other} victim"),
        format!("delete ConfigMap {other} victim"),
        format!("event ConfigMap {apps} victim"),
        format!("event ConfigMap {other} victim"),
        format!("get ConfigMap {other} victim"),
        "list ConfigMap - -".to_owned(),
        format!("create Secret {apps} token"),
        "create Namespace - evil".to_owned(),
    ];
    let order: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "main", "namespace": apps, "labels": {"trespass": "order"}},
        "data": {"attempts": attempts.join("\n"), "reply-to": apps},
    }))
    .expect("an order");
    Api::<ConfigMap>::namespaced(c.client.clone(), &apps)
        .create(&PostParams::default(), &order)
        .await
        .expect("the order");
    let answers = answers(&c.client, &apps, "main").await;

    // Inside the policy the host and the real server let it work (the Event included).
    for ok in &attempts[..2] {
        assert_eq!(answer(&answers, ok), "ok", "{ok}");
    }
    assert_eq!(
        answer(&answers, &attempts[5]),
        "ok",
        "an Event in its namespace"
    );
    let mut allowed = [format!("{apps}/victim"), format!("{staging}/victim")];
    allowed.sort();
    assert_eq!(
        answer(&answers, "list ConfigMap - -"),
        format!("ok: {}", allowed.join(",")),
        "a list across namespaces sees only the allowed ones"
    );
    // Everything else is refused by the host, naming the policy, before it reaches the server.
    for attempt in attempts[2..5]
        .iter()
        .chain(&attempts[6..8])
        .chain(&attempts[9..])
    {
        let a = answer(&answers, attempt);
        assert!(
            a.starts_with("forbidden: ") && a.contains("policy.yaml"),
            "{attempt}: {a}"
        );
    }
    // On the real server nothing escaped.
    let others: Api<ConfigMap> = Api::namespaced(c.client.clone(), &other);
    assert!(others.get_opt("escaped").await.expect("get").is_none());
    let untouched = others
        .get("victim")
        .await
        .expect("the victim in other survives");
    assert_eq!(untouched.data, victim(&other).data);
    let secrets = Api::<Secret>::namespaced(c.client.clone(), &apps)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(
        secrets.items.is_empty(),
        "a Secret was written despite the policy"
    );
    // And the RBAC that `kubewasm rbac --policy` generated makes the real authorizer refuse
    // the same writes, had the host let them through.
    let json = |body: Value| body.to_string().into_bytes();
    deployment
        .refused(
            "a ConfigMap outside the policy's namespaces",
            http::Request::post(format!("/api/v1/namespaces/{other}/configmaps"))
                .header("content-type", "application/json")
                .body(json(json!({"metadata": {"name": "escaped"}})))
                .unwrap(),
        )
        .await;
    deployment
        .refused(
            "a Secret where the policy allows only reads",
            http::Request::post(format!("/api/v1/namespaces/{apps}/secrets"))
                .header("content-type", "application/json")
                .body(json(json!({"metadata": {"name": "token"}})))
                .unwrap(),
        )
        .await;
    deployment
        .refused(
            "a Namespace, which the policy's kinds leave out",
            http::Request::post("/api/v1/namespaces")
                .header("content-type", "application/json")
                .body(json(json!({"metadata": {"name": "evil"}})))
                .unwrap(),
        )
        .await;
    for ns in [&staging, &other] {
        let _ = c.kubectl(&["delete", "namespace", ns, "--wait=false"]);
    }
    c.finish().await;
}
