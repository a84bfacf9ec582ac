//! Perturbation tests (the engine of `kubewasm test-plugin`): every shipped scenario on every
//! example plugin converges under every perturbation, and the planted bug is caught by exactly
//! the perturbation that should catch it. Each test writes its plugin's rows of the suite table
//! to `target/perturbation/<plugin>.md`; `cargo xtask test` prints them together.

use std::path::{Path, PathBuf};

use kubewasm::perturb::{self, Options, Perturbation, Scenario, ScenarioReport, Verdict};
use kubewasm::runtime::{Runtime, RuntimeConfig};

use crate::support;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The scenarios shipped for example `plugin`: `examples/scenarios/<plugin>.yaml` and
/// `<plugin>-*.yaml`.
fn scenarios_of(plugin: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/scenarios"))
        .expect("examples/scenarios is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            p.extension().is_some_and(|e| e == "yaml")
                && (stem == plugin || stem.starts_with(&format!("{plugin}-")))
        })
        .collect();
    found.sort();
    found
}

/// A runtime with the production limits (the Python example needs more than the fault
/// tests' small memory cap) and the tests' shared compile cache.
fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        compile_cache_dir: support::config().compile_cache_dir,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts")
}

/// Runs every scenario in `scenarios` on the plugin at `path` and writes the rows to
/// `target/perturbation/<name>.md`.
async fn run_all(name: &str, path: &Path, scenarios: &[PathBuf]) -> Vec<ScenarioReport> {
    let runtime = runtime();
    let mut reports = Vec::new();
    for file in scenarios {
        let scenario = Scenario::from_file(file).unwrap_or_else(|e| panic!("{e}"));
        let report = perturb::test_plugin(&runtime, path, &scenario, &Options::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{}", report.table());
        reports.push(report);
    }
    let dir = repo().join("target/perturbation");
    std::fs::create_dir_all(&dir).expect("target/perturbation can be made");
    std::fs::write(
        dir.join(format!("{name}.md")),
        perturb::suite_table(&reports),
    )
    .expect("the table is written");
    reports
}

async fn example_converges_under_every_perturbation(plugin: &str) {
    let scenarios = scenarios_of(plugin);
    assert!(
        !scenarios.is_empty(),
        "no scenario for example {plugin} in examples/scenarios"
    );
    let reports = run_all(plugin, &support::example(plugin), &scenarios).await;
    for report in &reports {
        // Every perturbation family ran (a crash run needs a clean run that wrote).
        for wanted in [
            Perturbation::StaleView,
            Perturbation::MissedEvents,
            Perturbation::DuplicateEvents,
            Perturbation::ReorderedEvents,
            Perturbation::CrashAfterWrite(1),
        ] {
            assert!(
                report.runs.iter().any(|r| r.perturbation == wanted),
                "{plugin} / {}: no {wanted} run (the clean run: {:?})\n{}",
                report.scenario,
                report.runs[0].verdict,
                report.table()
            );
        }
        assert!(
            report.passed(),
            "{plugin} / {}: a perturbation changed the end state\n{}",
            report.scenario,
            report.table()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_mirror_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("configmap-mirror").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pods_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("node-pods").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediscluster_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("rediscluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_schedule_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("scale-schedule").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_labeler_converges_under_every_perturbation() {
    example_converges_under_every_perturbation("labeler").await;
}

/// A new example without a scenario fails here, so the suite covers every example.
#[test]
fn every_example_plugin_has_a_scenario_and_every_scenario_parses() {
    let built = repo().join("target/plugins");
    let mut examples: Vec<String> = std::fs::read_dir(&built)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask plugins` first", built.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    examples.sort();
    assert!(examples.len() >= 6, "examples built: {examples:?}");
    for example in &examples {
        let scenarios = scenarios_of(example);
        assert!(!scenarios.is_empty(), "example {example} has no scenario");
        for s in scenarios {
            Scenario::from_file(&s).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// The planted bug (a mark written before the object it reports) survives a clean run, a stale
/// view and mangled watch events; only a crash between its two writes loses the copy for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planted_bug_is_caught_by_exactly_a_crash_between_its_two_writes() {
    let scenario = repo().join("plugins/testing/planted-bug/scenarios/copies.yaml");
    let reports = run_all(
        "planted-bug",
        &support::test_plugin("planted-bug"),
        &[scenario],
    )
    .await;
    let report = &reports[0];
    let table = report.table();
    assert_eq!(report.runs[0].perturbation, Perturbation::None, "{table}");
    let mut caught = 0;
    for run in &report.runs {
        match (run.perturbation, &run.verdict) {
            (Perturbation::CrashAfterWrite(1), Verdict::EndStateDiffers(diffs)) => {
                assert!(
                    diffs.iter().any(|d| d.ends_with("-copy: missing")),
                    "{table}"
                );
                caught += 1;
            }
            (Perturbation::CrashAfterWrite(1), other) => {
                panic!("a crash after the mark should lose the copy, got {other:?}\n{table}")
            }
            (_, verdict) => assert!(
                verdict.converged(),
                "{} should not disturb this plugin\n{table}",
                run.perturbation
            ),
        }
    }
    assert_eq!(caught, 1, "{table}");
    assert!(
        report
            .runs
            .iter()
            .any(|r| r.perturbation == Perturbation::CrashAfterWrite(2)),
        "{table}"
    );
    assert!(!report.passed());
}

/// `kubewasm test-plugin` on the planted bug: the table on stdout names the run that broke the
/// end state, and the exit code is non-zero.
#[test]
fn test_plugin_prints_the_table_and_fails_when_a_perturbation_breaks_the_end_state() {
    let scenario = repo().join("plugins/testing/planted-bug/scenarios/copies.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("test-plugin")
        .arg(support::test_plugin("planted-bug"))
        .arg("--scenario")
        .arg(&scenario)
        .args(["--only", "crash", "--max-crash-points", "1"])
        .output()
        .expect("kubewasm runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| none (clean run) | converged |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| crash after write 1 | end state differs |")
            && stdout.contains("settings-copy: missing"),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 of 2 runs did not reach the expected end state"),
        "{stderr}"
    );
    // The crashes it causes on purpose are in the table, not logged as warnings around it.
    assert!(
        !stderr.contains("WARN") && !stderr.contains("trapped"),
        "{stderr}"
    );
}

/// A scenario with a typo is refused before anything runs, naming the file and the field.
#[test]
fn test_plugin_refuses_a_bad_scenario_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apply: []\nexpect:\n  present:\n    - {apiVersion: v1, kind: ConfigMap, nme: x}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .arg("test-plugin")
        .arg(support::test_plugin("planted-bug"))
        .arg("--scenario")
        .arg(&bad)
        .output()
        .expect("kubewasm runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml is not valid") && stderr.contains("unknown field `nme`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
