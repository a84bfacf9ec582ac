//! An embedded, in-memory Kubernetes API server for development and tests.
//!
//! Start with [`ApiServer::start`] and a [`Config`]; point a `kube::Client` or `kubectl` at
//! [`ApiServer::url`] (or the file from [`ApiServer::write_kubeconfig`]); inject faults through
//! [`ApiServer::faults`]. See the crate README for what differs from kube-apiserver.
//!
//! Dependencies between modules go one way, from the entry point down. `server.rs` binds and serves (settings in `config.rs`);
//! `router.rs`, the only module that knows every handler, logs each request, applies faults and the
//! token and dispatches to `discovery.rs`, `openapi/` (`/openapi/v2`, `/openapi/v3`), `read.rs`
//! (get/list), `watch.rs`, `write.rs` (create/update/delete), `patching.rs` (PATCH, through the pure
//! `patch` and `schema` modules) and `scale.rs`; the writing handlers check `fieldValidation` through
//! `openapi/`. The writing handlers commit through `commit.rs` (checked by `validation.rs` and `crd.rs`,
//! defaulted by `defaults.rs`, normalized by `normalize.rs`, admitted by `admission.rs`). Handlers take a
//! parsed `request.rs` `Req` (whose JSON, YAML or protobuf body it decodes, protobuf through `protobuf/`)
//! and the shared `state.rs` `AppState`, answer through `response.rs` (`router.rs` re-encodes answers
//! through `protobuf/` for clients that accept only protobuf) and fail with `error.rs` `ApiError`s; all
//! objects live in `store.rs`.
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
mod aggregated;
mod commit;
mod config;
mod crd;
mod defaults;
mod discovery;
mod error;
mod events;
mod faults;
mod normalize;
mod object;
mod openapi;
pub mod patch;
mod patching;
mod printers;
mod protobuf;
mod read;
mod registry;
mod request;
mod response;
mod route;
mod router;
mod scale;
pub mod schema;
mod selector;
mod server;
mod simulate;
mod state;
mod store;
mod subresource;
mod validation;
mod watch;
mod write;

pub use config::Config;
pub use faults::{EventFault, Failure, Faults, MAX_REQUEST_RECORDS, RequestFilter, RequestRecord};
pub use server::{ApiServer, Error};
pub use simulate::Simulation;
