//! The fault suite's summary table: the rows the `fault_*` tests recorded under
//! `target/tmp/fault-suite/`, printed after the tests ran.

use std::fs;
use std::path::{Path, PathBuf};

/// The folder the fault tests write their rows to (see `host/tests/all/support/fault_report.rs`).
pub fn rows_dir(root: &Path) -> PathBuf {
    root.join("target/tmp/fault-suite")
}

/// Removes the rows of an earlier run, so the table shows this run only.
pub fn clear(root: &Path) {
    let _ = fs::remove_dir_all(rows_dir(root));
}

/// Prints the summary table; says so when no fault test recorded a row.
pub fn print_summary(root: &Path) {
    let dir = rows_dir(root);
    let mut rows: Vec<[String; 5]> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .map(|row| {
            let text = |k: &str| row[k].as_str().unwrap_or("").to_string();
            let lost = row["objects_lost"]
                .as_u64()
                .map_or("-".to_string(), |n| n.to_string());
            [
                text("area"),
                text("scenario"),
                text("injected"),
                text("outcome"),
                lost,
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("==> fault suite: no rows recorded in {}", dir.display());
        return;
    }
    rows.sort();
    let header = ["area", "scenario", "injected", "outcome", "objects lost"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("==> fault suite summary ({} scenarios)", rows.len());
    println!("{}", line(header));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for r in &rows {
        println!(
            "{}",
            line([&r[0], &r[1], &r[2], &r[3], &r[4]].map(String::as_str))
        );
    }
}
