//! Write Kubernetes reconcilers as kubewasm WebAssembly plugins.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. It implements [`Plugin`] — a
//! [`Manifest`] of what it needs and a `reconcile` function — and exports it with
//! [`export_plugin!`]. Reads ([`get`], [`list`], [`list_by_index`], and their projected forms
//! [`get_fields`], [`list_fields`], [`list_by_index_fields`]) come from the host's informer
//! cache; writes ([`create`], [`replace`], [`patch`], [`apply`], [`delete`]) go to the API
//! server; [`event`] records a Kubernetes Event; [`log`] writes to the host's log.
//! Every call is checked against the manifest: an undeclared kind or verb returns
//! [`Error::Forbidden`].
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubewasm_sdk::{Action, Event, Manifest, Patch, Plugin, Request, Result, Verb};
//! use serde_json::json;
//!
//! struct Stamp;
//!
//! impl Plugin for Stamp {
//!     fn manifest() -> Manifest {
//!         Manifest::reconcile::<ConfigMap>().permit::<ConfigMap>(&[Verb::Patch])
//!     }
//!
//!     fn reconcile(req: Request) -> Result<Action> {
//!         let Some(cm) = kubewasm_sdk::get::<ConfigMap>(&req.namespace, &req.name)? else {
//!             return Ok(Action::done()); // deleted meanwhile
//!         };
//!         let keys = cm.data.map_or(0, |d| d.len());
//!         let patch = Patch::merge(json!({"metadata": {"annotations": {"keys": keys.to_string()}}}))?;
//!         let cm: ConfigMap = kubewasm_sdk::patch(&req.namespace, &req.name, &patch)?;
//!         kubewasm_sdk::event(&cm, &Event::normal("Stamped", format!("{keys} keys")))?;
//!         Ok(Action::requeue(Duration::from_secs(300)))
//!     }
//! }
//!
//! kubewasm_sdk::export_plugin!(Stamp);
//! # fn main() {}
//! ```
//!
//! Start with [`Plugin`] and [`Manifest`]; `docs/writing-plugins.md` walks through the rest.
//!
//! **Testing.** With the cargo feature `testing` (in your dev-dependencies), the module
//! `kubewasm_sdk::testing` provides `FakeHost`: an in-memory cluster that serves the SDK's
//! calls in a native `cargo test`, so you can seed objects, run `reconcile`, and inspect
//! writes, Events and logs, or inject errors. In a native build without it, every call
//! returns [`Error::Internal`] saying so. Scaffold a plugin with tests:
//! `kubewasm plugin new NAME`.
#![warn(missing_docs)]

extern crate self as kubewasm_sdk;

pub mod bindings;

mod api;
mod data;
mod error;
pub mod log;
mod manifest;
mod object;
mod reconcile;
mod sys;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use api::{
    Patch, apply, create, delete, event, event_for, get, get_fields, get_fields_raw, get_raw, list,
    list_by_index, list_by_index_fields, list_by_index_fields_raw, list_by_index_raw, list_fields,
    list_fields_raw, list_raw, patch, patch_status, replace, replace_status,
};
pub use data::Event;
pub use error::{Error, Result};
pub use manifest::{Manifest, Verb, WatchMapping};
pub use object::{Kind, Object, Scope};
pub use reconcile::{Action, ObjectRef, Plugin, Reason, Request};

/// Re-exported so plugins need no direct dependency on it.
pub use k8s_openapi;
/// Re-exported so plugins need no direct dependency on it.
pub use serde_json;

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::exports::kubewasm::controller::reconciler as wit;
    use crate::bindings::kubewasm::controller::types::Error as WitError;

    pub fn manifest<P: crate::Plugin>() -> wit::Manifest {
        P::manifest().into_wit()
    }

    pub fn reconcile<P: crate::Plugin>(request: wit::Request) -> Result<wit::Action, WitError> {
        P::reconcile(request.into())
            .map(Into::into)
            .map_err(Into::into)
    }
}

/// Exports a [`Plugin`] implementation as the component's `reconciler` interface.
///
/// Use it once, at the crate root of the plugin: `kubewasm_sdk::export_plugin!(MyPlugin);`
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __KubewasmPlugin;

            impl $crate::bindings::exports::kubewasm::controller::reconciler::Guest
                for __KubewasmPlugin
            {
                fn get_manifest()
                -> $crate::bindings::exports::kubewasm::controller::reconciler::Manifest {
                    $crate::__private::manifest::<$plugin>()
                }

                fn reconcile(
                    request: $crate::bindings::exports::kubewasm::controller::reconciler::Request,
                ) -> ::core::result::Result<
                    $crate::bindings::exports::kubewasm::controller::reconciler::Action,
                    $crate::bindings::kubewasm::controller::types::Error,
                > {
                    $crate::__private::reconcile::<$plugin>(request)
                }
            }

    $crate::bindings::export!(__KubewasmPlugin with_types_in $crate::bindings);
        };
    };
}
