//! Hot reload. [`PluginWatcher`]: keeps the running plugins in step with a plugins folder — starts added
//! files, hot-reloads changed ones, stops removed ones — and says what it did.
//!
//! Changes are detected by content (SHA-256 of the bytes, read through symlinks), so every way a
//! file gets replaced works the same: a write in place, a write to a temporary name then a
//! rename, and a Kubernetes ConfigMap/Secret volume update (where `name.wasm` is a symlink into
//! `..data/`, itself a symlink swapped to a new timestamped folder). Filesystem events only say
//! "look again".
//!
//! - An event that says a write is complete — a file closed after writing (inotify
//!   `IN_CLOSE_WRITE`, notify's `Access(Close(Write))`), a rename into place (every one of the
//!   ways above ends with one of these), a removal — has the folder rescanned at once (after a
//!   5 ms settle that takes events coming together in one scan).
//! - Other events (data written, a file truncated or created) mark that file as being written:
//!   it is read when an event says its write completed, or after a quiet period without events
//!   for it ([`WatchOptions::debounce`], 300 ms: the fallback for tools that write without
//!   closing promptly), or at the latest ten quiet periods after its first event. Until then a
//!   rescan, even one caused by another file's completed write, leaves it alone, so a file still
//!   being written (several writes before the close, or a truncate then a write) is not read
//!   half-written. (A write that starts while the scan is reading that very file can still be
//!   read part-way; it fails to load, and its close has it read again.)
//! - The folder is rescanned periodically anyway (inotify can drop events).
//!
//! A file that fails to load leaves the version already running in place; its next change is
//! tried again.
//!
//! Cost (`kubewasm-bench --only reload --mode full`, figure 5 of `bench/README.md`: 0.5 MB
//! plugin, 50 ConfigMaps patched every 2 ms, 20 reloads each, 2 cores shared with other work at
//! a load of ~4), from the write that completes the file to the new version serving, with a
//! compile-cache hit; goal ≤ 50 ms p95:
//!
//! | | rename into place, p50 / p95 | written in place + close, p50 / p95 |
//! |---|---|---|
//! | release build | 8.4 / 9.2 ms | 8.2 / 9.8 ms |
//! | debug build | 43.5 / 53.5 ms | 46.8 / 55.9 ms |
//!
//! Of a release build's ~8.5 ms, 5 ms is the settle; the first reconcile on the new version
//! finishes ~12 ms after the rename. When every change waited for the 300 ms quiet time, the
//! same reload took ~310 ms. The debug build is slower throughout (the host's own code, reading
//! and hashing the file included, is unoptimised there).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher as _};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::loader::{LoaderError, plugin_files, read_plugin_file_async};
use crate::manager::{Manager, Updated};
use crate::runtime::{Plugin, Runtime, version_of};

/// Why the plugins folder cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The folder cannot be read.
    #[error(transparent)]
    Folder(#[from] LoaderError),
    /// The filesystem watch could not be set up.
    #[error("failed to watch the plugins folder {path}: {source}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

/// How the folder is watched. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Watch for changes after the first load; `false` loads the folder once.
    pub watch: bool,
    /// Quiet time after the last filesystem event of a file's write that is not known to be
    /// complete (data written, a file truncated or created) before that file is read. An event
    /// that says a write is complete (a file closed after writing, renamed into place, or
    /// removed) is acted on at once instead; a file whose write is under way is left unread by
    /// scans until then.
    pub debounce: Duration,
    /// Rescan this often even without events (a safety net for dropped events).
    pub rescan: Duration,
    /// How long a new version may wait for the caches its new manifest needs before the reload
    /// is given up (the old version keeps serving).
    pub sync_timeout: Duration,
    /// Largest plugin file read; a bigger one fails with an error naming its size, unread.
    pub max_plugin_size: u64,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            watch: true,
            debounce: Duration::from_millis(300),
            rescan: Duration::from_secs(30),
            sync_timeout: Duration::from_secs(120),
            max_plugin_size: crate::loader::DEFAULT_MAX_PLUGIN_SIZE,
        }
    }
}

/// Something the watcher did, as a one-line message ([`fmt::Display`]) for `kubewasm dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new plugin file was loaded and started.
    Started {
        /// The plugin.
        name: String,
        /// Its version.
        version: String,
        /// Whether the compile cache had it.
        from_cache: bool,
    },
    /// A changed file was loaded and now serves.
    Reloaded {
        /// The plugin.
        name: String,
        /// The version it replaced.
        from: String,
        /// The version now serving.
        to: String,
        /// What the swap involved.
        how: Updated,
        /// Whether the compile cache had it.
        from_cache: bool,
    },
    /// A plugin's file holds the version that serves again after a change that failed to load
    /// (the bad file was replaced by the good one): nothing was swapped, the failure is over.
    Recovered {
        /// The plugin.
        name: String,
        /// The version that serves (and served throughout).
        version: String,
    },
    /// A file failed to load or validate, or its new informers failed; nothing changed.
    Failed {
        /// The file.
        path: PathBuf,
        /// The version that keeps serving, if the plugin runs.
        serving: Option<String>,
        /// Why.
        reason: String,
    },
    /// A removed file's plugin was stopped (after its reconciles in flight finished).
    Stopped {
        /// The plugin.
        name: String,
    },
}

impl fmt::Display for ReloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = |hit: bool| if hit { " (compile cache hit)" } else { "" };
        match self {
            Self::Started {
                name,
                version,
                from_cache,
            } => write!(
                f,
                "plugin {name}: started version {version}{}",
                cache(*from_cache)
            ),
            Self::Reloaded {
                name,
                from,
                to,
                how,
                from_cache,
            } => {
                let how = match how {
                    Updated::Unchanged => "same code",
                    Updated::Swapped => "same manifest",
                    Updated::Rewired {
                        requeued_all: false,
                    } => "new informers or indexes",
                    Updated::Rewired { requeued_all: true } => {
                        "new informers or mapping, every object queued"
                    }
                };
                write!(
                    f,
                    "plugin {name}: reloaded {from} -> {to} ({how}){}",
                    cache(*from_cache)
                )
            }
            Self::Recovered { name, version } => {
                write!(f, "plugin {name} recovered: serving {version}")
            }
            Self::Failed {
                path,
                serving,
                reason,
            } => {
                write!(f, "plugin file {} not loaded: {reason}", path.display())?;
                match serving {
                    Some(v) => write!(f, " (version {v} keeps serving)"),
                    None => Ok(()),
                }
            }
            Self::Stopped { name } => write!(f, "plugin {name}: file removed, stopped"),
        }
    }
}

/// Called with each plugin file that loaded, before its plugin starts or its new version serves:
/// what must be in place first (`kubewasm dev` installs the CRDs the plugin ships, so its
/// informers find its kinds served). It reports its own failures; the plugin goes on regardless.
pub type BeforeServe =
    Arc<dyn Fn(&Plugin) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// What the watcher knows of one plugin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// The plugin's name (the file stem).
    pub name: String,
    /// The version of the file's current content.
    pub version: String,
    /// Why that content did not load, if it did not.
    pub error: Option<String>,
}

/// Something the watcher did, and when (see [`LoadHistory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRecord {
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub event: ReloadEvent,
}

/// How many [`LoadRecord`]s a watcher keeps; the oldest go first.
pub const LOAD_HISTORY_KEPT: usize = 256;

/// What a watcher did since it started — the first load included, failed loads and why —
/// readable while it runs and after it stopped (the status page shows it). Cheap to clone.
#[derive(Clone)]
pub struct LoadHistory(Arc<Shared>);

impl fmt::Debug for LoadHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoadHistory({})", self.0.history.lock().len())
    }
}

impl LoadHistory {
    /// The latest [`LOAD_HISTORY_KEPT`] records, oldest first.
    pub fn records(&self) -> Vec<LoadRecord> {
        self.0.history.lock().iter().cloned().collect()
    }

    /// Every plugin file seen, with its current version and load error (as
    /// [`PluginWatcher::files`]).
    pub fn files(&self) -> Vec<(PathBuf, FileState)> {
        files_of(&self.0)
    }
}

struct Shared {
    files: Mutex<HashMap<PathBuf, FileState>>,
    failures: std::sync::atomic::AtomicU64,
    events: broadcast::Sender<ReloadEvent>,
    history: Mutex<VecDeque<LoadRecord>>,
}

fn files_of(shared: &Shared) -> Vec<(PathBuf, FileState)> {
    let mut files: Vec<_> = shared
        .files
        .lock()
        .iter()
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Keeps a manager's plugins in step with a folder. Dropping it stops watching (the plugins keep
/// running); [`PluginWatcher::stop`] does the same and waits for a scan in progress.
pub struct PluginWatcher {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for PluginWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginWatcher")
            .field("files", &*self.shared.files.lock())
            .finish_non_exhaustive()
    }
}

struct Scanner {
    runtime: Runtime,
    manager: Manager,
    dir: PathBuf,
    options: WatchOptions,
    shared: Arc<Shared>,
    before_serve: Option<BeforeServe>,
}

impl PluginWatcher {
    /// Loads and starts every plugin in `dir` (a file that fails is logged and skipped), then,
    /// with `options.watch`, follows the folder until stopped. Returns once the first load is
    /// done, so [`Manager::status`] lists what runs.
    ///
    /// # Errors
    /// [`WatchError`] when the folder cannot be read or watched.
    pub async fn start(
        runtime: Runtime,
        manager: Manager,
        dir: &Path,
        options: WatchOptions,
    ) -> Result<Self, WatchError> {
        Self::start_with(runtime, manager, dir, options, None).await
    }

    /// [`PluginWatcher::start`], with `before_serve` awaited for every plugin file that loads,
    /// before its plugin starts or its new version serves.
    ///
    /// # Errors
    /// As [`PluginWatcher::start`].
    pub async fn start_with(
        runtime: Runtime,
        manager: Manager,
        dir: &Path,
        options: WatchOptions,
        before_serve: Option<BeforeServe>,
    ) -> Result<Self, WatchError> {
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            files: Mutex::new(HashMap::new()),
            failures: std::sync::atomic::AtomicU64::new(0),
            events,
            history: Mutex::new(VecDeque::new()),
        });
        let mut scanner = Scanner {
            runtime,
            manager,
            dir: dir.to_owned(),
            options,
            shared: Arc::clone(&shared),
            before_serve,
        };
        // Watch before the first scan, so nothing changed during it is missed.
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = if scanner.options.watch {
            let mut w = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // An error may have lost events (of unknown files): look again after the quiet
                // time.
                let (change, paths) = event.map_or((Change::Partial, Vec::new()), |e| {
                    (Change::of(e.kind), e.paths)
                });
                if change != Change::None {
                    let _ = tx.send((change, paths));
                }
            })
            .map_err(|source| WatchError::Watch {
                path: dir.to_owned(),
                source,
            })?;
            w.watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError::Watch {
                    path: dir.to_owned(),
                    source,
                })?;
            Some(w)
        } else {
            None
        };
        scanner.scan(&HashSet::new()).await?;
        let Some(watcher) = watcher else {
            return Ok(Self {
                shared,
                stop: None,
                task: None,
            });
        };
        tracing::info!(folder = %dir.display(), "watching the plugins folder for changes");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _watcher = watcher;
            scanner.run(rx, stopped).await;
        });
        Ok(Self {
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Every change the watcher makes from now on (a lagging receiver misses the oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.shared.events.subscribe()
    }

    /// Every plugin file seen, with its current version and load error.
    pub fn files(&self) -> Vec<(PathBuf, FileState)> {
        files_of(&self.shared)
    }

    /// What this watcher did since it started (its first load included), and what it does from
    /// now on.
    pub fn history(&self) -> LoadHistory {
        LoadHistory(Arc::clone(&self.shared))
    }

    /// How many loads or reloads have failed so far.
    pub fn failures(&self) -> u64 {
        self.shared
            .failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops watching (plugins keep running), after a scan in progress.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What a filesystem event says about the plugin files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing: a read (including the watcher's own).
    None,
    /// A write may still be under way (data written, a file or folder created): wait for quiet.
    Partial,
    /// A write is complete (a file closed after writing, a rename into place — a kubelet
    /// volume update ends with one —, a removal): look now.
    Complete,
}

impl Change {
    fn of(kind: EventKind) -> Self {
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_) => Self::Complete,
            EventKind::Access(_) => Self::None,
            _ => Self::Partial,
        }
    }
}

/// How long after a completed write the folder is scanned: events that come together (a
/// rename and the removal of the old volume folder) are taken in one scan.
const SETTLE: Duration = Duration::from_millis(5);

/// One file's write under way: when its first and its latest event came.
#[derive(Debug, Clone, Copy)]
struct Writing {
    first: Instant,
    last: Instant,
}

/// What the watcher is waiting for: the files written to but not yet known to be complete, and
/// a scan for completed writes.
#[derive(Debug, Default)]
struct Pending {
    /// By file name (the watch covers one folder); `None` for events that name no file (an
    /// error, dropped events): those only ask for a scan after the quiet time.
    writing: HashMap<Option<OsString>, Writing>,
    /// When to scan for a completed write.
    complete: Option<Instant>,
}

impl Pending {
    /// Takes in one filesystem event.
    fn note(&mut self, change: Change, paths: &[PathBuf], now: Instant) {
        let names = || -> Vec<Option<OsString>> {
            if paths.is_empty() {
                vec![None]
            } else {
                paths
                    .iter()
                    .map(|p| p.file_name().map(OsString::from))
                    .collect()
            }
        };
        match change {
            Change::None => {}
            Change::Partial => {
                for name in names() {
                    self.writing
                        .entry(name)
                        .and_modify(|w| w.last = now)
                        .or_insert(Writing {
                            first: now,
                            last: now,
                        });
                }
            }
            Change::Complete => {
                for name in names() {
                    self.writing.remove(&name);
                }
                // Events that come together are taken in one scan.
                self.complete.get_or_insert(now + SETTLE);
            }
        }
    }

    /// When a file's write counts as over without an event saying so: after `quiet` without
    /// events, or `longest` after its first one (a write that never pauses is read anyway).
    fn settled(w: Writing, quiet: Duration, longest: Duration) -> Instant {
        (w.last + quiet).min(w.first + longest)
    }

    /// When the next scan is due, if one is.
    fn due(&self, quiet: Duration, longest: Duration) -> Option<Instant> {
        let settled = self
            .writing
            .values()
            .map(|w| Self::settled(*w, quiet, longest))
            .min();
        match (self.complete, settled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Before a scan at `now`: forgets the writes that count as over (the scan reads them) and
    /// the completed-write scan, and returns the names of files still being written, which the
    /// scan must not read.
    fn take(&mut self, now: Instant, quiet: Duration, longest: Duration) -> HashSet<OsString> {
        self.complete = None;
        self.writing
            .retain(|_, w| Self::settled(*w, quiet, longest) > now);
        self.writing.keys().flatten().cloned().collect()
    }
}

impl Scanner {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<(Change, Vec<PathBuf>)>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let quiet = self.options.debounce;
        // A file written without a pause is read at least this often.
        let longest = quiet * 10;
        let mut pending = Pending::default();
        let mut rescan =
            tokio::time::interval_at(Instant::now() + self.options.rescan, self.options.rescan);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = pending.due(quiet, longest);
            tokio::select! {
                _ = &mut stop => return,
                event = events.recv() => {
                    let Some((change, paths)) = event else { return };
                    pending.note(change, &paths, Instant::now());
                }
                () = sleep_until(wake), if wake.is_some() => {
                    let writing = pending.take(Instant::now(), quiet, longest);
                    self.scan_logged(&writing).await;
                }
                _ = rescan.tick() => {
                    let writing = pending.take(Instant::now(), quiet, longest);
                    self.scan_logged(&writing).await;
                }
            }
        }
    }

    async fn scan_logged(&mut self, writing: &HashSet<OsString>) {
        if let Err(e) = self.scan(writing).await {
            tracing::warn!("{e}");
        }
    }

    /// Brings the running plugins in line with the folder, but for the files named in
    /// `writing` (a write under way), which are left as they are.
    async fn scan(&mut self, writing: &HashSet<OsString>) -> Result<(), WatchError> {
        let present = plugin_files(&self.dir)?;
        for path in &present {
            if !path.file_name().is_some_and(|n| writing.contains(n)) {
                self.consider(path).await;
            }
        }
        let gone: Vec<(PathBuf, FileState)> = self
            .shared
            .files
            .lock()
            .iter()
            .filter(|(p, _)| !present.contains(p))
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect();
        for (path, state) in gone {
            self.shared.files.lock().remove(&path);
            let serves_this_file = self
                .manager
                .plugin(&state.name)
                .is_some_and(|p| p.path() == path);
            if serves_this_file {
                tracing::info!(plugin = %state.name, file = %path.display(), "plugin file removed; stopping the plugin once its reconciles in flight finish");
                self.manager.stop(&state.name).await;
                self.emit(ReloadEvent::Stopped { name: state.name });
            }
        }
        Ok(())
    }

    /// Loads `path` if its content changed since it was last seen.
    async fn consider(&mut self, path: &Path) {
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let bytes = match read_plugin_file_async(path, self.options.max_plugin_size).await {
            Ok(b) => b,
            // Gone between the listing and the read (e.g. mid-rename): the next scan sees it.
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                let reason = e.to_string();
                // Said once, not again at every rescan while the file stays as it is.
                let known = self.shared.files.lock().get(path).is_some_and(|s| {
                    s.version.is_empty() && s.error.as_deref() == Some(reason.as_str())
                });
                if !known {
                    self.failed(path, &name, String::new(), reason);
                }
                return;
            }
        };
        let version = version_of(&bytes);
        if self
            .shared
            .files
            .lock()
            .get(path)
            .is_some_and(|s| s.version == version)
        {
            return;
        }
        tracing::info!(
            plugin = %name,
            version = %version,
            "loading plugin file {} ({:.1} MB)",
            path.display(),
            bytes.len() as f64 / 1e6
        );
        self.shared.files.lock().insert(
            path.to_owned(),
            FileState {
                name: name.clone(),
                version: version.clone(),
                error: None,
            },
        );
        let started = std::time::Instant::now();
        let plugin = match self.runtime.load(path, bytes).await {
            Ok(p) => p,
            Err(e) => {
                self.failed(path, &name, version, e.to_string());
                return;
            }
        };
        let from_cache = plugin.loaded_from_cache();
        tracing::info!(plugin = %name, version = %version, "loaded in {:.2?}{}", started.elapsed(),
            if from_cache { " (from the compile cache)" } else { "" });
        if let Some(before_serve) = &self.before_serve {
            before_serve(&plugin).await;
        }
        let serving = self.manager.plugin(&name);
        match serving {
            None => match self.manager.start(plugin) {
                Ok(()) => {
                    self.manager.metrics().plugin_loaded(&name, &version, true);
                    self.emit(ReloadEvent::Started {
                        name,
                        version,
                        from_cache,
                    });
                }
                Err(e) => self.failed(path, &name, version, e.to_string()),
            },
            Some(old) => {
                let update =
                    tokio::time::timeout(self.options.sync_timeout, self.manager.update(plugin))
                        .await;
                match update {
                    // The content is the served version's again: a failed change undone.
                    Ok(Ok(Updated::Unchanged)) => {
                        tracing::info!(plugin = %name, version = %version, "the plugin file is back to the serving version; the failed change is over");
                        self.manager.metrics().plugin_loaded(&name, &version, true);
                        self.emit(ReloadEvent::Recovered { name, version });
                    }
                    Ok(Ok(how)) => {
                        self.manager.metrics().plugin_loaded(&name, &version, true);
                        self.emit(ReloadEvent::Reloaded {
                            name,
                            from: old.version().to_owned(),
                            to: version,
                            how,
                            from_cache,
                        });
                    }
                    Ok(Err(e)) => self.failed(path, &name, version, e.to_string()),
                    Err(_) => self.failed(
                        path,
                        &name,
                        version,
                        format!(
                            "the caches its new manifest needs did not sync within {:?}",
                            self.options.sync_timeout
                        ),
                    ),
                }
            }
        }
    }

    /// Records, logs, counts and announces a file that did not load.
    fn failed(&self, path: &Path, name: &str, version: String, reason: String) {
        let serving = self.manager.plugin(name).map(|p| p.version().to_owned());
        match &serving {
            Some(v) => tracing::error!(plugin = %name, version = %version, serving = %v,
                "{reason}; the running version keeps serving"),
            None => tracing::error!(plugin = %name, version = %version, "{reason}"),
        }
        self.shared
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.manager.metrics().plugin_loaded(name, &version, false);
        if serving.is_some() {
            self.manager.set_reload_error(name, reason.clone());
        }
        self.shared.files.lock().insert(
            path.to_owned(),
            FileState {
                name: name.to_owned(),
                version,
                error: Some(reason.clone()),
            },
        );
        self.emit(ReloadEvent::Failed {
            path: path.to_owned(),
            serving,
            reason,
        });
    }

    fn emit(&self, event: ReloadEvent) {
        {
            let mut history = self.shared.history.lock();
            if history.len() == LOAD_HISTORY_KEPT {
                history.pop_front();
            }
            history.push_back(LoadRecord {
                at: SystemTime::now(),
                event: event.clone(),
            });
        }
        // No receiver is fine: the log has it too.
        let _ = self.shared.events.send(event);
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn reads_are_ignored_completed_writes_are_acted_on_at_once_and_others_wait_for_quiet() {
        use notify::event::DataChange;
        let of = Change::of;
        assert_eq!(
            of(EventKind::Access(AccessKind::Open(AccessMode::Read))),
            Change::None
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Close(AccessMode::Read))),
            Change::None
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Close(AccessMode::Write))),
            Change::Complete
        );
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Name(RenameMode::To))),
            Change::Complete
        );
        assert_eq!(of(EventKind::Remove(RemoveKind::File)), Change::Complete);
        assert_eq!(of(EventKind::Create(CreateKind::File)), Change::Partial);
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Data(DataChange::Content))),
            Change::Partial
        );
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names
            .iter()
            .map(|n| Path::new("/plugins").join(n))
            .collect()
    }

    fn names(names: &[&str]) -> HashSet<OsString> {
        names.iter().map(OsString::from).collect()
    }

    const QUIET: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(10);

    #[test]
    fn a_completed_write_elsewhere_scans_soon_but_leaves_a_file_still_being_written_unread() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        assert_eq!(pending.due(QUIET, LONGEST), None, "nothing to do");
        pending.note(Change::Partial, &paths(&["a.wasm"]), t0);
        assert_eq!(pending.due(QUIET, LONGEST), Some(t0 + QUIET));
        // b.wasm renamed into place: a scan at once, which must not read a.wasm.
        let t1 = t0 + Duration::from_millis(100);
        pending.note(Change::Complete, &paths(&[".b.wasm.tmp", "b.wasm"]), t1);
        assert_eq!(pending.due(QUIET, LONGEST), Some(t1 + SETTLE));
        assert_eq!(
            pending.take(t1 + SETTLE, QUIET, LONGEST),
            names(&["a.wasm"])
        );
        // a.wasm still waits for its quiet time.
        assert_eq!(pending.due(QUIET, LONGEST), Some(t0 + QUIET));
        // Then it is read.
        assert_eq!(pending.take(t0 + QUIET, QUIET, LONGEST), names(&[]));
        assert_eq!(pending.due(QUIET, LONGEST), None);
    }

    #[test]
    fn a_file_closed_after_writing_is_read_at_once_and_a_write_that_never_pauses_is_read_in_the_end()
     {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.note(Change::Partial, &paths(&["a.wasm"]), t0);
        let t1 = t0 + Duration::from_millis(500);
        pending.note(Change::Complete, &paths(&["a.wasm"]), t1);
        assert_eq!(pending.due(QUIET, LONGEST), Some(t1 + SETTLE));
        assert_eq!(pending.take(t1 + SETTLE, QUIET, LONGEST), names(&[]));

        // Data written every half second: the quiet time never comes, the longest wait does.
        for i in 0..30 {
            let at = t0 + Duration::from_millis(500 * i);
            pending.note(Change::Partial, &paths(&["busy.wasm"]), at);
        }
        assert_eq!(pending.due(QUIET, LONGEST), Some(t0 + LONGEST));
        assert_eq!(pending.take(t0 + LONGEST, QUIET, LONGEST), names(&[]));
    }

    #[test]
    fn an_event_that_names_no_file_asks_for_a_scan_after_the_quiet_time_and_skips_nothing() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.note(Change::Partial, &[], t0);
        pending.note(Change::None, &paths(&["a.wasm"]), t0);
        assert_eq!(pending.due(QUIET, LONGEST), Some(t0 + QUIET));
        pending.note(Change::Complete, &paths(&["b.wasm"]), t0);
        assert_eq!(pending.take(t0 + SETTLE, QUIET, LONGEST), names(&[]));
        assert_eq!(pending.due(QUIET, LONGEST), Some(t0 + QUIET));
    }

    #[test]
    fn events_read_as_one_plain_line_each() {
        let failed = ReloadEvent::Failed {
            path: "plugins/hello.wasm".into(),
            serving: Some("0123456789ab".into()),
            reason: "not a WebAssembly file".into(),
        };
        assert_eq!(
            failed.to_string(),
            "plugin file plugins/hello.wasm not loaded: not a WebAssembly file (version 0123456789ab keeps serving)"
        );
        let reloaded = ReloadEvent::Reloaded {
            name: "hello".into(),
            from: "aaaaaaaaaaaa".into(),
            to: "bbbbbbbbbbbb".into(),
            how: Updated::Rewired { requeued_all: true },
            from_cache: true,
        };
        assert_eq!(
            reloaded.to_string(),
            "plugin hello: reloaded aaaaaaaaaaaa -> bbbbbbbbbbbb (new informers or mapping, every object queued) (compile cache hit)"
        );
        assert_eq!(
            ReloadEvent::Recovered {
                name: "hello".into(),
                version: "aaaaaaaaaaaa".into()
            }
            .to_string(),
            "plugin hello recovered: serving aaaaaaaaaaaa"
        );
        assert_eq!(
            ReloadEvent::Stopped { name: "x".into() }.to_string(),
            "plugin x: file removed, stopped"
        );
    }
}
