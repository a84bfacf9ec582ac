//! [`EventSeries`]: repeats of one Event folded into a series, as client-go's `EventRecorder`
//! (`k8s.io/client-go/tools/events`) and kube-runtime's `Recorder` do, so a plugin that records
//! the same Event on every reconcile leaves one `events.k8s.io/v1` Event with a growing
//! `series.count` instead of thousands of objects.
//!
//! Two Events are the same when they agree on the object they are about (its uid when the host
//! knows it, else its apiVersion, kind, namespace and name), the related object, type, reason,
//! action, note and reporting controller and instance. The first is created (POST); a repeat
//! within [`SERIES_WINDOW`] of the previous occurrence merge-patches the existing Event's
//! `series: {count, lastObservedTime}` (count = occurrences so far, 2 at the first repeat); a
//! repeat after a longer pause starts a new Event. When the patch answers 404 (the Event was
//! deleted, or expired: kube-apiserver keeps Events one hour by default) a new Event is created
//! and the series continues on it.
//!
//! The host keeps the last [`CAPACITY`] distinct Events in one least-recently-used table shared
//! by every plugin (the reporting controller, `kubewasm/<plugin>`, is part of the key, so
//! plugins never share a series). A table entry evicted, or a host restart, only means the next
//! repeat creates a new Event.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use parking_lot::Mutex;

use crate::runtime::ApiError;

/// How long after an Event's last occurrence a repeat still joins its series: client-go's
/// `finishTime` (a series not seen for 6 minutes is finished) and kube-runtime's choice too.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How many distinct Events the host remembers (kube-runtime's recorder keeps a similar table,
/// client-go an unbounded one cleaned every 6 minutes). About 0.5 KiB each.
pub const CAPACITY: usize = 4096;

/// What makes two Events the same (see the [module](self) docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The regarded object: its uid, or `apiVersion/kind/namespace/name` without one.
    pub regarding: String,
    /// The related object, the same way, if any.
    pub related: Option<String>,
    /// `Normal` or `Warning`.
    pub event_type: String,
    /// The reason.
    pub reason: String,
    /// The action.
    pub action: String,
    /// The note.
    pub note: String,
    /// `kubewasm/<plugin>`.
    pub reporting_controller: String,
    /// The host's reporting instance.
    pub reporting_instance: String,
}

impl SeriesKey {
    /// The key of an Event about to be recorded.
    pub fn of(event: &Event) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            regarding: event.regarding.as_ref().map(reference).unwrap_or_default(),
            related: event.related.as_ref().map(reference),
            event_type: text(&event.type_),
            reason: text(&event.reason),
            action: text(&event.action),
            note: text(&event.note),
            reporting_controller: text(&event.reporting_controller),
            reporting_instance: text(&event.reporting_instance),
        }
    }
}

/// An object reference as a key: the uid when known (it tells apart two objects that had the
/// same name one after the other), else its coordinates.
fn reference(r: &ObjectReference) -> String {
    match &r.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => format!(
            "{}/{}/{}/{}",
            r.api_version.as_deref().unwrap_or_default(),
            r.kind.as_deref().unwrap_or_default(),
            r.namespace.as_deref().unwrap_or_default(),
            r.name.as_deref().unwrap_or_default()
        ),
    }
}

/// What to do with an Event, as [`EventSeries::observe`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The first of its series: create the Event.
    First,
    /// A repeat: patch the series of the Event `name` in `namespace`.
    Repeat {
        /// The Event's namespace.
        namespace: String,
        /// The Event's name.
        name: String,
        /// Occurrences so far, this one included.
        count: i32,
    },
}

#[derive(Debug)]
struct Slot {
    namespace: String,
    name: String,
    count: i32,
    last: jiff::Timestamp,
    /// Position in the recency order.
    tick: u64,
}

#[derive(Debug, Default)]
struct Table {
    slots: HashMap<SeriesKey, Slot>,
    /// tick -> key, oldest first.
    recency: BTreeMap<u64, SeriesKey>,
    tick: u64,
}

impl Table {
    fn touch(&mut self, key: &SeriesKey) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.slots.get_mut(key) {
            self.recency.remove(&slot.tick);
            slot.tick = tick;
            self.recency.insert(tick, key.clone());
        }
    }
}

/// The table of recent Events (see the [module](self) docs). Time is passed in, so tests need
/// no clock.
#[derive(Debug)]
pub struct EventSeries {
    table: Mutex<Table>,
    capacity: usize,
    window: Duration,
}

impl EventSeries {
    /// A table of at most `capacity` Events whose series stay open `window` after each
    /// occurrence.
    pub fn new(capacity: usize, window: Duration) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            capacity: capacity.max(1),
            window,
        }
    }

    /// The host's table, shared by every plugin: [`CAPACITY`] Events, [`SERIES_WINDOW`].
    pub fn global() -> &'static Self {
        static GLOBAL: LazyLock<EventSeries> =
            LazyLock::new(|| EventSeries::new(CAPACITY, SERIES_WINDOW));
        &GLOBAL
    }

    /// Counts one occurrence of `key` at `now` and says whether it starts a series or repeats
    /// one. A first occurrence is remembered as the Event `name` in `namespace` (what the
    /// caller is about to create); call [`EventSeries::forget`] if creating it fails.
    pub fn observe(
        &self,
        key: &SeriesKey,
        namespace: &str,
        name: &str,
        now: jiff::Timestamp,
    ) -> Observation {
        let mut table = self.table.lock();
        if let Some(slot) = table.slots.get_mut(key)
            && slot.namespace == namespace
            && within(slot.last, now, self.window)
        {
            slot.count = slot.count.saturating_add(1);
            slot.last = slot.last.max(now);
            let seen = Observation::Repeat {
                namespace: slot.namespace.clone(),
                name: slot.name.clone(),
                count: slot.count,
            };
            table.touch(key);
            return seen;
        }
        self.start(&mut table, key, namespace, name, now, 1);
        Observation::First
    }

    /// The series of `key` goes on as the Event `name` (created because its previous Event
    /// was gone), keeping its count.
    pub fn moved(&self, key: &SeriesKey, namespace: &str, name: &str, now: jiff::Timestamp) {
        let mut table = self.table.lock();
        let count = table.slots.get(key).map_or(1, |s| s.count);
        self.start(&mut table, key, namespace, name, now, count);
    }

    /// Forgets `key` if it is still remembered as the Event `name` (whose creation failed).
    pub fn forget(&self, key: &SeriesKey, name: &str) {
        let mut table = self.table.lock();
        if table.slots.get(key).is_some_and(|s| s.name == name)
            && let Some(slot) = table.slots.remove(key)
        {
            table.recency.remove(&slot.tick);
        }
    }

    /// How many Events are remembered.
    pub fn len(&self) -> usize {
        self.table.lock().slots.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn start(
        &self,
        table: &mut Table,
        key: &SeriesKey,
        namespace: &str,
        name: &str,
        now: jiff::Timestamp,
        count: i32,
    ) {
        table.tick += 1;
        let tick = table.tick;
        if let Some(old) = table.slots.insert(
            key.clone(),
            Slot {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                count,
                last: now,
                tick,
            },
        ) {
            table.recency.remove(&old.tick);
        }
        table.recency.insert(tick, key.clone());
        while table.slots.len() > self.capacity {
            let Some((_, oldest)) = table.recency.pop_first() else {
                break;
            };
            table.slots.remove(&oldest);
        }
    }
}

/// Whether `now` is at most `window` after `last` (a clock that stepped back counts as within).
fn within(last: jiff::Timestamp, now: jiff::Timestamp, window: Duration) -> bool {
    let since = now.as_nanosecond() - last.as_nanosecond();
    since <= i128::try_from(window.as_nanos()).unwrap_or(i128::MAX)
}

/// Records `event` (fully built, with a fresh name) at `now` through `send`: created when it
/// starts a series, else the existing Event's `series` is patched; created after all when that
/// Event is gone (404).
///
/// # Errors
/// What `send` answered, for the create or the patch.
pub async fn record<F, Fut>(
    series: &EventSeries,
    event: Event,
    now: jiff::Timestamp,
    send: F,
) -> Result<(), ApiError>
where
    F: Fn(http::Request<Vec<u8>>) -> Fut,
    Fut: Future<Output = Result<bytes::Bytes, ApiError>>,
{
    let key = SeriesKey::of(&event);
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let name = event.metadata.name.clone().unwrap_or_default();
    let collection = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
    let build = |e: kube::core::request::Error| {
        ApiError::Invalid(format!("failed to build the request: {e}"))
    };
    if let Observation::Repeat {
        name: existing,
        count,
        ..
    } = series.observe(&key, &namespace, &name, now)
    {
        let patch = serde_json::json!({"series": {
            "count": count,
            "lastObservedTime": MicroTime(now),
        }});
        let request = kube::core::Request::new(&collection)
            .patch(&existing, &PatchParams::default(), &Patch::Merge(&patch))
            .map_err(build)?;
        match send(request).await {
            Ok(_) => return Ok(()),
            Err(ApiError::NotFound(_)) => {
                tracing::debug!(
                    event = %existing,
                    "the Event of a series is gone; recording the series as a new Event"
                );
                series.moved(&key, &namespace, &name, now);
                let mut event = event;
                if count > 1 {
                    event.series = Some(k8s_openapi::api::events::v1::EventSeries {
                        count,
                        last_observed_time: MicroTime(now),
                    });
                }
                return create(series, &key, &collection, &name, &event, &send).await;
            }
            Err(e) => return Err(e),
        }
    }
    create(series, &key, &collection, &name, &event, &send).await
}

async fn create<F, Fut>(
    series: &EventSeries,
    key: &SeriesKey,
    collection: &str,
    name: &str,
    event: &Event,
    send: &F,
) -> Result<(), ApiError>
where
    F: Fn(http::Request<Vec<u8>>) -> Fut,
    Fut: Future<Output = Result<bytes::Bytes, ApiError>>,
{
    let json = serde_json::to_vec(event)
        .map_err(|e| ApiError::Internal(format!("failed to encode the event: {e}")))?;
    let request = kube::core::Request::new(collection)
        .create(&PostParams::default(), json)
        .map_err(|e| ApiError::Invalid(format!("failed to build the request: {e}")))?;
    let created = send(request).await.map(drop);
    if created.is_err() {
        series.forget(key, name);
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(note: &str) -> SeriesKey {
        SeriesKey {
            regarding: "uid-1".into(),
            related: None,
            event_type: "Normal".into(),
            reason: "Synced".into(),
            action: "Sync".into(),
            note: note.into(),
            reporting_controller: "kubewasm/demo".into(),
            reporting_instance: "host-0".into(),
        }
    }

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn repeat(name: &str, count: i32) -> Observation {
        Observation::Repeat {
            namespace: "ns".into(),
            name: name.into(),
            count,
        }
    }

    #[test]
    fn a_repeat_within_the_window_joins_the_series_of_the_first_event() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        assert_eq!(s.observe(&key("a"), "ns", "e1", at(0)), Observation::First);
        assert_eq!(s.observe(&key("a"), "ns", "e2", at(10)), repeat("e1", 2));
        // The window runs from the last occurrence: a steady repeat keeps the series open.
        assert_eq!(
            s.observe(&key("a"), "ns", "e3", at(10 + 300)),
            repeat("e1", 3)
        );
        assert_eq!(
            s.observe(&key("a"), "ns", "e4", at(10 + 600)),
            repeat("e1", 4)
        );
    }

    #[test]
    fn a_repeat_after_the_window_starts_a_new_event() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        assert_eq!(s.observe(&key("a"), "ns", "e1", at(0)), Observation::First);
        assert_eq!(s.observe(&key("a"), "ns", "e2", at(360)), repeat("e1", 2));
        assert_eq!(
            s.observe(&key("a"), "ns", "e3", at(721)),
            Observation::First
        );
        assert_eq!(s.observe(&key("a"), "ns", "e4", at(722)), repeat("e3", 2));
    }

    #[test]
    fn events_that_differ_in_any_part_of_the_key_are_separate_series() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        let base = key("a");
        let variants = [
            base.clone(),
            key("another note"),
            SeriesKey {
                regarding: "uid-2".into(),
                ..base.clone()
            },
            SeriesKey {
                related: Some("uid-3".into()),
                ..base.clone()
            },
            SeriesKey {
                event_type: "Warning".into(),
                ..base.clone()
            },
            SeriesKey {
                reason: "Failed".into(),
                ..base.clone()
            },
            SeriesKey {
                action: "Delete".into(),
                ..base.clone()
            },
            SeriesKey {
                reporting_controller: "kubewasm/other".into(),
                ..base.clone()
            },
        ];
        for (i, k) in variants.iter().enumerate() {
            assert_eq!(
                s.observe(k, "ns", &format!("e{i}"), at(0)),
                Observation::First,
                "{k:?}"
            );
        }
        assert_eq!(s.observe(&base, "ns", "x", at(1)), repeat("e0", 2));
        assert_eq!(s.len(), variants.len());
    }

    #[test]
    fn the_least_recently_seen_event_is_forgotten_first_when_the_table_is_full() {
        let s = EventSeries::new(2, SERIES_WINDOW);
        s.observe(&key("a"), "ns", "a1", at(0));
        s.observe(&key("b"), "ns", "b1", at(1));
        // a is seen again, so b is now the oldest.
        assert_eq!(s.observe(&key("a"), "ns", "a2", at(2)), repeat("a1", 2));
        s.observe(&key("c"), "ns", "c1", at(3));
        assert_eq!(s.len(), 2);
        assert_eq!(s.observe(&key("a"), "ns", "a3", at(4)), repeat("a1", 3));
        assert_eq!(s.observe(&key("b"), "ns", "b2", at(5)), Observation::First);
    }

    #[test]
    fn a_failed_create_is_forgotten_and_a_moved_series_keeps_its_count() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        s.observe(&key("a"), "ns", "e1", at(0));
        s.forget(&key("a"), "other-name");
        assert_eq!(s.len(), 1, "only the Event that failed is forgotten");
        s.forget(&key("a"), "e1");
        assert_eq!(s.observe(&key("a"), "ns", "e2", at(1)), Observation::First);
        assert_eq!(s.observe(&key("a"), "ns", "e3", at(2)), repeat("e2", 2));
        s.moved(&key("a"), "ns", "e4", at(3));
        assert_eq!(s.observe(&key("a"), "ns", "e5", at(4)), repeat("e4", 3));
    }

    #[test]
    fn the_key_uses_the_uid_when_known_else_the_coordinates() {
        let with_uid = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            namespace: Some("ns".into()),
            name: Some("cm".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        assert_eq!(reference(&with_uid), "u-1");
        let without = ObjectReference {
            uid: None,
            ..with_uid
        };
        assert_eq!(reference(&without), "v1/ConfigMap/ns/cm");
    }

    fn event(note: &str) -> Event {
        Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("cm.{note}")),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            reason: Some("Synced".into()),
            note: Some(note.into()),
            regarding: Some(ObjectReference {
                uid: Some("u-1".into()),
                ..ObjectReference::default()
            }),
            ..Event::default()
        }
    }

    /// Sends nothing: keeps each request as "METHOD path body" and answers from `answers`
    /// (then 200).
    struct Fake {
        sent: Mutex<Vec<String>>,
        answers: Mutex<std::collections::VecDeque<Result<bytes::Bytes, ApiError>>>,
    }

    impl Fake {
        fn new(answers: Vec<Result<bytes::Bytes, ApiError>>) -> Self {
            Self {
                sent: Mutex::new(Vec::new()),
                answers: Mutex::new(answers.into()),
            }
        }

        fn send(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> impl Future<Output = Result<bytes::Bytes, ApiError>> + use<> {
            let body: serde_json::Value =
                serde_json::from_slice(request.body()).unwrap_or_default();
            let shown = match body.get("series") {
                Some(series) if request.method() == http::Method::PATCH => {
                    series["count"].to_string()
                }
                _ => body["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            };
            self.sent.lock().push(format!(
                "{} {} {shown}",
                request.method(),
                request.uri().path()
            ));
            let answer = self
                .answers
                .lock()
                .pop_front()
                .unwrap_or(Ok(bytes::Bytes::from_static(b"{}")));
            std::future::ready(answer)
        }
    }

    #[tokio::test]
    async fn repeats_patch_the_series_and_a_deleted_event_is_created_again_with_its_count() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        let fake = Fake::new(vec![
            Ok(bytes::Bytes::new()),
            Ok(bytes::Bytes::new()),
            Err(ApiError::NotFound("gone".into())),
        ]);
        let events = "/apis/events.k8s.io/v1/namespaces/ns/events";
        let mut e = event("a");
        record(&s, e.clone(), at(0), |r| fake.send(r))
            .await
            .unwrap();
        e.metadata.name = Some("cm.second".into());
        record(&s, e.clone(), at(1), |r| fake.send(r))
            .await
            .unwrap();
        e.metadata.name = Some("cm.third".into());
        // The Event was deleted meanwhile: the patch answers 404, a new Event carries the series.
        record(&s, e.clone(), at(2), |r| fake.send(r))
            .await
            .unwrap();
        e.metadata.name = Some("cm.fourth".into());
        record(&s, e, at(3), |r| fake.send(r)).await.unwrap();
        record(&s, event("b"), at(4), |r| fake.send(r))
            .await
            .unwrap();
        assert_eq!(
            *fake.sent.lock(),
            [
                format!("POST {events} cm.a"),
                format!("PATCH {events}/cm.a 2"),
                format!("PATCH {events}/cm.a 3"),
                format!("POST {events} cm.third"),
                format!("PATCH {events}/cm.third 4"),
                format!("POST {events} cm.b"),
            ]
        );
    }

    #[tokio::test]
    async fn an_event_whose_create_failed_is_created_again_next_time() {
        let s = EventSeries::new(16, SERIES_WINDOW);
        let fake = Fake::new(vec![Err(ApiError::Unavailable("down".into()))]);
        let events = "/apis/events.k8s.io/v1/namespaces/ns/events";
        assert!(
            record(&s, event("a"), at(0), |r| fake.send(r))
                .await
                .is_err()
        );
        record(&s, event("a"), at(1), |r| fake.send(r))
            .await
            .unwrap();
        assert_eq!(
            *fake.sent.lock(),
            [format!("POST {events} cm.a"), format!("POST {events} cm.a")]
        );
    }
}
