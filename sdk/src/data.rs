//! Plain data shared by the SDK's public API (`api`, `log`) and its host seam (`sys`, and the
//! fake host behind it in tests): nothing here calls anything, so every module can use it.

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

/// A Kubernetes Event to record with [`event`](crate::event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// A warning rather than a normal event.
    pub warning: bool,
    /// Short CamelCase reason, e.g. `Synced`.
    pub reason: String,
    /// A human-readable sentence.
    pub note: String,
    /// What the plugin did, e.g. `Patch`; may be empty.
    pub action: String,
}

impl Event {
    /// A normal event.
    pub fn normal(reason: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            note: note.into(),
            action: String::new(),
        }
    }

    /// A warning event.
    pub fn warning(reason: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            ..Self::normal(reason, note)
        }
    }

    /// Sets the action.
    #[must_use]
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }
}

/// How a patch body is applied (mirrors the WIT `patch` variant).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) enum PatchBody {
    Merge(Vec<u8>),
    Json(Vec<u8>),
    Apply { body: Vec<u8>, force: bool },
}
