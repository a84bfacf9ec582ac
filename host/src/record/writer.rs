//! The recorder's writer: a thread that appends records to files, one series of files per
//! plugin, rotated by size and at each new plugin version, and deletes the oldest files once
//! the folder holds more than its cap. Reconciles hand it lines through a bounded channel and
//! never wait for the disk; a line that finds the channel full is dropped and counted.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use kubewasm_core::recording::{Header, Line, PluginInfo};

/// How many records may wait for the writer before new ones are dropped.
const QUEUE: usize = 4096;

/// What the writer is sent.
pub(super) enum Message {
    /// A reconcile's line, for `plugin`'s files.
    Record {
        plugin: PluginInfo,
        secrets: bool,
        line: String,
    },
    /// Answer once everything sent before is on disk.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The sending side, shared by every reconcile.
pub(super) struct Writer {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread on `dir` (created if missing).
    pub(super) fn start(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let files = Files::scan(dir, max_bytes)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("kubewasm-record".into())
            .spawn(move || files.run(rx))?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Hands a line to the writer; when the queue is full the line is dropped, counted and
    /// logged (the first and then every 100th).
    pub(super) fn send(&self, message: Message) {
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(100) {
                    tracing::warn!(
                        dropped = n,
                        "recording: the writer is behind, a reconcile's record was dropped ({n} so far)"
                    );
                }
            }
        }
    }

    /// How many records were dropped.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line sent before is written and flushed.
    pub(super) fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// The file a plugin's records go to now.
struct Open {
    path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    version: String,
}

/// The writer thread's state: the files in the folder (oldest first) and the open ones.
struct Files {
    dir: PathBuf,
    max_bytes: u64,
    /// Past this a plugin's file is closed and a new one started.
    file_bytes: u64,
    /// Every recording file in the folder by sequence number, with its size.
    all: BTreeMap<u64, (PathBuf, u64)>,
    next: u64,
    open: HashMap<String, (u64, Open)>,
}

/// `<plugin>-<8 digits>.jsonl`: the sequence number, if `name` is a recording file's name.
fn sequence(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".jsonl")?;
    let (_, seq) = stem.rsplit_once('-')?;
    (seq.len() >= 8 && seq.bytes().all(|b| b.is_ascii_digit()))
        .then(|| seq.parse().ok())
        .flatten()
}

impl Files {
    fn scan(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if let Some(seq) = name.to_str().and_then(sequence) {
                all.insert(seq, (entry.path(), entry.metadata()?.len()));
            }
        }
        let next = all.keys().next_back().map_or(1, |s| s + 1);
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            // A few files per plugin within the cap, so deleting the oldest frees a part of it.
            file_bytes: (max_bytes / 4).clamp(1, 16 << 20),
            all,
            next,
            open: HashMap::new(),
        })
    }

    fn run(mut self, rx: Receiver<Message>) {
        while let Ok(message) = rx.recv() {
            self.handle(message);
            while let Ok(message) = rx.try_recv() {
                self.handle(message);
            }
            // Nothing waiting: put what was written on disk.
            self.flush();
        }
        self.flush();
    }

    fn flush(&mut self) {
        for (_, open) in self.open.values_mut() {
            if let Err(e) = open.out.flush() {
                tracing::warn!(file = %open.path.display(), "recording: failed to write: {e}");
            }
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Record {
                plugin,
                secrets,
                line,
            } => {
                if let Err(e) = self.write(&plugin, secrets, &line) {
                    tracing::warn!(
                        plugin = %plugin.name,
                        dir = %self.dir.display(),
                        "recording: failed to write a record: {e}"
                    );
                }
            }
            Message::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn write(&mut self, plugin: &PluginInfo, secrets: bool, line: &str) -> std::io::Result<()> {
        let rotate = self
            .open
            .get(&plugin.name)
            .is_none_or(|(_, o)| o.version != plugin.version || o.bytes >= self.file_bytes);
        if rotate {
            self.start_file(plugin, secrets)?;
        }
        let Some((seq, open)) = self.open.get_mut(&plugin.name) else {
            return Ok(());
        };
        open.out.write_all(line.as_bytes())?;
        open.out.write_all(b"\n")?;
        let n = line.len() as u64 + 1;
        open.bytes += n;
        if let Some((_, size)) = self.all.get_mut(seq) {
            *size += n;
        }
        self.enforce_cap();
        Ok(())
    }

    /// Closes the plugin's current file and starts the next with a header.
    fn start_file(&mut self, plugin: &PluginInfo, secrets: bool) -> std::io::Result<()> {
        if let Some((_, mut old)) = self.open.remove(&plugin.name) {
            old.out.flush()?;
        }
        let seq = self.next;
        self.next += 1;
        let path = self.dir.join(format!("{}-{seq:08}.jsonl", plugin.name));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut out = BufWriter::new(file);
        let header = Line::Header(Header::new(
            env!("CARGO_PKG_VERSION"),
            plugin.clone(),
            secrets,
        ));
        let mut text = serde_json::to_string(&header).map_err(std::io::Error::other)?;
        text.push('\n');
        out.write_all(text.as_bytes())?;
        let bytes = text.len() as u64;
        self.all.insert(seq, (path.clone(), bytes));
        self.open.insert(
            plugin.name.clone(),
            (
                seq,
                Open {
                    path,
                    out,
                    bytes,
                    version: plugin.version.clone(),
                },
            ),
        );
        Ok(())
    }

    /// Deletes the oldest files not being written until the folder is within its cap.
    fn enforce_cap(&mut self) {
        let mut total: u64 = self.all.values().map(|(_, size)| size).sum();
        let open: Vec<u64> = self.open.values().map(|(seq, _)| *seq).collect();
        let oldest: Vec<u64> = self.all.keys().copied().collect();
        for seq in oldest {
            if total <= self.max_bytes {
                break;
            }
            if open.contains(&seq) {
                continue;
            }
            if let Some((path, size)) = self.all.remove(&seq) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::debug!(file = %path.display(), "recording: deleted the oldest file (over --record-max-bytes)");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), "recording: failed to delete an old file: {e}");
                    }
                }
                total -= size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(version: &str) -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: version.into(),
            wit: "0.2.0".into(),
        }
    }

    fn record(w: &Writer, version: &str, text: &str) {
        w.send(Message::Record {
            plugin: plugin(version),
            secrets: false,
            line: text.into(),
        });
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_oldest_files_go_first_once_the_folder_is_over_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        // 4 KiB cap: files of 1 KiB; each line is ~500 bytes.
        let w = Writer::start(dir.path(), 4096).unwrap();
        let line = format!("{{\"pad\":\"{}\"}}", "x".repeat(500));
        for _ in 0..40 {
            record(&w, "v1", &line);
        }
        w.flush();
        let names = names(dir.path());
        let total: u64 = names
            .iter()
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .sum();
        assert!(total <= 4096, "{total} bytes in {names:?}");
        assert!(names.len() > 1, "{names:?}");
        assert!(
            !names.contains(&"p-00000001.jsonl".to_owned()),
            "the first file was deleted: {names:?}"
        );
        assert!(
            names.last().unwrap() > &"p-00000010.jsonl".to_owned(),
            "{names:?}"
        );
        for name in &names {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(
                text.starts_with("{\"type\":\"header\""),
                "{name} starts with a header"
            );
        }
    }

    #[test]
    fn a_new_plugin_version_starts_a_new_file_and_a_restart_continues_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(dir.path(), 1 << 20).unwrap();
        record(&w, "v1", "{}");
        record(&w, "v1", "{}");
        record(&w, "v2", "{}");
        w.flush();
        drop(w);
        assert_eq!(names(dir.path()), ["p-00000001.jsonl", "p-00000002.jsonl"]);
        let w = Writer::start(dir.path(), 1 << 20).unwrap();
        record(&w, "v2", "{}");
        w.flush();
        assert_eq!(
            names(dir.path()),
            ["p-00000001.jsonl", "p-00000002.jsonl", "p-00000003.jsonl"]
        );
        let first = std::fs::read_to_string(dir.path().join("p-00000001.jsonl")).unwrap();
        assert_eq!(
            first.lines().count(),
            3,
            "a header and two records: {first}"
        );
    }
}
