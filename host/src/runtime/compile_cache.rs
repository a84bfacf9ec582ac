//! [`CompileCache`]: compiled components on disk, keyed by content hash and engine
//! compatibility, so a restart or a reload of an unchanged plugin does not recompile.

use std::hash::{Hash, Hasher};
use std::io::Write;
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
    /// A cache in `dir`, created if missing.
    ///
    /// # Errors
    /// [`CompileCacheError::CreateDir`] when the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, CompileCacheError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| CompileCacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
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
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be a component serialized by this
        // engine configuration. Only this cache writes into its directory, each file is
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
