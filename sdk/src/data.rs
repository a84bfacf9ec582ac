//! Plain data shared by the SDK's public API (`api`, `log`) and its host seam (`sys`, and the
//! fake host behind it in tests): nothing here calls anything, so every module can use it.

use crate::object::{Kind, Object};
use crate::reconcile::ObjectRef;

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// Normal or warning, as in Kubernetes (the WIT `event-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// Something went as expected (`kubectl describe` shows `Normal`).
    Normal,
    /// Something the object's owner should look at (`Warning`).
    Warning,
}

/// A Kubernetes Event to record with [`event`](crate::event) or [`Api::event`](crate::Api::event).
///
/// ```
/// # let _host = kubewasm_sdk::testing::FakeHost::new();
/// use k8s_openapi::api::core::v1::Pod;
/// use kubewasm_sdk::{Event, EventType};
///
/// let pod = Pod::default();
/// let event = Event::warning("BackOff", "the image does not pull")
///     .action("Pull")
///     .related(&pod);
/// assert_eq!(event.event_type, EventType::Warning);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Normal or warning.
    pub event_type: EventType,
    /// Short CamelCase reason, e.g. `Synced`.
    pub reason: String,
    /// A human-readable sentence.
    pub note: String,
    /// What the plugin did, e.g. `Patch`; may be empty.
    pub action: String,
    /// A second object the event is about (e.g. the Pod a Deployment's event concerns).
    pub related: Option<ObjectRef>,
}

impl Event {
    /// A normal event.
    pub fn normal(reason: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            event_type: EventType::Normal,
            reason: reason.into(),
            note: note.into(),
            action: String::new(),
            related: None,
        }
    }

    /// A warning event.
    pub fn warning(reason: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            event_type: EventType::Warning,
            ..Self::normal(reason, note)
        }
    }

    /// Sets the action: what the plugin did or failed to do, e.g. `Scale`.
    #[must_use]
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Names a second object the event is about (its kind, namespace and name).
    #[must_use]
    pub fn related<K: Object>(mut self, obj: &K) -> Self {
        self.related = Some(ObjectRef::of(obj));
        self
    }

    /// True for a warning.
    pub fn is_warning(&self) -> bool {
        self.event_type == EventType::Warning
    }
}

/// Which objects a list-shaped read ([`Api::list`](crate::Api::list),
/// [`Api::keys`](crate::Api::keys), [`Api::count`](crate::Api::count)) selects. Every filter
/// given must match.
///
/// ```
/// use kubewasm_sdk::ListParams;
///
/// let lp = ListParams::default()
///     .labels("app=web")
///     .fields("spec.nodeName=n1,status.phase!=Succeeded")
///     .index("by-node", "n1");
/// assert_eq!(lp.label_selector.as_deref(), Some("app=web"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListParams {
    /// A label selector in the Kubernetes syntax (`app=web,tier in (a,b),!canary`).
    pub label_selector: Option<String>,
    /// A field selector: comma-separated `path=value`, `path==value` or `path!=value`, where
    /// `path` is a dotted JSON path (`spec.nodeName=node-1`). Any path works: the cache
    /// evaluates it on the object (the API server allows only a few per kind).
    pub field_selector: Option<String>,
    /// A lookup in an index declared with [`Manifest::index`](crate::Manifest::index):
    /// `(index name, value)`.
    pub index: Option<(String, String)>,
}

impl ListParams {
    /// Only objects matching this label selector.
    #[must_use]
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Only objects matching this field selector (`spec.nodeName=n1`).
    #[must_use]
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Only objects whose declared index `name` holds `value`.
    #[must_use]
    pub fn index(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.index = Some((name.into(), value.into()));
        self
    }
}

/// What happens to the objects a deleted object owns (the WIT `propagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagation {
    /// Delete the object now; the garbage collector deletes its dependents afterwards.
    Background,
    /// The object stays (with `deletionTimestamp`) until its dependents are gone.
    Foreground,
    /// Keep the dependents; only their `ownerReferences` to it are removed.
    Orphan,
}

/// How to delete ([`Api::delete`](crate::Api::delete)). The default deletes with the kind's
/// default propagation and no preconditions.
///
/// ```
/// use kubewasm_sdk::{DeleteParams, Propagation};
///
/// let dp = DeleteParams::foreground().precondition_uid("6f1c...");
/// assert_eq!(dp.propagation, Some(Propagation::Foreground));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteParams {
    /// `None` = the kind's default (background for most kinds).
    pub propagation: Option<Propagation>,
    /// Delete only if the object still has this uid (else [`Error::Conflict`](crate::Error::Conflict)).
    pub uid: Option<String>,
    /// Delete only if the object still has this resourceVersion (else `Conflict`).
    pub resource_version: Option<String>,
}

impl DeleteParams {
    /// Background propagation: dependents are deleted after the object.
    pub fn background() -> Self {
        Self::with(Propagation::Background)
    }

    /// Foreground propagation: the object waits for its dependents.
    pub fn foreground() -> Self {
        Self::with(Propagation::Foreground)
    }

    /// Orphan the dependents.
    pub fn orphan() -> Self {
        Self::with(Propagation::Orphan)
    }

    fn with(p: Propagation) -> Self {
        Self {
            propagation: Some(p),
            ..Self::default()
        }
    }

    /// Delete only if the object still has this uid.
    #[must_use]
    pub fn precondition_uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Delete only if the object still has this resourceVersion.
    #[must_use]
    pub fn precondition_resource_version(mut self, rv: impl Into<String>) -> Self {
        self.resource_version = Some(rv.into());
        self
    }
}

/// The key of an object in the cache ([`Api::keys`](crate::Api::keys)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

/// A subresource a write addresses instead of the object (mirrors the WIT `subresource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subresource {
    Status,
    Scale,
}

/// How a patch body is applied (mirrors the WIT `patch-body` variant).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) enum PatchBody {
    Merge(Vec<u8>),
    Json(Vec<u8>),
    Strategic(Vec<u8>),
    Apply { body: Vec<u8>, force: bool },
}

/// An Event as it crosses to the host: the event and the objects it is about.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) struct EventRecord<'a> {
    pub(crate) kind: Kind,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) event: &'a Event,
}
