//! Keys sharded across replicas (`kubewasm run --shards=RING`): several `kubewasm run` processes
//! against one embedded API server, with the `shard-probe` test plugin, which logs the start and
//! the end of every reconcile (each line stamped by its host). Every key is reconciled by the
//! owner the documented ring gives it, no key is ever reconciled by two replicas at once, and keys
//! move when a replica joins (about a quarter of them, from three to four) or is killed.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use kubewasm::shard::{Ring, key_hash};
use kubewasm_apiserver::{ApiServer, Config};
use kubewasm_controller::ObjectKey;

use crate::support;
use crate::support::process::{Host, plugin_dir, timestamp};
use crate::support::wait::wait;

/// ConfigMaps reconciled, as in the issue: the whole test takes about 9 s on a shared 2-core
/// machine.
const OBJECTS: usize = 3000;
const NAMESPACE: &str = "shards";
const RING: &str = "probe-ring";

/// Short lease settings so that handoffs are quick in tests.
const SHARDING: [&str; 10] = [
    "--shards",
    RING,
    "--leader-election-namespace",
    "default",
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "0.3s",
];

/// One reconcile as a replica logged it.
#[derive(Debug, Clone)]
struct Interval {
    host: String,
    start: jiff::Timestamp,
    /// `None`: still running (or the host was killed mid-reconcile).
    end: Option<jiff::Timestamp>,
}

/// Every reconcile `host` logged, by ConfigMap name; a reconcile left without an end ends at
/// `killed` when the host was killed, else it is still running.
fn intervals(host: &Host, killed: Option<jiff::Timestamp>) -> HashMap<String, Vec<Interval>> {
    let mut out: HashMap<String, Vec<Interval>> = HashMap::new();
    for line in host.logs_where(|m| m.starts_with("shard-probe ")) {
        let message = line["fields"]["message"].as_str().expect("message");
        let mut words = message.split(' ').skip(1);
        let (Some(what), Some(name)) = (words.next(), words.next()) else {
            panic!("a shard-probe line names what and which key: {message}");
        };
        let at = timestamp(&line);
        let list = out.entry(name.to_owned()).or_default();
        match what {
            "start" => {
                // One host never runs one key twice at once (its queue guarantees it).
                assert!(
                    list.last().is_none_or(|i| i.end.is_some()),
                    "{} started {name} again before it ended",
                    host.name
                );
                list.push(Interval {
                    host: host.name.clone(),
                    start: at,
                    end: None,
                });
            }
            "end" => {
                let open = list
                    .last_mut()
                    .filter(|i| i.end.is_none())
                    .unwrap_or_else(|| panic!("{} ended {name} without a start", host.name));
                open.end = Some(at);
            }
            other => panic!("unknown shard-probe line {other:?}"),
        }
    }
    if let Some(killed) = killed {
        for i in out.values_mut().flatten() {
            i.end.get_or_insert(killed);
        }
    }
    out
}

/// Fails when two replicas ever reconciled one key at once.
fn assert_no_overlap(all: &[HashMap<String, Vec<Interval>>]) -> usize {
    let mut by_key: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
    for per_host in all {
        for (key, list) in per_host {
            by_key.entry(key).or_default().extend(list);
        }
    }
    let mut reconciles = 0;
    for (key, mut list) in by_key {
        reconciles += list.len();
        list.sort_by_key(|i| i.start);
        for pair in list.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.host == b.host {
                continue;
            }
            let a_end = a.end.unwrap_or_else(|| {
                panic!("{key}: {} still runs while {} started it", a.host, b.host)
            });
            assert!(
                a_end <= b.start,
                "{key} was reconciled by {} ({} .. {a_end}) and {} (from {}) at once",
                a.host,
                a.start,
                b.host,
                b.start
            );
        }
    }
    reconciles
}

fn key_of(name: &str) -> u64 {
    key_hash(
        &support::configmaps(),
        &ObjectKey::namespaced(NAMESPACE, name),
    )
}

/// The host's identity on the ring.
fn identity(host: &Host) -> String {
    host.wait_log("joined the shard ring")["fields"]["identity"]
        .as_str()
        .expect("identity field")
        .to_owned()
}

/// Waits until `host` has settled on the ring of `ring`'s members.
fn wait_settled(host: &Host, ring: &Ring) {
    let generation = ring.generation();
    host.wait_log_where(&format!("a settled ring {generation}"), |m| {
        m == "every member acknowledged the ring; reconciling this replica's keys"
    });
    wait(&format!("{} to settle on {generation}", host.name), || {
        host.logs("every member acknowledged the ring; reconciling this replica's keys")
            .iter()
            .any(|l| l["fields"]["generation"].as_str() == Some(generation.as_str()))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{}", host.dump()));
}

/// Waits until every name in `names` has a finished reconcile on its owner in `ring` that
/// started at or after `since`.
fn wait_reconciled_by_owners(
    hosts: &[&Host],
    ids: &HashMap<String, String>,
    ring: &Ring,
    names: &[String],
    since: jiff::Timestamp,
) {
    let mut last_missing = Vec::new();
    let done = wait("every key to be reconciled by its owner", || {
        let per_host: HashMap<&str, HashMap<String, Vec<Interval>>> = hosts
            .iter()
            .map(|h| (h.name.as_str(), intervals(h, None)))
            .collect();
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| {
                let owner = ring.owner(key_of(name)).expect("a member");
                let host = &ids[owner];
                !per_host[host.as_str()]
                    .get(*name)
                    .is_some_and(|l| l.iter().any(|i| i.start >= since && i.end.is_some()))
            })
            .collect();
        last_missing = missing
            .iter()
            .take(5)
            .map(|n| {
                format!(
                    "{n} (owner {})",
                    ids[ring.owner(key_of(n)).expect("a member")]
                )
            })
            .collect();
        missing.is_empty().then_some(())
    });
    if done.is_none() {
        let dumps: String = hosts.iter().map(|h| h.dump()).collect();
        panic!(
            "not every key was reconciled by its owner on {:?} since {since}, e.g. {last_missing:?}\n{dumps}",
            ring.members()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_keys_hand_them_over_and_never_overlap() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::test_plugin("shard-probe")]);
    let client = support::cluster::client_for(&server);
    let mut namespace = k8s_openapi::api::core::v1::Namespace::default();
    namespace.metadata.name = Some(NAMESPACE.to_owned());
    Api::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the namespace");
    let cms: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("cm-{i:04}")).collect();
    futures::stream::iter(names.iter().cloned())
        .for_each_concurrent(16, |name| {
            let cms = cms.clone();
            async move {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(name);
                cms.create(&PostParams::default(), &cm)
                    .await
                    .expect("create a ConfigMap");
            }
        })
        .await;

    // Three replicas: every key is reconciled by its owner on the three-member ring.
    let started = jiff::Timestamp::now();
    let mut hosts: Vec<Host> = ["a", "b", "c"]
        .into_iter()
        .map(|n| Host::start(n, &plugins, &kubeconfig, &SHARDING))
        .collect();
    let mut ids: HashMap<String, String> = hosts
        .iter()
        .map(|h| (identity(h), h.name.clone()))
        .collect();
    let three = Ring::new(ids.keys().cloned());
    for h in &hosts {
        wait_settled(h, &three);
    }
    let refs: Vec<&Host> = hosts.iter().collect();
    wait_reconciled_by_owners(&refs, &ids, &three, &names, started);

    // A fourth replica joins: about a quarter of the keys move, all of them to it, and it
    // reconciles every one of them.
    let joined = jiff::Timestamp::now();
    hosts.push(Host::start("d", &plugins, &kubeconfig, &SHARDING));
    let d = identity(&hosts[3]);
    ids.insert(d.clone(), "d".to_owned());
    let four = Ring::new(ids.keys().cloned());
    let moved: Vec<&String> = names
        .iter()
        .filter(|n| three.owner(key_of(n)) != four.owner(key_of(n)))
        .collect();
    assert!(
        moved
            .iter()
            .all(|n| four.owner(key_of(n)) == Some(d.as_str())),
        "keys move only to the new member"
    );
    let share = moved.len() as f64 / OBJECTS as f64;
    assert!(
        (0.15..=0.35).contains(&share),
        "{} of {OBJECTS} keys moved to the fourth replica",
        moved.len()
    );
    for h in &hosts {
        wait_settled(h, &four);
    }
    let refs: Vec<&Host> = hosts.iter().collect();
    let moved_names: Vec<String> = moved.iter().map(|n| (*n).clone()).collect();
    wait_reconciled_by_owners(&refs, &ids, &four, &moved_names, joined);

    // SIGKILL one replica: once its Lease expires, the others take its keys over (their last
    // events were parked there) without any new event.
    let victim = hosts.remove(1);
    let victim_id = ids
        .iter()
        .find(|(_, n)| **n == victim.name)
        .map(|(id, _)| id.clone())
        .expect("the victim's identity");
    victim.signal("KILL");
    let killed = jiff::Timestamp::now();
    let mut victim = victim;
    victim.wait_exit();
    ids.remove(&victim_id);
    let survivors = Ring::new(ids.keys().cloned());
    for h in &hosts {
        wait_settled(h, &survivors);
    }
    let taken_over: Vec<String> = names
        .iter()
        .filter(|n| four.owner(key_of(n)) == Some(victim_id.as_str()))
        .cloned()
        .collect();
    assert!(!taken_over.is_empty(), "the killed replica owned keys");
    let refs: Vec<&Host> = hosts.iter().collect();
    wait_reconciled_by_owners(&refs, &ids, &survivors, &taken_over, killed);

    // The metrics say the ring has three members again, that handoffs happened, and the keys
    // the survivors gained and queued.
    for h in &hosts {
        let m = h.metrics();
        assert_eq!(
            m.get("kubewasm_shard_ring_members", &[("ring", RING)]),
            Some(3.0),
            "{}",
            h.name
        );
        let settled = m
            .get(
                "kubewasm_shard_generations_settled_total",
                &[("ring", RING)],
            )
            .unwrap_or(0.0);
        assert!(settled >= 2.0, "{} settled {settled} generations", h.name);
    }
    // The survivors had parked the killed replica's keys (their initial lists queued every key);
    // the handoff queued them again.
    let gained: f64 = hosts
        .iter()
        .map(|h| h.metrics().sum("kubewasm_shard_keys_gained_total", &[]))
        .sum();
    assert!(
        gained >= taken_over.len() as f64,
        "the survivors counted {gained} keys gained, {} taken over",
        taken_over.len()
    );

    // Nothing lost, no overlap: every key reconciled, never by two replicas at once.
    let mut all: Vec<HashMap<String, Vec<Interval>>> =
        hosts.iter().map(|h| intervals(h, None)).collect();
    all.push(intervals(&victim, Some(killed)));
    let reconciled: HashSet<&String> = all.iter().flat_map(|m| m.keys()).collect();
    assert_eq!(reconciled.len(), OBJECTS, "every key was reconciled");
    let reconciles = assert_no_overlap(&all);
    eprintln!(
        "{OBJECTS} keys, {reconciles} reconciles over 4 replicas; {} keys moved to the fourth, {} taken over from the killed one",
        moved.len(),
        taken_over.len()
    );
}

/// The overlap check itself fails on overlapping intervals of two replicas.
#[test]
fn overlapping_reconciles_of_two_replicas_fail_the_check() {
    let t = |s: &str| -> jiff::Timestamp { s.parse().expect("timestamp") };
    let interval = |host: &str, start: &str, end: &str| Interval {
        host: host.into(),
        start: t(start),
        end: Some(t(end)),
    };
    let a = HashMap::from([(
        "cm-1".to_owned(),
        vec![interval(
            "a",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:02Z",
        )],
    )]);
    let b_after = HashMap::from([(
        "cm-1".to_owned(),
        vec![interval(
            "b",
            "2026-01-01T00:00:02Z",
            "2026-01-01T00:00:03Z",
        )],
    )]);
    assert_eq!(assert_no_overlap(&[a.clone(), b_after]), 2);
    let b_during = HashMap::from([(
        "cm-1".to_owned(),
        vec![interval(
            "b",
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:03Z",
        )],
    )]);
    let overlap = std::panic::catch_unwind(|| assert_no_overlap(&[a, b_during]));
    assert!(overlap.is_err(), "overlapping intervals fail the check");
}

/// `deploy/sharded/` (a kustomize Component over `deploy/`, used from a kustomization beside
/// it) renders three replicas running `--shards` without leader election, flags the host
/// accepts, and a Role that lets each replica list the ring's Leases and delete its own.
#[test]
fn the_sharded_deploy_component_renders_flags_the_host_accepts() {
    use serde::Deserialize as _;

    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&deploy, dir.path().join("kubewasm")).expect("symlink deploy/");
    let app = dir.path().join("app");
    std::fs::create_dir(&app).expect("app dir");
    std::fs::write(
        app.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources: [../kubewasm]\ncomponents: [../kubewasm/sharded]\n",
    )
    .expect("write the kustomization");
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&app)
        .output()
        .expect("kubectl must be installed for this test (it renders deploy/ with kustomize)");
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("a YAML document"))
        .collect();
    let of_kind = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(kind))
            .cloned()
    };
    let deployment: k8s_openapi::api::apps::v1::Deployment =
        serde_yaml::from_value(of_kind("Deployment").expect("a Deployment")).expect("Deployment");
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let args = spec.template.spec.expect("pod spec").containers[0]
        .args
        .clone()
        .expect("args");
    assert!(args.iter().any(|a| a == "--shards=kubewasm"), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--leader-elect")),
        "sharding replaces leader election: {args:?}"
    );
    // The host accepts the arguments (it then fails only for want of a cluster).
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(&args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .expect("kubewasm runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("kubeconfig"),
        "only the kubeconfig is missing: {stderr}"
    );
    let role: k8s_openapi::api::rbac::v1::Role =
        serde_yaml::from_value(of_kind("Role").expect("a Role")).expect("Role");
    let rules = role.rules.expect("rules");
    let leases = rules
        .iter()
        .find(|r| {
            r.resources
                .as_ref()
                .is_some_and(|r| r.iter().any(|r| r == "leases"))
        })
        .expect("a rule on Leases");
    for verb in ["get", "list", "watch", "create", "update", "delete"] {
        assert!(leases.verbs.iter().any(|v| v == verb), "{verb} on Leases");
    }
    // `--shards` beside an explicit `--leader-elect` is refused.
    let both = std::process::Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args([
            "run",
            "--plugins",
            "/p",
            "--shards=x",
            "--leader-elect=true",
        ])
        .output()
        .expect("kubewasm runs");
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}
