//! Hot reload: a plugins folder watched for added, changed and removed plugin files
//! ([`PluginWatcher`]), and the per-plugin pipeline that lets a version be swapped while its queue,
//! caches and workers keep running (the manager's pipeline).

pub(crate) mod pipeline;
mod watcher;

pub use pipeline::VersionStats;
pub use watcher::{FileState, PluginWatcher, ReloadEvent, WatchError, WatchOptions};
