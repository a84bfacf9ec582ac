//! `/metrics` of `kubewasm run` parses as Prometheus text and its counts match what happened.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubewasm_apiserver::{ApiServer, Config};

use crate::support;
use crate::support::process::{Host, plugin_dir};
use crate::support::wait::wait;

fn version_of(path: &std::path::Path) -> String {
    kubewasm::runtime::version_of(&std::fs::read(path).expect("plugin file"))
}

/// The number of `reconcile failed` warnings of `plugin` in the host's log.
fn failures_logged(host: &Host, plugin: &str) -> usize {
    host.logs("reconcile failed; retrying with backoff")
        .iter()
        .filter(|l| {
            l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("plugin {plugin} ")))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let (hello, panic, bad) = (
        support::example("hello"),
        support::test_plugin("panic"),
        support::test_plugin("bad-manifest"),
    );
    let plugins = plugin_dir(dir.path(), &[hello.clone(), panic.clone(), bad.clone()]);
    let host = Host::start(
        "host",
        &plugins,
        &kubeconfig,
        &[
            "--leader-election-namespace",
            "default",
            "--lease-duration",
            "3s",
            "--renew-deadline",
            "2s",
            "--retry-period",
            "0.3s",
        ],
    );
    let client = support::cluster::client_for(&server);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..4 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}
        }))
        .expect("configmap");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let stamped = || async {
        let list = cms.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("cm-"))
            })
            .all(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("hello.kubewasm.dev/keys"))
            })
            .then_some(())
    };
    support::eventually("hello to stamp every ConfigMap", stamped).await;

    // Counters and the log agree once the panic plugin's retries are in (retries back off, so
    // the two converge; each scrape is compared with the log read right after it).
    let m = wait("the trap counters to match the logged failures", || {
        let m = host.metrics();
        let logged = failures_logged(&host, "panic") as f64;
        let traps = m.get(
            "kubewasm_plugin_traps_total",
            &[("plugin", "panic"), ("version", &version_of(&panic))],
        )?;
        let hello_total = m.sum(
            "controller_runtime_reconcile_total",
            &[("controller", "hello")],
        );
        (logged >= 1.0
            && hello_total >= 4.0
            && m.get(
                "controller_runtime_reconcile_time_seconds_count",
                &[("controller", "hello")],
            ) == Some(hello_total)
            && m.get(
                "workqueue_work_duration_seconds_count",
                &[("name", "hello")],
            ) == Some(hello_total)
            && traps == logged
            && m.get(
                "controller_runtime_reconcile_errors_total",
                &[("controller", "panic")],
            ) == Some(traps)
            && m.get(
                "controller_runtime_reconcile_total",
                &[("controller", "panic"), ("result", "error")],
            ) == Some(traps)
            && m.get("workqueue_retries_total", &[("name", "panic")]) == Some(traps))
        .then_some(m)
    })
    .unwrap_or_else(|| panic!("{}", host.dump()));

    // Types as controller-runtime declares them.
    for (name, ty) in [
        ("controller_runtime_reconcile", "counter"),
        ("controller_runtime_reconcile_errors", "counter"),
        ("controller_runtime_reconcile_time_seconds", "histogram"),
        ("controller_runtime_active_workers", "gauge"),
        ("workqueue_depth", "gauge"),
        ("workqueue_adds", "counter"),
        ("workqueue_retries", "counter"),
        ("workqueue_queue_duration_seconds", "histogram"),
        ("workqueue_work_duration_seconds", "histogram"),
        ("kubewasm_informer_events", "counter"),
        ("kubewasm_cached_objects", "gauge"),
        ("kubewasm_plugin_loads", "counter"),
        ("kubewasm_leader", "gauge"),
    ] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(ty), "{name}");
    }

    // Loads: one success per plugin at its version, one failure for the bad manifest.
    assert_eq!(
        m.get(
            "kubewasm_plugin_loads_total",
            &[
                ("plugin", "hello"),
                ("version", &version_of(&hello)),
                ("result", "success")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "kubewasm_plugin_loads_total",
            &[
                ("plugin", "bad-manifest"),
                ("version", &version_of(&bad)),
                ("result", "error")
            ]
        ),
        Some(1.0)
    );
    // hello stamped 4 ConfigMaps without a single error; every reconcile was timed.
    let hello_total = m.sum(
        "controller_runtime_reconcile_total",
        &[("controller", "hello")],
    );
    assert!(hello_total >= 4.0, "{hello_total}");
    assert_eq!(
        m.get(
            "controller_runtime_reconcile_total",
            &[("controller", "hello"), ("result", "error")]
        ),
        None
    );
    assert_eq!(
        m.get(
            "controller_runtime_reconcile_time_seconds_count",
            &[("controller", "hello")]
        ),
        Some(hello_total)
    );
    assert_eq!(
        m.get(
            "controller_runtime_reconcile_time_seconds_bucket",
            &[("controller", "hello"), ("le", "+Inf")]
        ),
        Some(hello_total)
    );
    assert!(
        m.get("workqueue_adds_total", &[("name", "hello")]) >= Some(4.0),
        "every new ConfigMap was queued"
    );
    assert_eq!(
        m.get(
            "workqueue_work_duration_seconds_count",
            &[("name", "hello")]
        ),
        Some(hello_total),
        "each finished reconcile is one finished work item"
    );
    // The cache holds exactly the ConfigMaps the API server has.
    let all: Api<ConfigMap> = Api::all(client);
    let in_server = all
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len() as f64;
    assert_eq!(
        m.get("kubewasm_cached_objects", &[("kind", "ConfigMap")]),
        Some(in_server)
    );
    let events = m.sum("kubewasm_informer_events_total", &[("kind", "ConfigMap")]);
    assert!(
        events >= in_server,
        "{events} events for {in_server} objects"
    );
    assert_eq!(
        m.get("kubewasm_leader", &[("identity", &host.identity())]),
        Some(1.0)
    );
    drop(host);
    server.shutdown().await;
}
