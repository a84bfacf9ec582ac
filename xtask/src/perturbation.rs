//! The perturbation suite's table (plugin × perturbation), from the rows the tests in
//! `host/tests/all/perturbation.rs` wrote under `target/perturbation/`, printed after the tests.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the tests write one table per plugin (`<plugin>.md`).
fn dir(root: &Path) -> PathBuf {
    root.join("target/perturbation")
}

/// Removes the tables of an earlier run, so the table shows this run only.
pub fn clear(root: &Path) {
    let _ = fs::remove_dir_all(dir(root));
}

/// Merges the per-plugin tables into `target/perturbation/table.md` and prints it; says so when
/// no perturbation test wrote one.
pub fn print_table(root: &Path) {
    let dir = dir(root);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "table.md"))
        .collect();
    files.sort();
    let mut header: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_default();
        let mut lines = text.lines();
        let head: Vec<String> = lines.by_ref().take(2).map(str::to_owned).collect();
        if header.is_empty() {
            header = head;
        }
        rows.extend(lines.filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    if rows.is_empty() {
        eprintln!("==> perturbation suite: no table (its tests did not run)");
        return;
    }
    let table = format!("{}\n{}\n", header.join("\n"), rows.join("\n"));
    let path = dir.join("table.md");
    let _ = fs::write(&path, &table);
    eprintln!(
        "==> perturbation suite (plugin × perturbation; {}):\n{table}",
        path.display()
    );
}
