//! [`Mode`]: how big each scenario is in a quick, full or smoke run.

use serde::Serialize;

/// quick (the default: about 3 minutes on 2 cores, 1 of them the Go peer), full (bigger
/// sizes), smoke (tiny: checks that every figure is produced, for CI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every figure at the sizes where they fit in 2 minutes.
    Quick,
    /// Bigger sizes and more samples (100k Pods for memory).
    Full,
    /// Tiny sizes; the numbers mean nothing, the shape of the report is what is checked.
    Smoke,
}

/// The sizes a mode uses.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Pods listed by the list figures (also the cache's size there).
    pub list_pods: usize,
    /// Timed calls per get figure.
    pub get_samples: usize,
    /// Timed calls per list figure.
    pub list_samples: usize,
    /// Keys per throughput round.
    pub throughput_keys: usize,
    /// Throughput rounds (each on a fresh API server).
    pub throughput_rounds: usize,
    /// Events per second of the latency writer.
    pub event_rate: u32,
    /// Seconds the latency writer runs per side.
    pub event_secs: u32,
    /// Distinct keys the latency writer spreads its events over.
    pub event_keys: usize,
    /// Hot reloads with a cold compile.
    pub reloads: usize,
    /// Hot reloads from a compile-cache hit, per way of writing the file (each costs a compile
    /// beforehand, but the reload itself is quick: enough for a p95 that is not just the max).
    pub cached_reloads: usize,
    /// Pods cached for the memory figures; the first is also the startup size.
    pub memory_pods: Vec<usize>,
    /// Plugins (and native controllers) loaded for the memory figures.
    pub memory_plugins: usize,
    /// Startup runs per side.
    pub startup_runs: usize,
    /// Plugins on one kind for the watch-count figure.
    pub watch_plugins: usize,
}

impl Mode {
    /// The sizes of this mode.
    pub fn sizes(self) -> Sizes {
        match self {
            Self::Quick => Sizes {
                list_pods: 1000,
                get_samples: 2000,
                list_samples: 100,
                throughput_keys: 10_000,
                throughput_rounds: 3,
                event_rate: 1000,
                event_secs: 3,
                event_keys: 1000,
                reloads: 3,
                cached_reloads: 10,
                memory_pods: vec![10_000],
                memory_plugins: 10,
                startup_runs: 2,
                watch_plugins: 50,
            },
            Self::Full => Sizes {
                list_pods: 1000,
                get_samples: 20_000,
                list_samples: 500,
                throughput_keys: 50_000,
                throughput_rounds: 5,
                event_rate: 1000,
                event_secs: 10,
                event_keys: 1000,
                reloads: 5,
                cached_reloads: 20,
                memory_pods: vec![10_000, 100_000],
                memory_plugins: 10,
                startup_runs: 5,
                watch_plugins: 50,
            },
            Self::Smoke => Sizes {
                list_pods: 20,
                get_samples: 20,
                list_samples: 5,
                throughput_keys: 20,
                throughput_rounds: 1,
                event_rate: 100,
                event_secs: 1,
                event_keys: 20,
                reloads: 1,
                cached_reloads: 1,
                memory_pods: vec![50],
                memory_plugins: 2,
                startup_runs: 1,
                watch_plugins: 3,
            },
        }
    }
}
