//! Runs the benchmark suite in smoke mode (tiny sizes) and checks the report's shape: every
//! figure present with a measured kubewasm side and a measured native side, and a measured Go
//! side (tools/bench-go-peer) where the Go peer has an equivalent. No timing is asserted; the
//! one behaviour checked is that 3 plugins on one kind open one watch.

use std::path::PathBuf;
use std::process::Command;

const FIGURES: &[&str] = &[
    "cache.get.raw",
    "cache.get.decoded",
    "cache.get.fields",
    "cache.get.decoded_vs_serde",
    "list.namespace.raw",
    "list.namespace.decoded",
    "list.namespace.fields",
    "list.index.raw",
    "list.index.decoded",
    "list.index.fields",
    "list.label.raw",
    "list.label.decoded",
    "list.label.fields",
    "list.namespace.keys",
    "list.index.keys",
    "list.label.keys",
    "list.namespace.count",
    "list.index.count",
    "list.label.count",
    "list.namespace.decoded_vs_serde",
    "reconcile.noop.throughput",
    "reconcile.noop.throughput.cpu_per_key",
    "reconcile.realistic.throughput",
    "reconcile.realistic.throughput.cpu_per_key",
    "event.latency",
    "reload.cold",
    "reload.cached",
    "reload.cached.in_place",
    "memory.rss",
    "startup.ready",
    "memory.rss_per_pod",
    "memory.store_bytes_per_object",
    "memory.idle_per_plugin",
    "watch.connections",
];

/// The figures the Go peer (tools/bench-go-peer) has no equivalent of; it measures every other
/// one of [`FIGURES`].
const NOT_GO: &[&str] = &[
    "event.latency",
    "reload.cold",
    "reload.cached",
    "reload.cached.in_place",
    "memory.store_bytes_per_object",
    "watch.connections",
];

/// Go figures that are differences of two RSS readings: measured, but any sign.
const GO_DELTAS: &[&str] = &["memory.rss_per_pod", "memory.idle_per_plugin"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn smoke_mode_reports_every_figure_with_a_kubewasm_and_a_native_side() {
    let plugins = root().join("target/test-plugins");
    for plugin in ["bench", "bench-peer-ops"] {
        let path = plugins.join(format!("{plugin}.wasm"));
        assert!(
            path.is_file(),
            "{} is missing: build the plugins with `cargo xtask plugins`",
            path.display()
        );
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_kubewasm-bench"));
    let kubewasm = bench.with_file_name("kubewasm");
    assert!(
        kubewasm.is_file(),
        "{} is missing: build it with `cargo build -p kubewasm`",
        kubewasm.display()
    );
    let go_peer = root().join("target/bench-go-peer/bench-go-peer");
    assert!(
        go_peer.is_file(),
        "{} is missing: `cargo xtask test` builds it, or `cd tools/bench-go-peer && go build -o ../../target/bench-go-peer/bench-go-peer .`",
        go_peer.display()
    );
    let out = tempfile::tempdir().expect("a temp dir");
    let json = out.path().join("results.json");
    let output = Command::new(&bench)
        .args(["--mode", "smoke", "--json"])
        .arg(&json)
        .arg("--plugins")
        .arg(&plugins)
        .arg("--kubewasm-bin")
        .arg(&kubewasm)
        .arg("--go-peer-bin")
        .arg(&go_peer)
        .output()
        .expect("kubewasm-bench runs");
    assert!(
        output.status.success(),
        "kubewasm-bench --mode smoke failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("| # | figure |"),
        "a table is printed:\n{table}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report is written"))
            .expect("the report is JSON");
    assert_eq!(report["mode"], "smoke");
    assert!(report["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    assert!(report["timestamp"].as_str().is_some_and(|t| !t.is_empty()));
    let figures = report["figures"].as_array().expect("a figure list");
    for id in FIGURES {
        let figure = figures
            .iter()
            .find(|f| f["id"] == *id)
            .unwrap_or_else(|| panic!("figure {id} is missing from the report"));
        for side in ["kubewasm", "native"] {
            let summary = &figure[side]["summary"];
            assert!(
                summary["n"].as_u64().unwrap_or(0) >= 1 && summary["p50"].is_number(),
                "figure {id} has no measured {side} side: {}",
                figure[side]
            );
            assert!(
                figure[side]["label"]
                    .as_str()
                    .is_some_and(|l| !l.is_empty())
            );
        }
        // A memory delta can come out at or below zero on a noisy machine: no ratio then.
        let native_positive = figure["native"]["summary"]["p50"]
            .as_f64()
            .is_some_and(|v| v > 0.0);
        assert_eq!(
            figure["ratio"].is_number(),
            native_positive,
            "figure {id} has a ratio exactly when the native median is positive"
        );
    }
    // The Go peer's column: every figure it has an equivalent of is measured, with a positive
    // median (times, rates, RSS) and a kubewasm / Go ratio; the RSS deltas may be of any sign.
    assert!(
        table.contains("Go (client-go)"),
        "the table has a Go column:\n{table}"
    );
    let go_figures: Vec<&str> = FIGURES
        .iter()
        .copied()
        .filter(|id| !NOT_GO.contains(id) && !GO_DELTAS.contains(id))
        .collect();
    for id in go_figures.iter().chain(GO_DELTAS) {
        let figure = figures
            .iter()
            .find(|f| f["id"] == *id)
            .unwrap_or_else(|| panic!("figure {id} is missing from the report"));
        let go = &figure["go"];
        assert!(
            go["summary"]["n"].as_u64().unwrap_or(0) >= 1 && go["summary"]["p50"].is_number(),
            "figure {id} has no measured Go side: {go}"
        );
        assert!(go["label"].as_str().is_some_and(|l| !l.is_empty()));
        if go_figures.contains(id) {
            assert!(
                go["summary"]["min"].as_f64().is_some_and(|v| v > 0.0),
                "figure {id}'s Go side is not positive: {go}"
            );
            assert!(
                figure["ratio_go"].is_number(),
                "figure {id} has a kubewasm / Go ratio"
            );
        }
    }
    // The Go peer's process holds a Go runtime, client-go and its caches: more than 1 MiB.
    let rss = figures
        .iter()
        .find(|f| f["id"] == "memory.rss")
        .expect("the RSS row");
    assert!(
        rss["go"]["summary"]["p50"]
            .as_f64()
            .is_some_and(|v| v > 1.0)
    );
    // Figures without a Go equivalent have no Go side rather than a made-up one.
    let reload = figures
        .iter()
        .find(|f| f["id"] == "reload.cold")
        .expect("the cold reload row");
    assert!(reload.get("go").is_none(), "{reload}");

    // Only the full mode caches 100k Pods; the smoke report says so rather than leaving it out.
    let big = figures
        .iter()
        .find(|f| f["id"] == "memory.rss.100k_pods")
        .expect("the 100k-Pod row is listed");
    assert!(
        big["kubewasm"]["not_measured"]
            .as_str()
            .is_some_and(|w| w.contains("full mode"))
    );
    // The binary's size has no native peer to weigh; the one the bench runs is always measured,
    // with its profile named.
    let size = figures
        .iter()
        .find(|f| f["id"] == "binary.size")
        .expect("the binary size row");
    assert!(
        size["kubewasm"]["summary"]["p50"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
    assert!(
        size["kubewasm"]["label"]
            .as_str()
            .is_some_and(|l| l.contains("profile"))
    );
    let dist = figures
        .iter()
        .find(|f| f["id"] == "binary.size.dist")
        .expect("the dist binary size row");
    assert!(
        dist["kubewasm"]["summary"].is_object() || dist["kubewasm"]["not_measured"].is_string(),
        "the dist row is measured or says why not: {}",
        dist["kubewasm"]
    );
    let watches = figures
        .iter()
        .find(|f| f["id"] == "watch.connections")
        .expect("the watch figure");
    assert_eq!(
        watches["kubewasm"]["summary"]["p50"], 1.0,
        "plugins on one kind share one watch"
    );
    assert_eq!(watches["met"], true);
}
