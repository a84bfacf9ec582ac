//! The scenario groups, one file each, and what they share.

pub mod binary;
pub mod cache;
pub mod memory;
pub mod reconcile;
pub mod reload;
pub mod watches;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use kubewasm::runtime::{Plugin, Runtime, RuntimeConfig};

use crate::gopeer::GoPeer;
use crate::mode::{Mode, Sizes};
use crate::probe::Probe;

/// The test plugin whose operations the cache figures call (owned by the host's fast-path work).
pub const CACHE_PLUGIN: &str = "bench";
/// The test plugin with the same logic as the native peer (reconciles ConfigMaps, caches Pods).
pub const PEER_PLUGIN: &str = "bench-peer-ops";
/// How many keys both sides reconcile at once (the plugin's manifest says 2; so does the peer).
pub const CONCURRENCY: u16 = 2;

/// What every scenario gets.
pub struct Ctx {
    /// The mode.
    pub mode: Mode,
    /// Its sizes.
    pub sizes: Sizes,
    /// `target/test-plugins`.
    pub test_plugins: PathBuf,
    /// The `kubewasm` binary (for the process figures).
    pub kubewasm_bin: PathBuf,
    /// This binary (its hidden `peer` subcommand is the native process).
    pub self_bin: PathBuf,
    /// The Go peer, or why it is missing (its columns then say so).
    pub go_peer: Result<GoPeer, String>,
    /// A compile cache shared by the in-process runtimes (warmed by the first load).
    pub compile_cache: PathBuf,
    /// Reports reconcile starts and ends.
    pub probe: Arc<Probe>,
}

impl Ctx {
    /// The Go peer, or why it is missing.
    pub fn go(&self) -> Result<&GoPeer, &str> {
        self.go_peer.as_ref().map_err(String::as_str)
    }

    /// The path of test plugin `name`; an error saying how to build it when it is missing.
    ///
    /// # Errors
    /// When the file does not exist.
    pub fn test_plugin(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.test_plugins.join(format!("{name}.wasm"));
        if !path.is_file() {
            bail!(
                "{} is missing: build the plugins with `cargo xtask plugins` (or run `cargo xtask bench`)",
                path.display()
            );
        }
        Ok(path)
    }

    /// A runtime with production settings and the shared compile cache.
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Runtime::new(RuntimeConfig {
            compile_cache_dir: Some(self.compile_cache.clone()),
            ..RuntimeConfig::default()
        })
        .context("starting the plugin runtime")
    }
}

/// Loads `path` as plugin `name` (the host names a plugin after its file).
///
/// # Errors
/// When the file cannot be read or the plugin does not load.
pub async fn load_as(runtime: &Runtime, path: &Path, name: &str) -> anyhow::Result<Plugin> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let named = path.with_file_name(format!("{name}.wasm"));
    runtime
        .load(&named, bytes)
        .await
        .with_context(|| format!("loading {} as {name}", path.display()))
}

/// Microseconds of a duration.
pub fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds of a duration.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
