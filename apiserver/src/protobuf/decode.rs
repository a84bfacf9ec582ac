//! Protobuf to JSON: the envelope, then the kind's message walked into what Go's `json.Marshal` writes.

use std::fmt::Write as _;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value as PV};
use serde_json::{Map, Value, json};

use super::{CODEC, Codec, GoField, MAGIC, META, UNKNOWN, field};
use crate::error::{ApiError, ApiResult};

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
pub(super) fn decode_any(body: &[u8], expected: Option<(&str, &str)>) -> ApiResult<Value> {
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

/// A Go `time.Duration`'s `String()`.
pub(super) fn go_duration(ns: i64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Cut short or corrupted anywhere, a body is an error, never a panic.
    #[test]
    fn truncated_and_corrupted_bodies_are_errors_not_panics() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
        for entry in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = entry.expect("entry").path();
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pb" | "bin")
            ) {
                continue;
            }
            let body = std::fs::read(&path).expect("body");
            for cut in 0..body.len() {
                let _ = decode(&body[..cut], "", "ConfigMap");
            }
            for i in 4..body.len() {
                for flip in [0x80u8, 0xff, 0x07] {
                    let mut bad = body.clone();
                    bad[i] ^= flip;
                    let _ = decode(&bad, "", "ConfigMap");
                }
            }
        }
    }

    /// RawExtensions holding protobuf objects holding RawExtensions...: bounded, a 400.
    #[test]
    fn deeply_nested_objects_are_refused() {
        fn varint(out: &mut Vec<u8>, mut n: usize) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        fn field(number: u8, data: &[u8]) -> Vec<u8> {
            let mut out = vec![number << 3 | 2];
            varint(&mut out, data.len());
            out.extend_from_slice(data);
            out
        }
        // A ControllerRevision (field 2: data, a RawExtension whose field 1 is raw) inside another.
        let mut body = b"{}".to_vec();
        for _ in 0..200 {
            let type_meta = [field(1, b"apps/v1"), field(2, b"ControllerRevision")].concat();
            let revision = field(2, &field(1, &body));
            body = [
                b"k8s\0".as_slice(),
                &field(1, &type_meta),
                &field(2, &revision),
            ]
            .concat();
        }
        let e = decode(&body, "apps", "ControllerRevision").expect_err("too deep");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
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
