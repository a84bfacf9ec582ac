//! Fault suite, sandbox and policy: a plugin cannot read files, environment variables or
//! arguments, cannot open sockets, cannot use kinds it did not declare; and an operator's policy
//! narrows a running plugin to certain namespaces and kinds — verified on the API server (nothing
//! escaped), with the denials handed to the plugin as `forbidden` naming the policy.
//!
//! The `trespass` test plugin carries out the attempts a ConfigMap "order" lists and writes every
//! answer the host gave into a result ConfigMap (see `plugins/testing/trespass`).

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::{Api, DynamicObject, ListParams};
use kubewasm::loader::{DEFAULT_MAX_PLUGIN_SIZE, load_file};
use kubewasm::policy::Policy;
use kubewasm::runtime::{
    Action, ApiError, Backend, Reason, ReconcileError, Request, Runtime, RuntimeConfig,
};
use serde_json::json;

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;
use crate::support::trespass::{answer, assert_forbidden};

/// A runtime with the test defaults and `policy` (YAML) in force.
fn runtime_with_policy(yaml: &str) -> Runtime {
    let policy = Policy::parse(yaml, "test-policy.yaml").expect("the test policy is valid");
    Runtime::new(RuntimeConfig {
        policy: Some(Arc::new(policy)),
        ..support::config()
    })
    .expect("the runtime starts")
}

fn configmap(namespace: &str, name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"trespass": "victim"}},
        "data": data,
    })
}

fn configmaps(cluster: &TestCluster, namespace: &str) -> Api<DynamicObject> {
    cluster.dynamic("v1", "ConfigMap", "configmaps", Some(namespace))
}

async fn answers(cluster: &TestCluster, reply_to: &str, name: &str) -> Vec<(String, String)> {
    support::trespass::answers(&cluster.client, reply_to, name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_plugin_cannot_read_files_env_or_args_nor_open_sockets() {
    let cluster = TestCluster::start().await;
    cluster
        .start_plugin(&support::test_plugin("trespass"))
        .await;

    // Real targets: a file with content, a live listener on loopback counting connections.
    let mut file = tempfile::NamedTempFile::new().expect("a temp file");
    file.write_all(b"secret material")
        .expect("the temp file is written");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let port = listener.local_addr().expect("its address").port();
    listener
        .set_nonblocking(true)
        .expect("a nonblocking listener");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let acceptor = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok(_) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
            if counter.load(Ordering::SeqCst) == usize::MAX {
                break;
            }
        }
    });
    // The listener itself works: a connection from the test is counted.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the test can connect");
    eventually("the test's own connection is accepted", || {
        let n = accepted.load(Ordering::SeqCst);
        async move { (n == 1).then_some(()) }
    })
    .await;

    let attempts = [
        format!("read-file {}", file.path().display()),
        "read-file /etc/hostname".to_owned(),
        "read-file /proc/self/environ".to_owned(),
        "env".to_owned(),
        "args".to_owned(),
        format!("connect 127.0.0.1:{port}"),
    ];
    cluster
        .create(
            "configmaps",
            configmap(
                "default",
                "escape",
                json!({"attempts": attempts.join("\n")}),
            ),
        )
        .await;
    let answers = answers(&cluster, "default", "escape").await;
    for path_attempt in &attempts[..3] {
        let a = answer(&answers, path_attempt);
        assert!(a.contains("read failed"), "{path_attempt}: {a}");
    }
    assert_eq!(answer(&answers, "env"), "ok: 0 variables");
    assert_eq!(answer(&answers, "args"), "ok: 0 arguments");
    let connect = answer(&answers, &attempts[5]);
    assert!(connect.contains("connect failed"), "{connect}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the plugin's connection never reached the listener"
    );
    accepted.store(usize::MAX, Ordering::SeqCst);
    acceptor.join().expect("the acceptor ends");
    support::fault_report::record(
        "sandbox",
        "files, env, args, sockets (running host)",
        "plugin reads a real file, /etc/hostname, /proc, env, args; connects to a live 127.0.0.1 listener",
        "all refused: 0 bytes read, 0 env vars, 0 args, 0 connections accepted",
        Some(0),
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_plugin_cannot_use_kinds_it_did_not_declare() {
    let cluster = TestCluster::start().await;
    cluster
        .start_plugin(&support::test_plugin("trespass"))
        .await;
    cluster
        .create(
            "configmaps",
            configmap(
                "default",
                "undeclared",
                json!({"attempts": "create Pod default intruder\nlist Pod default -"}),
            ),
        )
        .await;
    let answers = answers(&cluster, "default", "undeclared").await;
    assert_forbidden(
        &answers,
        "create Pod default intruder",
        &["does not declare kind Pod"],
    );
    assert_forbidden(&answers, "list Pod default -", &["Pod"]);
    let pods = cluster
        .dynamic("v1", "Pod", "pods", None)
        .list(&ListParams::default())
        .await
        .expect("pods list");
    assert!(
        pods.items.is_empty(),
        "no Pod was written: {:?}",
        pods.items
    );
    support::fault_report::record(
        "sandbox",
        "undeclared kinds (running host)",
        "plugin creates and lists Pods, which its manifest does not declare",
        "forbidden naming the kind; no Pod on the API server",
        Some(0),
    );
    cluster.stop().await;
}

#[tokio::test]
async fn the_probe_sandbox_report_is_the_same_under_a_policy() {
    // The probe's own sandbox op on the runtime, with and without a policy in force: a policy
    // narrows API access only, it never opens the sandbox.
    for runtime in [
        support::runtime(),
        runtime_with_policy("default: {namespaces: [demo]}"),
    ] {
        let plugin = support::load(&runtime, &support::test_plugin("probe")).await;
        let backend: Arc<dyn Backend> = support::backend();
        match plugin
            .reconcile(backend, Request::new("demo", "sandbox", Reason::Created))
            .await
        {
            Err(ReconcileError::Plugin {
                error: ApiError::Other(report),
                ..
            }) => assert_eq!(report, "env=0 args=0 fs=false net=false"),
            other => panic!("expected the sandbox report, got {other:?}"),
        }
    }
    support::fault_report::record(
        "sandbox",
        "probe sandbox op (runtime)",
        "probe counts env and args, reads / and /etc/hostname, connects to 127.0.0.1:9",
        "env=0 args=0 fs=false net=false, with and without a policy",
        None,
    );
}

const POLICY: &str = "
default:
  namespaces: [apps, staging]
plugins:
  trespass:
    kinds: [ConfigMap, Secret]
    verbs: { Secret: [get, list, watch] }
";

/// Writes the order `name` in `namespace` asks for, with answers to `reply_to`.
fn order(namespace: &str, name: &str, reply_to: &str, attempts: &[&str]) -> serde_json::Value {
    let mut cm = configmap(
        namespace,
        name,
        json!({"attempts": attempts.join("\n"), "reply-to": reply_to}),
    );
    // Orders are not victims: keep them out of the list answers.
    cm["metadata"]["labels"] = json!({"trespass": "order"});
    cm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_keeps_a_running_plugin_inside_its_namespaces_and_kinds() {
    let cluster = TestCluster::start().await;
    for ns in ["apps", "staging", "other"] {
        cluster
            .create(
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
    }
    for ns in ["apps", "staging", "other"] {
        cluster
            .create("configmaps", configmap(ns, "victim", json!({"v": "1"})))
            .await;
    }
    let mut doomed = configmap("apps", "doomed", json!({}));
    doomed["metadata"]["labels"] = json!({"trespass": "doomed"});
    cluster.create("configmaps", doomed).await;
    let before_other = configmaps(&cluster, "other")
        .get("victim")
        .await
        .expect("victim in other");

    let runtime = runtime_with_policy(POLICY);
    let plugin = support::load(&runtime, &support::test_plugin("trespass")).await;
    let manifest = plugin.manifest();
    assert_eq!(manifest.policy(), Some("test-policy.yaml"));
    assert_eq!(
        manifest.allowed_namespaces(),
        Some(&["apps".to_owned(), "staging".to_owned()][..])
    );
    cluster.manager.start(plugin).expect("the plugin starts");
    cluster.manager.wait_synced().await;

    // An order outside the allowed namespaces, replying into an allowed one: if its key ever
    // reached the plugin, a result would appear in apps.
    cluster
        .create(
            "configmaps",
            order("other", "outsider", "apps", &["get ConfigMap apps victim"]),
        )
        .await;
    cluster
        .create(
            "configmaps",
            order(
                "staging",
                "insider",
                "apps",
                &["get ConfigMap staging victim"],
            ),
        )
        .await;
    let attempts = [
        "create ConfigMap apps made-in-apps",
        "create ConfigMap staging made-in-staging",
        "create ConfigMap other escaped",
        "patch ConfigMap other victim",
        "replace ConfigMap other victim",
        "delete ConfigMap other victim",
        "patch ConfigMap staging victim",
        "delete ConfigMap apps doomed",
        "event ConfigMap other victim",
        "event ConfigMap apps victim",
        "get ConfigMap other victim",
        "get ConfigMap apps victim",
        "list ConfigMap - -",
        "index ConfigMap victim -",
        "list ConfigMap other -",
        "create Secret apps token",
        "get Secret other token",
        "create Namespace - evil",
    ];
    cluster
        .create("configmaps", order("apps", "main", "apps", &attempts))
        .await;
    let answers = answers(&cluster, "apps", "main").await;
    let insider = answers_of(&cluster, "insider").await;
    assert_eq!(
        answer(&insider, "get ConfigMap staging victim"),
        "ok: found"
    );

    // Inside the policy: writes and reads work.
    for ok in [
        "create ConfigMap apps made-in-apps",
        "create ConfigMap staging made-in-staging",
        "patch ConfigMap staging victim",
        "delete ConfigMap apps doomed",
        "event ConfigMap apps victim",
    ] {
        assert_eq!(answer(&answers, ok), "ok", "{ok}");
    }
    assert_eq!(answer(&answers, "get ConfigMap apps victim"), "ok: found");
    assert_eq!(
        answer(&answers, "list ConfigMap - -"),
        "ok: apps/victim,staging/victim",
        "a list across namespaces sees only the allowed ones"
    );
    assert_eq!(
        answer(&answers, "index ConfigMap victim -"),
        "ok: apps/victim,staging/victim",
        "a list by index sees only the allowed namespaces"
    );
    // Outside: forbidden, naming the policy.
    for (attempt, needles) in [
        (
            "create ConfigMap other escaped",
            &["create", "namespace other"][..],
        ),
        (
            "patch ConfigMap other victim",
            &["patch", "namespace other"],
        ),
        (
            "replace ConfigMap other victim",
            &["update", "namespace other"],
        ),
        (
            "delete ConfigMap other victim",
            &["delete", "namespace other"],
        ),
        (
            "event ConfigMap other victim",
            &["record events", "namespace other"],
        ),
        ("get ConfigMap other victim", &["get", "namespace other"]),
        ("list ConfigMap other -", &["list", "namespace other"]),
        ("create Secret apps token", &["create Secret"]),
        ("get Secret other token", &["namespace other"]),
        ("create Namespace - evil", &["create Namespace"]),
    ] {
        let mut all = vec!["the policy test-policy.yaml", "plugin trespass"];
        all.extend_from_slice(needles);
        assert_forbidden(&answers, attempt, &all);
    }

    // On the API server: nothing escaped.
    let other = configmaps(&cluster, "other");
    let mut escaped = 0u64;
    if other.get_opt("escaped").await.expect("get").is_some() {
        escaped += 1;
    }
    let victim = other
        .get("victim")
        .await
        .expect("the victim in other survives");
    assert_eq!(
        victim.metadata.resource_version, before_other.metadata.resource_version,
        "the victim in other was not modified"
    );
    let secrets = cluster
        .dynamic("v1", "Secret", "secrets", None)
        .list(&ListParams::default())
        .await
        .expect("secrets");
    escaped += secrets.items.len() as u64;
    let namespaces = cluster
        .dynamic("v1", "Namespace", "namespaces", None)
        .get_opt("evil")
        .await
        .expect("namespace get");
    escaped += u64::from(namespaces.is_some());
    let events = |ns: &str| cluster.dynamic("events.k8s.io/v1", "Event", "events", Some(ns));
    escaped += events("other")
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .len() as u64;
    assert_eq!(
        escaped, 0,
        "writes outside the policy reached the API server"
    );
    // Inside: the writes landed.
    assert!(
        configmaps(&cluster, "apps")
            .get_opt("made-in-apps")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        configmaps(&cluster, "staging")
            .get_opt("made-in-staging")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        configmaps(&cluster, "apps")
            .get_opt("doomed")
            .await
            .expect("get")
            .is_none()
    );
    let patched = configmaps(&cluster, "staging")
        .get("victim")
        .await
        .expect("victim");
    assert_eq!(patched.data["data"]["patched-by"], "trespass");
    assert_eq!(
        events("apps")
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .len(),
        1
    );
    // The order in other never reached the plugin (its key is not handed out), though orders
    // created after it were carried out.
    assert!(
        configmaps(&cluster, "apps")
            .get_opt("outsider-result")
            .await
            .expect("get")
            .is_none(),
        "a key outside the policy's namespaces was reconciled"
    );
    support::fault_report::record(
        "policy",
        "namespaces and kinds (running host)",
        "policy apps+staging, Secret read-only, no Namespace; plugin writes/reads/events in other, creates Secret and Namespace",
        "18 attempts: 8 inside ok (lists see only apps, staging), 10 forbidden naming the policy; key from other never reconciled",
        Some(escaped),
    );
    cluster.stop().await;
}

async fn answers_of(cluster: &TestCluster, name: &str) -> Vec<(String, String)> {
    answers(cluster, "apps", name).await
}

#[tokio::test]
async fn a_plugin_whose_reconciled_kind_the_policy_does_not_allow_is_not_loaded() {
    let runtime = runtime_with_policy("plugins: {trespass: {kinds: [Secret]}}");
    let e = load_file(
        &runtime,
        &support::test_plugin("trespass"),
        DEFAULT_MAX_PLUGIN_SIZE,
    )
    .await
    .expect_err("the policy refuses the plugin");
    let text = e.to_string();
    assert!(
        text.contains("test-policy.yaml")
            && text.contains("trespass")
            && text.contains("reconciles ConfigMap"),
        "{text}"
    );
    // Other plugins are unaffected by an entry that does not name them.
    let probe = load_file(
        &runtime,
        &support::test_plugin("probe"),
        DEFAULT_MAX_PLUGIN_SIZE,
    )
    .await;
    assert!(probe.is_ok(), "{probe:?}");
    support::fault_report::record(
        "policy",
        "reconciled kind not allowed",
        "policy lists only Secret for a plugin reconciling ConfigMaps",
        "plugin refused at load, naming the policy and the kind; other plugins load",
        None,
    );
}

#[tokio::test]
async fn with_one_allowed_namespace_the_plugin_only_sees_that_namespace() {
    let runtime = runtime_with_policy("default: {namespaces: [apps]}");
    let plugin = support::load(&runtime, &support::test_plugin("trespass")).await;
    assert_eq!(
        plugin.manifest().reconciles.namespace.as_deref(),
        Some("apps"),
        "the reconciled kind's informer watches only the allowed namespace"
    );
    let backend = support::backend();
    for ns in ["apps", "other"] {
        backend
            .insert(
                &support::configmaps(),
                json!({"metadata": {"name": "victim", "namespace": ns, "labels": {"trespass": "victim"}}}),
            )
            .expect("seeded");
    }
    backend
        .insert(
            &support::configmaps(),
            json!({"metadata": {"name": "order", "namespace": "apps"},
                   "data": {"attempts": "list ConfigMap - -\ncreate ConfigMap other x"}}),
        )
        .expect("seeded");
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    let action = plugin
        .reconcile(dyn_backend, Request::new("apps", "order", Reason::Created))
        .await
        .expect("the order is carried out");
    assert_eq!(action, Action::Done);
    let result = backend
        .object(&support::configmaps(), Some("apps"), "order-result")
        .expect("the result was written");
    assert_eq!(result["data"]["0"], "list ConfigMap - - => ok: apps/victim");
    assert!(
        result["data"]["1"]
            .as_str()
            .is_some_and(|a| a.contains("forbidden: the policy test-policy.yaml")),
        "{result}"
    );
    assert!(
        backend
            .object(&support::configmaps(), Some("other"), "x")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_reloaded_plugin_is_narrowed_by_the_policy_read_at_start() {
    let cluster = TestCluster::start().await;
    let runtime = runtime_with_policy("default: {namespaces: [apps, staging]}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trespass.wasm");
    std::fs::copy(support::test_plugin("trespass"), &file).expect("copy");
    let watcher = kubewasm::reload::PluginWatcher::start(
        runtime,
        cluster.manager.clone(),
        dir.path(),
        kubewasm::reload::WatchOptions::default(),
    )
    .await
    .expect("the watcher starts");
    let first = cluster.manager.plugin("trespass").expect("trespass runs");
    assert_eq!(first.manifest().policy(), Some("test-policy.yaml"));

    // A new version (here: another component under the same name) is loaded through the same
    // runtime, so the policy narrows it too.
    let tmp = dir.path().join(".trespass.wasm.tmp");
    std::fs::copy(support::test_plugin("probe"), &tmp).expect("copy");
    std::fs::rename(&tmp, &file).expect("rename");
    let second = eventually("the new version serves", || {
        let manager = cluster.manager.clone();
        let old = first.version().to_owned();
        async move { manager.plugin("trespass").filter(|p| p.version() != old) }
    })
    .await;
    assert_eq!(second.manifest().policy(), Some("test-policy.yaml"));
    assert_eq!(
        second.manifest().allowed_namespaces(),
        Some(&["apps".to_owned(), "staging".to_owned()][..])
    );
    watcher.stop().await;
    support::fault_report::record(
        "policy",
        "hot reload under a policy",
        "the plugin file is replaced while the host runs with a policy",
        "the new version is narrowed by the same policy",
        None,
    );
    cluster.stop().await;
}
