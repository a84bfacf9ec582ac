//! [`ReconcileLayer`]: a hook around every reconcile the manager runs. A layer may put its own
//! [`Backend`] between the plugin and the host's (to record what the plugin read and wrote, or to
//! perturb what it sees) and is told how the reconcile ended.
//!
//! Layers are given in [`ManagerConfig::layers`](crate::ManagerConfig::layers); the first one given
//! is the outermost: it sees the plugin's calls first and the host's answers last. With no layer a
//! reconcile costs nothing more.

use std::fmt;
use std::sync::Arc;

use kubewasm_core::Request;

use crate::runtime::{Action, Backend, Plugin, ReconcileError};

/// What a layer is told as a reconcile starts.
#[derive(Clone, Copy)]
pub struct ReconcileScope<'a> {
    /// The reconcile's number in this manager, from 1 (the same as the reconcile stream's
    /// [`ReconcileStarted::id`](crate::reconciles::ReconcileStarted::id)).
    pub id: u64,
    /// The version that runs it: its name, version and manifest.
    pub plugin: &'a Plugin,
    /// What the plugin is asked (key and reason).
    pub request: &'a Request,
}

/// Called when a reconcile ends, with its outcome.
pub type OnEnd = Box<dyn FnOnce(&Result<Action, ReconcileError>) + Send>;

/// What a layer puts around one reconcile.
pub struct Layered {
    /// The backend the reconcile runs on (the one given, or one wrapping it).
    pub backend: Arc<dyn Backend>,
    /// Called once with the outcome, after the reconcile ended; `None` when the layer does not
    /// care.
    pub on_end: Option<OnEnd>,
}

impl Layered {
    /// The given backend, untouched, and nothing to do at the end.
    pub fn pass(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            on_end: None,
        }
    }
}

/// A hook around every reconcile (see the module docs).
pub trait ReconcileLayer: Send + Sync + 'static {
    /// Called as a reconcile starts, with the backend it would run on.
    fn begin(&self, scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Layered;
}

/// The layers of a manager, outermost first. Cheap to clone.
#[derive(Clone, Default)]
pub struct ReconcileLayers(Arc<[Arc<dyn ReconcileLayer>]>);

impl ReconcileLayers {
    /// These layers, outermost first.
    pub fn new(layers: impl IntoIterator<Item = Arc<dyn ReconcileLayer>>) -> Self {
        Self(layers.into_iter().collect())
    }

    /// These layers with `layer` put around them all (it sees the plugin's calls first).
    #[must_use]
    pub fn with_outermost(&self, layer: Arc<dyn ReconcileLayer>) -> Self {
        Self(
            std::iter::once(layer)
                .chain(self.0.iter().cloned())
                .collect(),
        )
    }

    /// Whether there is no layer.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Puts every layer around one reconcile: the backend it runs on, and what to call with its
    /// outcome (innermost layer first).
    pub(crate) fn begin(&self, scope: ReconcileScope<'_>, backend: Arc<dyn Backend>) -> Ends {
        let mut backend = backend;
        let mut ends = Vec::new();
        // The innermost layer wraps the host's backend first; the outermost wraps them all.
        for layer in self.0.iter().rev() {
            let layered = layer.begin(scope, backend);
            backend = layered.backend;
            ends.extend(layered.on_end);
        }
        Ends { backend, ends }
    }
}

impl fmt::Debug for ReconcileLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReconcileLayers({})", self.0.len())
    }
}

/// Every layer put around one reconcile.
pub(crate) struct Ends {
    /// The backend the reconcile runs on.
    pub(crate) backend: Arc<dyn Backend>,
    ends: Vec<OnEnd>,
}

impl Ends {
    /// Tells every layer the outcome, innermost first.
    pub(crate) fn end(self, result: &Result<Action, ReconcileError>) {
        for end in self.ends {
            end(result);
        }
    }
}

/// Where a reconcile's record can be read back by its number: the recorder implements it, and
/// the status page links each reconcile to it.
pub trait RecordLookup: Send + Sync + 'static {
    /// The record of reconcile `id` as JSON text, or `None` when it was not recorded (or is no
    /// longer kept).
    fn record(&self, id: u64) -> Option<String>;
}
