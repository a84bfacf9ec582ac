//! Recording and replaying reconciles: [`Recorder`] is a [`ReconcileLayer`] that writes, per
//! reconcile, the request, every host call with its arguments and its answer, and the outcome
//! (the format is `kubewasm_core::recording`, documented in `docs/recording.md`);
//! [`replay`] re-runs recorded reconciles on a plugin build and reports where it diverges.
//!
//! - `backend.rs`: [`RecordingBackend`], the backend a recorded reconcile runs on.
//! - `writer.rs`: the thread that writes records to files, rotated and bounded by size.
//! - `replay.rs`: the replay engine, its backend serving reads from a recording, and the diff.

mod backend;
mod convert;
pub mod replay;
mod writer;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use kubewasm_core::recording::{Line, PluginInfo, Reconcile};
use parking_lot::Mutex;

pub use backend::RecordingBackend;

use crate::layer::{Layered, ReconcileLayer, ReconcileScope, RecordLookup};
use crate::runtime::Backend;
use writer::{Message, Writer};

/// The default of `--record-max-bytes`: what the recording folder may hold.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// How many recent records [`RecordLookup::record`] can still answer.
const RECENT: usize = 512;

/// What to record, and where.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// The folder the files go to (created if missing).
    pub dir: PathBuf,
    /// Only these plugins (by name); empty = every plugin.
    pub plugins: Vec<String>,
    /// What the folder may hold; past it the oldest files are deleted.
    pub max_bytes: u64,
    /// Keep Secrets' `data` and `stringData` (redacted by default).
    pub secrets: bool,
}

impl RecordConfig {
    /// Every plugin into `dir`, with the default cap, secrets redacted.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            plugins: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            secrets: false,
        }
    }
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
#[error("failed to start recording into {dir}: {source}")]
pub struct RecordError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Records every reconcile of the chosen plugins (see the module docs). Give it to the manager
/// in [`ManagerConfig::layers`](crate::ManagerConfig::layers). Writing happens on a thread of
/// its own: a reconcile only hands its record over, and a record that finds the writer too far
/// behind is dropped, counted ([`Recorder::dropped`]) and logged.
pub struct Recorder {
    shared: Arc<Shared>,
}

/// What the recorder and every reconcile's end share.
struct Shared {
    config: RecordConfig,
    writer: Writer,
    recent: Mutex<VecDeque<(u64, Arc<str>)>>,
}

impl Recorder {
    /// Starts the writer on `config.dir`.
    ///
    /// # Errors
    /// [`RecordError`] when the folder cannot be created or read.
    pub fn start(config: RecordConfig) -> Result<Arc<Self>, RecordError> {
        let writer =
            Writer::start(&config.dir, config.max_bytes).map_err(|source| RecordError {
                dir: config.dir.clone(),
                source,
            })?;
        Ok(Arc::new(Self {
            shared: Arc::new(Shared {
                config,
                writer,
                recent: Mutex::new(VecDeque::new()),
            }),
        }))
    }

    /// How many records were dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.shared.writer.dropped()
    }

    /// Waits until every record handed over so far is written to disk.
    pub fn flush(&self) {
        self.shared.writer.flush();
    }
}

impl Shared {
    fn records(&self, plugin: &str) -> bool {
        self.config.plugins.is_empty() || self.config.plugins.iter().any(|p| p == plugin)
    }

    fn keep_recent(&self, id: u64, line: Arc<str>) {
        let mut recent = self.recent.lock();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((id, line));
    }
}

impl ReconcileLayer for Recorder {
    fn begin(&self, scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Layered {
        if !self.shared.records(scope.plugin.name()) {
            return Layered::pass(backend);
        }
        let recording = Arc::new(RecordingBackend::new(backend, self.shared.config.secrets));
        let plugin = PluginInfo {
            name: scope.plugin.name().to_owned(),
            version: scope.plugin.version().to_owned(),
            wit: scope.plugin.wit_version().as_str().to_owned(),
        };
        let request = scope.request.clone();
        let id = scope.id;
        let calls = Arc::clone(&recording);
        let this = Arc::clone(&self.shared);
        Layered {
            backend: recording,
            on_end: Some(Box::new(move |result| {
                let record = Reconcile {
                    id,
                    plugin_version: plugin.version.clone(),
                    namespace: request.namespace.clone(),
                    name: request.name.clone(),
                    reason: (&request.reason).into(),
                    calls: calls.take_calls(),
                    outcome: convert::outcome(result),
                };
                let line = match serde_json::to_string(&Line::Reconcile(Box::new(record))) {
                    Ok(line) => line,
                    Err(e) => {
                        tracing::warn!(plugin = %plugin.name, "recording: a record could not be written as JSON: {e}");
                        return;
                    }
                };
                this.keep_recent(id, Arc::from(line.as_str()));
                this.writer.send(Message::Record {
                    plugin,
                    secrets: this.config.secrets,
                    line,
                });
            })),
        }
    }
}

impl RecordLookup for Recorder {
    fn record(&self, id: u64) -> Option<String> {
        self.shared
            .recent
            .lock()
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, line)| line.to_string())
    }
}
