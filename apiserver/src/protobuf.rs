//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) for built-in kinds: the `k8s\0`
//! magic, then a `runtime.Unknown` envelope {typeMeta {apiVersion, kind}, raw, contentEncoding,
//! contentType} whose `raw` is the kind's message. Decoded into the JSON object Go's `json.Marshal`
//! writes for the same Go struct, which is what the rest of the server handles.
//!
//! The messages come from the vendored `proto/k8s.io/**/generated.proto` (compiled by `build.rs` into a
//! descriptor set and read by reflection). What the wire does not carry (JSON names, inline embeds,
//! which zero values Go omits) comes from `proto/json-fields.txt`, generated from the Go types by
//! `tools/k8s-proto-table`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as PV,
};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::response::accepts_json;

/// The media type of Kubernetes protobuf bodies.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// What every protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

static CODEC: LazyLock<Codec> = LazyLock::new(|| {
    Codec::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/k8s.fds")),
        include_str!("../proto/json-fields.txt"),
    )
});

/// How Go's `json.Marshal` writes one message field.
#[derive(Debug, Clone)]
struct GoField {
    /// The JSON name; empty for an inline embed (flattened into the parent).
    json: String,
    /// The Go field is a pointer.
    pointer: bool,
    /// A non-pointer struct.
    strukt: bool,
    /// A slice or map (nil when absent).
    nillable: bool,
    /// `omitempty`.
    omitempty: bool,
    /// `omitzero`.
    omitzero: bool,
}

/// The descriptors, the Go field table and the kind index.
struct Codec {
    pool: DescriptorPool,
    /// (message full name, field number) -> how Go writes it; `None`: never written (`json:"-"`).
    fields: HashMap<(String, u32), Option<GoField>>,
    /// (apiVersion, kind) -> message.
    kinds: HashMap<(String, String), MessageDescriptor>,
}

impl Codec {
    fn new(fds: &[u8], table: &str) -> Codec {
        // Both inputs are compiled in (and covered by the tests), so a failure here is a build defect.
        let pool = DescriptorPool::decode(fds).expect("the embedded descriptor set decodes");
        let mut fields = HashMap::new();
        let mut kinds = HashMap::new();
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["=", api_version, kind, message] => {
                    if let Some(m) = pool.get_message_by_name(message) {
                        kinds.insert((api_version.to_string(), kind.to_string()), m);
                    }
                }
                [message, number, json, flags] => {
                    let Ok(number) = number.parse::<u32>() else {
                        continue;
                    };
                    let field = (*json != "-").then(|| GoField {
                        json: if *json == "~" {
                            String::new()
                        } else {
                            json.to_string()
                        },
                        pointer: flags.contains('P'),
                        strukt: flags.contains('S'),
                        nillable: flags.contains('N'),
                        omitempty: flags.contains('O'),
                        omitzero: flags.contains('Z'),
                    });
                    fields.insert((message.to_string(), number), field);
                }
                _ => {}
            }
        }
        Codec {
            pool,
            fields,
            kinds,
        }
    }
}

/// Whether `content_type` (without parameters, lowercased) is the protobuf media type.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type == MEDIA_TYPE
}

/// Decodes a protobuf body into the JSON object of its kind, with `apiVersion` and `kind` set from the
/// envelope. `group` and `expected_kind` are what the endpoint takes (`meta.k8s.io` for options).
///
/// # Errors
/// 400 with kube-apiserver's wording for an empty body, a missing magic, a malformed envelope or
/// message, a kind that has no protobuf form here, and a kind other than `expected_kind`.
pub(crate) fn decode(body: &[u8], group: &str, expected_kind: &str) -> ApiResult<Value> {
    decode_any(body, Some((group, expected_kind)))
}

/// Decodes a body of any kind (objects nested in RawExtensions), or of the expected one.
fn decode_any(body: &[u8], expected: Option<(&str, &str)>) -> ApiResult<Value> {
    let (group, expected_kind) = expected.unwrap_or(("", ""));
    let codec = &*CODEC;
    let unrecognized = |why: &str| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {expected_kind}): {why} ({})",
            summarize(body)
        ))
    };
    if body.is_empty() {
        return Err(unrecognized("empty data"));
    }
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err(unrecognized(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ));
    };
    if rest.is_empty() {
        return Err(unrecognized("empty body"));
    }
    let envelope = codec
        .pool
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is vendored");
    let unknown = DynamicMessage::decode(envelope, rest)
        .map_err(|e| unrecognized(&wire_error("runtime.Unknown envelope", &e)))?;
    let type_meta = field(&unknown, "typeMeta");
    let type_meta = type_meta.as_ref().and_then(|v| v.as_message());
    let string_of = |m: Option<&DynamicMessage>, name: &str| {
        m.and_then(|m| field(m, name))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let api_version = string_of(type_meta, "apiVersion");
    let kind = string_of(type_meta, "kind");
    let kind = if kind.is_empty() {
        expected_kind.to_string()
    } else {
        kind
    };
    let raw = field(&unknown, "raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let version = api_version.rsplit('/').next().unwrap_or_default();
    let cannot = |why: &str| {
        ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {expected_kind}: {why}"
        ))
    };
    let not_registered = format!(
        "no kind {kind:?} is registered for version {api_version:?} in scheme \"pkg/runtime/scheme.go:111\""
    );
    let descriptor = codec
        .kinds
        .get(&(api_version.clone(), kind.clone()))
        .cloned();
    // Options (DeleteOptions) are decoded as parameters: kube-apiserver says only what is missing.
    let options = group == "meta.k8s.io";
    let Some(descriptor) = descriptor else {
        return Err(if options {
            ApiError::bad_request(not_registered)
        } else {
            cannot(&not_registered)
        });
    };
    if expected.is_some() && kind != expected_kind {
        if options {
            return Err(ApiError::bad_request(not_registered));
        }
        // kube-apiserver converts to its internal type, named by the group's first label.
        let internal = group
            .split('.')
            .next()
            .filter(|g| !g.is_empty())
            .unwrap_or("core");
        return Err(cannot(&format!(
            "converting ({version}.{kind}) to ({internal}.{expected_kind}): unknown conversion"
        )));
    }
    let message = DynamicMessage::decode(descriptor, raw.as_ref())
        .map_err(|e| cannot(&wire_error(&format!("{kind} message"), &e)))?;
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind));
    out.insert("apiVersion".into(), json!(api_version));
    match to_json(codec, &message).map_err(|e| cannot(&e))? {
        Value::Object(o) => out.extend(o),
        _ => return Err(cannot("not an object")),
    }
    Ok(Value::Object(out))
}

/// A decoding error in Go's words where they exist: a body cut short is "unexpected EOF".
fn wire_error(what: &str, e: &prost::DecodeError) -> String {
    let text = e.to_string();
    let truncated = [
        "buffer underflow",
        "delimited length exceeded",
        "invalid varint",
    ]
    .iter()
    .any(|t| text.ends_with(t));
    if truncated {
        "unexpected EOF".into()
    } else {
        format!("malformed {what}: {text}")
    }
}

/// The start of a body as kube-apiserver quotes it in errors: up to 30 bytes, hex unless it is JSON.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let (head, more) = if body.len() > MAX {
        (&body[..MAX], " ...")
    } else {
        (body, "")
    };
    if body.is_empty() {
        return "<empty>".into();
    }
    if body[0] == b'{' {
        return format!("{}{more}", String::from_utf8_lossy(head));
    }
    let mut s = String::with_capacity(head.len() * 2 + more.len());
    for b in head {
        let _ = write!(s, "{b:02x}");
    }
    s + more
}

/// A field's value if it is present on the wire.
fn field<'a>(m: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, PV>> {
    let f = m.descriptor().get_field_by_name(name)?;
    m.has_field(&f).then(|| m.get_field(&f))
}

/// A Go `time.Duration`'s `String()`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let mut u = ns.unsigned_abs();
    let frac = |whole: u64, rem: u64, digits: usize| {
        if rem == 0 {
            whole.to_string()
        } else {
            let f = format!("{rem:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u / 1_000, u % 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u / 1_000_000, u % 1_000_000, 6))
    } else {
        let h = u / 3_600_000_000_000;
        u %= 3_600_000_000_000;
        let m = u / 60_000_000_000;
        u %= 60_000_000_000;
        let mut s = String::new();
        if h > 0 {
            s.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&format!(
            "{}s",
            frac(u / 1_000_000_000, u % 1_000_000_000, 9)
        ));
        s
    };
    format!("{sign}{s}")
}

/// Embedded JSON (RawExtension, apiextensions JSON, FieldsV1); a nested protobuf object is decoded too.
fn raw_json(bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if bytes.starts_with(MAGIC) {
        // Objects nested in RawExtensions are decoded recursively; each level is a separate decode,
        // so the nesting is bounded here (prost bounds it within one message).
        thread_local!(static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        let depth = DEPTH.with(|d| d.replace(d.get() + 1));
        let result = if depth >= 32 {
            Err("objects are nested too deeply".to_string())
        } else {
            decode_any(bytes, None).map_err(|e| e.message)
        };
        DEPTH.with(|d| d.set(depth));
        return result;
    }
    serde_json::from_slice(bytes).map_err(|e| format!("embedded JSON is malformed: {e}"))
}

/// An RFC 3339 UTC time, with 6 fractional digits for MicroTime; the zero time is `null`.
fn time_json(m: &DynamicMessage, micro: bool) -> Result<Value, String> {
    let seconds = field(m, "seconds").and_then(|v| v.as_i64()).unwrap_or(0);
    let nanos = field(m, "nanos").and_then(|v| v.as_i32()).unwrap_or(0);
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::new(seconds, if micro { nanos } else { 0 })
        .map_err(|e| format!("time out of range: {e}"))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S.%6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(json!(ts.strftime(format).to_string()))
}

/// A number as Go writes it: integral floats without a fraction.
fn float_json(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// The JSON of one proto value.
fn value_json(codec: &Codec, v: &PV) -> Result<Value, String> {
    Ok(match v {
        PV::Bool(b) => json!(b),
        PV::I32(i) => json!(i),
        PV::I64(i) => json!(i),
        PV::U32(i) => json!(i),
        PV::U64(i) => json!(i),
        PV::F32(f) => float_json(f64::from(*f)),
        PV::F64(f) => float_json(*f),
        PV::String(s) => json!(s),
        PV::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        PV::EnumNumber(n) => json!(n),
        PV::Message(m) => to_json(codec, m)?,
        PV::List(l) => Value::Array(
            l.iter()
                .map(|x| value_json(codec, x))
                .collect::<Result<_, _>>()?,
        ),
        PV::Map(m) => {
            let mut o = Map::new();
            for (k, v) in m {
                let k = match k {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(i) => i.to_string(),
                    MapKey::I64(i) => i.to_string(),
                    MapKey::U32(i) => i.to_string(),
                    MapKey::U64(i) => i.to_string(),
                };
                o.insert(k, value_json(codec, v)?);
            }
            Value::Object(o)
        }
    })
}

/// Whether a present scalar is its type's zero value (what `omitempty` drops).
fn is_zero_scalar(v: &PV) -> bool {
    match v {
        PV::Bool(b) => !b,
        PV::I32(i) => *i == 0,
        PV::I64(i) => *i == 0,
        PV::U32(i) => *i == 0,
        PV::U64(i) => *i == 0,
        PV::F32(f) => *f == 0.0,
        PV::F64(f) => *f == 0.0,
        PV::String(s) => s.is_empty(),
        PV::Bytes(b) => b.is_empty(),
        PV::EnumNumber(n) => *n == 0,
        PV::List(l) => l.is_empty(),
        PV::Map(m) => m.is_empty(),
        PV::Message(_) => false,
    }
}

/// The JSON of a message whose Go type has a JSON form of its own, if it is one.
fn special_json(codec: &Codec, m: &DynamicMessage) -> Option<Result<Value, String>> {
    let d = m.descriptor();
    let name = d.full_name();
    let bytes_of = |f: &str| {
        field(m, f)
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default()
    };
    let message_of = |f: &str| field(m, f).and_then(|v| v.as_message().cloned());
    Some(match name.strip_prefix(META).unwrap_or(name) {
        ".Time" => time_json(m, false),
        ".MicroTime" => time_json(m, true),
        ".Duration" => Ok(json!(go_duration(
            field(m, "duration").and_then(|v| v.as_i64()).unwrap_or(0)
        ))),
        ".FieldsV1" => raw_json(&bytes_of("Raw")),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => raw_json(&bytes_of("raw")),
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => {
            raw_json(&bytes_of("raw"))
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            if field(m, "type").and_then(|v| v.as_i64()).unwrap_or(0) == 1 {
                Ok(json!(
                    field(m, "strVal")
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ))
            } else {
                Ok(json!(
                    field(m, "intVal").and_then(|v| v.as_i32()).unwrap_or(0)
                ))
            }
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            let s = field(m, "string")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Ok(json!(if s.is_empty() { "0".to_string() } else { s }))
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray" => {
            match field(m, "jSONSchemas") {
                Some(list) => value_json(codec, &list),
                None => message_of("schema").map_or(Ok(Value::Null), |s| to_json(codec, &s)),
            }
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool" => {
            match message_of("schema") {
                Some(s) => to_json(codec, &s),
                None => Ok(json!(
                    field(m, "allows")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false)
                )),
            }
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray" => {
            match field(m, "property") {
                Some(list) => value_json(codec, &list),
                None => message_of("schema").map_or(Ok(Value::Null), |s| to_json(codec, &s)),
            }
        }
        _ => {
            // Named slices (`+protobuf.nullable=true`: Verbs, ExtraValue, ...) are messages with one
            // repeated `items` field and no Go struct of their own: their JSON is the array.
            let only = d.fields().next()?;
            if d.fields().len() != 1
                || only.name() != "items"
                || !only.is_list()
                || codec
                    .fields
                    .contains_key(&(name.to_string(), only.number()))
            {
                return None;
            }
            let items = m.get_field(&only);
            value_json(codec, &items)
        }
    })
}

/// The JSON object Go writes for a message, by the field table's rules.
fn to_json(codec: &Codec, m: &DynamicMessage) -> Result<Value, String> {
    if let Some(v) = special_json(codec, m) {
        return v;
    }
    let d = m.descriptor();
    let name = d.full_name().to_string();
    let mut out = Map::new();
    for f in d.fields() {
        let go = match codec.fields.get(&(name.clone(), f.number())) {
            Some(None) => continue,
            Some(Some(go)) => go.clone(),
            // Not a Go field we know of: written when present and not empty, under its proto name.
            None => GoField {
                json: f.name().to_string(),
                pointer: false,
                strukt: false,
                nillable: f.is_list() || f.is_map(),
                omitempty: true,
                omitzero: false,
            },
        };
        let Some(v) = field_json(codec, m, &f, &go)? else {
            continue;
        };
        if go.json.is_empty() {
            if let Value::Object(o) = v {
                out.extend(o);
            }
        } else {
            out.insert(go.json, v);
        }
    }
    Ok(Value::Object(out))
}

/// One field's JSON, or `None` when Go would leave it out.
fn field_json(
    codec: &Codec,
    m: &DynamicMessage,
    f: &FieldDescriptor,
    go: &GoField,
) -> Result<Option<Value>, String> {
    let omit = go.omitempty || go.omitzero;
    if !m.has_field(f) {
        if go.strukt {
            // A zero struct: omitempty does not apply to structs, omitzero does.
            if go.omitzero {
                return Ok(None);
            }
            return Ok(Some(value_json(codec, &m.get_field(f))?));
        }
        if omit {
            return Ok(None);
        }
        if go.pointer || go.nillable || f.is_list() || f.is_map() {
            return Ok(Some(Value::Null));
        }
        if matches!(f.kind(), Kind::Message(_)) {
            return Ok(Some(Value::Null));
        }
        return Ok(Some(value_json(codec, &m.get_field(f))?));
    }
    let v = m.get_field(f);
    if go.pointer {
        return Ok(Some(value_json(codec, &v)?));
    }
    if omit && is_zero_scalar(&v) {
        return Ok(None);
    }
    let j = value_json(codec, &v)?;
    if go.omitzero && (j.is_null() || j.as_object().is_some_and(Map::is_empty)) {
        return Ok(None);
    }
    Ok(Some(j))
}

/// Why a JSON object could not be encoded.
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// The kind has no protobuf form (custom resources, Tables, metadata-only objects).
    NoProtobufForm,
    /// A field's JSON does not fit its message (e.g. a wrongly typed field stored as sent).
    Invalid(String),
}

/// Encodes the JSON object of a built-in kind (its `apiVersion` and `kind` say which) as a protobuf
/// body: the magic, then the envelope around the kind's message.
///
/// # Errors
/// [`EncodeError::NoProtobufForm`] for kinds without a message, [`EncodeError::Invalid`] for values that
/// do not fit it.
pub(crate) fn encode(obj: &Value) -> Result<Vec<u8>, EncodeError> {
    let codec = &*CODEC;
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let descriptor = codec
        .kinds
        .get(&(api_version.to_string(), kind.to_string()))
        .cloned()
        .ok_or(EncodeError::NoProtobufForm)?;
    let message = from_json(codec, &descriptor, obj).map_err(EncodeError::Invalid)?;
    let envelope = codec
        .pool
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is vendored");
    let mut unknown = DynamicMessage::new(envelope);
    let type_meta_d = unknown
        .descriptor()
        .get_field_by_name("typeMeta")
        .and_then(|f| f.kind().as_message().cloned())
        .expect("runtime.Unknown has typeMeta");
    let mut type_meta = DynamicMessage::new(type_meta_d);
    type_meta.set_field_by_name("apiVersion", PV::String(api_version.to_string()));
    type_meta.set_field_by_name("kind", PV::String(kind.to_string()));
    unknown.set_field_by_name("typeMeta", PV::Message(type_meta));
    unknown.set_field_by_name(
        "raw",
        PV::Bytes(bytes::Bytes::from(prost::Message::encode_to_vec(&message))),
    );
    unknown.set_field_by_name("contentEncoding", PV::String(String::new()));
    unknown.set_field_by_name("contentType", PV::String(String::new()));
    let mut out = MAGIC.to_vec();
    out.extend(prost::Message::encode_to_vec(&unknown));
    Ok(out)
}

/// One watch event (`{"type", "object"}`) as kube-apiserver frames it for protobuf watches: a 4-byte
/// big-endian length, then a `meta.v1.WatchEvent` whose object is the enveloped object.
///
/// # Errors
/// As [`encode`].
pub(crate) fn watch_frame(event: &Value) -> Result<Vec<u8>, EncodeError> {
    let codec = &*CODEC;
    let object = encode(&event["object"])?;
    let d = codec
        .pool
        .get_message_by_name(&format!("{META}.WatchEvent"))
        .expect("WatchEvent is vendored");
    let raw_d = d
        .get_field_by_name("object")
        .and_then(|f| f.kind().as_message().cloned())
        .expect("WatchEvent has object");
    let mut raw = DynamicMessage::new(raw_d);
    raw.set_field_by_name("raw", PV::Bytes(bytes::Bytes::from(object)));
    let mut ev = DynamicMessage::new(d);
    let ty = event["type"].as_str().unwrap_or_default().to_string();
    ev.set_field_by_name("type", PV::String(ty));
    ev.set_field_by_name("object", PV::Message(raw));
    let body = prost::Message::encode_to_vec(&ev);
    let len = u32::try_from(body.len())
        .map_err(|_| EncodeError::Invalid("watch event too large".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(body);
    Ok(out)
}

/// Whether the client takes protobuf but not JSON (`Accept: application/vnd.kubernetes.protobuf`), so its
/// answers are encoded. Clients that list JSON too (kubectl: `protobuf,application/json`) get JSON.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    !accepts_json(headers)
        && accept.split(',').any(|m| {
            let mut params = m.split(';').map(str::trim);
            params.next() == Some(MEDIA_TYPE) && !params.any(|p| p.starts_with("as="))
        })
}

/// The 406 a protobuf-only client gets for what has no protobuf form here (custom resources,
/// discovery, Tables), encoded as kube-apiserver encodes it.
pub(crate) fn not_acceptable() -> ApiError {
    ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: application/json, application/yaml, {MEDIA_TYPE}"
        ),
    )
}

/// An error's `kind: Status` body in protobuf.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match encode(&e.to_status()) {
        Ok(body) => protobuf_response(code, HeaderMap::new(), body, MEDIA_TYPE),
        Err(_) => crate::response::error_response(e),
    }
}

fn protobuf_response(
    code: StatusCode,
    mut headers: HeaderMap,
    body: Vec<u8>,
    ct: &'static str,
) -> Response {
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    *r.headers_mut() = headers;
    r
}

/// Re-encodes a JSON answer for a protobuf-only client: objects, lists and Status bodies become
/// enveloped messages; a watch's NDJSON events become length-prefixed `WatchEvent` frames
/// (`;stream=watch`). Other answers (plain text) pass unchanged.
pub(crate) async fn encode_response(resp: Response, watch: bool) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    if watch && parts.status == StatusCode::OK {
        let mut pending: Vec<u8> = Vec::new();
        let frames = body.into_data_stream().map(move |chunk| {
            chunk.map(|c| {
                pending.extend_from_slice(&c);
                let mut out = Vec::new();
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    let frame = watch_frame(&event).or_else(|e| {
                        let why = ApiError::internal(format!(
                            "cannot encode a watch event as protobuf: {e:?}"
                        ));
                        watch_frame(&json!({"type": "ERROR", "object": why.to_status()}))
                    });
                    out.extend(frame.unwrap_or_default());
                }
                bytes::Bytes::from(out)
            })
        });
        let mut r = Response::new(Body::from_stream(frames));
        *r.status_mut() = parts.status;
        *r.headers_mut() = parts.headers;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf;stream=watch"),
        );
        return r;
    }
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::internal(format!(
                "failed to build the answer: {e}"
            )));
        }
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return error_response(&ApiError::internal("the answer is not JSON"));
    };
    match encode(&value) {
        Ok(body) => protobuf_response(parts.status, parts.headers, body, MEDIA_TYPE),
        Err(EncodeError::NoProtobufForm) => error_response(&not_acceptable()),
        Err(EncodeError::Invalid(e)) => error_response(&ApiError::internal(format!(
            "the object cannot be encoded as protobuf: {e}"
        ))),
    }
}

/// Parses a Go `time.Duration` string (`1h0m0s`, `1.5ms`) into nanoseconds.
fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// The message `d` built from its Go JSON form `v`.
fn from_json(codec: &Codec, d: &MessageDescriptor, v: &Value) -> Result<DynamicMessage, String> {
    let mut m = DynamicMessage::new(d.clone());
    let name = d.full_name();
    match name.strip_prefix(META).unwrap_or(name) {
        ".Time" | ".MicroTime" => {
            if let Some(s) = v.as_str() {
                let ts: jiff::Timestamp = s.parse().map_err(|e| format!("time {s:?}: {e}"))?;
                m.set_field_by_name("seconds", PV::I64(ts.as_second()));
                let nanos = if name.ends_with("MicroTime") {
                    ts.subsec_nanosecond() / 1000 * 1000
                } else {
                    0
                };
                m.set_field_by_name("nanos", PV::I32(nanos));
            }
            return Ok(m);
        }
        ".Duration" => {
            let ns = match v {
                Value::String(s) => parse_go_duration(s)?,
                Value::Null => 0,
                other => return Err(format!("duration {other}")),
            };
            m.set_field_by_name("duration", PV::I64(ns));
            return Ok(m);
        }
        ".FieldsV1"
        | "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| e.to_string())?;
                let f = if name.ends_with("FieldsV1") {
                    "Raw"
                } else {
                    "raw"
                };
                m.set_field_by_name(f, PV::Bytes(bytes::Bytes::from(raw)));
            }
            return Ok(m);
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            match v {
                Value::String(s) => {
                    m.set_field_by_name("type", PV::I64(1));
                    m.set_field_by_name("intVal", PV::I32(0));
                    m.set_field_by_name("strVal", PV::String(s.clone()));
                }
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| format!("int-or-string {n} is out of range"))?;
                    m.set_field_by_name("type", PV::I64(0));
                    m.set_field_by_name("intVal", PV::I32(i));
                    m.set_field_by_name("strVal", PV::String(String::new()));
                }
                Value::Null => {}
                other => return Err(format!("int-or-string {other}")),
            }
            return Ok(m);
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => return Ok(m),
                other => return Err(format!("quantity {other}")),
            };
            m.set_field_by_name("string", PV::String(s));
            return Ok(m);
        }
        _ => {}
    }
    let union = |m: &mut DynamicMessage, list_field: &str, v: &Value| -> Result<bool, String> {
        match v {
            Value::Array(_) => {
                set_json(codec, m, list_field, v)?;
                Ok(true)
            }
            Value::Object(_) => {
                set_json(codec, m, "schema", v)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    match name {
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray" => {
            union(&mut m, "jSONSchemas", v)?;
            return Ok(m);
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray" => {
            union(&mut m, "property", v)?;
            return Ok(m);
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool" => {
            match v {
                Value::Bool(b) => m.set_field_by_name("allows", PV::Bool(*b)),
                Value::Object(_) => {
                    m.set_field_by_name("allows", PV::Bool(true));
                    set_json(codec, &mut m, "schema", v)?;
                }
                _ => {}
            }
            return Ok(m);
        }
        _ => {}
    }
    // Named slices: the JSON array is the `items` field.
    if let Some(only) = d.fields().next()
        && d.fields().len() == 1
        && only.name() == "items"
        && only.is_list()
        && !codec
            .fields
            .contains_key(&(name.to_string(), only.number()))
    {
        if !v.is_null() {
            set_json(codec, &mut m, "items", v)?;
        }
        return Ok(m);
    }
    let Some(obj) = v.as_object() else {
        if v.is_null() {
            return Ok(m);
        }
        return Err(format!("{} must be an object, not {v}", d.name()));
    };
    for f in d.fields() {
        let go = match codec.fields.get(&(name.to_string(), f.number())) {
            Some(None) => continue,
            Some(Some(go)) => Some(go),
            None => None,
        };
        let json_name = go.map_or(f.name(), |g| g.json.as_str());
        if json_name.is_empty() {
            // Inline embed: its fields are the parent's.
            let Kind::Message(inner) = f.kind() else {
                continue;
            };
            m.set_field(&f, PV::Message(from_json(codec, &inner, v)?));
            continue;
        }
        match obj.get(json_name) {
            Some(fv) if !fv.is_null() => {
                let pv = to_proto_value(codec, &f, fv).map_err(|e| format!("{json_name}: {e}"))?;
                m.set_field(&f, pv);
            }
            // Go writes every non-pointer field, zero or not.
            _ if go.is_some_and(|g| !g.pointer && !g.nillable) && !f.is_list() && !f.is_map() => {
                let dv = m.get_field(&f).into_owned();
                m.set_field(&f, dv);
            }
            _ => {}
        }
    }
    Ok(m)
}

/// Sets field `name` of `m` from JSON.
fn set_json(codec: &Codec, m: &mut DynamicMessage, name: &str, v: &Value) -> Result<(), String> {
    let f = m
        .descriptor()
        .get_field_by_name(name)
        .ok_or_else(|| format!("no field {name}"))?;
    let pv = to_proto_value(codec, &f, v)?;
    m.set_field(&f, pv);
    Ok(())
}

/// A field's proto value from its JSON (lists and maps included).
fn to_proto_value(codec: &Codec, f: &FieldDescriptor, v: &Value) -> Result<PV, String> {
    if f.is_list() {
        let items = v
            .as_array()
            .ok_or_else(|| format!("expected a list, got {v}"))?;
        return Ok(PV::List(
            items
                .iter()
                .map(|x| single_value(codec, &f.kind(), x))
                .collect::<Result<_, _>>()?,
        ));
    }
    if f.is_map() {
        let Kind::Message(entry) = f.kind() else {
            return Err("malformed map descriptor".into());
        };
        let value_kind = entry.map_entry_value_field().kind();
        let obj = v
            .as_object()
            .ok_or_else(|| format!("expected an object, got {v}"))?;
        let mut map = HashMap::new();
        for (k, x) in obj {
            map.insert(
                MapKey::String(k.clone()),
                single_value(codec, &value_kind, x)?,
            );
        }
        return Ok(PV::Map(map));
    }
    single_value(codec, &f.kind(), v)
}

fn single_value(codec: &Codec, kind: &Kind, v: &Value) -> Result<PV, String> {
    let int = || {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("expected an integer, got {v}"))
    };
    Ok(match kind {
        Kind::Message(d) => PV::Message(from_json(codec, d, v)?),
        Kind::String => PV::String(match v {
            Value::String(s) => s.clone(),
            other => return Err(format!("expected a string, got {other}")),
        }),
        Kind::Bool => PV::Bool(
            v.as_bool()
                .ok_or_else(|| format!("expected a boolean, got {v}"))?,
        ),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PV::I32(i32::try_from(int()?).map_err(|_| format!("{v} is out of range"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PV::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => {
            PV::U32(u32::try_from(int()?).map_err(|_| format!("{v} is out of range"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            PV::U64(u64::try_from(int()?).map_err(|_| format!("{v} is out of range"))?)
        }
        Kind::Double => PV::F64(
            v.as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))?,
        ),
        Kind::Float => PV::F32(
            v.as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))? as f32,
        ),
        Kind::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected base64, got {v}"))?;
            PV::Bytes(bytes::Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("invalid base64: {e}"))?,
            ))
        }
        Kind::Enum(_) => {
            PV::EnumNumber(i32::try_from(int()?).map_err(|_| format!("{v} is out of range"))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_in_the_table_has_a_message() {
        let codec = &*CODEC;
        assert!(codec.kinds.len() > 200, "{} kinds", codec.kinds.len());
        for (av, kind) in [
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("v1", "DeleteOptions"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("apiregistration.k8s.io/v1", "APIService"),
            ("authentication.k8s.io/v1", "TokenRequest"),
        ] {
            assert!(
                codec.kinds.contains_key(&(av.into(), kind.into())),
                "{av} {kind}"
            );
        }
    }

    /// Every body in `tests/fixtures/protobuf` (captured from kubectl 1.32, or encoded by Go) decodes to
    /// the JSON Go's own protobuf decoder and json.Marshal make of it (`<body>.json`, see the README there).
    #[test]
    fn golden_bodies_decode_to_what_go_writes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = entry.expect("entry").path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext != "pb" && ext != "bin" {
                continue;
            }
            let body = std::fs::read(&path).expect("body");
            let golden: Value = serde_json::from_slice(
                &std::fs::read(path.with_extension("json")).expect("golden JSON beside the body"),
            )
            .expect("golden JSON parses");
            let got = decode_any(&body, None)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.message));
            assert_eq!(
                got,
                golden,
                "{}:\n got {}\nwant {}",
                path.display(),
                serde_json::to_string(&got).unwrap_or_default(),
                serde_json::to_string(&golden).unwrap_or_default()
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} fixtures");
    }

    /// The envelope's type and its message, as decoded fields (map entries in any order, which Go
    /// sorts and prost-reflect does not).
    fn wire_message(body: &[u8]) -> (String, DynamicMessage) {
        let d = CODEC.pool.get_message_by_name(UNKNOWN).expect("Unknown");
        let unknown = DynamicMessage::decode(d, &body[4..]).expect("envelope");
        let tm = unknown.get_field_by_name("typeMeta").expect("typeMeta");
        let tm = tm.as_message().expect("message");
        let field_str = |m: &DynamicMessage, f: &str| {
            m.get_field_by_name(f)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let (av, kind) = (field_str(tm, "apiVersion"), field_str(tm, "kind"));
        let md = CODEC.kinds[&(av.clone(), kind.clone())].clone();
        let raw = unknown.get_field_by_name("raw").expect("raw");
        let message =
            DynamicMessage::decode(md, raw.as_bytes().expect("bytes").as_ref()).expect("message");
        (format!("{av} {kind}"), message)
    }

    /// Encoding a golden object gives the message Go's encoder wrote for it (every field Go writes,
    /// zero values of non-pointer fields included), and decoding that gives the object back.
    #[test]
    fn golden_objects_encode_to_bodies_that_decode_to_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let golden: Value =
                serde_json::from_slice(&std::fs::read(&path).expect("golden")).expect("JSON");
            let body = encode(&golden)
                .unwrap_or_else(|e| panic!("{}: cannot encode: {e:?}", path.display()));
            let back = decode_any(&body, None)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.message));
            assert_eq!(back, golden, "{}", path.display());
            for ext in ["pb", "bin"] {
                if let Ok(original) = std::fs::read(path.with_extension(ext)) {
                    assert_eq!(
                        wire_message(&body),
                        wire_message(&original),
                        "{}: the encoded message differs from Go's",
                        path.display()
                    );
                }
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} fixtures");
    }

    #[test]
    fn kinds_without_a_protobuf_form_and_mistyped_fields_are_refused() {
        assert!(matches!(
            encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
            Err(EncodeError::NoProtobufForm)
        ));
        assert!(matches!(
            encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}})),
            Err(EncodeError::Invalid(e)) if e.contains("data")
        ));
    }

    #[test]
    fn watch_events_are_length_prefixed_watch_event_messages() {
        let frame = watch_frame(&json!({"type": "ADDED", "object":
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}}))
        .expect("frame");
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
        let d = CODEC
            .pool
            .get_message_by_name(&format!("{META}.WatchEvent"))
            .expect("WatchEvent");
        let ev = DynamicMessage::decode(d, &frame[4..]).expect("a WatchEvent");
        assert_eq!(
            ev.get_field_by_name("type")
                .and_then(|v| v.as_str().map(str::to_owned))
                .as_deref(),
            Some("ADDED")
        );
        let raw = ev
            .get_field_by_name("object")
            .and_then(|o| {
                o.as_message()
                    .and_then(|m| m.get_field_by_name("raw"))
                    .and_then(|r| r.as_bytes().cloned())
            })
            .expect("raw");
        assert_eq!(
            decode_any(&raw, None).expect("object")["metadata"]["name"],
            "a"
        );
    }

    #[test]
    fn go_durations_parse_back() {
        for ns in [
            0,
            999,
            1_500_000,
            90_500_000_000,
            3_600_000_000_000,
            -2_000_000_000,
        ] {
            assert_eq!(parse_go_duration(&go_duration(ns)), Ok(ns));
        }
        assert!(parse_go_duration("5 parsecs").is_err());
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        assert_eq!(go_duration(999), "999ns");
    }

    #[test]
    fn error_bodies_are_quoted_as_kube_apiserver_does() {
        assert_eq!(summarize(b""), "<empty>");
        assert_eq!(summarize(b"k8s\0"), "6b387300");
        assert_eq!(summarize(&[b'a'; 31]), format!("{} ...", "61".repeat(30)));
        assert_eq!(summarize(b"{\"a\":1}"), "{\"a\":1}");
    }
}
