//! A recording (`kubewasm dev|run --record DIR`, format in `docs/recording.md`) replayed on the
//! fake host: a recorded incident becomes a `cargo test` regression test.
//!
//! Each recorded reconcile runs on a fresh [`FakeHost::for_plugin`] seeded with every object
//! the recorded reconcile read (as it first read it); the request is the recorded one. The
//! writes the reconcile makes (kind, object, call and body) and its outcome are compared with
//! the recorded ones, in order; Events by type, reason and note.
//!
//! It is the fake host, not the recorded answers: a read is answered from the seeded objects,
//! so a read the recording does not hold finds nothing rather than being reported, and a write
//! gets the fake host's answer (a conflict the cluster answered is not replayed). For an exact
//! replay of the built component, use `kubewasm replay FILE --plugin X.wasm`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use kubewasm_core::recording::{self as rec, Answer, Call, Outcome, Recording};
use serde_json::Value;

use super::{Call as FakeCall, FakeHost};
use crate::error::Error;
use crate::object::Kind;
use crate::reconcile::{ObjectRef, Plugin, Reason, Request};

/// Why a recording could not be replayed.
#[derive(Debug)]
pub struct ReplayError(String);

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

/// What a replay found: one entry per recorded reconcile.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The reconciles, in the recording's order.
    pub reconciles: Vec<ReplayedReconcile>,
}

/// One recorded reconcile, replayed.
#[derive(Debug, Clone)]
pub struct ReplayedReconcile {
    /// Its number in the recording.
    pub id: u64,
    /// `namespace/name`.
    pub key: String,
    /// What differs from the recording, a readable line each (with a diff of the JSON under
    /// it); empty when the reconcile did what was recorded.
    pub divergences: Vec<String>,
}

impl Replay {
    /// Whether every reconcile did what was recorded.
    pub fn is_same(&self) -> bool {
        self.reconciles.iter().all(|r| r.divergences.is_empty())
    }

    /// Panics, listing every divergence, unless every reconcile did what was recorded.
    ///
    /// # Panics
    /// When a reconcile diverged.
    #[track_caller]
    pub fn assert_same(&self) {
        if !self.is_same() {
            panic!("the replay diverged from the recording:\n{self}");
        }
    }
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.reconciles {
            if r.divergences.is_empty() {
                writeln!(f, "#{} {}: same", r.id, r.key)?;
            } else {
                writeln!(f, "#{} {}: DIVERGED", r.id, r.key)?;
                for d in &r.divergences {
                    writeln!(f, "  - {}", d.replace('\n', "\n      "))?;
                }
            }
        }
        Ok(())
    }
}

/// Replays the recording in the file at `path` on `P` (see the [module docs](self)).
///
/// ```no_run
/// # use kubewasm_sdk::{Action, Manifest, Plugin, Request, Result};
/// # struct MyPlugin;
/// # impl Plugin for MyPlugin {
/// #     fn manifest() -> Manifest { Manifest::reconcile::<k8s_openapi::api::core::v1::ConfigMap>() }
/// #     fn reconcile(_: Request) -> Result<Action> { Ok(Action::done()) }
/// # }
/// #[test]
/// fn incident_42_stays_fixed() {
///     kubewasm_sdk::testing::replay::<MyPlugin>("tests/recordings/incident-42.jsonl").assert_same();
/// }
/// ```
///
/// # Panics
/// When the file cannot be read or is not a recording this SDK reads (a test's fixture is
/// broken): the message names the file and what is wrong.
#[track_caller]
pub fn replay<P: Plugin>(path: impl AsRef<Path>) -> Replay {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read recording {}: {e}", path.display()));
    replay_recording::<P>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// [`replay`] of a recording's text.
///
/// # Errors
/// [`ReplayError`] when the text is not a recording of a format version this SDK reads.
pub fn replay_recording<P: Plugin>(text: &str) -> Result<Replay, ReplayError> {
    let recording = Recording::parse(text)
        .map_err(|e| ReplayError(format!("not a recording the SDK can replay: {e}")))?;
    let reconciles = recording.reconciles.iter().map(replay_one::<P>).collect();
    Ok(Replay { reconciles })
}

/// The `&'static str` the fake host keys kinds by, for a kind read from a recording (each
/// distinct name is kept once for the test process).
fn intern(s: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(found) = names.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

fn kind(k: &rec::Kind) -> Kind {
    Kind {
        group: intern(&k.group),
        version: intern(&k.version),
        kind: intern(&k.kind),
        namespaced: k.namespaced,
    }
}

fn object_ref(o: &rec::ObjectRef) -> ObjectRef {
    ObjectRef {
        group: o.kind.group.clone(),
        version: o.kind.version.clone(),
        kind: o.kind.kind.clone(),
        namespace: o.namespace.clone().unwrap_or_default(),
        name: o.name.clone(),
    }
}

fn request(r: &rec::Reconcile) -> Request {
    let reason = match &r.reason {
        rec::Reason::Created => Reason::Created,
        rec::Reason::Changed => Reason::Changed,
        rec::Reason::Deleted => Reason::Deleted,
        rec::Reason::OwnedChanged { object } => Reason::OwnedChanged(object_ref(object)),
        rec::Reason::WatchedChanged { object } => Reason::WatchedChanged(object_ref(object)),
        rec::Reason::Requeue => Reason::Requeue,
        rec::Reason::Retry { attempt } => Reason::Retry(*attempt),
        rec::Reason::Resync => Reason::Resync,
    };
    Request {
        namespace: r.namespace.clone().unwrap_or_default(),
        name: r.name.clone(),
        reason,
    }
}

/// Seeds `host` with every object the recorded reconcile read, as first read.
fn seed(host: &FakeHost, calls: &[Call]) {
    let mut seen = HashSet::new();
    let mut put = |k: &rec::Kind, object: &Value| {
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        if name.is_empty()
            || !seen.insert((
                k.group.clone(),
                k.kind.clone(),
                ns.to_owned(),
                name.to_owned(),
            ))
        {
            return;
        }
        host.seed_kind(kind(k), object.clone());
    };
    for call in calls {
        match call {
            Call::Get {
                kind: k,
                result: Answer::Ok(Some(object)),
                ..
            } => put(k, object),
            Call::List {
                kind: k,
                result: Answer::Ok(items),
                ..
            } => items.iter().for_each(|o| put(k, o)),
            _ => {}
        }
    }
}

/// A write as compared: the fake host's call, the kind, `namespace/name` and the body.
type WriteKey = (FakeCall, String, String, Value);

fn recorded_writes(calls: &[Call]) -> Vec<WriteKey> {
    let key = |ns: &Option<String>, name: &str| match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };
    calls
        .iter()
        .filter_map(|c| {
            Some(match c {
                Call::Create {
                    kind,
                    namespace,
                    body,
                    result,
                } => {
                    // The name the object got (generateName), else the one sent.
                    let name = result
                        .ok()
                        .and_then(|o| o["metadata"]["name"].as_str())
                        .or_else(|| body["metadata"]["name"].as_str())
                        .unwrap_or("");
                    (
                        FakeCall::Create,
                        kind.kind.clone(),
                        key(namespace, name),
                        body.clone(),
                    )
                }
                Call::Replace {
                    kind,
                    namespace,
                    name,
                    subresource,
                    body,
                    ..
                } => (
                    match subresource {
                        rec::Subresource::Main => FakeCall::Replace,
                        rec::Subresource::Status => FakeCall::ReplaceStatus,
                        rec::Subresource::Scale => FakeCall::ReplaceScale,
                    },
                    kind.kind.clone(),
                    key(namespace, name),
                    body.clone(),
                ),
                Call::Patch {
                    kind,
                    namespace,
                    name,
                    subresource,
                    patch_type,
                    body,
                    ..
                } => (
                    match (subresource, patch_type) {
                        (rec::Subresource::Status, _) => FakeCall::PatchStatus,
                        (rec::Subresource::Scale, _) => FakeCall::PatchScale,
                        (_, rec::PatchType::Apply) => FakeCall::Apply,
                        _ => FakeCall::Patch,
                    },
                    kind.kind.clone(),
                    key(namespace, name),
                    body.clone(),
                ),
                Call::Delete {
                    kind,
                    namespace,
                    name,
                    ..
                } => (
                    FakeCall::Delete,
                    kind.kind.clone(),
                    key(namespace, name),
                    Value::Null,
                ),
                _ => return None,
            })
        })
        .collect()
}

fn describe(w: &WriteKey) -> String {
    format!("{:?} {} {}", w.0, w.1, w.2)
}

fn error_code(e: &Error) -> &'static str {
    match e {
        Error::NotFound(_) => "not-found",
        Error::AlreadyExists(_) => "already-exists",
        Error::Conflict(_) => "conflict",
        Error::Forbidden(_) => "forbidden",
        Error::Invalid(_) => "invalid",
        Error::NotSynced(_) => "not-synced",
        Error::Unavailable(_) => "unavailable",
        Error::Internal(_) => "internal",
        Error::Decode(_) | Error::Other(_) => "other",
    }
}

fn with_diff(line: String, recorded: &Value, replayed: &Value) -> String {
    let diff = rec::diff_lines(recorded, replayed);
    if diff.is_empty() {
        line
    } else {
        format!("{line}\n{}", diff.join("\n"))
    }
}

fn replay_one<P: Plugin>(r: &rec::Reconcile) -> ReplayedReconcile {
    let host = FakeHost::for_plugin::<P>();
    seed(&host, &r.calls);
    let result = host.reconcile_request::<P>(request(r));
    let mut divergences = Vec::new();

    let expected = recorded_writes(&r.calls);
    let got: Vec<WriteKey> = host
        .writes()
        .into_iter()
        .map(|w| {
            let key = if w.namespace.is_empty() {
                w.name
            } else {
                format!("{}/{}", w.namespace, w.name)
            };
            let body = if w.call == FakeCall::Delete {
                Value::Null
            } else {
                w.body
            };
            (w.call, w.kind.kind.to_owned(), key, body)
        })
        .collect();
    for i in 0..expected.len().max(got.len()) {
        match (expected.get(i), got.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) if (&a.0, &a.1, &a.2) == (&b.0, &b.1, &b.2) => {
                divergences.push(with_diff(
                    format!("write {}: {}: the body differs", i + 1, describe(a)),
                    &a.3,
                    &b.3,
                ))
            }
            (Some(a), Some(b)) => divergences.push(with_diff(
                format!(
                    "write {}: recorded {}, replayed {}",
                    i + 1,
                    describe(a),
                    describe(b)
                ),
                &a.3,
                &b.3,
            )),
            (Some(a), None) => {
                divergences.push(format!("write {} missing: {}", i + 1, describe(a)))
            }
            (None, Some(b)) => divergences.push(format!("extra write {}: {}", i + 1, describe(b))),
            (None, None) => {}
        }
    }

    let mut recorded_events: Vec<(String, String, String)> = Vec::new();
    for c in &r.calls {
        if let Call::Event { event, .. } = c {
            let e = (
                event.event_type.clone(),
                event.reason.clone(),
                event.note.clone(),
            );
            // The fake host aggregates repeats into one Event, as the host does.
            if !recorded_events.contains(&e) {
                recorded_events.push(e);
            }
        }
    }
    let events: Vec<(String, String, String)> = host
        .events()
        .into_iter()
        .map(|e| {
            (
                format!("{:?}", e.event.event_type),
                e.event.reason,
                e.event.note,
            )
        })
        .collect();
    if recorded_events != events {
        divergences.push(format!(
            "events: recorded {recorded_events:?}, replayed {events:?}"
        ));
    }

    let outcome = match &result {
        Ok(action) => match action.requeue_after() {
            None => Outcome::Done,
            Some(after) => Outcome::RequeueAfter {
                ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
        },
        Err(e) => Outcome::Error {
            error: rec::ApiError {
                code: error_code(e).into(),
                message: String::new(),
            },
        },
    };
    let same = match (&r.outcome, &outcome) {
        // Messages differ between the host's and the fake host's answers: compare the case.
        (Outcome::Error { error: a }, Outcome::Error { error: b }) => a.code == b.code,
        (a, b) => a == b,
    };
    if !same {
        divergences.push(format!(
            "outcome: recorded {:?}, replayed {}",
            r.outcome,
            match &result {
                Ok(a) => match a.requeue_after() {
                    None => "done".to_owned(),
                    Some(d) => format!("requeue after {d:?}"),
                },
                Err(e) => format!("error {e}"),
            }
        ));
    }
    ReplayedReconcile {
        id: r.id,
        key: r.key(),
        divergences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Api, Manifest, Patch, Result, Verb};
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;
    use std::time::Duration;

    /// Stamps a ConfigMap with `seen=<VALUE>` once, and says so in an Event.
    fn stamp(req: &Request, value: &str) -> Result<Action> {
        let api = Api::<ConfigMap>::namespaced(&req.namespace);
        let Some(cm) = api.get(&req.name)? else {
            return Ok(Action::done());
        };
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        if labels.contains_key("seen") {
            return Ok(Action::done());
        }
        api.patch(
            &req.name,
            &Patch::merge(json!({"metadata": {"labels": {"seen": value}}}))?,
        )?;
        crate::log::log(crate::log::Level::Info, "stamped");
        crate::event(
            &cm,
            &crate::Event::normal("Stamped", format!("seen={value}")),
        )?;
        Ok(Action::requeue(Duration::from_secs(30)))
    }

    struct Stamp;
    impl Plugin for Stamp {
        fn manifest() -> Manifest {
            Manifest::reconcile::<ConfigMap>().permit::<ConfigMap>(&[Verb::Patch])
        }
        fn reconcile(req: Request) -> Result<Action> {
            stamp(&req, "yes")
        }
    }

    /// The same plugin with one value changed.
    struct StampChanged;
    impl Plugin for StampChanged {
        fn manifest() -> Manifest {
            Stamp::manifest()
        }
        fn reconcile(req: Request) -> Result<Action> {
            stamp(&req, "true")
        }
    }

    /// What `kubewasm dev --record` wrote for one reconcile of `Stamp` (trimmed to what it
    /// read and sent).
    const RECORDING: &str = r#"{"type":"header","format":"kubewasm-recording","version":1,"host_version":"0.1.0","plugin":{"name":"stamp","version":"0123456789ab","wit":"0.2.0"},"secrets":false}
{"type":"reconcile","id":4,"plugin_version":"0123456789ab","namespace":"demo","name":"settings","reason":{"type":"created"},"calls":[{"call":"get","kind":{"group":"","version":"v1","kind":"ConfigMap","plural":"configmaps","namespaced":true},"namespace":"demo","name":"settings","result":{"ok":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"demo","name":"settings","resourceVersion":"7","uid":"u-1"},"data":{"a":"1"}}}},{"call":"patch","kind":{"group":"","version":"v1","kind":"ConfigMap","plural":"configmaps","namespaced":true},"namespace":"demo","name":"settings","patch_type":"merge","body":{"metadata":{"labels":{"seen":"yes"}}},"result":{"ok":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"demo","name":"settings","resourceVersion":"8","uid":"u-1","labels":{"seen":"yes"}}}}},{"call":"event","event":{"regarding":{"kind":{"group":"","version":"v1","kind":"ConfigMap","plural":"configmaps","namespaced":true},"namespace":"demo","name":"settings"},"event_type":"Normal","reason":"Stamped","note":"seen=yes","action":""},"result":{"ok":null}},{"call":"log","level":"info","message":"stamped"}],"outcome":{"type":"requeue-after","ms":30000}}
"#;

    #[test]
    fn a_recording_replays_clean_on_the_plugin_that_made_it() {
        let replay = replay_recording::<Stamp>(RECORDING).unwrap();
        assert_eq!(replay.reconciles.len(), 1);
        assert!(replay.is_same(), "{replay}");
        replay.assert_same();
    }

    #[test]
    fn a_changed_plugin_diverges_with_a_diff_of_the_write() {
        let replay = replay_recording::<StampChanged>(RECORDING).unwrap();
        assert!(!replay.is_same());
        let d = &replay.reconciles[0].divergences;
        assert_eq!(
            d[0],
            "write 1: Patch ConfigMap demo/settings: the body differs\n\
             - .metadata.labels.seen: \"yes\"\n\
             + .metadata.labels.seen: \"true\""
        );
        assert!(d[1].starts_with("events: "), "{d:?}");
        let panic = std::panic::catch_unwind(|| replay.assert_same()).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("#4 demo/settings: DIVERGED"), "{message}");
    }

    #[test]
    fn the_file_form_reads_a_recording_and_names_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("kubewasm-sdk-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("incident.jsonl");
        std::fs::write(&good, RECORDING).unwrap();
        replay::<Stamp>(&good).assert_same();
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{}\n").unwrap();
        let panic = std::panic::catch_unwind(|| replay::<Stamp>(&bad)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("bad.jsonl: not a recording the SDK can replay: line 1"),
            "{message}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
