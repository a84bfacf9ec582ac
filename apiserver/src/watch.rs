//! WATCH: newline-delimited JSON events over a chunked response, resumable from history, with
//! bookmarks, streaming lists (`sendInitialEvents`) and selectors.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::faults::EventFault;
use crate::printers;
use crate::read::{OutputVersion, Selectors, output_with, partial_metadata, table_options};
use crate::registry::ResourceType;
use crate::request::Req;
use crate::state::AppState;
use crate::store::{Change, EventType, Stored};

/// Watches end after this long unless `timeoutSeconds` says otherwise (kube-apiserver: 30-60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Events are coalesced into chunks of at most this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;

struct Filter {
    ty: Arc<ResourceType>,
    version: OutputVersion,
    key: String,
    namespace: Option<String>,
    name: Option<String>,
    selectors: Selectors,
    /// Events carry meta.k8s.io Tables (column definitions with the first one only, as in
    /// kube-apiserver).
    table: Option<printers::TableOptions>,
    /// Whether a Table with column definitions was sent.
    headers_sent: std::sync::atomic::AtomicBool,
    /// Objects reduced to PartialObjectMetadata.
    metadata_only: bool,
}

impl Filter {
    fn in_scope(&self, ns: &str, name: &str) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.name.as_deref().is_none_or(|n| n == name)
    }

    fn matches(&self, ns: &str, name: &str, obj: &Stored) -> bool {
        self.selectors.is_empty() || self.selectors.matches(ns, name, obj)
    }

    /// The event (type) this watcher sees for a change, if any.
    fn event_for(&self, c: &Change) -> Option<EventType> {
        if *c.key != *self.key || !self.in_scope(&c.namespace, &c.name) {
            return None;
        }
        let now = self.matches(&c.namespace, &c.name, &c.object);
        match c.kind {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => now.then_some(EventType::Deleted),
            EventType::Modified => {
                let before = c
                    .prev
                    .as_ref()
                    .is_some_and(|p| self.matches(&c.namespace, &c.name, p));
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }
    }

    /// The object an event carries: the changed object, except when a change makes it stop
    /// matching the selectors. Then, as kube-apiserver's watch cache does, the DELETED event
    /// carries the last state that matched, at the change's resourceVersion.
    fn object_for(c: &Change, event: EventType) -> Arc<Stored> {
        if event == EventType::Deleted
            && c.kind == EventType::Modified
            && let Some(prev) = &c.prev
            && let Ok(mut v) = prev.value()
        {
            if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), json!(c.rv.to_string()));
            }
            if let Ok(s) = Stored::from_value(&v, c.rv) {
                return Arc::new(s);
            }
        }
        c.object.clone()
    }

    fn encode(&self, buf: &mut BytesMut, kind: &str, obj: &Stored) {
        let body = if self.metadata_only {
            match obj.value() {
                Ok(v) => Bytes::from(serde_json::to_vec(&partial_metadata(&v)).unwrap_or_default()),
                Err(_) => return,
            }
        } else if let Some(opts) = self.table {
            match obj.value() {
                Ok(v) => {
                    let headers = !self
                        .headers_sent
                        .swap(true, std::sync::atomic::Ordering::Relaxed);
                    let opts = printers::TableOptions { headers, ..opts };
                    let t = printers::table(&self.ty, &obj.rv.to_string(), &[v], opts);
                    Bytes::from(serde_json::to_vec(&t).unwrap_or_default())
                }
                Err(_) => return,
            }
        } else {
            match output_with(&self.version, obj) {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        buf.put_slice(b"{\"type\":\"");
        buf.put_slice(kind.as_bytes());
        buf.put_slice(b"\",\"object\":");
        buf.put_slice(&body);
        buf.put_slice(b"}\n");
    }

    fn bookmark(&self, buf: &mut BytesMut, rv: u64, initial_end: bool) {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let ev = json!({
            "type": "BOOKMARK",
            "object": {"kind": self.ty.kind, "apiVersion": self.ty.api_version(), "metadata": meta},
        });
        let ev = if self.metadata_only {
            json!({"type": "BOOKMARK", "object": partial_metadata(&ev["object"])})
        } else if let Some(opts) = self.table {
            // kube-apiserver prints the bookmark object as a row too; the end of the initial
            // events keeps its annotation (as PartialObjectMetadata) even with includeObject=None.
            let include = match opts.include {
                printers::IncludeObject::None if initial_end => printers::IncludeObject::Metadata,
                other => other,
            };
            let headers = !self
                .headers_sent
                .swap(true, std::sync::atomic::Ordering::Relaxed);
            let opts = printers::TableOptions { include, headers };
            let t = printers::table(&self.ty, &rv.to_string(), &[ev["object"].clone()], opts);
            json!({"type": "BOOKMARK", "object": t})
        } else {
            ev
        };
        buf.put_slice(&serde_json::to_vec(&ev).unwrap_or_default());
        buf.put_u8(b'\n');
    }
}

/// How long a watch holds back an event it reorders ([`EventFault::Reorder`]) when no later
/// event comes to overtake it.
const HOLD_AT_MOST: Duration = Duration::from_millis(50);

/// The event a watch holds back to send after the next one ([`EventFault::Reorder`]).
#[derive(Default)]
struct Held {
    event: Option<(BytesMut, (String, String))>,
}

impl Held {
    fn is_holding(&self) -> bool {
        self.event.is_some()
    }

    fn flush(&mut self, buf: &mut BytesMut) {
        if let Some((event, _)) = self.event.take() {
            buf.put_slice(&event);
        }
    }

    /// Encodes the event for `c` into `buf` as `fault` says (as is when `None`), and a held
    /// event after it when it is about another object (before it otherwise).
    fn send(
        &mut self,
        filter: &Filter,
        buf: &mut BytesMut,
        c: &Change,
        kind: EventType,
        fault: Option<EventFault>,
    ) {
        let object = Filter::object_for(c, kind);
        let id = (c.namespace.to_string(), c.name.to_string());
        if self.event.as_ref().is_some_and(|(_, held)| *held == id) {
            self.flush(buf);
        }
        match fault {
            Some(EventFault::Drop) => {}
            Some(EventFault::Reorder) if !self.is_holding() => {
                let mut event = BytesMut::new();
                filter.encode(&mut event, kind.as_str(), &object);
                self.event = Some((event, id));
                return;
            }
            Some(EventFault::Duplicate) => {
                filter.encode(buf, kind.as_str(), &object);
                filter.encode(buf, kind.as_str(), &object);
            }
            Some(EventFault::Reorder) | None => filter.encode(buf, kind.as_str(), &object),
        }
        if !matches!(fault, Some(EventFault::Drop)) {
            self.flush(buf);
        }
    }
}

fn error_event(e: &ApiError) -> Bytes {
    let mut v =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Where the watch starts.
enum Start {
    /// Synthetic ADDED events for the current state first (then, for streaming lists, the end bookmark).
    State { initial_end_bookmark: bool },
    /// Only changes after "now".
    Now,
    /// Changes after this resourceVersion.
    From(u64),
}

/// Starts a watch; the response streams until timeout, client disconnect, `drop_watches`, shutdown, or
/// the watcher falling too far behind (it then re-watches, never silently missing events).
///
/// # Errors
/// 400 for bad selectors or parameters. A too old resourceVersion is reported in-stream as an ERROR event.
pub fn watch(state: Arc<AppState>, r: &Req) -> ApiResult<Response> {
    let selectors = Selectors::from_request(r)?;
    let rv = r.query.get("resourceVersion").unwrap_or("");
    let send_initial = r.query.get("sendInitialEvents");
    let start = match (send_initial, rv) {
        (Some("true"), _) => {
            if r.query.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(ApiError::invalid(
                    "",
                    "ListOptions",
                    "",
                    vec![crate::error::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                        field: "sendInitialEvents".into(),
                    }],
                ));
            }
            Start::State {
                initial_end_bookmark: true,
            }
        }
        (Some("false"), "" | "0") => Start::Now,
        (_, "" | "0") => Start::State {
            initial_end_bookmark: false,
        },
        (_, n) => Start::From(n.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {n:?}: must be an integer"))
        })?),
    };
    let timeout = match r.query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(t.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds {t:?}: must be an integer"))
        })?),
        None => DEFAULT_TIMEOUT,
    };
    let bookmarks = r.query.flag("allowWatchBookmarks");
    let filter = Filter {
        ty: r.ty.clone(),
        version: OutputVersion::new(&r.ty),
        key: r.ty.storage_key(),
        namespace: r.path.namespace.clone(),
        name: r.path.name.clone(),
        selectors,
        table: if r.wants_table() {
            Some(table_options(r)?)
        } else {
            None
        },
        headers_sent: std::sync::atomic::AtomicBool::new(false),
        metadata_only: r.wants_metadata(),
    };

    let (tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    let mut first = BytesMut::new();
    let mut progress;
    let rx;
    let mut initial: Vec<(String, String, Arc<Stored>)> = Vec::new();
    let mut backlog: Vec<Arc<Change>> = Vec::new();
    let mut end_bookmark = false;
    // Subscribed before the store is read, so a drop that follows this watch's start always ends it.
    let mut drops = state.faults.watch_drops();
    match start {
        Start::State {
            initial_end_bookmark,
        } => {
            let (rv, items, r) = state
                .store
                .watch_with_state(&filter.key, filter.namespace.as_deref());
            progress = rv;
            rx = Some(r);
            initial = items;
            end_bookmark = initial_end_bookmark;
        }
        Start::Now => {
            let (rv, r) = state.store.subscribe_now();
            progress = rv;
            rx = Some(r);
        }
        Start::From(n) => match state.store.watch_from(n) {
            Ok((b, r)) => {
                progress = n;
                rx = Some(r);
                backlog = b;
            }
            Err(e) => {
                progress = n;
                rx = None;
                first.put_slice(&error_event(&e));
            }
        },
    }

    let mut registry_changes = state.registry_changes();
    let watched = (
        r.ty.group.clone(),
        r.ty.version.clone(),
        r.ty.resource.clone(),
    );
    let state_for_task = state.clone();
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let send = |buf: &mut BytesMut| {
            let chunk = buf.split().freeze();
            let tx = tx.clone();
            async move { chunk.is_empty() || tx.send(Ok(chunk)).await.is_ok() }
        };
        let Some(mut rx) = rx else {
            let _ = send(&mut first).await;
            return;
        };
        for (ns, name, obj) in &initial {
            if filter.in_scope(ns, name) && filter.matches(ns, name, obj) {
                filter.encode(&mut first, "ADDED", obj);
                if first.len() >= CHUNK_BYTES && !send(&mut first).await {
                    return;
                }
            }
        }
        drop(initial);
        for c in &backlog {
            progress = progress.max(c.rv);
            if let Some(kind) = filter.event_for(c) {
                filter.encode(&mut first, kind.as_str(), &Filter::object_for(c, kind));
                if first.len() >= CHUNK_BYTES && !send(&mut first).await {
                    return;
                }
            }
        }
        drop(backlog);
        if end_bookmark {
            filter.bookmark(&mut first, progress, true);
        }
        if !send(&mut first).await {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(state_for_task.config.bookmark_interval);
        tick.reset();
        let mut buf = BytesMut::new();
        let mut held = Held::default();
        loop {
            tokio::select! {
                // A drop wins over events that are ready at the same time.
                biased;
                _ = drops.changed() => break,
                // A reordered event with no later event to overtake it goes out after a pause.
                () = tokio::time::sleep(HOLD_AT_MOST), if held.is_holding() => {
                    held.flush(&mut buf);
                    if !send(&mut buf).await { break; }
                }
                _ = &mut deadline => break,
                // The resource type went away (its CRD was deleted): end the stream, as kube-apiserver does.
                _ = registry_changes.changed() => {
                    let (g, v, res) = &watched;
                    if state_for_task.registry().get(g, v, res).is_none() {
                        // The objects' DELETED events were committed before the type went away.
                        while let Ok(c) = rx.try_recv() {
                            if let Some(kind) = filter.event_for(&c) {
                                filter.encode(&mut buf, kind.as_str(), &Filter::object_for(&c, kind));
                            }
                        }
                        let _ = send(&mut buf).await;
                        break;
                    }
                }
                _ = shutdown.changed() => break,
                () = tx.closed() => break,
                _ = tick.tick(), if bookmarks => {
                    filter.bookmark(&mut buf, progress, false);
                    if !send(&mut buf).await { break; }
                }
                msg = rx.recv() => {
                    let mut next = msg;
                    loop {
                        // An event taken after a drop is not sent: the stream ends before it, and the
                        // client gets it again when it resumes (or meets 410 after Faults::expire_watches).
                        if drops.has_changed().unwrap_or(true) {
                            break;
                        }
                        match next {
                            Ok(c) => {
                                progress = progress.max(c.rv);
                                if let Some(kind) = filter.event_for(&c) {
                                    let fault = state_for_task.faults.watch_event_fault();
                                    held.send(&filter, &mut buf, &c, kind, fault);
                                }
                            }
                            // Fell too far behind: end the stream so the client re-watches from its last
                            // resourceVersion (or re-lists on 410) instead of silently missing events.
                            Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => {
                                let _ = send(&mut buf).await;
                                return;
                            }
                        }
                        if buf.len() >= CHUNK_BYTES {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(c) => next = Ok(c),
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(broadcast::error::TryRecvError::Lagged(n)) => next = Err(broadcast::error::RecvError::Lagged(n)),
                            Err(broadcast::error::TryRecvError::Closed) => next = Err(broadcast::error::RecvError::Closed),
                        }
                    }
                    if !send(&mut buf).await { break; }
                }
            }
        }
    });

    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(body_rx)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
