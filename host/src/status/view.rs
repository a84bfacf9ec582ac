//! [`Snapshot`]: everything the status page shows at one moment, as served by `/api/status`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::{Outcome, Row};
use crate::Manager;
use crate::reload::{LoadHistory, ReloadEvent};

/// Everything the status page shows at one moment (the JSON of `/api/status`).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was taken (RFC 3339).
    pub at: String,
    /// Whether reconciles are recorded (each reconcile then links to its record).
    pub recording: bool,
    /// Every plugin running, or seen in the plugins folder or the reconcile stream, by name.
    pub plugins: Vec<PluginView>,
    /// Every informer running, shared by the plugins.
    pub informers: Vec<InformerView>,
}

/// One plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginView {
    /// Its name (the file stem).
    pub name: String,
    /// Whether it runs (a file that never loaded, or a removed one, does not).
    pub running: bool,
    /// The version new reconciles use, when it runs.
    pub version: Option<String>,
    /// Whether every informer it uses has synced (it reconciles only then).
    pub synced: bool,
    /// Why its last reload failed (the version above keeps serving), if it did.
    pub last_reload_error: Option<String>,
    /// Its queue.
    pub queue: QueueView,
    /// How many of its reconciles ended in the last minute.
    pub reconciles_last_minute: usize,
    /// Every version served since it started, oldest first, with its outcomes.
    pub versions: Vec<VersionView>,
    /// What the watcher did with its file, oldest first.
    pub loads: Vec<LoadView>,
    /// Its last reconciles, newest first.
    pub reconciles: Vec<ReconcileView>,
}

/// A plugin's queue.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueView {
    /// Keys waiting to be handed out now.
    pub depth: usize,
    /// Keys waiting for a delay (requeue-after or backoff).
    pub delayed: usize,
    /// Keys being reconciled.
    pub in_flight: usize,
}

/// One version of a plugin and how it fared since it first served.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    /// The version.
    pub version: String,
    /// Whether new reconciles use it.
    pub serving: bool,
    /// Reconciles that succeeded.
    pub ok: u64,
    /// Reconciles where the plugin returned an error.
    pub errors: u64,
    /// Reconciles that trapped, ran past the deadline, hit the memory cap or failed to start.
    pub faults: u64,
}

/// One thing the watcher did with a plugin's file.
#[derive(Debug, Clone, Serialize)]
pub struct LoadView {
    /// When (RFC 3339).
    pub at: String,
    /// `started`, `reloaded`, `recovered`, `failed` or `stopped`.
    pub what: &'static str,
    /// The version it concerns (the new one for a reload; none for a file that could not be
    /// read, or a stop).
    pub version: Option<String>,
    /// Why it failed, for `failed`.
    pub reason: Option<String>,
    /// The whole line, as `kubewasm dev` prints it.
    pub message: String,
}

/// One reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileView {
    /// Its number in this host (from 1).
    pub id: u64,
    /// The key reconciled (`namespace/name`, or `name`).
    pub key: String,
    /// Why it fired.
    pub reason: String,
    /// The version that ran it.
    pub version: String,
    /// When it started (RFC 3339).
    pub at: String,
    /// How long it took, in milliseconds; none while it runs.
    pub took_ms: Option<f64>,
    /// `running`, `ok`, `error` (the plugin returned one) or `fault` (a trap, the deadline, the
    /// memory cap).
    pub outcome: &'static str,
    /// What the plugin asked for, or why it failed.
    pub result: String,
    /// Where its record is served, when recording is on and it has ended.
    pub record: Option<String>,
}

/// One informer.
#[derive(Debug, Clone, Serialize)]
pub struct InformerView {
    /// What it caches: `apiVersion/Kind`, with its namespace and selector if any.
    pub informer: String,
    /// Objects cached now.
    pub objects: usize,
    /// Whether a complete list has been made (its plugins may reconcile).
    pub synced: bool,
    /// Complete lists so far (the first one and every re-list).
    pub lists: u64,
    /// Watcher errors so far (each retried with backoff).
    pub errors: u64,
    /// The latest watcher error, cleared by the next complete list.
    pub last_error: Option<String>,
}

/// What a snapshot is made from.
pub(super) struct Sources<'a> {
    pub(super) manager: &'a Manager,
    pub(super) loads: Option<&'a LoadHistory>,
    pub(super) recording: bool,
    /// Each plugin's kept reconciles and how many ended in the last minute.
    pub(super) recent: HashMap<String, (Vec<Row>, usize)>,
    pub(super) now: SystemTime,
}

pub(super) fn snapshot(s: &Sources<'_>) -> Snapshot {
    let mut plugins: BTreeMap<String, PluginView> = BTreeMap::new();
    let empty = |name: &str| PluginView {
        name: name.to_owned(),
        running: false,
        version: None,
        synced: false,
        last_reload_error: None,
        queue: QueueView::default(),
        reconciles_last_minute: 0,
        versions: Vec::new(),
        loads: Vec::new(),
        reconciles: Vec::new(),
    };
    for status in s.manager.status() {
        let view = plugins
            .entry(status.name.clone())
            .or_insert_with(|| empty(&status.name));
        view.running = true;
        view.synced = status.synced;
        view.version = Some(status.version);
        view.last_reload_error = status.last_reload_error;
        view.queue = QueueView {
            depth: status.queue.depth,
            delayed: status.queue.delayed,
            in_flight: status.queue.in_flight,
        };
        view.versions = s
            .manager
            .versions(&status.name)
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                serving: v.serving,
                ok: v.ok,
                errors: v.errors,
                faults: v.faults,
            })
            .collect();
    }
    if let Some(loads) = s.loads {
        for (_, file) in loads.files() {
            plugins
                .entry(file.name.clone())
                .or_insert_with(|| empty(&file.name));
        }
        for record in loads.records() {
            let name = plugin_of(&record.event);
            let view = plugins.entry(name.clone()).or_insert_with(|| empty(&name));
            view.loads.push(load_view(&record.event, record.at));
        }
    }
    for (name, (rows, last_minute)) in &s.recent {
        let view = plugins.entry(name.clone()).or_insert_with(|| empty(name));
        view.reconciles_last_minute = *last_minute;
        view.reconciles = rows
            .iter()
            .map(|row| ReconcileView {
                id: row.id,
                key: row.key.clone(),
                reason: row.reason.clone(),
                version: row.version.to_string(),
                at: rfc3339(row.at),
                took_ms: row.took.map(|t| t.as_secs_f64() * 1e3),
                outcome: outcome_name(row.outcome),
                result: row.result.clone(),
                record: (s.recording && row.outcome != Outcome::Running)
                    .then(|| format!("/reconciles/{}/record", row.id)),
            })
            .collect();
    }
    let mut informers: Vec<InformerView> = s
        .manager
        .informers()
        .stats()
        .into_iter()
        .map(|(key, stats)| InformerView {
            informer: key.to_string(),
            objects: stats.objects,
            synced: stats.lists > 0,
            lists: stats.lists,
            errors: stats.errors,
            last_error: stats.last_error,
        })
        .collect();
    informers.sort_by(|a, b| a.informer.cmp(&b.informer));
    Snapshot {
        at: rfc3339(s.now),
        recording: s.recording,
        plugins: plugins.into_values().collect(),
        informers,
    }
}

/// The plugin a reload event is about (a file's is its stem).
fn plugin_of(event: &ReloadEvent) -> String {
    match event {
        ReloadEvent::Started { name, .. }
        | ReloadEvent::Reloaded { name, .. }
        | ReloadEvent::Recovered { name, .. }
        | ReloadEvent::Stopped { name } => name.clone(),
        ReloadEvent::Failed { path, .. } => stem(path),
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

fn load_view(event: &ReloadEvent, at: SystemTime) -> LoadView {
    let (what, version, reason) = match event {
        ReloadEvent::Started { version, .. } => ("started", Some(version.clone()), None),
        ReloadEvent::Reloaded { to, .. } => ("reloaded", Some(to.clone()), None),
        ReloadEvent::Recovered { version, .. } => ("recovered", Some(version.clone()), None),
        ReloadEvent::Failed { reason, .. } => ("failed", None, Some(reason.clone())),
        ReloadEvent::Stopped { .. } => ("stopped", None, None),
    };
    LoadView {
        at: rfc3339(at),
        what,
        version,
        reason,
        message: event.to_string(),
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "running",
        Outcome::Ok => "ok",
        Outcome::Error => "error",
        Outcome::Fault => "fault",
    }
}

/// `at` as RFC 3339 in UTC, to the millisecond.
fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map_or_else(|_| "(time out of range)".to_owned(), |t| format!("{t:.3}"))
}
