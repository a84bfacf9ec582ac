//! Builds the Python plugins (`plugins/python/<name>/app.py`) with componentize-py into
//! `target/plugins/<name>.wasm`, and the Python test plugins (`plugins/python/testing/<name>/`)
//! into `target/test-plugins/<name>.wasm`.
//!
//! componentize-py comes from PyPI, pinned, into a project-local venv (`target/python-venv`),
//! so the user's Python installation is never touched. Both steps are cached: the venv is
//! rebuilt only when the pinned version changes, a component only when a file of its plugin
//! folder, the WIT or the tool is newer than it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{PluginSource, Result, run, scan_plugins};

/// The componentize-py release the Python plugins are built with. Changing it rebuilds the
/// venv and every Python plugin.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The module componentize-py wraps: `app.py` in each plugin folder.
const APP_MODULE: &str = "app";

/// The Python plugins: folders under `plugins/python/` (and `plugins/python/testing/`) with an
/// `app.py`.
fn python_plugins(root: &Path) -> Result<Vec<PluginSource>> {
    scan_plugins(root, "plugins/python", |path| {
        Ok(path.join(format!("{APP_MODULE}.py")).is_file())
    })
}

/// Builds every Python plugin that is out of date. `rust_plugins` are the components the
/// Rust build already wrote: a Python plugin may not overwrite one.
pub(crate) fn build_plugins(root: &Path, rust_plugins: &[PathBuf]) -> Result {
    let plugins = python_plugins(root)?;
    if plugins.is_empty() {
        return Ok(());
    }
    for p in &plugins {
        let dest = p.out_dir.join(format!("{}.wasm", p.name));
        if rust_plugins.contains(&dest) {
            return Err(format!(
                "{} and a Rust plugin would both build {}: rename one",
                p.dir.display(),
                dest.display()
            ));
        }
    }
    let tool = ensure_componentize_py(&root.join("target/python-venv"))?;
    let wit = root.join("wit");
    for p in &plugins {
        let out_dir = &p.out_dir;
        fs::create_dir_all(out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
        let dest = out_dir.join(format!("{}.wasm", p.name));
        let newest_input = [newest_mtime(&p.dir)?, newest_mtime(&wit)?, mtime(&tool)]
            .into_iter()
            .flatten()
            .max();
        if let (Some(built), Some(input)) = (mtime(&dest), newest_input)
            && built >= input
        {
            eprintln!("==> Python plugin {} is up to date", p.name);
            continue;
        }
        // Write to a temporary name and rename, so a host watching the folder never sees half a file.
        let tmp = out_dir.join(format!(".{}.wasm.tmp", p.name));
        let mut cmd = Command::new(&tool);
        cmd.arg("--quiet")
            .arg("--wit-path")
            .arg(&wit)
            .args(["--world", "plugin", "componentize", APP_MODULE])
            .arg("--python-path")
            .arg(&p.dir)
            .arg("--output")
            .arg(&tmp)
            // Only the plugin folder goes into the component, never an activated venv.
            .env_remove("VIRTUAL_ENV");
        run(
            &format!("building Python plugin {} (componentize-py)", p.name),
            &mut cmd,
        )?;
        fs::rename(&tmp, &dest).map_err(|e| format!("renaming to {}: {e}", dest.display()))?;
    }
    Ok(())
}

/// Returns the venv's `componentize-py`, creating the venv and installing the pinned release
/// first when needed.
fn ensure_componentize_py(venv: &Path) -> Result<PathBuf> {
    let tool = venv.join("bin/componentize-py");
    let python = venv.join("bin/python");
    // Records which release the venv holds; written only after a successful install.
    let stamp = venv.join("kubewasm-componentize-py.txt");
    // `python` is a symlink to the interpreter the venv was made with: when that interpreter
    // is gone (uninstalled, upgraded), `is_file` is false and the venv is made again.
    if tool.is_file()
        && python.is_file()
        && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == COMPONENTIZE_PY)
    {
        return Ok(tool);
    }
    let version = Command::new("python3").arg("--version").output().map_err(|e| {
        format!(
            "python3 (3.9 or newer) is needed to build the Python plugins in plugins/python, \
             but it could not be run: {e}. Install it (Debian/Ubuntu: apt-get install python3 python3-venv)"
        )
    })?;
    if !version.status.success() {
        return Err(format!(
            "`python3 --version` failed ({}): python3 3.9 or newer is needed to build the Python plugins",
            version.status
        ));
    }
    // `--clear`: a venv left half-made by an earlier failure (no pip, no tool) starts over.
    run(
        &format!("creating the Python venv {}", venv.display()),
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )
    .map_err(|e| {
        format!(
            "{e}: python3's venv module (with ensurepip) is needed to build the Python plugins \
             (Debian/Ubuntu: apt-get install python3-venv)"
        )
    })?;
    run(
        &format!("installing {COMPONENTIZE_PY} from PyPI into the venv"),
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            COMPONENTIZE_PY,
        ]),
    )
    .map_err(|e| format!("{e}: pip could not install {COMPONENTIZE_PY} (is PyPI reachable?)"))?;
    if !tool.is_file() {
        return Err(format!(
            "installing {COMPONENTIZE_PY} did not produce {}",
            tool.display()
        ));
    }
    fs::write(&stamp, COMPONENTIZE_PY).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(tool)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files under `dir` (skipping `__pycache__`).
fn newest_mtime(dir: &Path) -> Result<Option<SystemTime>> {
    let mut newest = mtime(dir);
    let entries = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let path = entry.path();
        let t = if path.is_dir() {
            if entry.file_name() == "__pycache__" {
                continue;
            }
            newest_mtime(&path)?
        } else {
            mtime(&path)
        };
        newest = newest.max(t);
    }
    Ok(newest)
}
