//! Test plugin for the fault suite: reconciles ConfigMaps in namespace `faulty` only, and the
//! ConfigMap's name picks the fault, so each fault runs on its own object beside healthy plugins.
//!
//! `panic`, `spin` (never returns), `memory-bomb` (allocates until the cap), `recursion` (stack
//! overflow), `huge-return` (an error message of `data.bytes` bytes, default 8 MiB), `huge-write`
//! (creates a ConfigMap whose data is `data.bytes` bytes, default 8 MiB), `host-call-loop`
//! (cache get + log in a tight loop forever), `print-loop` (`println!` forever: the host's 1 MiB
//! stdout pipe fills, the write fails and `println!` panics), `always-error`, `slow` (sleeps
//! `data.sleep_ms` milliseconds, then succeeds). Any other name succeeds at once.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{Action, Api, Error, Manifest, Plugin, Request, Result, Verb, log};

struct Faulty;

const DEFAULT_BYTES: usize = 8 << 20;

/// A number from the ConfigMap's data, or `default` when it is absent.
fn data_number(cm: Option<&ConfigMap>, key: &str, default: u64) -> Result<u64> {
    match cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get(key)) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|e| Error::Invalid(format!("data.{key} = {v:?} is not a number: {e}"))),
    }
}

#[inline(never)]
fn descend(depth: u64, pad: [u64; 8]) -> u64 {
    let pad = std::hint::black_box(pad);
    if depth == u64::MAX {
        return 0; // never: only here so the recursion is not unconditional
    }
    std::hint::black_box(descend(depth + 1, pad)) + pad[(depth % 8) as usize]
}

impl Plugin for Faulty {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .in_namespace("faulty")
            .permit::<ConfigMap>(&[Verb::Create])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let ns = req.namespace.as_str();
        let cms = Api::<ConfigMap>::namespaced(ns);
        let cm = cms.get(&req.name)?;
        let bytes = data_number(cm.as_ref(), "bytes", DEFAULT_BYTES as u64)? as usize;
        match req.name.as_str() {
            "panic" => panic!(
                "faulty plugin panicked on purpose while reconciling {ns}/{}",
                req.name
            ),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(req.name.len() as u64));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "recursion" => {
                let depth = descend(req.name.len() as u64, [1; 8]);
                Err(Error::other(format!("returned from depth {depth}")))
            }
            "huge-return" => Err(Error::other("E".repeat(bytes))),
            "huge-write" => {
                let child = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some("huge-write-child".into()),
                        namespace: Some(ns.to_owned()),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("blob".to_owned(), "w".repeat(bytes))])),
                    ..ConfigMap::default()
                };
                cms.create(&child)?;
                Ok(Action::done())
            }
            "host-call-loop" => {
                let mut n: u64 = 0;
                loop {
                    let again = cms.get_raw(&req.name)?;
                    n += std::hint::black_box(again.map_or(0, |b| b.len() as u64));
                    log::info(format!("host-call-loop: {n} bytes read so far"));
                }
            }
            "print-loop" => {
                let mut n: u64 = 0;
                loop {
                    n += 1;
                    println!("print-loop: line {n}");
                }
            }
            "always-error" => Err(Error::other(
                "always-error: this plugin fails every reconcile on purpose",
            )),
            "slow" => {
                let ms = data_number(cm.as_ref(), "sleep_ms", 1000)?;
                std::thread::sleep(Duration::from_millis(ms));
                Ok(Action::done())
            }
            _ => Ok(Action::done()),
        }
    }
}

kubewasm_sdk::export_plugin!(Faulty);
