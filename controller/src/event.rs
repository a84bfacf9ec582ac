//! `ObjectEvent`: what an informer tells its subscribers after it has updated its store.

use std::sync::Arc;

use kube::api::ApiResource;

use crate::entry::Entry;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The object was in the informer's first list (or was already cached when the subscriber
    /// subscribed). Maps to [`crate::Priority::Low`] so initial lists do not starve live events.
    /// (Changes a re-list finds are `Added`, `Modified` or `Deleted` with
    /// [`ObjectEvent::from_list`] set, and are queued at low priority too.)
    InitialListItem,
    /// The object appeared (watch ADDED, or found by a re-list).
    Added,
    /// The object changed (watch MODIFIED, or a re-list found a new resourceVersion).
    Modified,
    /// The object is gone (watch DELETED, or missing from a re-list). The event's `object` is its
    /// last known state.
    Deleted,
}

/// One change to an informer's store, sent to every subscriber after the store was updated (so
/// reads made while handling the event already see it).
#[derive(Clone, Debug)]
pub struct ObjectEvent {
    /// The kind of the object.
    pub resource: Arc<ApiResource>,
    /// What happened.
    pub event_type: EventType,
    /// The object now; for [`EventType::Deleted`], its last known state.
    pub object: Arc<Entry>,
    /// The previous cached state for [`EventType::Modified`] and [`EventType::Deleted`], when known.
    pub old: Option<Arc<Entry>>,
    /// For [`EventType::Deleted`] found by a re-list rather than a watch event (client-go's
    /// `DeletedFinalStateUnknown` tombstone): `object` is the last cached state, which may be older
    /// than the object's final state. Always false for other events.
    pub final_state_unknown: bool,
    /// The change was found by a list — the first one ([`EventType::InitialListItem`]) or a
    /// re-list after a 410 or a lost watch — rather than delivered by a live watch event. A
    /// re-list can find many changes at once (everything missed while the watch was down), so
    /// their keys are queued at [`crate::Priority::Low`], as the first list's are, and live
    /// events keep going first.
    pub from_list: bool,
}
