//! Test plugin: declares the verb `escalate`, which `kubewasm:controller@0.2.0` does not have.
//!
//! It is built against the repository's `wit/` with one extra case in the `verb` enum (made by
//! `build.rs` on every build, so the rest is always the real contract; a component can only
//! name an unknown verb that way), so the host must refuse to load it.
#![allow(unsafe_code)]

wit_bindgen::generate!({ world: "plugin", path: concat!(env!("OUT_DIR"), "/wit") });

use exports::kubewasm::controller::reconciler::{
    Action, Guest, Manifest, Permission, Reconciles, Request, Verb,
};
use kubewasm::controller::types::{Error, Kind};

struct UnknownVerb;

fn config_maps() -> Kind {
    Kind {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
    }
}

impl Guest for UnknownVerb {
    fn get_manifest() -> Manifest {
        Manifest {
            reconciles: Reconciles {
                kind: config_maps(),
                namespace: None,
                label_selector: None,
            },
            owns: vec![],
            watches: vec![],
            indexes: vec![],
            permissions: vec![Permission {
                kind: config_maps(),
                verbs: vec![Verb::Escalate],
            }],
            concurrency: 1,
            custom_resources: vec![],
            reuse_instances: false,
        }
    }

    fn reconcile(_request: Request) -> Result<Action, Error> {
        Ok(Action::Done)
    }
}

export!(UnknownVerb);
