//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) for built-in kinds: the `k8s\0`
//! magic, then a `runtime.Unknown` envelope {typeMeta {apiVersion, kind}, raw, contentEncoding,
//! contentType} whose `raw` is the kind's message. Requests are decoded (`decode.rs`) into the JSON
//! object Go's `json.Marshal` writes for the same Go struct, which is what the rest of the server
//! handles; answers to clients that accept only protobuf are encoded back (`encode.rs`).
//!
//! The messages come from the vendored `proto/k8s.io/**/generated.proto` (compiled by `build.rs` into a
//! descriptor set and read by reflection). What the wire does not carry (JSON names, inline embeds,
//! which zero values Go omits) comes from `proto/json-fields.txt`, generated from the Go types by
//! `tools/k8s-proto-table`.

mod decode;
mod encode;

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value as PV,
};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::response::accepts_json;

pub(crate) use decode::decode;
use encode::{EncodeError, encode, watch_frame};

/// The media type of Kubernetes protobuf bodies.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// What every protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

static CODEC: LazyLock<Codec> = LazyLock::new(|| {
    Codec::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/k8s.fds")),
        include_str!("../../proto/json-fields.txt"),
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

/// A field's value if it is present on the wire.
fn field<'a>(m: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, PV>> {
    let f = m.descriptor().get_field_by_name(name)?;
    m.has_field(&f).then(|| m.get_field(&f))
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
}
