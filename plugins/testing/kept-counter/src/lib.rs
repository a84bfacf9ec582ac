//! Test plugin: counts its reconciles in a global, with `reuse-instances` on, so tests see
//! that the count grows across keys on a kept instance and starts again at 1 on a fresh one
//! (`host/tests/all/kept_instances.rs`).
//!
//! Every reconcile adds one to the count and writes `reconcile <count> of <name>` to stderr;
//! then, by the request's name:
//! - `panic`: panics (a trap);
//! - `spin`: computes forever (the deadline);
//! - `busy`: computes for 200 ms, then answers as below (the host's epoch ticks let another
//!   reconcile run meanwhile);
//! - `grow`: keeps another 4 MiB in a global, so the kept instance's memory grows until the
//!   memory cap refuses it (a trap reported as the cap);
//! - `err`: returns the plugin's own error `conflict("count <count>")` (not a fault);
//! - `read`: reads the ConfigMap `<namespace>/read` from the host's cache: found, as
//!   below; missing, `done` (so tests see which backend the reconcile read);
//! - anything else: `requeue-after` of `<count>` nanoseconds, which is how tests read the count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kubewasm_sdk::{Action, Api, Error, Manifest, Plugin, Request, Result};

/// Reconciles this instance has run.
static COUNT: AtomicU64 = AtomicU64::new(0);
/// What `grow` keeps.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct KeptCounter;

impl Plugin for KeptCounter {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .concurrency(2)
            .reuse_instances(true)
    }

    fn reconcile(req: Request) -> Result<Action> {
        let count = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("reconcile {count} of {}", req.name);
        match req.name.as_str() {
            "panic" => panic!("panicked on purpose at reconcile {count}"),
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "busy" => {
                let started = std::time::Instant::now();
                let mut n = 0u64;
                while started.elapsed() < Duration::from_millis(200) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let block = vec![1u8; 4 << 20];
                KEPT.lock()
                    .map_err(|_| Error::Other("poisoned".into()))?
                    .push(block);
            }
            "err" => return Err(Error::Conflict(format!("count {count}"))),
            "read" => {
                let found = Api::<ConfigMap>::namespaced(&req.namespace).get(&req.name)?;
                if found.is_none() {
                    return Ok(Action::done());
                }
            }
            _ => {}
        }
        Ok(Action::requeue(Duration::from_nanos(count)))
    }
}

kubewasm_sdk::export_plugin!(KeptCounter);
