//! The host's integration tests, in one binary (as wasmtime's `tests/all`): one build, one link,
//! one set of helpers (`support/`). Each module is one area; `cargo nextest run -p kubewasm -E
//! 'test(/^reload::/)'` runs one of them.

mod support;

mod bench_plugin;
mod capabilities;
mod compile_cache;
mod deploy;
mod dev_crds;
mod end_to_end;
mod event_series;
mod example_configmap_mirror;
mod example_configmap_mirror_e2e;
mod example_node_pods;
mod example_node_pods_e2e;
mod example_rediscluster;
mod example_rediscluster_e2e;
mod examples_readme;
mod fault_api_chaos;
mod fault_bad_files;
mod fault_conflicts;
mod fault_plugins;
mod fault_sandbox;
mod faults;
mod first_hour;
mod kept_instances;
mod leader;
mod load_errors;
mod logging;
mod metrics;
mod oci;
mod perturbation;
mod plugin_cli;
mod policy_cli;
mod probes_shutdown;
mod projection;
mod python_plugin;
mod python_plugin_e2e;
mod rbac;
mod read_your_writes;
mod real_chaos;
mod real_examples;
mod real_leader;
mod real_reload_policy;
mod real_warm_standby;
mod reconcile;
mod record_replay;
mod reload;
mod sharding;
mod status_page;
mod warm_standby;
mod wit_versions;
mod writes;
