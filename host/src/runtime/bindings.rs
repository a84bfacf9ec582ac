//! The only `bindgen!` calls: host bindings for each version of the WIT package the host
//! loads, world `plugin` of each.
//!
//! - [`v2`]: `kubewasm:controller@0.2.0` (`wit/`), the contract the host implements
//!   (`imports/*.rs`).
//! - [`v1`]: `kubewasm:controller@0.1.0` (`wit/0.1.0/`), frozen; its imports are a thin
//!   adapter (`imports/v0_1.rs`) that converts each call and runs the 0.2.0 code.
//!
//! Imports are `trappable` (an `Err` of the outer `wasmtime::Result` traps the guest; the inner
//! `Result` is the typed error handed to the plugin). API writes and events are `async` (they
//! await the API client); cache reads and logging are synchronous.

/// `kubewasm:controller@0.2.0`.
pub(crate) mod v2 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit",
        imports: {
            "kubewasm:controller/client": async | trappable,
            "kubewasm:controller/events": async | trappable,
            default: trappable,
        },
        exports: {
            default: async,
        },
    });

    /// The exported interface a 0.2.0 component has.
    pub(crate) const RECONCILER: &str = "kubewasm:controller/reconciler@0.2.0";
}

/// `kubewasm:controller@0.1.0`.
pub(crate) mod v1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/0.1.0",
        imports: {
            "kubewasm:controller/client": async | trappable,
            "kubewasm:controller/events": async | trappable,
            default: trappable,
        },
        exports: {
            default: async,
        },
    });

    /// The exported interface a 0.1.0 component has.
    pub(crate) const RECONCILER: &str = "kubewasm:controller/reconciler@0.1.0";
}
