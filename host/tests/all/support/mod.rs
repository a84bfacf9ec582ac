//! Shared helpers of the runtime integration tests: plugin paths, runtimes, kinds.

pub mod cluster;
pub mod example_e2e;
pub mod fault_report;
pub mod hello;
pub mod lagging_cluster;
pub mod logs;
pub mod mirror_chaos;
pub mod process;
pub mod real;
pub mod reconciles;
pub mod registry;
pub mod trespass;
pub mod wait;

pub use wait::eventually;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubewasm::runtime::{Kind, MemoryBackend, Plugin, Runtime, RuntimeConfig};

/// The compiled plugin `name` from `target/<dir>`; fails loudly when it was not built.
pub fn plugin_path(dir: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(dir)
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask plugins` first to build the plugins",
        path.display()
    );
    path
}

/// An example plugin from `plugins/`.
pub fn example(name: &str) -> PathBuf {
    plugin_path("plugins", name)
}

/// A fault or probe plugin from `plugins/testing/`.
pub fn test_plugin(name: &str) -> PathBuf {
    plugin_path("test-plugins", name)
}

/// Makes a FIFO at `path` (with `mkfifo`): a file a plain read would block on forever.
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A runtime whose compile cache is shared by the tests of this binary (a later test run
/// starts warm), with a short deadline and a small memory cap so fault tests finish fast.
pub fn runtime() -> Runtime {
    Runtime::new(config()).expect("the runtime starts")
}

pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        deadline: Duration::from_secs(2),
        memory_cap: 32 << 20,
        compile_cache_dir: Some(
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubewasm-compile-cache"),
        ),
        ..RuntimeConfig::default()
    }
}

pub async fn load(runtime: &Runtime, path: &Path) -> Plugin {
    match kubewasm::loader::load_file(runtime, path, kubewasm::loader::DEFAULT_MAX_PLUGIN_SIZE)
        .await
    {
        Ok(p) => p,
        Err(e) => panic!("loading {} failed: {e}", path.display()),
    }
}

pub fn configmaps() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
        namespaced: true,
    }
}

pub fn pods() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
        namespaced: true,
    }
}

pub fn backend() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::new())
}

/// The same component with a custom section appended: other bytes (another version), same
/// behaviour.
pub fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"kubewasm-test";
    let payload_len = 1 + name.len() + tag.len();
    assert!(payload_len < 128, "one-byte LEB128 sizes only");
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(u8::try_from(payload_len).expect("small"));
    out.push(u8::try_from(name.len()).expect("small"));
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// Writes `bytes` to a hidden temporary file beside `path`, then renames it over `path` (as a
/// deploy tool does, so a watcher never sees half a file).
pub fn replace_by_rename(path: &Path, bytes: &[u8]) {
    let dir = path.parent().expect("a folder");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("a name").to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename into place");
}
