//! Hot reload through the real host: a watched plugins folder, the manager, the embedded API
//! server. Which version ran each reconcile is read from the manager's typed stream of reconciles
//! (`support::reconciles`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kubewasm::Updated;
use kubewasm::reload::{PluginWatcher, ReloadEvent, WatchOptions};
use serde_json::json;

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::eventually;
use crate::support::{replace_by_rename, variant};

fn version(bytes: &[u8]) -> String {
    kubewasm::runtime::version_of(bytes)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn options() -> WatchOptions {
    WatchOptions {
        watch: true,
        debounce: Duration::from_millis(100),
        // Long: these tests must be driven by filesystem events, not the safety-net rescan.
        rescan: Duration::from_secs(3600),
        sync_timeout: Duration::from_secs(60),
        ..WatchOptions::default()
    }
}

async fn watch(cluster: &TestCluster, dir: &Path) -> PluginWatcher {
    watch_with(cluster, dir, options()).await
}

async fn watch_with(cluster: &TestCluster, dir: &Path, options: WatchOptions) -> PluginWatcher {
    PluginWatcher::start(
        cluster.runtime.clone(),
        cluster.manager.clone(),
        dir,
        options,
    )
    .await
    .expect("the plugins folder is watched")
}

async fn serving(cluster: &TestCluster, name: &str, version: &str) {
    eventually(&format!("{name} serves version {version}"), || async {
        let p = cluster.manager.plugin(name)?;
        (p.version() == version).then_some(())
    })
    .await;
    cluster.manager.wait_synced().await;
}

fn list_requests(cluster: &TestCluster, resource: &str) -> usize {
    cluster
        .server
        .faults()
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource.as_deref() == Some(resource))
        .count()
}

async fn set_keys(cluster: &TestCluster, name: &str, keys: usize) {
    let data: serde_json::Map<String, serde_json::Value> =
        (0..keys).map(|k| (format!("k{k}"), json!("v"))).collect();
    // Keys only ever grow in these tests, so a merge patch sets them all.
    cluster
        .dynamic("v1", "ConfigMap", "configmaps", Some("default"))
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": data })),
        )
        .await
        .unwrap_or_else(|e| panic!("updating {name}: {e}"));
}

async fn stamped_keys(cluster: &TestCluster, name: &str) -> Option<String> {
    let cm = cluster
        .dynamic("v1", "ConfigMap", "configmaps", Some("default"))
        .get(name)
        .await
        .ok()?;
    cm.metadata
        .annotations?
        .get("hello.kubewasm.dev/keys")
        .cloned()
}

async fn create_configmaps(cluster: &TestCluster, names: &[String]) {
    for name in names {
        cluster
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "default"}, "data": {"k0": "v"}}),
            )
            .await;
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary plugins folder")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_plugin_under_a_stream_of_changes_loses_no_reconcile_and_never_serves_the_invalid_version()
 {
    let hello = read(&support::example("hello"));
    let (v1, v2, v3) = (hello.clone(), variant(&hello, "v2"), variant(&hello, "v3"));
    let invalid = hello[..hello.len() / 2].to_vec();
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("stream.wasm");
    std::fs::write(&file, &v1).expect("write");
    let names: Vec<String> = (0..6).map(|i| format!("cm-{i}")).collect();
    create_configmaps(&cluster, &names).await;
    let watcher = watch(&cluster, dir.path()).await;
    serving(&cluster, "stream", &version(&v1)).await;

    // A steady stream of changes: every ConfigMap gets one more data key per round.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let writer = {
        let (stop, rounds, names) = (Arc::clone(&stop), Arc::clone(&rounds), names.clone());
        let client = cluster.client.clone();
        tokio::spawn(async move {
            let cluster_api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
                client,
                "default",
                &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            );
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let round = rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                for name in &names {
                    let data: serde_json::Map<String, serde_json::Value> =
                        (0..round).map(|k| (format!("k{k}"), json!("v"))).collect();
                    let patch = Patch::Merge(json!({ "data": data }));
                    cluster_api
                        .patch(name, &PatchParams::default(), &patch)
                        .await
                        .expect("update");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    std::fs::write(&file, &v2).expect("write v2 in place");
    serving(&cluster, "stream", &version(&v2)).await;
    let failures = watcher.failures();
    std::fs::write(&file, &invalid).expect("write an invalid file in place");
    eventually("the invalid file is reported", || async {
        (watcher.failures() > failures).then_some(())
    })
    .await;
    let status = cluster
        .manager
        .status()
        .into_iter()
        .find(|s| s.name == "stream")
        .expect("stream still runs");
    assert_eq!(
        status.version,
        version(&v2),
        "the old version keeps serving"
    );
    assert!(
        status
            .last_reload_error
            .as_deref()
            .is_some_and(|e| e.contains("stream.wasm")),
        "status says why: {status:?}"
    );
    std::fs::write(&file, &v3).expect("write v3 in place");
    serving(&cluster, "stream", &version(&v3)).await;
    assert_eq!(
        cluster.manager.status()[0].last_reload_error,
        None,
        "a successful reload clears the error"
    );
    // Let the stream run on v3 for a while, then stop it; the last round is what must be stamped.
    let on_v3 = cluster
        .reconciles
        .finished("stream")
        .iter()
        .filter(|r| *r.started.version == *version(&v3))
        .count();
    eventually("v3 reconciles the stream", || async {
        let now = cluster
            .reconciles
            .finished("stream")
            .iter()
            .filter(|r| *r.started.version == *version(&v3))
            .count();
        (now >= on_v3 + names.len()).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.expect("the writer");
    let last_round = rounds.load(std::sync::atomic::Ordering::SeqCst);
    for name in &names {
        eventually(&format!("{name} stamped with its last data"), || async {
            (stamped_keys(&cluster, name).await? == last_round.to_string()).then_some(())
        })
        .await;
    }
    let runs = cluster.reconciles.finished("stream");
    let versions: Vec<&str> = runs.iter().map(|r| &*r.started.version).collect();
    assert!(
        !versions.contains(&version(&invalid).as_str()),
        "the invalid file never served"
    );
    for name in &names {
        let key = format!("default/{name}");
        let last = runs
            .iter()
            .rev()
            .find(|r| r.started.key.to_string() == key)
            .expect("reconciled");
        assert_eq!(
            *last.started.version,
            *version(&v3),
            "{key} was last reconciled by the last valid version"
        );
    }
    assert_eq!(
        cluster.reconciles.overlaps("stream"),
        Vec::<String>::new(),
        "no key was reconciled twice at once"
    );
    let stats = cluster.manager.versions("stream");
    let listed: Vec<&str> = stats.iter().map(|s| s.version.as_str()).collect();
    assert_eq!(
        listed,
        [version(&v1), version(&v2), version(&v3)],
        "every served version is counted, the invalid one never"
    );
    assert!(stats.iter().all(|s| s.faults == 0), "{stats:?}");
    assert!(stats[2].serving && stats[2].ok > 0, "{stats:?}");
    // The caches were not re-listed: one LIST of ConfigMaps, ever.
    assert_eq!(list_requests(&cluster, "configmaps"), 1);
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_renamed_into_place_are_started_and_reloaded() {
    let hello = read(&support::example("hello"));
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let watcher = watch(&cluster, dir.path()).await;
    assert!(
        cluster.manager.status().is_empty(),
        "an empty folder runs nothing"
    );
    let mut events = watcher.subscribe();
    let file = dir.path().join("renamed.wasm");
    replace_by_rename(&file, &hello);
    serving(&cluster, "renamed", &version(&hello)).await;
    let next = variant(&hello, "renamed-2");
    replace_by_rename(&file, &next);
    serving(&cluster, "renamed", &version(&next)).await;
    create_configmaps(&cluster, &["after-rename".to_owned()]).await;
    eventually("the renamed version reconciles", || async {
        (stamped_keys(&cluster, "after-rename").await? == "1").then_some(())
    })
    .await;
    // What happened was announced, as `kubewasm dev` prints it.
    let mut lines = Vec::new();
    while let Ok(e) = events.try_recv() {
        lines.push(e.to_string());
    }
    assert!(
        lines[0].starts_with("plugin renamed: started version "),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("-> {} (same manifest)", version(&next)))),
        "{lines:?}"
    );
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_volume_update_that_swaps_the_data_symlink_is_picked_up() {
    let hello = read(&support::example("hello"));
    let next = variant(&hello, "symlinked-2");
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let root = dir.path();
    // The kubelet's layout: name.wasm -> ..data/name.wasm, ..data -> ..<timestamp>.
    let first = root.join("..2026_11_24_05_00_00.000000001");
    std::fs::create_dir(&first).expect("mkdir");
    std::fs::write(first.join("volume.wasm"), &hello).expect("write");
    std::os::unix::fs::symlink(first.file_name().expect("name"), root.join("..data"))
        .expect("..data");
    std::os::unix::fs::symlink("..data/volume.wasm", root.join("volume.wasm")).expect("link");
    let watcher = watch(&cluster, root).await;
    serving(&cluster, "volume", &version(&hello)).await;
    // An update: a new timestamped folder, ..data_tmp pointing at it renamed over ..data, the
    // old folder removed.
    let second = root.join("..2026_11_24_05_01_00.000000002");
    std::fs::create_dir(&second).expect("mkdir");
    std::fs::write(second.join("volume.wasm"), &next).expect("write");
    std::os::unix::fs::symlink(second.file_name().expect("name"), root.join("..data_tmp"))
        .expect("..data_tmp");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap ..data");
    std::fs::remove_dir_all(&first).expect("remove the old folder");
    serving(&cluster, "volume", &version(&next)).await;
    assert_eq!(
        watcher.files().len(),
        1,
        "hidden entries are not plugins: {:?}",
        watcher.files()
    );
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_file_drains_its_reconciles_in_flight_and_releases_its_informers() {
    // spin runs until the deadline interrupts it: a reconcile that is surely in flight.
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("drain.wasm");
    std::fs::copy(support::test_plugin("spin"), &file).expect("copy");
    let watcher = watch(&cluster, dir.path()).await;
    let mut events = watcher.subscribe();
    cluster.manager.wait_synced().await;
    assert_eq!(cluster.manager.informers().running(), 1);
    create_configmaps(&cluster, &["busy".to_owned()]).await;
    eventually("a reconcile is in flight", || async {
        (cluster.reconciles.in_flight("drain") > 0).then_some(())
    })
    .await;
    std::fs::remove_file(&file).expect("remove");
    loop {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Ok(ReloadEvent::Stopped { name })) if name == "drain" => break,
            Ok(Ok(_)) => {}
            other => panic!("expected the plugin to stop, got {other:?}"),
        }
    }
    assert_eq!(
        cluster.reconciles.in_flight("drain"),
        0,
        "the reconcile in flight finished (at the deadline) before the plugin stopped"
    );
    assert!(cluster.manager.plugin("drain").is_none());
    assert_eq!(
        cluster.manager.informers().running(),
        0,
        "its informer was released"
    );
    let runs = cluster.reconciles.finished("drain").len();
    // A new key, and a control plugin that does reconcile it: once the control has, the key's
    // events have gone through the host, and a removed plugin that still got keys would have too.
    std::fs::copy(support::example("hello"), dir.path().join("control.wasm")).expect("copy");
    eventually("the control plugin serves", || async {
        cluster.manager.plugin("control").map(|_| ())
    })
    .await;
    cluster.manager.wait_synced().await;
    create_configmaps(&cluster, &["after-removal".to_owned()]).await;
    eventually("the control plugin reconciled the new key", || async {
        let ran = cluster
            .reconciles
            .finished("control")
            .iter()
            .any(|r| r.started.key.to_string() == "default/after-removal");
        ran.then_some(())
    })
    .await;
    assert_eq!(
        cluster.reconciles.finished("drain").len(),
        runs,
        "no new keys for a removed plugin"
    );
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_change_starts_new_informers_before_serving_and_releases_old_ones() {
    let hello = read(&support::example("hello"));
    let mirror = read(&support::example("configmap-mirror"));
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("shape.wasm");
    std::fs::write(&file, &hello).expect("write");
    create_configmaps(&cluster, &["existing".to_owned()]).await;
    let watcher = watch(&cluster, dir.path()).await;
    let mut events = watcher.subscribe();
    serving(&cluster, "shape", &version(&hello)).await;
    assert_eq!(
        cluster.manager.informers().running(),
        1,
        "hello reads ConfigMaps only"
    );
    // configmap-mirror also watches Namespaces (and indexes ConfigMaps by annotation).
    replace_by_rename(&file, &mirror);
    serving(&cluster, "shape", &version(&mirror)).await;
    assert_eq!(cluster.manager.informers().running(), 2);
    let namespaces = cluster
        .manager
        .informers()
        .stats()
        .into_iter()
        .find(|(k, _)| k.resource.kind == "Namespace")
        .expect("a Namespace informer");
    assert!(
        namespaces.1.lists >= 1,
        "it synced before the new version served"
    );
    let reloaded = loop {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Ok(ReloadEvent::Reloaded { how, .. })) => break how,
            Ok(Ok(_)) => {}
            other => panic!("expected a reload, got {other:?}"),
        }
    };
    assert_eq!(
        reloaded,
        Updated::Rewired { requeued_all: true },
        "what it watches changed, so every primary was queued once"
    );
    replace_by_rename(&file, &hello);
    serving(&cluster, "shape", &version(&hello)).await;
    eventually("the Namespace informer is released", || async {
        (cluster.manager.informers().running() == 1).then_some(())
    })
    .await;
    assert_eq!(
        list_requests(&cluster, "configmaps"),
        1,
        "the shared ConfigMap cache was never re-listed"
    );
    // Still reconciling after going back and forth.
    create_configmaps(&cluster, &["after-reloads".to_owned()]).await;
    eventually("the last version reconciles", || async {
        (stamped_keys(&cluster, "after-reloads").await? == "1").then_some(())
    })
    .await;
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_traps_on_every_call_shows_in_its_own_error_counts() {
    let hello = read(&support::example("hello"));
    let panic = read(&support::test_plugin("panic"));
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("trappy.wasm");
    std::fs::write(&file, &hello).expect("write");
    create_configmaps(&cluster, &["a".to_owned()]).await;
    let watcher = watch(&cluster, dir.path()).await;
    serving(&cluster, "trappy", &version(&hello)).await;
    eventually("hello stamps", || async {
        (stamped_keys(&cluster, "a").await? == "1").then_some(())
    })
    .await;
    replace_by_rename(&file, &panic);
    serving(&cluster, "trappy", &version(&panic)).await;
    set_keys(&cluster, "a", 2).await;
    let stats = eventually("the trapping version's faults are counted", || async {
        let stats = cluster.manager.versions("trappy");
        (stats.len() == 2 && stats[1].faults > 0).then_some(stats)
    })
    .await;
    assert_eq!(stats[0].version, version(&hello));
    assert!(stats[0].ok > 0 && stats[0].faults == 0, "{stats:?}");
    assert_eq!(stats[1].version, version(&panic));
    assert!(stats[1].serving && stats[1].ok == 0, "{stats:?}");
    watcher.stop().await;
    cluster.stop().await;
}

/// `kubewasm dev` as a process: hot reload is on, and it says in plain lines what happened.
#[test]
fn kubewasm_dev_prints_a_line_for_a_file_that_fails_to_load_and_for_a_reload() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let hello = read(&support::example("hello"));
    let dir = temp_dir();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    let file = plugins.join("hello.wasm");
    std::fs::write(&file, &hello).expect("write");
    let mut dev = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("dev")
        .arg("--plugins")
        .arg(&plugins)
        .arg("--kubeconfig-out")
        .arg(dir.path().join("dev.kubeconfig"))
        .arg("--compile-cache")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubewasm-compile-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubewasm dev starts");
    let stdout = dev.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |what: &str, matches: &dyn Fn(&str) -> bool| -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("kubewasm dev never printed {what}; it printed: {seen:#?}"),
            }
        }
    };
    wait_for("its hot reload banner line", &|l| {
        l.contains("hot reload:  on")
    });
    wait_for("Press Ctrl-C", &|l| l.starts_with("Press Ctrl-C"));
    std::fs::write(&file, &hello[..hello.len() / 3]).expect("write a truncated file");
    let failed = wait_for("a load failure", &|l| l.contains("not loaded"));
    assert!(
        failed.contains("hello.wasm")
            && failed.contains(&format!("version {} keeps serving", version(&hello))),
        "{failed}"
    );
    let next = variant(&hello, "dev-2");
    replace_by_rename(&file, &next);
    let reloaded = wait_for("the reload", &|l| l.contains("reloaded"));
    let expected = format!(
        "plugin hello: reloaded {} -> {} (same manifest)",
        version(&hello),
        version(&next)
    );
    // A later run finds the variant in the shared compile cache and says so at the end.
    assert!(reloaded.starts_with(&expected), "{reloaded}");
    let killed = Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(dev.wait().expect("kubewasm dev exits").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_rescan_picks_up_a_change_no_event_announced() {
    let hello = read(&support::example("hello"));
    let next = variant(&hello, "rescanned");
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    // The plugin file is a link to a file in another folder: writing that file makes no event
    // in the watched folder, so only the periodic rescan can notice it.
    let elsewhere = temp_dir();
    let target = elsewhere.path().join("rescan.wasm");
    std::fs::write(&target, &hello).expect("write");
    std::os::unix::fs::symlink(&target, dir.path().join("rescan.wasm")).expect("link");
    let watcher = watch_with(
        &cluster,
        dir.path(),
        WatchOptions {
            debounce: Duration::from_secs(3600),
            rescan: Duration::from_millis(200),
            ..options()
        },
    )
    .await;
    serving(&cluster, "rescan", &version(&hello)).await;
    std::fs::write(&target, &next).expect("write");
    serving(&cluster, "rescan", &version(&next)).await;
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_write_is_acted_on_at_once_and_a_write_under_way_is_not_read() {
    let hello = read(&support::example("hello"));
    let written = variant(&hello, "closed-after-write");
    let renamed = variant(&hello, "renamed-into-place");
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("fast.wasm");
    std::fs::write(&file, &hello).expect("write");
    // Neither the quiet time nor the periodic rescan can fire during the test: only events that
    // say a write completed can make the watcher look.
    let watcher = watch_with(
        &cluster,
        dir.path(),
        WatchOptions {
            debounce: Duration::from_secs(3600),
            rescan: Duration::from_secs(3600),
            ..options()
        },
    )
    .await;
    let mut events = watcher.subscribe();
    serving(&cluster, "fast", &version(&hello)).await;

    // Half the new file, left open for a while: a watcher that read it now would fail to load it.
    {
        use std::io::Write as _;
        let mut open = std::fs::File::create(&file).expect("open for writing");
        let half = written.len() / 2;
        open.write_all(&written[..half]).expect("first half");
        open.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(300)).await;
        open.write_all(&written[half..]).expect("second half");
    } // closed here: the write is complete.
    serving(&cluster, "fast", &version(&written)).await;
    // A rename into place is complete too.
    replace_by_rename(&file, &renamed);
    serving(&cluster, "fast", &version(&renamed)).await;

    assert_never_failed(&watcher, &mut events);
    watcher.stop().await;
    cluster.stop().await;
}

/// No file failed to load: a half-written file read would have (a truncated component does not
/// parse), with a `Failed` event and a count.
fn assert_never_failed(
    watcher: &PluginWatcher,
    events: &mut tokio::sync::broadcast::Receiver<ReloadEvent>,
) {
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        !seen.iter().any(|e| matches!(e, ReloadEvent::Failed { .. })),
        "no half-written file was read: {seen:?}"
    );
    assert_eq!(watcher.failures(), 0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_not_read_when_another_file_completes() {
    use std::io::Write as _;
    let hello = read(&support::example("hello"));
    let (a1, b1) = (variant(&hello, "a-1"), variant(&hello, "b-1"));
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let (a, b) = (dir.path().join("a.wasm"), dir.path().join("b.wasm"));
    std::fs::write(&a, &hello).expect("write a");
    std::fs::write(&b, &hello).expect("write b");
    // Only completed writes make the watcher look during the test.
    let watcher = watch_with(
        &cluster,
        dir.path(),
        WatchOptions {
            debounce: Duration::from_secs(3600),
            rescan: Duration::from_secs(3600),
            ..options()
        },
    )
    .await;
    let mut events = watcher.subscribe();
    serving(&cluster, "a", &version(&hello)).await;
    serving(&cluster, "b", &version(&hello)).await;

    // a.wasm truncated and half written, left open (its events come before b's rename's: one
    // inotify queue, in order).
    let mut open = std::fs::File::create(&a).expect("open a for writing");
    let half = a1.len() / 2;
    open.write_all(&a1[..half]).expect("first half");
    open.flush().expect("flush");
    // b.wasm renamed into place: the folder is scanned (a.wasm first, in name order).
    replace_by_rename(&b, &b1);
    serving(&cluster, "b", &version(&b1)).await;
    assert_eq!(
        cluster.manager.plugin("a").map(|p| p.version().to_owned()),
        Some(version(&hello)),
        "a.wasm, still being written, was left alone"
    );
    assert_never_failed(&watcher, &mut events);

    // Finished and closed: now it is read, whole.
    open.write_all(&a1[half..]).expect("second half");
    drop(open);
    serving(&cluster, "a", &version(&a1)).await;
    assert_never_failed(&watcher, &mut events);
    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_and_left_open_is_read_after_the_quiet_time() {
    use std::io::Write as _;
    let hello = read(&support::example("hello"));
    let next = variant(&hello, "left-open");
    let cluster = TestCluster::start().await;
    let dir = temp_dir();
    let file = dir.path().join("open.wasm");
    std::fs::write(&file, &hello).expect("write");
    let watcher = watch_with(
        &cluster,
        dir.path(),
        WatchOptions {
            debounce: Duration::from_millis(200),
            rescan: Duration::from_secs(3600),
            ..options()
        },
    )
    .await;
    serving(&cluster, "open", &version(&hello)).await;
    // A tool that writes the whole file but does not close it (yet): no event says the write
    // is complete, the quiet time after its last write does.
    let mut open = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open for writing");
    open.write_all(&next).expect("write");
    open.flush().expect("flush");
    serving(&cluster, "open", &version(&next)).await;
    drop(open);
    watcher.stop().await;
    cluster.stop().await;
}
