//! Write Kubernetes reconcilers as kubewasm WebAssembly plugins.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. It implements [`Plugin`] — a
//! [`Manifest`] of what it needs and a `reconcile` function — and exports it with
//! [`export_plugin!`]. An [`Api<K>`](Api) reads objects of kind `K` from the host's informer
//! cache ([`get`](Api::get), [`list`](Api::list), [`keys`](Api::keys), [`count`](Api::count),
//! projected reads with [`get_fields`](Api::get_fields)) and writes them to the API server
//! ([`create`](Api::create), [`replace`](Api::replace), [`patch`](Api::patch) with a [`Patch`],
//! the `status` and `scale` subresources, [`delete`](Api::delete)); [`event`] records a
//! Kubernetes Event; [`log`] writes to the host's log. Every call is checked against the
//! manifest: an undeclared kind or verb returns [`Error::Forbidden`].
//!
//! Helpers for the usual controller chores: [`finalizer()`] (clean up before an object goes)
//! and [`conditions`] (status conditions, and a status patch sent only when it changes
//! something).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubewasm_sdk::{Action, Api, Event, Manifest, Patch, Plugin, Request, Result, Verb};
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
//!         let cms = Api::<ConfigMap>::namespaced(&req.namespace);
//!         let Some(cm) = cms.get(&req.name)? else {
//!             return Ok(Action::done()); // deleted meanwhile
//!         };
//!         let keys = cm.data.map_or(0, |d| d.len());
//!         let patch = Patch::merge(json!({"metadata": {"annotations": {"keys": keys.to_string()}}}))?;
//!         let cm = cms.patch(&req.name, &patch)?;
//!         kubewasm_sdk::event(&cm, &Event::normal("Stamped", format!("{keys} keys")))?;
//!         Ok(Action::requeue(Duration::from_secs(300)))
//!     }
//! }
//!
//! kubewasm_sdk::export_plugin!(Stamp);
//! # fn main() {}
//! ```
//!
//! Start with [`Plugin`], [`Manifest`] and [`Api`]; `docs/writing-plugins.md` walks through
//! the rest. The SDK speaks `kubewasm:controller@0.2.0`. The free functions of the 0.1 SDK
//! ([`get`], [`list`], [`patch`]...) remain for one release as deprecated wrappers over
//! [`Api`].
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
pub mod conditions;
mod data;
mod deprecated;
mod error;
mod finalizer;
pub mod log;
mod manifest;
mod mem;
mod object;
mod reconcile;
mod sys;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use api::{Api, Patch, event};
pub use data::{DeleteParams, Event, EventType, ListParams, ObjectKey, Propagation};
#[allow(deprecated)]
pub use deprecated::{
    apply, create, delete, event_for, get, get_fields, get_fields_raw, get_raw, list,
    list_by_index, list_by_index_fields, list_by_index_fields_raw, list_by_index_raw, list_fields,
    list_fields_raw, list_raw, patch, patch_status, replace, replace_status,
};
pub use error::{Error, Result};
pub use finalizer::{FinalizerEvent, finalizer};
pub use manifest::{Manifest, Verb, WatchMapping};
pub use object::{CustomResourceExt, Kind, Object, Scope};
pub use reconcile::{Action, ObjectRef, Plugin, Reason, Request};

/// Re-exported so plugins need no direct dependency on it.
pub use k8s_openapi;
/// `#[derive(CustomResource)]`: a custom resource type, its [`Object`] and
/// [`CustomResourceExt`] impls and its CRD, from a spec struct.
pub use kubewasm_sdk_derive::CustomResource;
/// Re-exported so plugins need no direct dependency on it: a custom resource's spec and status
/// derive `JsonSchema` after `use kubewasm_sdk::schemars::{self, JsonSchema};`.
pub use schemars;
/// Re-exported so plugins need no direct dependency on it.
pub use serde_json;

/// What a plugin usually needs, in one import: `use kubewasm_sdk::prelude::*;`.
///
/// The SDK's types and helpers, `serde`'s derives, `serde_json::json!`, and `schemars` with
/// its `JsonSchema` derive (for a custom resource's spec and status). A plugin that derives
/// `Serialize`/`Deserialize` still needs `serde` among its dependencies.
pub mod prelude {
    pub use crate::conditions::Conditions;
    pub use crate::{
        Action, Api, CustomResource, CustomResourceExt, DeleteParams, Error, Event, FinalizerEvent,
        ListParams, Manifest, Object, Patch, Plugin, Reason, Request, Result, Verb, WatchMapping,
        event, finalizer, log,
    };
    pub use schemars::{self, JsonSchema};
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
    pub use {schemars, serde};

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
