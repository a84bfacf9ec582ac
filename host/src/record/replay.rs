//! Replay: re-runs each recorded reconcile on a plugin build, serving its reads from the
//! recording, and reports every divergence — a read that was not recorded, a write or an Event
//! that differs (with a diff of the JSON), a missing or extra one, a different outcome.
//!
//! Each reconcile runs on a [`ReplayBackend`]: a read is answered with what the recorded
//! reconcile got for the same read (the same kind and name, or the same selection); a read the
//! recording does not hold is a divergence, answered as not found (`get`) or `not-synced`
//! (list-shaped reads) so the reconcile goes on. A write is answered with what the recorded
//! write to the same object got, and a write with no such record is a divergence answered
//! `unavailable`. The new build's calls are recorded as the recorder records them (Secrets
//! redacted as in the recording), then compared with the recorded ones in order. Log lines are
//! kept but not compared.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use kubewasm_core::recording::{self as rec, Answer, Call, Outcome, Recording, diff_lines};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use super::RecordingBackend;
use super::convert;
use crate::runtime::{
    ApiError, Backend, DeleteOptions, EventRecord, Kind, ListQuery, ObjectKey, PatchRequest,
    Plugin, Subresource,
};

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plugin the recording was made with.
    pub recorded: rec::PluginInfo,
    /// The build replayed (its name and version).
    pub replayed: rec::PluginInfo,
    /// One entry per reconcile, in the recording's order.
    pub reconciles: Vec<ReconcileReport>,
    /// The file's last line was cut short (the host stopped while writing it) and left out.
    pub truncated: bool,
}

impl Report {
    /// How many reconciles diverged.
    pub fn diverged(&self) -> usize {
        self.reconciles
            .iter()
            .filter(|r| !r.divergences.is_empty())
            .count()
    }

    /// The report as text: a line per reconcile, each divergence under it with its diff, and a
    /// summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "replaying {} reconcile(s) of {} {} on {} {}",
            self.reconciles.len(),
            self.recorded.name,
            self.recorded.version,
            self.replayed.name,
            self.replayed.version
        );
        for r in &self.reconciles {
            let verdict = if r.divergences.is_empty() {
                "same".to_owned()
            } else {
                format!("DIVERGED ({})", r.divergences.len())
            };
            let _ = writeln!(out, "#{} {} ({}): {verdict}", r.id, r.key, r.reason);
            for d in &r.divergences {
                let _ = writeln!(out, "  - {}", d.summary);
                for line in &d.diff {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        if self.truncated {
            let _ = writeln!(
                out,
                "note: the last line of the file was cut short (the host stopped while writing it) and was not replayed"
            );
        }
        let diverged = self.diverged();
        let _ = writeln!(
            out,
            "{} reconcile(s) replayed: {} the same, {diverged} diverged",
            self.reconciles.len(),
            self.reconciles.len() - diverged
        );
        out
    }
}

/// One reconcile replayed.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    /// Its number in the recording.
    pub id: u64,
    /// `namespace/name`.
    pub key: String,
    /// Why it fired, as logs say it.
    pub reason: String,
    /// What differs; empty when the replay did what the recording says.
    pub divergences: Vec<Divergence>,
}

/// One difference between the recording and the replay.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    /// What kind of difference.
    pub kind: DivergenceKind,
    /// One line saying what differs.
    pub summary: String,
    /// The differing JSON, a line per field: `- path: recorded`, `+ path: replayed`.
    pub diff: Vec<String>,
}

/// The kinds of [`Divergence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DivergenceKind {
    /// The build read something the recording does not hold.
    UnrecordedRead,
    /// A write at the same position differs (target or body).
    Write,
    /// A recorded write the build did not make.
    MissingWrite,
    /// A write the build made that the recording does not have.
    ExtraWrite,
    /// An Event differs, is missing or is extra.
    Event,
    /// The reconcile ended differently.
    Outcome,
}

/// Replays every reconcile of `recording` on `plugin`, one after another.
pub async fn replay(plugin: &Plugin, recording: &Recording) -> Report {
    let mut reconciles = Vec::new();
    for recorded in &recording.reconciles {
        reconciles.push(replay_one(plugin, recording.header.secrets, recorded).await);
    }
    Report {
        recorded: recording.header.plugin.clone(),
        replayed: rec::PluginInfo {
            name: plugin.name().to_owned(),
            version: plugin.version().to_owned(),
            wit: plugin.wit_version().as_str().to_owned(),
        },
        reconciles,
        truncated: recording.truncated,
    }
}

async fn replay_one(plugin: &Plugin, secrets: bool, recorded: &rec::Reconcile) -> ReconcileReport {
    let replay = Arc::new(ReplayBackend::new(&recorded.calls));
    let seen = Arc::new(RecordingBackend::new(replay.clone(), secrets));
    let result = plugin.reconcile(seen.clone(), recorded.request()).await;
    let calls = seen.take_calls();
    let mut divergences: Vec<Divergence> = replay
        .unrecorded
        .lock()
        .iter()
        .map(|what| Divergence {
            kind: DivergenceKind::UnrecordedRead,
            summary: format!("read not in the recording: {what}"),
            diff: Vec::new(),
        })
        .collect();
    compare_writes(&recorded.calls, &calls, &mut divergences);
    compare_events(&recorded.calls, &calls, &mut divergences);
    let outcome = convert::outcome(&result);
    if !same_outcome(&recorded.outcome, &outcome) {
        divergences.push(Divergence {
            kind: DivergenceKind::Outcome,
            summary: format!(
                "outcome: recorded {}, replayed {}",
                describe_outcome(&recorded.outcome),
                describe_outcome(&outcome)
            ),
            diff: Vec::new(),
        });
    }
    ReconcileReport {
        id: recorded.id,
        key: recorded.key(),
        reason: kubewasm_core::Reason::from(&recorded.reason).to_string(),
        divergences,
    }
}

/// Failures other than the plugin's own error compare by kind only (a trap's message names
/// code addresses that move between builds).
fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Failed { failure: x, .. }, Outcome::Failed { failure: y, .. }) => x == y,
        _ => a == b,
    }
}

fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::RequeueAfter { ms } => format!("requeue after {ms}ms"),
        Outcome::Error { error } => format!("error {}: {}", error.code, error.message),
        Outcome::Failed { failure, message } => format!("{failure}: {message}"),
    }
}

fn compare_writes(recorded: &[Call], replayed: &[Call], out: &mut Vec<Divergence>) {
    let a: Vec<&Call> = recorded.iter().filter(|c| c.is_write()).collect();
    let b: Vec<&Call> = replayed.iter().filter(|c| c.is_write()).collect();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => {
                let (tx, ty) = (describe(x), describe(y));
                let (bx, by) = (write_body(x), write_body(y));
                if tx != ty || bx != by {
                    let summary = if tx == ty {
                        format!("write {}: {tx}: the body differs", i + 1)
                    } else {
                        format!("write {}: recorded {tx}, replayed {ty}", i + 1)
                    };
                    out.push(Divergence {
                        kind: DivergenceKind::Write,
                        summary,
                        diff: diff_lines(&bx, &by),
                    });
                }
            }
            (Some(x), None) => out.push(Divergence {
                kind: DivergenceKind::MissingWrite,
                summary: format!("write {} missing: {}", i + 1, describe(x)),
                diff: diff_lines(&write_body(x), &Value::Null),
            }),
            (None, Some(y)) => out.push(Divergence {
                kind: DivergenceKind::ExtraWrite,
                summary: format!("extra write {}: {}", i + 1, describe(y)),
                diff: diff_lines(&Value::Null, &write_body(y)),
            }),
            (None, None) => {}
        }
    }
}

fn compare_events(recorded: &[Call], replayed: &[Call], out: &mut Vec<Divergence>) {
    let events = |calls: &[Call]| -> Vec<Value> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Event { event, .. } => serde_json::to_value(event).ok(),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (events(recorded), events(replayed));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x == y {
            continue;
        }
        let name = |e: Option<&Value>| {
            e.map_or_else(
                || "none".to_owned(),
                |e| {
                    format!(
                        "{} {}",
                        e["event_type"].as_str().unwrap_or(""),
                        e["reason"].as_str().unwrap_or("")
                    )
                },
            )
        };
        out.push(Divergence {
            kind: DivergenceKind::Event,
            summary: format!(
                "event {}: recorded {}, replayed {}",
                i + 1,
                name(x),
                name(y)
            ),
            diff: diff_lines(x.unwrap_or(&Value::Null), y.unwrap_or(&Value::Null)),
        });
    }
}

fn kind_name(k: &rec::Kind) -> &str {
    &k.kind
}

fn object_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

fn sub_suffix(s: rec::Subresource) -> &'static str {
    match s {
        rec::Subresource::Main => "",
        rec::Subresource::Status => " (status)",
        rec::Subresource::Scale => " (scale)",
    }
}

/// A call's verb and target, without its body: `patch (merge) StatefulSet demo/cache`.
fn describe(c: &Call) -> String {
    match c {
        Call::Get {
            kind,
            namespace,
            name,
            ..
        } => format!(
            "get {} {}",
            kind_name(kind),
            object_name(namespace.as_deref(), name)
        ),
        Call::List { kind, query, .. } => {
            format!("list {} {}", kind_name(kind), describe_query(query))
        }
        Call::Keys { kind, query, .. } => {
            format!("keys {} {}", kind_name(kind), describe_query(query))
        }
        Call::Count { kind, query, .. } => {
            format!("count {} {}", kind_name(kind), describe_query(query))
        }
        Call::Create {
            kind,
            namespace,
            body,
            ..
        } => {
            let name = body["metadata"]["name"]
                .as_str()
                .or_else(|| body["metadata"]["generateName"].as_str())
                .unwrap_or("?");
            format!(
                "create {} {}",
                kind_name(kind),
                object_name(namespace.as_deref(), name)
            )
        }
        Call::Replace {
            kind,
            namespace,
            name,
            subresource,
            ..
        } => format!(
            "replace {} {}{}",
            kind_name(kind),
            object_name(namespace.as_deref(), name),
            sub_suffix(*subresource)
        ),
        Call::Patch {
            kind,
            namespace,
            name,
            subresource,
            patch_type,
            ..
        } => {
            let t = serde_json::to_value(patch_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "patch ({t}) {} {}{}",
                kind_name(kind),
                object_name(namespace.as_deref(), name),
                sub_suffix(*subresource)
            )
        }
        Call::Delete {
            kind,
            namespace,
            name,
            ..
        } => format!(
            "delete {} {}",
            kind_name(kind),
            object_name(namespace.as_deref(), name)
        ),
        Call::Event { event, .. } => format!("event {} {}", event.event_type, event.reason),
        Call::Log { level, .. } => format!("log {level}"),
    }
}

fn describe_query(q: &rec::Query) -> String {
    let mut text = match &q.namespace {
        Some(ns) => format!("in {ns}"),
        None => "in every namespace".to_owned(),
    };
    if let Some(l) = &q.labels {
        let _ = write!(text, " labels {l}");
    }
    if let Some(f) = &q.fields {
        let _ = write!(text, " fields {f}");
    }
    if let (Some(i), Some(v)) = (&q.index, &q.value) {
        let _ = write!(text, " index {i}={v}");
    }
    text
}

/// What a write sent (a delete: its options; an apply: also its field manager and force).
fn write_body(c: &Call) -> Value {
    match c {
        Call::Create { body, .. } | Call::Replace { body, .. } => body.clone(),
        Call::Patch {
            body,
            field_manager: Some(fm),
            force,
            ..
        } => serde_json::json!({"fieldManager": fm, "force": force, "body": body}),
        Call::Patch { body, .. } => body.clone(),
        Call::Delete { options, .. } => serde_json::to_value(options).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// A backend answering from one recorded reconcile (see the module docs).
pub struct ReplayBackend {
    recorded: Vec<Call>,
    /// Which recorded calls answered a call already.
    used: Mutex<Vec<bool>>,
    /// Reads the recording does not hold, described.
    unrecorded: Mutex<Vec<String>>,
}

/// What identifies a read or a write, to find its recorded answer.
fn target(c: &Call) -> Option<String> {
    let kind = |k: &rec::Kind| format!("{}/{}", k.group, k.kind);
    Some(match c {
        Call::Get {
            kind: k,
            namespace,
            name,
            ..
        } => format!("get {} {namespace:?} {name}", kind(k)),
        Call::List { kind: k, query, .. } => format!("list {} {query:?}", kind(k)),
        Call::Keys { kind: k, query, .. } => format!("keys {} {query:?}", kind(k)),
        Call::Count { kind: k, query, .. } => format!("count {} {query:?}", kind(k)),
        Call::Create {
            kind: k,
            namespace,
            body,
            ..
        } => format!(
            "create {} {namespace:?} {}",
            kind(k),
            body["metadata"]["name"].as_str().unwrap_or("")
        ),
        Call::Replace {
            kind: k,
            namespace,
            name,
            subresource,
            ..
        }
        | Call::Patch {
            kind: k,
            namespace,
            name,
            subresource,
            ..
        } => format!(
            "{} {} {namespace:?} {name} {subresource:?}",
            if matches!(c, Call::Replace { .. }) {
                "replace"
            } else {
                "patch"
            },
            kind(k)
        ),
        Call::Delete {
            kind: k,
            namespace,
            name,
            ..
        } => format!("delete {} {namespace:?} {name}", kind(k)),
        Call::Event { .. } | Call::Log { .. } => return None,
    })
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

fn answer<T, U>(a: &Answer<T>, f: impl FnOnce(&T) -> U) -> Result<U, ApiError> {
    match a {
        Answer::Ok(v) => Ok(f(v)),
        Answer::Error(e) => Err(convert::api_error(e)),
    }
}

impl ReplayBackend {
    /// Answers from `recorded`, one reconcile's calls.
    pub fn new(recorded: &[Call]) -> Self {
        Self {
            recorded: recorded.to_vec(),
            used: Mutex::new(vec![false; recorded.len()]),
            unrecorded: Mutex::new(Vec::new()),
        }
    }

    /// The recorded call for `probe`'s target: the first one not used yet, else the last one
    /// (a build may read the same object more often than the recorded one did).
    fn find(&self, probe: &Call) -> Option<&Call> {
        let want = target(probe)?;
        let mut used = self.used.lock();
        let mut last = None;
        for (i, c) in self.recorded.iter().enumerate() {
            if target(c).as_deref() == Some(want.as_str()) {
                if !used[i] {
                    used[i] = true;
                    return Some(c);
                }
                last = Some(c);
            }
        }
        // Writes answer once each; reads may be answered again.
        if probe.is_read() { last } else { None }
    }

    fn unrecorded(&self, probe: &Call) {
        self.unrecorded.lock().push(describe(probe));
    }

    fn not_recorded_write(probe: &Call) -> ApiError {
        ApiError::Unavailable(format!(
            "replay: the recording holds no answer for {}",
            describe(probe)
        ))
    }

    fn write_answer(&self, probe: &Call) -> Result<Bytes, ApiError> {
        match self.find(probe) {
            Some(
                Call::Create { result, .. }
                | Call::Replace { result, .. }
                | Call::Patch { result, .. },
            ) => answer(result, bytes),
            _ => Err(Self::not_recorded_write(probe)),
        }
    }
}

/// A recording kind for a probe (the answer is looked up by group and kind).
fn probe_kind(kind: &Kind) -> rec::Kind {
    kind.into()
}

impl Backend for ReplayBackend {
    fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        let probe = Call::Get {
            kind: probe_kind(kind),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            result: Answer::Ok(None),
        };
        match self.find(&probe) {
            Some(Call::Get { result, .. }) => answer(result, |o| o.as_ref().map(bytes)),
            _ => {
                self.unrecorded(&probe);
                Ok(None)
            }
        }
    }

    fn list(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<Bytes>, ApiError> {
        let probe = Call::List {
            kind: probe_kind(kind),
            query: convert::query(query),
            result: Answer::Ok(Vec::new()),
        };
        match self.find(&probe) {
            Some(Call::List { result, .. }) => {
                answer(result, |items| items.iter().map(bytes).collect())
            }
            _ => {
                self.unrecorded(&probe);
                Err(ApiError::NotSynced(format!(
                    "replay: the recording holds no answer for {}",
                    describe(&probe)
                )))
            }
        }
    }

    fn keys(&self, kind: &Kind, query: &ListQuery) -> Result<Vec<ObjectKey>, ApiError> {
        let probe = Call::Keys {
            kind: probe_kind(kind),
            query: convert::query(query),
            result: Answer::Ok(Vec::new()),
        };
        match self.find(&probe) {
            Some(Call::Keys { result, .. }) => answer(result, |keys| {
                keys.iter()
                    .map(|k| ObjectKey {
                        namespace: k.namespace.clone(),
                        name: k.name.clone(),
                    })
                    .collect()
            }),
            _ => {
                self.unrecorded(&probe);
                Err(ApiError::NotSynced(format!(
                    "replay: the recording holds no answer for {}",
                    describe(&probe)
                )))
            }
        }
    }

    fn count(&self, kind: &Kind, query: &ListQuery) -> Result<u64, ApiError> {
        let probe = Call::Count {
            kind: probe_kind(kind),
            query: convert::query(query),
            result: Answer::Ok(0),
        };
        match self.find(&probe) {
            Some(Call::Count { result, .. }) => answer(result, |n| *n),
            _ => {
                self.unrecorded(&probe);
                Err(ApiError::NotSynced(format!(
                    "replay: the recording holds no answer for {}",
                    describe(&probe)
                )))
            }
        }
    }

    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        let probe = Call::Create {
            kind: probe_kind(kind),
            namespace: namespace.map(str::to_owned),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            result: Answer::Ok(Value::Null),
        };
        let result = self.write_answer(&probe);
        async move { result }.boxed()
    }

    fn replace<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        _body: Bytes,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        let probe = Call::Replace {
            kind: probe_kind(kind),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            subresource: convert::subresource(subresource),
            body: Value::Null,
            result: Answer::Ok(Value::Null),
        };
        let result = self.write_answer(&probe);
        async move { result }.boxed()
    }

    fn patch<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: PatchRequest,
        subresource: Subresource,
    ) -> BoxFuture<'a, Result<Bytes, ApiError>> {
        let (patch_type, _, _) = convert::patch_kind(&patch);
        let probe = Call::Patch {
            kind: probe_kind(kind),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            subresource: convert::subresource(subresource),
            patch_type,
            field_manager: None,
            force: false,
            body: Value::Null,
            result: Answer::Ok(Value::Null),
        };
        let result = self.write_answer(&probe);
        async move { result }.boxed()
    }

    fn delete<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        _options: DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        let probe = Call::Delete {
            kind: probe_kind(kind),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            options: rec::DeleteOptions::default(),
            result: Answer::Ok(()),
        };
        let result = match self.find(&probe) {
            Some(Call::Delete { result, .. }) => answer(result, |()| ()),
            _ => Err(Self::not_recorded_write(&probe)),
        };
        async move { result }.boxed()
    }

    fn record_event(&self, _event: EventRecord) -> BoxFuture<'_, Result<(), ApiError>> {
        async { Ok(()) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm_kind() -> rec::Kind {
        rec::Kind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        }
    }

    #[test]
    fn reads_are_answered_from_the_recording_and_others_are_divergences() {
        let recorded = vec![Call::Get {
            kind: cm_kind(),
            namespace: Some("demo".into()),
            name: "a".into(),
            result: Answer::Ok(Some(json!({"metadata": {"name": "a"}}))),
        }];
        let backend = ReplayBackend::new(&recorded);
        let kind = Kind::from(&cm_kind());
        for _ in 0..2 {
            let got = backend.get(&kind, Some("demo"), "a").unwrap().unwrap();
            assert_eq!(&got[..], br#"{"metadata":{"name":"a"}}"#);
        }
        assert_eq!(backend.get(&kind, Some("demo"), "b").unwrap(), None);
        assert!(matches!(
            backend.list(&kind, &ListQuery::default()),
            Err(ApiError::NotSynced(_))
        ));
        assert_eq!(
            *backend.unrecorded.lock(),
            ["get ConfigMap demo/b", "list ConfigMap in every namespace"]
        );
    }
}
