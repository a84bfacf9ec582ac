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

/// The `.wasm` files directly in `dir`, sorted by name (hidden files skipped).
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
        if !hidden && path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every plugin file in `dir`, logging progress (compiling a plugin can take seconds).
/// Returns the plugins that loaded and the errors of those that did not.
///
/// # Errors
/// [`LoaderError::ReadDir`] when the folder cannot be read.
pub async fn load_dir(
    runtime: &Runtime,
    dir: &Path,
) -> Result<(Vec<Plugin>, Vec<LoadError>), LoaderError> {
    let files = plugin_files(dir)?;
    let mut plugins = Vec::new();
    let mut errors = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        tracing::info!(
            "loading plugin {}/{}: {} ({:.1} MB)",
            i + 1,
            files.len(),
            path.display(),
            size as f64 / 1e6
        );
        let started = Instant::now();
        match runtime.load(path).await {
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
                errors.push(e);
            }
        }
    }
    Ok((plugins, errors))
}
