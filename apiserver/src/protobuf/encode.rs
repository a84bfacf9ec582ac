//! JSON to protobuf: an object of a built-in kind built into its message and enveloped, and watch
//! events framed, for clients that accept only protobuf.

use std::collections::HashMap;

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as PV,
};
use serde_json::Value;

use super::{CODEC, Codec, MAGIC, META, UNKNOWN};

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
    // Discovery documents of the core group (`/api`, `/api/v1`) have no apiVersion; their envelope has
    // none either, and their message is meta/v1's.
    let descriptor = codec
        .kinds
        .get(&(api_version.to_string(), kind.to_string()))
        .or_else(|| {
            api_version
                .is_empty()
                .then(|| codec.kinds.get(&("v1".to_string(), kind.to_string())))
                .flatten()
        })
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
    use serde_json::json;

    use super::*;
    use crate::protobuf::decode::{decode_any, go_duration};

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
}
