//! The only `bindgen!` call: host bindings for `kubewasm:controller@0.1.0` (world `plugin`).
//!
//! Imports are `trappable` (an `Err` of the outer `wasmtime::Result` traps the guest; the inner
//! `Result` is the typed error handed to the plugin). API writes and events are `async` (they
//! await the API client); cache reads and logging are synchronous.

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
