//! The recording format: what `kubewasm dev|run --record DIR` writes for each reconcile, and what
//! `kubewasm replay` and the SDK's fake host read back (documented in `docs/recording.md`).
//!
//! A recording is JSON lines: one [`Header`] line, then one [`Reconcile`] line per reconcile,
//! each tagged by `"type"` ([`Line`]). Objects are kept as JSON values, exactly as the plugin saw
//! or sent them (Secrets' `data` and `stringData` redacted unless recording was told not to).
//! [`FORMAT_VERSION`] changes whenever a reader of the old version would misread a new file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `format` of every header line.
pub const FORMAT: &str = "kubewasm-recording";

/// The version of the format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a redacted Secret value is replaced with: `redacted` as base64 in `data`, as text in
/// `stringData`, so a plugin decoding the Secret still gets valid bytes.
pub const REDACTED_DATA: &str = "cmVkYWN0ZWQ=";
/// See [`REDACTED_DATA`].
pub const REDACTED_STRING: &str = "redacted";

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Line {
    /// The first line of every file.
    Header(Header),
    /// One reconcile.
    Reconcile(Box<Reconcile>),
}

/// The first line of a recording file: what wrote it, for which plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version ([`FORMAT_VERSION`] when written by this build).
    pub version: u32,
    /// The version of the kubewasm host that recorded.
    pub host_version: String,
    /// The plugin recorded.
    pub plugin: PluginInfo,
    /// Whether Secrets' `data`/`stringData` were kept (`--record-secrets`); redacted otherwise.
    #[serde(default)]
    pub secrets: bool,
}

impl Header {
    /// A header of this format version for `plugin`.
    pub fn new(host_version: &str, plugin: PluginInfo, secrets: bool) -> Self {
        Self {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            host_version: host_version.into(),
            plugin,
            secrets,
        }
    }
}

/// A plugin version, as a recording names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's name (its file stem).
    pub name: String,
    /// Its version: the first 12 hex digits of the SHA-256 of the component's bytes (the digest
    /// the host logs with every reconcile).
    pub version: String,
    /// The WIT version it implements (`0.2.0` or `0.1.0`).
    pub wit: String,
}

/// A kind, as the host resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kind {
    /// API group, `""` for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind name.
    pub kind: String,
    /// URL plural.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl From<&crate::Kind> for Kind {
    fn from(k: &crate::Kind) -> Self {
        Self {
            group: k.group.clone(),
            version: k.version.clone(),
            kind: k.kind.clone(),
            plural: k.plural.clone(),
            namespaced: k.namespaced,
        }
    }
}

impl From<&Kind> for crate::Kind {
    fn from(k: &Kind) -> Self {
        Self {
            group: k.group.clone(),
            version: k.version.clone(),
            kind: k.kind.clone(),
            plural: k.plural.clone(),
            namespaced: k.namespaced,
        }
    }
}

impl Kind {
    /// Whether this is the core `Secret` kind (whose data is redacted).
    pub fn is_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }
}

/// An object named by kind, namespace and name (in a [`Reason`] or an [`EventCall`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Namespace, absent for cluster-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl From<&crate::ObjectRef> for ObjectRef {
    fn from(o: &crate::ObjectRef) -> Self {
        Self {
            kind: (&o.kind).into(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

impl From<&ObjectRef> for crate::ObjectRef {
    fn from(o: &ObjectRef) -> Self {
        Self {
            kind: (&o.kind).into(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

/// Why the reconcile fired (the WIT `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reason {
    /// The object appeared.
    Created,
    /// The object changed.
    Changed,
    /// The object was deleted.
    Deleted,
    /// An owned object changed.
    OwnedChanged {
        /// The owned object.
        object: ObjectRef,
    },
    /// A watched object changed.
    WatchedChanged {
        /// The watched object.
        object: ObjectRef,
    },
    /// A requested requeue.
    Requeue,
    /// A retry after a failure.
    Retry {
        /// The attempt number.
        attempt: u32,
    },
    /// Periodic resync.
    Resync,
}

impl From<&crate::Reason> for Reason {
    fn from(r: &crate::Reason) -> Self {
        use crate::Reason as R;
        match r {
            R::Created => Self::Created,
            R::Changed => Self::Changed,
            R::Deleted => Self::Deleted,
            R::OwnedChanged(o) => Self::OwnedChanged { object: o.into() },
            R::WatchedChanged(o) => Self::WatchedChanged { object: o.into() },
            R::Requeue => Self::Requeue,
            R::Retry(n) => Self::Retry { attempt: *n },
            R::Resync => Self::Resync,
        }
    }
}

impl From<&Reason> for crate::Reason {
    fn from(r: &Reason) -> Self {
        match r {
            Reason::Created => Self::Created,
            Reason::Changed => Self::Changed,
            Reason::Deleted => Self::Deleted,
            Reason::OwnedChanged { object } => Self::OwnedChanged(object.into()),
            Reason::WatchedChanged { object } => Self::WatchedChanged(object.into()),
            Reason::Requeue => Self::Requeue,
            Reason::Retry { attempt } => Self::Retry(*attempt),
            Reason::Resync => Self::Resync,
        }
    }
}

/// One reconcile: the request, every host call in order, and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconcile {
    /// The reconcile's number in the host that recorded it (the status page and the
    /// reconcile stream use the same number).
    pub id: u64,
    /// The plugin version that ran it.
    pub plugin_version: String,
    /// Namespace of the key, absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the key.
    pub name: String,
    /// Why it fired.
    pub reason: Reason,
    /// Every host call, in the order the plugin made them.
    pub calls: Vec<Call>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Reconcile {
    /// `namespace/name`, or `name`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The request the reconcile was asked.
    pub fn request(&self) -> crate::Request {
        crate::Request {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            reason: (&self.reason).into(),
        }
    }
}

/// An error a host call answered, or a plugin returned (the WIT `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The case: `not-found`, `already-exists`, `conflict`, `forbidden`, `invalid`,
    /// `not-synced`, `unavailable`, `internal` or `other`.
    pub code: String,
    /// The message.
    pub message: String,
}

/// What a host call answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer<T> {
    /// It succeeded with this.
    Ok(T),
    /// It failed.
    Error(ApiError),
}

impl<T> Answer<T> {
    /// The value, if it succeeded.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Self::Ok(v) => Some(v),
            Self::Error(_) => None,
        }
    }
}

/// Which objects a list-shaped read selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Only this namespace; absent = every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A label selector, in its canonical text form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// A field selector, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    /// A lookup in a declared index: its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The value looked up in `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The key of an object, as `keys` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// Namespace, absent for cluster-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// The part of an object a write targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subresource {
    /// The object itself.
    #[default]
    Main,
    /// `status`.
    Status,
    /// `scale`.
    Scale,
}

impl Subresource {
    fn is_main(&self) -> bool {
        *self == Self::Main
    }
}

/// A patch's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    /// JSON merge patch.
    Merge,
    /// JSON patch.
    Json,
    /// Strategic merge patch.
    StrategicMerge,
    /// Server-side apply.
    Apply,
}

/// A delete's options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOptions {
    /// `background`, `foreground` or `orphan`; absent = the kind's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// uid precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// resourceVersion precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// An Event the plugin recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCall {
    /// The object it is about.
    pub regarding: ObjectRef,
    /// A second object it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectRef>,
    /// `Normal` or `Warning`.
    pub event_type: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable note.
    pub note: String,
    /// What was done; may be empty.
    #[serde(default)]
    pub action: String,
}

/// One host call and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum Call {
    /// A cache read of one object (`null` = not found).
    Get {
        /// The kind.
        kind: Kind,
        /// Namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Name.
        name: String,
        /// The object, or `null`.
        result: Answer<Option<Value>>,
    },
    /// A cache read of the objects a query selects.
    List {
        /// The kind.
        kind: Kind,
        /// What was selected.
        query: Query,
        /// The objects.
        result: Answer<Vec<Value>>,
    },
    /// The keys a query selects.
    Keys {
        /// The kind.
        kind: Kind,
        /// What was selected.
        query: Query,
        /// The keys.
        result: Answer<Vec<Key>>,
    },
    /// How many objects a query selects.
    Count {
        /// The kind.
        kind: Kind,
        /// What was selected.
        query: Query,
        /// How many.
        result: Answer<u64>,
    },
    /// A create.
    Create {
        /// The kind.
        kind: Kind,
        /// Namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// The object sent.
        body: Value,
        /// The object stored.
        result: Answer<Value>,
    },
    /// A replace.
    Replace {
        /// The kind.
        kind: Kind,
        /// Namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Name.
        name: String,
        /// The part replaced.
        #[serde(default, skip_serializing_if = "Subresource::is_main")]
        subresource: Subresource,
        /// The object sent.
        body: Value,
        /// The object stored.
        result: Answer<Value>,
    },
    /// A patch.
    Patch {
        /// The kind.
        kind: Kind,
        /// Namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Name.
        name: String,
        /// The part patched.
        #[serde(default, skip_serializing_if = "Subresource::is_main")]
        subresource: Subresource,
        /// The patch type.
        patch_type: PatchType,
        /// For server-side apply: the field manager.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field_manager: Option<String>,
        /// For server-side apply: whether conflicts were forced.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
        /// The patch sent.
        body: Value,
        /// The object stored.
        result: Answer<Value>,
    },
    /// A delete.
    Delete {
        /// The kind.
        kind: Kind,
        /// Namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Name.
        name: String,
        /// Its options.
        options: DeleteOptions,
        /// `null` when it succeeded.
        result: Answer<()>,
    },
    /// An Event.
    Event {
        /// The event.
        event: EventCall,
        /// `null` when it was recorded.
        result: Answer<()>,
    },
    /// A plugin log line.
    Log {
        /// `trace`, `debug`, `info`, `warn` or `error`.
        level: String,
        /// The line.
        message: String,
    },
}

impl Call {
    /// Whether this is a write (create, replace, patch, delete).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Create { .. } | Self::Replace { .. } | Self::Patch { .. } | Self::Delete { .. }
        )
    }

    /// Whether this is a cache read (get, list, keys, count).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::Get { .. } | Self::List { .. } | Self::Keys { .. } | Self::Count { .. }
        )
    }
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing until the next change.
    Done,
    /// Reconcile again after this many milliseconds.
    RequeueAfter {
        /// Milliseconds.
        ms: u64,
    },
    /// The plugin returned an error.
    Error {
        /// The error.
        error: ApiError,
    },
    /// The reconcile failed otherwise: a trap, the deadline, the memory cap, or the host
    /// could not instantiate the plugin.
    Failed {
        /// `trap`, `deadline`, `memory-cap` or `instantiate`.
        failure: String,
        /// What happened.
        message: String,
    },
}

/// Why a recording could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// A line is not valid JSON or not a line of this format.
    Line {
        /// 1-based line number.
        line: usize,
        /// What serde said.
        reason: String,
    },
    /// The file does not start with a header line.
    NoHeader,
    /// The header names another format.
    NotARecording {
        /// The `format` found.
        format: String,
    },
    /// The header's format version is not one this build reads.
    UnknownVersion {
        /// The version found.
        version: u32,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line { line, reason } => {
                write!(f, "line {line} is not a recording line: {reason}")
            }
            Self::NoHeader => f.write_str(
                "it does not start with a recording header (is it a file written by --record?)",
            ),
            Self::NotARecording { format } => {
                write!(f, "its header names format {format:?}, not {FORMAT:?}")
            }
            Self::UnknownVersion { version } => write!(
                f,
                "it is format version {version}, and this build reads version {FORMAT_VERSION} \
                 (use the kubewasm that recorded it, or a newer one)"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// A recording read back: its header and its reconciles, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The header.
    pub header: Header,
    /// The reconciles.
    pub reconciles: Vec<Reconcile>,
    /// Whether the last line was cut short (no newline and not valid: the host stopped while
    /// writing it) and left out.
    pub truncated: bool,
}

impl Recording {
    /// Parses a recording's text. Blank lines are skipped; a later header (files concatenated)
    /// must name the same format version. A last line cut short while it was written (no
    /// newline after it, not valid JSON) is left out and [`Recording::truncated`] set.
    ///
    /// # Errors
    /// [`ReadError`] naming the line that is wrong, a missing header, another format or a
    /// format version this build does not read.
    pub fn parse(text: &str) -> Result<Self, ReadError> {
        let mut header = None;
        let mut reconciles = Vec::new();
        let mut truncated = false;
        let last = text.lines().count().saturating_sub(1);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // The header is checked on its own first, so a newer version says so rather than
            // failing on a field this build does not know.
            if let Ok(probe) = serde_json::from_str::<Probe>(line)
                && probe.r#type == "header"
            {
                if probe.format.as_deref() != Some(FORMAT) {
                    return Err(ReadError::NotARecording {
                        format: probe.format.unwrap_or_default(),
                    });
                }
                if probe.version != Some(FORMAT_VERSION) {
                    return Err(ReadError::UnknownVersion {
                        version: probe.version.unwrap_or(0),
                    });
                }
            }
            let parsed: Line = match serde_json::from_str(line) {
                Ok(parsed) => parsed,
                Err(e) if e.is_eof() && i == last && header.is_some() && !text.ends_with('\n') => {
                    truncated = true;
                    continue;
                }
                Err(e) => {
                    return Err(ReadError::Line {
                        line: i + 1,
                        reason: e.to_string(),
                    });
                }
            };
            match parsed {
                Line::Header(h) => {
                    header.get_or_insert(h);
                }
                Line::Reconcile(r) if header.is_some() => reconciles.push(*r),
                Line::Reconcile(_) => return Err(ReadError::NoHeader),
            }
        }
        Ok(Self {
            header: header.ok_or(ReadError::NoHeader)?,
            reconciles,
            truncated,
        })
    }
}

/// Most lines [`diff_lines`] returns.
const MAX_DIFF: usize = 60;

/// A readable diff of two JSON values: one line per differing field, `- path: recorded`,
/// `+ path: replayed`, at most 60 (then a line saying how many more).
pub fn diff_lines(recorded: &Value, replayed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(recorded, replayed, &mut String::new(), &mut out);
    if out.len() > MAX_DIFF {
        let more = out.len() - MAX_DIFF;
        out.truncate(MAX_DIFF);
        out.push(format!("... and {more} more line(s)"));
    }
    out
}

fn diff(a: &Value, b: &Value, path: &mut String, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let here = |p: &str| {
        if p.is_empty() {
            ".".to_owned()
        } else {
            p.to_owned()
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => diff(v, w, path, out),
                    (Some(v), None) => leaves('-', v, path, out),
                    (None, Some(w)) => leaves('+', w, path, out),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                match (x.get(i), y.get(i)) {
                    (Some(v), Some(w)) => diff(v, w, path, out),
                    (Some(v), None) => out.push(format!("- {path}: {v}")),
                    (None, Some(w)) => out.push(format!("+ {path}: {w}")),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Null, w) => leaves('+', w, path, out),
        (v, Value::Null) => leaves('-', v, path, out),
        (v, w) => {
            out.push(format!("- {}: {v}", here(path)));
            out.push(format!("+ {}: {w}", here(path)));
        }
    }
}

/// A value only one side has, a line per field (`+ .spec.replicas: 3`), so a whole missing or
/// extra object reads field by field rather than as one long line.
fn leaves(sign: char, v: &Value, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                leaves(sign, item, path, out);
                path.truncate(len);
            }
        }
        _ if path.is_empty() => out.push(format!("{sign} .: {v}")),
        _ => out.push(format!("{sign} {path}: {v}")),
    }
}

#[derive(Deserialize)]
struct Probe {
    r#type: String,
    format: Option<String>,
    version: Option<u32>,
}

/// Replaces the values of a Secret's `data` and `stringData` in place (see [`REDACTED_DATA`]),
/// keeping the keys. Works on an object, a merge patch or an apply body; a JSON patch (an
/// array of operations) has the `value` of each operation on those fields replaced.
pub fn redact_secret(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (field, marker) in [("data", REDACTED_DATA), ("stringData", REDACTED_STRING)] {
                match map.get_mut(field) {
                    Some(Value::Object(entries)) => {
                        for v in entries.values_mut() {
                            if !v.is_null() {
                                *v = Value::String(marker.into());
                            }
                        }
                    }
                    Some(v @ Value::String(_)) => *v = Value::String(marker.into()),
                    _ => {}
                }
            }
        }
        Value::Array(ops) => {
            for op in ops {
                let Some(path) = op.get("path").and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                let marker = if path.starts_with("/data") {
                    REDACTED_DATA
                } else if path.starts_with("/stringData") {
                    REDACTED_STRING
                } else {
                    continue;
                };
                let whole = path == "/data" || path == "/stringData";
                if let Some(v) = op.get_mut("value") {
                    if whole {
                        let mut wrapped = serde_json::json!({ &path[1..]: v.take() });
                        redact_secret(&mut wrapped);
                        *v = wrapped[&path[1..]].take();
                    } else {
                        *v = Value::String(marker.into());
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header() -> String {
        serde_json::to_string(&Line::Header(Header::new(
            "0.1.0",
            PluginInfo {
                name: "p".into(),
                version: "abc".into(),
                wit: "0.2.0".into(),
            },
            false,
        )))
        .unwrap()
    }

    #[test]
    fn a_recording_reads_back_what_was_written() {
        let kind = Kind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        };
        let r = Reconcile {
            id: 7,
            plugin_version: "abc".into(),
            namespace: Some("demo".into()),
            name: "a".into(),
            reason: Reason::Retry { attempt: 2 },
            calls: vec![
                Call::Get {
                    kind: kind.clone(),
                    namespace: Some("demo".into()),
                    name: "a".into(),
                    result: Answer::Ok(Some(json!({"metadata": {"name": "a"}}))),
                },
                Call::Patch {
                    kind,
                    namespace: Some("demo".into()),
                    name: "a".into(),
                    subresource: Subresource::Status,
                    patch_type: PatchType::Merge,
                    field_manager: None,
                    force: false,
                    body: json!({"status": {}}),
                    result: Answer::Error(ApiError {
                        code: "conflict".into(),
                        message: "stale".into(),
                    }),
                },
            ],
            outcome: Outcome::RequeueAfter { ms: 500 },
        };
        let text = format!(
            "{}\n{}\n",
            header(),
            serde_json::to_string(&Line::Reconcile(Box::new(r.clone()))).unwrap()
        );
        let rec = Recording::parse(&text).unwrap();
        assert_eq!(rec.reconciles, vec![r]);
        assert_eq!(rec.header.plugin.name, "p");
        assert_eq!(rec.reconciles[0].key(), "demo/a");
        assert_eq!(rec.reconciles[0].request().reason, crate::Reason::Retry(2));
    }

    #[test]
    fn a_bad_file_says_what_is_wrong_with_it() {
        let e = Recording::parse("not json\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 1 is not a recording line"),
            "{e}"
        );
        let e = Recording::parse("").unwrap_err();
        assert!(matches!(e, ReadError::NoHeader), "{e}");
        let newer = header().replace("\"version\":1", "\"version\":99");
        let e = Recording::parse(&newer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is format version 99, and this build reads version 1 \
             (use the kubewasm that recorded it, or a newer one)"
        );
        let other = header().replace(FORMAT, "something-else");
        assert!(matches!(
            Recording::parse(&other).unwrap_err(),
            ReadError::NotARecording { .. }
        ));
        let broken = format!("{}\n{{\"type\":\"reconcile\",\"id\":1\n", header());
        let e = Recording::parse(&broken).unwrap_err();
        assert!(e.to_string().starts_with("line 2 "), "{e}");
        // Cut short while written (no newline after it): left out, and said.
        let cut = format!("{}\n{{\"type\":\"reconcile\",\"id\":1", header());
        let rec = Recording::parse(&cut).unwrap();
        assert!(rec.truncated && rec.reconciles.is_empty());
        assert!(!Recording::parse(&header()).unwrap().truncated);
    }

    #[test]
    fn a_diff_names_each_changed_field_by_its_path() {
        let a = json!({"spec": {"replicas": 3, "ports": [{"port": 6379}]}, "gone": 1});
        let b = json!({"spec": {"replicas": 3, "ports": [{"port": 6380}]}, "new": true});
        assert_eq!(
            diff_lines(&a, &b),
            [
                "- .gone: 1",
                "+ .new: true",
                "- .spec.ports[0].port: 6379",
                "+ .spec.ports[0].port: 6380",
            ]
        );
        assert!(diff_lines(&a, &a).is_empty());
        // A whole extra object reads field by field.
        assert_eq!(
            diff_lines(
                &Value::Null,
                &json!({"spec": {"replicas": 3, "ports": [1]}})
            ),
            ["+ .spec.ports: [1]", "+ .spec.replicas: 3"]
        );
    }

    #[test]
    fn secret_values_are_redacted_and_keys_kept() {
        let mut s = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="},
                           "stringData": {"token": "t0ken"}, "type": "Opaque"});
        redact_secret(&mut s);
        assert_eq!(s["data"]["password"], REDACTED_DATA);
        assert_eq!(s["stringData"]["token"], REDACTED_STRING);
        assert_eq!(s["type"], "Opaque");
        let mut ops = json!([
            {"op": "add", "path": "/data/password", "value": "aHVudGVyMg=="},
            {"op": "replace", "path": "/data", "value": {"k": "dg=="}},
            {"op": "add", "path": "/metadata/labels/a", "value": "b"}
        ]);
        redact_secret(&mut ops);
        assert_eq!(ops[0]["value"], REDACTED_DATA);
        assert_eq!(ops[1]["value"]["k"], REDACTED_DATA);
        assert_eq!(ops[2]["value"], "b");
    }
}
