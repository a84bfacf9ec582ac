//! An embedded, in-memory Kubernetes API server for development and tests.
//!
//! Start with [`ApiServer::start`] and a [`Config`]; point a `kube::Client` or `kubectl` at
//! [`ApiServer::url`] (or the file from [`ApiServer::write_kubeconfig`]); inject faults through
//! [`ApiServer::faults`]. Requests enter in `api.rs`, which routes to `discovery.rs`, `read.rs`
//! (get/list), `watch.rs`, `write.rs` (create/update/delete, checked by `validation.rs` and `crd.rs`, normalized by
//! `normalize.rs`),
//! `patching.rs` (PATCH, through the pure `patch` and `schema` modules) and `scale.rs`; all state lives
//! in `store.rs`. See the crate README for what differs from kube-apiserver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kubewasm_apiserver::{ApiServer, Config};
//! let server = ApiServer::start(Config::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("kubeconfig"))?;
//! println!("serving at {}", server.url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admission;
mod api;
mod crd;
mod defaults;
mod discovery;
mod events;
mod faults;
mod normalize;
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

pub use faults::{Failure, Faults, MAX_REQUEST_RECORDS, RequestFilter, RequestRecord};
pub use server::{ApiServer, Config, Error};
