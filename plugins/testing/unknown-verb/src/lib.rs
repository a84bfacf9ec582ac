//! Test plugin: declares the verb `escalate`, which `kubewasm:controller@0.1.0` does not have.
//!
//! It is built against `wit/`, a copy of the contract whose `verb` enum has that extra case
//! (the only way a component can name an unknown verb), so the host must refuse to load it.
#![allow(unsafe_code)]

wit_bindgen::generate!({ world: "plugin", path: "wit" });

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
        plural: None,
        namespaced: true,
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
        }
    }

    fn reconcile(_request: Request) -> Result<Action, Error> {
        Ok(Action::Done)
    }
}

export!(UnknownVerb);
