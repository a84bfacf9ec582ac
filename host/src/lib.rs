//! The kubewasm host: runs Kubernetes reconcilers that are sandboxed WebAssembly components.
//!
//! Start with [`runtime`]: [`runtime::Runtime`] loads a plugin file into a
//! [`runtime::Plugin`] (compiled component + validated [`runtime::Manifest`]), and
//! [`runtime::Plugin::reconcile`] runs one reconcile in a fresh, limited store against a
//! [`runtime::Backend`] (the informer cache for reads, the API client for writes;
//! [`runtime::MemoryBackend`] for tests).

mod cluster;
pub mod kube_client;
pub mod leader;
pub mod loader;
mod manager;
pub mod metrics;
mod plugin_loop;
pub mod policy;
pub mod rbac;
pub mod reconciles;
pub mod reload;
pub mod runtime;
pub mod serve;

pub use cluster::ClusterBackend;
pub use manager::{Manager, ManagerConfig, ManagerError, PluginStatus, Updated, VersionStats};
