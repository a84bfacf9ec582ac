//! Test plugin for the runtime benchmark: the request's name picks the operation.
//!
//! `noop`; `get-raw`/`get-decoded` read Pod `bench/pod-0`; `list-raw`/`list-decoded` list
//! every Pod in namespace `bench`.

use k8s_openapi::api::core::v1::Pod;
use kubewasm_sdk::{Action, Error, Manifest, Plugin, Request, Result};

struct Bench;

impl Plugin for Bench {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Pod>()
    }

    fn reconcile(req: Request) -> Result<Action> {
        match req.name.as_str() {
            "noop" => {}
            "get-raw" => {
                let raw = kubewasm_sdk::get_raw::<Pod>("bench", "pod-0")?;
                std::hint::black_box(raw.ok_or_else(|| Error::other("pod-0 missing"))?);
            }
            "get-decoded" => {
                let pod = kubewasm_sdk::get::<Pod>("bench", "pod-0")?;
                std::hint::black_box(pod.ok_or_else(|| Error::other("pod-0 missing"))?);
            }
            "list-raw" => {
                std::hint::black_box(kubewasm_sdk::list_raw::<Pod>("bench", "")?);
            }
            "list-decoded" => {
                let pods = kubewasm_sdk::list::<Pod>("bench", "")?;
                if pods.is_empty() {
                    return Err(Error::other("no pods"));
                }
                std::hint::black_box(pods);
            }
            other => return Err(Error::other(format!("bench: unknown operation {other}"))),
        }
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Bench);
