//! The fault suite's desired-state checker for the configmap-mirror example, shared by the API
//! chaos tests against the embedded API server (`fault_api_chaos.rs`) and against a real control
//! plane (`real_chaos.rs`): a writer that keeps creating, changing and deleting mirrored
//! ConfigMaps, and a checker that computes the desired state from the final objects (every active
//! source mirrored into each target namespace with its data, no mirror without a source) and
//! compares every informer cache of the Manager with the server. Set `CHAOS_TRACE=1` to see on
//! stderr when each phase starts and how long convergence took.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kubewasm::Manager;
use kubewasm_controller::InformerOptions;
use serde_json::json;

use super::wait::PATIENCE;

pub const ENABLED: &str = "mirror.kubewasm.dev/enabled";
pub const SELECTOR: &str = "mirror.kubewasm.dev/namespace-selector";
pub const SOURCE: &str = "mirror.kubewasm.dev/source";
/// Sources present before the chaos starts.
pub const INITIAL_SOURCES: usize = 12;

/// Where sources live and where they are mirrored (namespaces labelled `chaos=target`).
#[derive(Debug, Clone)]
pub struct World {
    pub src: String,
    pub targets: Vec<String>,
}

impl World {
    /// A source ConfigMap `name` holding `value`, mirrored into the targets.
    pub fn source(&self, name: &str, value: &str) -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "namespace": self.src,
                "labels": {ENABLED: "true"},
                "annotations": {SELECTOR: "chaos=target"},
            },
            "data": {"value": value},
        }))
        .expect("a ConfigMap")
    }

    /// The source namespace's ConfigMaps.
    pub fn sources(&self, client: &kube::Client) -> Api<ConfigMap> {
        Api::namespaced(client.clone(), &self.src)
    }

    /// Creates the source and target namespaces.
    pub async fn create_namespaces(&self, client: &kube::Client) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let ns = |name: &str, labels: serde_json::Value| {
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("a Namespace")
        };
        let mut all = vec![(self.src.as_str(), json!({}))];
        all.extend(
            self.targets
                .iter()
                .map(|t| (t.as_str(), json!({"chaos": "target"}))),
        );
        for (name, labels) in all {
            retrying(&format!("creating namespace {name}"), || async {
                match api
                    .create(&PostParams::default(), &ns(name, labels.clone()))
                    .await
                {
                    Err(e) if is_code(&e, 409) => Ok(()),
                    other => other.map(|_| ()),
                }
            })
            .await;
        }
    }
}

/// How long convergence may take after the chaos stops (generous: machines are shared).
pub const CONVERGE_WITHIN: Duration = PATIENCE;

/// With `CHAOS_TRACE` set, says on stderr when each phase of a scenario starts (to see where time goes).
pub fn trace(what: &str) {
    if std::env::var_os("CHAOS_TRACE").is_some() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() % 1000.0);
        eprintln!("TRACE {now:.2} {what}");
    }
}

/// Retries `op` until it succeeds: the test's own requests meet the injected faults too. Fails the
/// test when it has not succeeded within [`PATIENCE`].
pub async fn retrying<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{what} kept failing for {PATIENCE:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

pub async fn create_source(world: &World, api: &Api<ConfigMap>, name: &str, value: &str) {
    retrying(&format!("creating {name}"), || async {
        match api
            .create(&PostParams::default(), &world.source(name, value))
            .await
        {
            // A create whose answer was lost (a restart cut the connection) may have landed.
            Err(e) if is_code(&e, 409) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

pub async fn change_source(api: &Api<ConfigMap>, name: &str, value: &str) {
    retrying(&format!("changing {name}"), || async {
        let mut cm = api.get(name).await?;
        cm.data = Some([("value".to_string(), value.to_string())].into());
        cm.metadata.resource_version = None;
        api.replace(name, &PostParams::default(), &cm)
            .await
            .map(|_| ())
    })
    .await;
}

pub async fn delete_source(api: &Api<ConfigMap>, name: &str) {
    retrying(&format!("deleting {name}"), || async {
        match api.delete(name, &DeleteParams::default()).await {
            Err(e) if is_code(&e, 404) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

/// A writer that keeps creating, changing and deleting sources until stopped.
pub struct Churn {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Churn {
    pub fn start(world: World, api: Api<ConfigMap>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut writes = 0;
            let mut i = INITIAL_SOURCES;
            while !stopping.load(Ordering::Relaxed) {
                create_source(&world, &api, &format!("s-{i:03}"), "0").await;
                // Change a source created three rounds ago (or an initial one), delete one older.
                change_source(&api, &format!("s-{:03}", i - 3), &i.to_string()).await;
                writes += 2;
                if i.is_multiple_of(3) {
                    delete_source(&api, &format!("s-{:03}", i - 9)).await;
                    writes += 1;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            writes
        });
        Self { stop, task }
    }

    /// Stops the writer; returns how many writes it made.
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the writer does not panic")
    }
}

/// What the checker found: objects not in their desired state, and caches that differ from the server.
#[derive(Debug, Default)]
pub struct Check {
    /// Sources whose mirrors are missing or stale, and mirrors whose source is gone.
    pub lost: Vec<String>,
    /// Informers whose cache differs from the server, with the first differences.
    pub stale_caches: Vec<String>,
    pub sources: usize,
}

/// Desired state from the final objects: each active source in every target namespace with its data;
/// no mirror of a source that is not active.
pub async fn check_desired(
    client: &kube::Client,
    world: &World,
    check: &mut Check,
) -> Result<(), kube::Error> {
    let sources: Vec<ConfigMap> = world
        .sources(client)
        .list(&ListParams::default())
        .await?
        .items;
    let active: BTreeMap<String, ConfigMap> = sources
        .into_iter()
        .filter(|s| {
            s.metadata.deletion_timestamp.is_none()
                && s.metadata.labels.as_ref().and_then(|l| l.get(ENABLED))
                    == Some(&"true".to_string())
        })
        .filter_map(|s| Some((s.metadata.name.clone()?, s)))
        .collect();
    check.sources = active.len();
    for ns in &world.targets {
        let mirrors: BTreeMap<String, ConfigMap> = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|m| Some((m.metadata.name.clone()?, m)))
            .collect();
        for (name, s) in &active {
            let want_source = format!("{}/{name}", world.src);
            match mirrors.get(name) {
                Some(m)
                    if m.data == s.data
                        && m.metadata.annotations.as_ref().and_then(|a| a.get(SOURCE))
                            == Some(&want_source) => {}
                Some(_) => check.lost.push(format!("{ns}/{name}: stale mirror")),
                None => check.lost.push(format!("{ns}/{name}: missing mirror")),
            }
        }
        for (name, m) in &mirrors {
            let is_mirror = m
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(SOURCE));
            if is_mirror && !active.contains_key(name) {
                check
                    .lost
                    .push(format!("{ns}/{name}: mirror of a gone source"));
            }
        }
    }
    Ok(())
}

/// Every informer of the Manager holds exactly the server's objects for its key, at the same
/// resourceVersions.
pub async fn check_caches(
    client: &kube::Client,
    manager: &Manager,
    check: &mut Check,
) -> Result<(), kube::Error> {
    let informers = manager.informers();
    for (key, _) in informers.stats() {
        let handle = informers
            .acquire(key.clone(), InformerOptions::default())
            .expect("a running informer can be shared");
        let cached: BTreeMap<(Option<String>, String), String> = handle
            .store()
            .snapshot()
            .iter()
            .map(|e| {
                (
                    (e.namespace().map(str::to_owned), e.name().to_owned()),
                    e.resource_version().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let api: Api<DynamicObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &key.resource),
            None => Api::all_with(client.clone(), &key.resource),
        };
        let mut params = ListParams::default();
        if let Some(sel) = &key.label_selector {
            params = params.labels(sel);
        }
        let on_server: BTreeMap<(Option<String>, String), String> = api
            .list(&params)
            .await?
            .items
            .into_iter()
            .map(|o| {
                (
                    (
                        o.metadata.namespace.clone(),
                        o.metadata.name.unwrap_or_default(),
                    ),
                    o.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect();
        if cached != on_server {
            let diff: Vec<String> = on_server
                .iter()
                .filter(|(k, rv)| cached.get(*k) != Some(*rv))
                .map(|(k, rv)| format!("{k:?}@{rv} (cached {:?})", cached.get(k)))
                .chain(
                    cached
                        .keys()
                        .filter(|k| !on_server.contains_key(*k))
                        .map(|k| format!("{k:?} cached but gone")),
                )
                .take(5)
                .collect();
            check
                .stale_caches
                .push(format!("{key}: {}", diff.join(", ")));
        }
    }
    Ok(())
}

/// Polls the checker until every object is in its desired state and every cache equals the server;
/// returns how long that took. Fails with what was still wrong after [`CONVERGE_WITHIN`].
pub async fn converge(
    client: &kube::Client,
    manager: &Manager,
    world: &World,
    what: &str,
) -> (Duration, Check) {
    let start = Instant::now();
    loop {
        let mut check = Check::default();
        let checked = async {
            check_desired(client, world, &mut check).await?;
            check_caches(client, manager, &mut check).await
        }
        .await;
        let last = match checked {
            Ok(()) if check.lost.is_empty() && check.stale_caches.is_empty() => {
                trace(&format!("{what}: converged in {:?}", start.elapsed()));
                return (start.elapsed(), check);
            }
            Ok(()) => format!("{check:?}"),
            Err(e) => format!("the checker's request failed: {e}"),
        };
        assert!(
            start.elapsed() < CONVERGE_WITHIN,
            "{what}: not converged within {CONVERGE_WITHIN:?}; last check: {last}; informers: {:?}",
            manager.informers().stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes one Namespace and one ConfigMap after the chaos, so that the caches can only equal the server
/// once every informer watches again (a cache that stopped watching would still equal the server if
/// nothing changed after the chaos).
pub async fn probe(client: &kube::Client, world: &World) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    retrying("labelling the source namespace", || async {
        let mut ns = namespaces.get(&world.src).await?;
        ns.metadata
            .labels
            .get_or_insert_default()
            .insert("chaos-probe".into(), stamp.clone());
        ns.metadata.resource_version = None;
        namespaces
            .replace(&world.src, &PostParams::default(), &ns)
            .await
            .map(|_| ())
    })
    .await;
    let api = world.sources(client);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": format!("probe-{stamp}")}}))
            .expect("a ConfigMap");
    retrying("creating a probe ConfigMap", || async {
        match api.create(&PostParams::default(), &cm).await {
            Err(e) if is_code(&e, 409) => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await;
}

/// Lets the churn writer and the plugin work a little between injections.
pub async fn pace() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}
