//! Loading every plugin in a folder, with progress, so one bad file never stops the others.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::runtime::{LoadError, Plugin, Runtime};

/// Why a plugins folder could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The folder is missing or unreadable.
    #[error("failed to read the plugins folder {path}: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Largest plugin file read by default (`--max-plugin-size`): far above any real component (the
/// examples are 0.1-2 MB, a Python plugin ~20 MB), far below what would hurt the host.
pub const DEFAULT_MAX_PLUGIN_SIZE: u64 = 64 << 20;

/// Why one plugin file could not be read. Every case names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file (or what its symlink points to) cannot be opened or read, e.g. a symlink loop
    /// or a permission error.
    #[error("failed to read plugin file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory, FIFO, socket or device named `*.wasm` (reading a FIFO would block forever).
    #[error("plugin file {path} is not a regular file (it is {what})")]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// A symlink whose target does not exist: kept apart from a missing file (which hot reload
    /// skips as mid-rename) so that a link left pointing nowhere is reported, not ignored.
    #[error("plugin file {path} is a symlink to {target}, which does not exist")]
    DanglingSymlink {
        /// The file.
        path: PathBuf,
        /// Where the link points.
        target: PathBuf,
    },
    /// Bigger than the size cap; nothing of it was loaded.
    #[error(
        "plugin file {path} is {size} bytes, over the limit of {max} bytes (raise it with --max-plugin-size)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least; a file still growing may be bigger).
        size: u64,
        /// The cap.
        max: u64,
    },
}

impl ReadError {
    /// True when the file is gone (e.g. between a listing and the read, mid-rename).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

fn file_type(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Reads the plugin file at `path` (through symlinks), refusing what is not a regular file and
/// anything over `max` bytes before reading it (and a file that grows past `max` while read).
///
/// # Errors
/// [`ReadError`] naming the file and why.
pub fn read_plugin_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match std::fs::read_link(path) {
                Ok(target) => ReadError::DanglingSymlink {
                    path: path.to_owned(),
                    target,
                },
                Err(_) => io(e),
            });
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            path: path.to_owned(),
            what: file_type(&meta),
        });
    }
    let too_large = |size| ReadError::TooLarge {
        path: path.to_owned(),
        size,
        max,
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_plugin_file`] off the async threads.
///
/// # Errors
/// As [`read_plugin_file`].
pub async fn read_plugin_file_async(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || read_plugin_file(&owned, max))
        .await
        .unwrap_or_else(|e| {
            Err(ReadError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(format!("the read task failed: {e}")),
            })
        })
}

/// The `.wasm` entries directly in `dir`, sorted by name (hidden ones skipped). Entries that
/// are not readable regular files (a broken symlink, a symlink loop, a directory or FIFO named
/// `*.wasm`) are listed too, so that loading them reports why instead of skipping them silently.
///
/// # Errors
/// [`LoaderError::ReadDir`] when the folder cannot be read.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, LoaderError> {
    let read_dir = |source| LoaderError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "wasm") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Why one plugin file of a folder did not load.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// It was read but did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Reads the plugin file at `path` (at most `max_size` bytes) and loads it, named after the
/// file stem.
///
/// # Errors
/// [`FileError::Read`] when the file is missing, unreadable, not a regular file (a FIFO would
/// block a read forever) or over `max_size`; [`FileError::Load`] when its bytes do not load.
pub async fn load_file(runtime: &Runtime, path: &Path, max_size: u64) -> Result<Plugin, FileError> {
    let bytes = read_plugin_file_async(path, max_size).await?;
    Ok(runtime.load(path, bytes).await?)
}

/// Loads every plugin file in `dir` (each at most `max_size` bytes), logging progress
/// (compiling a plugin can take seconds). Returns the plugins that loaded and the errors of
/// those that did not.
///
/// # Errors
/// [`LoaderError::ReadDir`] when the folder cannot be read.
pub async fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    max_size: u64,
) -> Result<(Vec<Plugin>, Vec<FileError>), LoaderError> {
    let files = plugin_files(dir)?;
    let mut plugins = Vec::new();
    let mut errors = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let bytes = match read_plugin_file_async(path, max_size).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("{e}");
                errors.push(e.into());
                continue;
            }
        };
        tracing::info!(
            "loading plugin {}/{}: {} ({:.1} MB)",
            i + 1,
            files.len(),
            path.display(),
            bytes.len() as f64 / 1e6
        );
        let started = Instant::now();
        match runtime.load(path, bytes).await {
            Ok(plugin) => {
                tracing::info!(
                    plugin = plugin.name(),
                    "loaded in {:.2?}{}",
                    started.elapsed(),
                    if plugin.loaded_from_cache() {
                        " (from the compile cache)"
                    } else {
                        ""
                    }
                );
                plugins.push(plugin);
            }
            Err(e) => {
                tracing::error!("{e}");
                errors.push(e.into());
            }
        }
    }
    Ok((plugins, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_cap_is_refused_naming_its_size_and_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.wasm");
        std::fs::write(&path, vec![0u8; 1001]).expect("write");
        let err = read_plugin_file(&path, 1000).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { size: 1001, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("big.wasm") && text.contains("1001 bytes"),
            "{text}"
        );
        assert!(text.contains("--max-plugin-size"), "{text}");
        assert_eq!(
            read_plugin_file(&path, 1001).expect("at the cap").len(),
            1001
        );
    }

    #[test]
    fn a_fifo_or_a_directory_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe.wasm");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        let err = read_plugin_file(&fifo, 1000).unwrap_err();
        assert!(
            err.to_string()
                .contains("is not a regular file (it is a FIFO)"),
            "{err}"
        );
        let sub = dir.path().join("folder.wasm");
        std::fs::create_dir(&sub).expect("mkdir");
        let err = read_plugin_file(&sub, 1000).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn a_dangling_symlink_is_an_error_naming_its_target_not_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("plugin.wasm");
        let target = dir.path().join("..data").join("plugin.wasm");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert_eq!(
            plugin_files(dir.path()).expect("listed"),
            vec![link.clone()]
        );
        let err = read_plugin_file(&link, 1000).unwrap_err();
        assert!(matches!(err, ReadError::DanglingSymlink { .. }), "{err:?}");
        assert!(
            !err.is_not_found(),
            "hot reload must report it, not skip it"
        );
        let text = err.to_string();
        assert!(
            text.contains("plugin.wasm") && text.contains("..data"),
            "{text}"
        );
        assert!(text.contains("which does not exist"), "{text}");
        let gone = read_plugin_file(&dir.path().join("absent.wasm"), 1000).unwrap_err();
        assert!(gone.is_not_found(), "{gone:?}");
    }

    #[test]
    fn a_symlink_loop_is_listed_and_fails_to_read_with_its_cause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.wasm"), dir.path().join("b.wasm"));
        std::os::unix::fs::symlink(&b, &a).expect("symlink");
        std::os::unix::fs::symlink(&a, &b).expect("symlink");
        assert_eq!(
            plugin_files(dir.path()).expect("listed"),
            vec![a.clone(), b]
        );
        let err = read_plugin_file(&a, 1000).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err:?}");
        assert!(!err.is_not_found());
        assert!(err.to_string().contains("a.wasm"), "{err}");
    }
}
