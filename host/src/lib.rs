//! The kubewasm host: runs Kubernetes reconcilers that are sandboxed WebAssembly components.
//!
//! Start with [`runtime`]: [`runtime::Runtime`] loads a plugin's bytes into a
//! [`runtime::Plugin`] (compiled component + validated [`runtime::Manifest`]), and
//! [`runtime::Plugin::reconcile`] runs one reconcile in a fresh, limited store against a
//! [`runtime::Backend`] (the informer cache for reads, the API client for writes;
//! [`runtime::MemoryBackend`] for tests).
//!
//! The modules, each depending only on those below it:
//!
//! | module | what |
//! |---|---|
//! | `cli` (binary), [`serve`], [`status`] | the `kubewasm` command; probes, metrics endpoint, the live status page, shutdown |
//! | [`reload`] | a plugins folder watched: files started, hot-reloaded, stopped |
//! | [`Manager`] (`manager.rs`) | runs plugins against a cluster: plans each plugin's informers and key mapping, starts, swaps and stops its run loop |
//! | `plugin_loop.rs` | one plugin's run loop: informer events → keys → queue → workers → the served version; a version swapped while keys keep flowing |
//! | [`gate`] | whether a replica's workers may reconcile (a warm standby's closed gate) and which keys (a sharded replica's ring) |
//! | [`shard`] | keys sharded across replicas: membership Leases, a consistent-hash ring, the handoff |
//! | [`leader`] | leader election on a Lease |
//! | [`layer`] | hooks around every reconcile: a backend of their own (recording, perturbation) and the outcome |
//! | [`record`] | recording every reconcile (a [`layer`]) as versioned JSON lines, and replaying a recording against another build (`kubewasm replay`) |
//! | [`perturb`] | perturbation tests: a plugin run under crashes, stale reads and mangled watch events (`kubewasm test-plugin`) |
//! | `freshness.rs` | read-your-writes: a key waits (bounded) until the caches hold its last reconcile's writes |
//! | [`reconciles`] | the typed stream of reconciles (started, finished) the manager publishes |
//! | [`metrics`] | Prometheus metrics, counted from reconciles and rendered from plain snapshots |
//! | [`oci`] | plugins as OCI artifacts: push, and pull by tag or digest with every digest verified |
//! | [`loader`] | reading plugin files (size caps, folders) — the only module that does |
//! | [`policy`] | an operator's policy file, narrowing what plugins may do |
//! | [`ClusterBackend`] (`cluster.rs`) | the [`runtime::Backend`] of a real cluster: informer caches for reads, [`kube_client`] for writes |
//! | [`event_series`] | repeats of an Event folded into one Event's `series` |
//! | [`runtime`] | wasmtime: engine, compile cache, plugins, WIT imports (`runtime/imports/`) |
//! | [`rbac`] | the RBAC a set of manifests needs |

mod cluster;
pub mod event_series;
mod freshness;
pub mod gate;
pub mod kube_client;
pub mod layer;
pub mod leader;
pub mod loader;
mod manager;
pub mod metrics;
pub mod oci;
pub mod perturb;
mod plugin_loop;
pub mod policy;
pub mod rbac;
pub mod reconciles;
pub mod record;
pub mod reload;
pub mod runtime;
pub mod serve;
pub mod shard;
pub mod status;

pub use cluster::{ClusterBackend, DiscoveryResolver};
pub use manager::{Manager, ManagerConfig, ManagerError, PluginStatus, Updated, VersionStats};
