//! [`CompileCache`]: compiled components on disk, keyed by content hash and engine
//! compatibility, so a restart or a reload of an unchanged plugin does not recompile.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A failure to set up the cache directory.
#[derive(Debug, thiserror::Error)]
pub enum CompileCacheError {
    /// The directory could not be created.
    #[error("failed to create the compile cache directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Someone other than this process's user could put files in the directory. Cached files
    /// are loaded as native code, so that would let them run code in the host.
    #[error(
        "refusing the compile cache directory {path}: {why}; its files are loaded as native code, \
         so only the user running kubewasm may be able to write it (fix: `chmod go-w {path}`, \
         or pass another --compile-cache directory)"
    )]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Deserialized from the cache: no compilation.
    Cache,
    /// Compiled now (and written to the cache if there is one).
    Compiled,
}

/// A directory of `<sha256>.cwasm` files written by [`Component::serialize`].
///
/// The key hashes the component's bytes together with
/// [`Engine::precompile_compatibility_hash`], so another wasmtime version or engine
/// configuration never reads a file it did not write. Files are written to a temporary name
/// and renamed, so readers never see half a file; an unreadable file is removed and the
/// component recompiled.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

impl CompileCache {
    /// A cache in `dir`, created (readable and writable by this user only) if missing.
    ///
    /// # Errors
    /// [`CompileCacheError::CreateDir`] when the directory cannot be created;
    /// [`CompileCacheError::Unsafe`] when it belongs to another user or others can write it.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, CompileCacheError> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| CompileCacheError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        let metadata = std::fs::metadata(&dir).map_err(|source| CompileCacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        if let Some(why) = unsafe_owner_or_mode(&metadata) {
            return Err(CompileCacheError::Unsafe { path: dir, why });
        }
        Ok(Self { dir })
    }

    /// `$XDG_CACHE_HOME/kubewasm/components`, else `~/.cache/kubewasm/components`; `None`
    /// when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(base.join("kubewasm").join("components"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a component with these bytes would be cached in, for this engine.
    pub fn path_for(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut sha = Sha256::new();
        sha.update(wasm);
        engine
            .precompile_compatibility_hash()
            .hash(&mut ShaHasher(&mut sha));
        self.dir
            .join(format!("{}.cwasm", hex::encode(sha.finalize())))
    }

    /// The cached component for `wasm`, or `None` on a miss. A corrupt or incompatible file
    /// is removed (and reported at warn level) so the caller recompiles.
    pub(crate) fn get(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let metadata = std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)?;
        if let Some(why) = unsafe_owner_or_mode(&metadata) {
            // Not ours to trust (nor to delete): recompile; `put` then replaces it.
            tracing::warn!(path = %path.display(), %why, "not loading a compiled component another user could have written");
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be a component serialized by this
        // engine configuration. Only this cache writes into its directory (owned by this user
        // and writable by no one else, checked when the cache was opened; the file itself is
        // checked above), each file is
        // written whole (temp + rename) and its name includes the engine's compatibility
        // hash, and wasmtime still checks its own header and version before using it.
        #[allow(unsafe_code)]
        let result = unsafe { Component::deserialize_file(engine, path) };
        match result {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding an unreadable compiled component");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    /// Stores a compiled component. Failures are logged, not returned: the cache is an
    /// optimisation.
    pub(crate) fn put(&self, path: &Path, component: &Component) {
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let mut tmp = tempfile_in(&self.dir).map_err(|e| e.to_string())?;
                tmp.1.write_all(&bytes).map_err(|e| e.to_string())?;
                tmp.1.sync_all().map_err(|e| e.to_string())?;
                std::fs::rename(&tmp.0, path).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp.0);
                    e.to_string()
                })
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "failed to write a compiled component to the cache");
        }
    }
}

/// Why a file or directory with `metadata` must not be trusted: owned by another user than
/// this process's effective user, or writable by its group or by others.
fn unsafe_owner_or_mode(metadata: &std::fs::Metadata) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let me = unsafe { libc::geteuid() };
    let mode = metadata.mode() & 0o7777;
    if metadata.uid() != me {
        Some(format!(
            "it is owned by uid {}, not by this process's uid {me}",
            metadata.uid()
        ))
    } else if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and by others",
            (true, false) => "its group",
            _ => "others",
        };
        Some(format!("it is writable by {who} (mode {mode:04o})"))
    } else {
        None
    }
}

/// A new uniquely named temporary file in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}.cwasm", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
