//! The fault suite's summary rows: each fault test records what it injected, what came of
//! it and how many objects were lost; `cargo xtask test` prints them as one table.
//!
//! Rows are JSON files under `target/tmp/fault-suite/` (one per row, so tests running in
//! parallel processes never share a file). `cargo xtask test` clears the folder first.

use std::path::PathBuf;

/// Where rows go: `target/tmp/fault-suite`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-suite")
}

/// One row of the summary table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// The area of the suite: `plugin faults`, `api chaos`, `bad plugin files`,
    /// `sandbox`, `policy`, `conflicts`.
    pub area: String,
    /// The scenario, e.g. `panic`.
    pub scenario: String,
    /// What was injected, in a few words.
    pub injected: String,
    /// What the host did about it, in a few words (with figures where there are any).
    pub outcome: String,
    /// Objects that did not reach their desired state, or whose write was lost
    /// (`None` where the scenario has no objects at stake).
    pub objects_lost: Option<u64>,
}

/// Records one row of the summary table. Call it after the scenario's assertions passed,
/// so a row in the table means the scenario held.
///
/// # Panics
/// When the row cannot be written (the table would silently miss it otherwise).
pub fn record(
    area: &str,
    scenario: &str,
    injected: &str,
    outcome: &str,
    objects_lost: Option<u64>,
) {
    let row = Row {
        area: area.into(),
        scenario: scenario.into(),
        injected: injected.into(),
        outcome: outcome.into(),
        objects_lost,
    };
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("the fault-suite folder can be created");
    let slug: String = format!("{area}-{scenario}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{slug}.json"));
    let json = serde_json::to_vec_pretty(&row).expect("a row serializes");
    std::fs::write(&path, json).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    println!(
        "fault suite | {area} | {scenario} | {injected} | {outcome} | lost: {}",
        objects_lost.map_or("-".to_string(), |n| n.to_string())
    );
}
