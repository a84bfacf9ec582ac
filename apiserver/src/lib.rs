//! An embedded, in-memory Kubernetes API server for development and tests.
//!
//! Start with [`ApiServer::start`] and a [`Config`]; point a `kube::Client` or `kubectl` at
//! [`ApiServer::url`] (or the file from [`ApiServer::write_kubeconfig`]); inject faults through
//! [`ApiServer::faults`]. Requests enter in `api.rs`, which routes to `read.rs` (get/list), `watch.rs`,
//! `write.rs` (create/update/delete), `patching.rs` (PATCH) and `crd.rs`; all state lives in `store.rs`.

mod api;
mod crd;
mod discovery;
mod faults;
mod object;
pub mod patch;
mod patching;
mod read;
mod registry;
mod route;
mod scale;
pub mod schema;
mod selector;
mod server;
mod status;
mod store;
mod validation;
mod watch;
mod write;

pub use faults::{Failure, Faults, MAX_REQUEST_RECORDS, RequestRecord};
pub use server::{ApiServer, Config, Error};
