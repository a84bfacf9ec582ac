//! kube-apiserver's own OpenAPI documents for the built-in groups, captured by `tools/k8s-openapi`
//! and compiled in zstd-compressed; each artefact is decompressed once, when first asked for.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha512};

static V3_BUNDLE: &[u8] = include_bytes!("../../openapi/v3.bundle.zst");
static V2_JSON: &[u8] = include_bytes!("../../openapi/v2.json.zst");
static V2_PROTOBUF: &[u8] = include_bytes!("../../openapi/v2.pb.zst");

/// One `/openapi/v3/...` document as kube-apiserver serves it.
pub(crate) struct Document {
    /// The bytes served.
    pub bytes: Bytes,
    hash: OnceLock<String>,
    schemas: OnceLock<Map<String, Value>>,
    /// (group, version, kind) -> the name of its schema in `schemas`.
    kinds: OnceLock<HashMap<(String, String, String), String>>,
}

impl Document {
    fn new(bytes: Bytes) -> Document {
        Document {
            bytes,
            hash: OnceLock::new(),
            schemas: OnceLock::new(),
            kinds: OnceLock::new(),
        }
    }

    /// The schema of a kind, found by its `x-kubernetes-group-version-kind`.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        let kinds = self.kinds.get_or_init(|| {
            let mut kinds = HashMap::new();
            for (name, s) in self.schemas() {
                let gvks = s
                    .get("x-kubernetes-group-version-kind")
                    .and_then(Value::as_array);
                for g in gvks.into_iter().flatten() {
                    let part = |k: &str| g[k].as_str().unwrap_or("").to_string();
                    kinds.insert((part("group"), part("version"), part("kind")), name.clone());
                }
            }
            kinds
        });
        let name = kinds.get(&(group.to_string(), version.to_string(), kind.to_string()))?;
        self.schemas().get(name)
    }

    /// The index's `hash` for this document (kube-apiserver's: SHA-512 of the bytes, upper-case hex).
    pub fn hash(&self) -> &str {
        self.hash.get_or_init(|| hash(&self.bytes))
    }

    /// `components.schemas`, parsed on first use.
    pub fn schemas(&self) -> &Map<String, Value> {
        self.schemas.get_or_init(|| {
            serde_json::from_slice::<Value>(&self.bytes)
                .ok()
                .and_then(|mut v| v.pointer_mut("/components/schemas").map(Value::take))
                .and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                })
                .unwrap_or_default()
        })
    }
}

/// SHA-512 of a document, upper-case hex, as kube-apiserver's OpenAPI v3 index spells it.
pub(crate) fn hash(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha512::digest(bytes)
        .iter()
        .fold(String::with_capacity(128), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

fn decompress(name: &str, compressed: &[u8]) -> Vec<u8> {
    // The artefacts are compiled in and checked by the unit tests below, so a failure here is a
    // build defect; answer with an empty document rather than take the server down.
    zstd::stream::decode_all(compressed).unwrap_or_else(|e| {
        tracing::error!(artefact = name, error = %e, "cannot decompress a compiled-in OpenAPI artefact");
        Vec::new()
    })
}

/// Splits the v3 bundle (`path\nlength\n` then that many bytes, repeated) into documents.
fn parse_bundle(raw: &[u8]) -> BTreeMap<String, Document> {
    let raw = Bytes::from(raw.to_vec());
    let mut docs = BTreeMap::new();
    let mut at = 0;
    let line = |from: usize| -> Option<(&str, usize)> {
        let end = from + raw.get(from..)?.iter().position(|b| *b == b'\n')?;
        Some((std::str::from_utf8(&raw[from..end]).ok()?, end + 1))
    };
    while at < raw.len() {
        let Some((path, next)) = line(at) else { break };
        let Some((len, next)) = line(next) else { break };
        let Ok(len) = len.parse::<usize>() else { break };
        let Some(end) = next.checked_add(len).filter(|e| *e <= raw.len()) else {
            break;
        };
        docs.insert(path.to_string(), Document::new(raw.slice(next..end)));
        at = end;
    }
    docs
}

/// Every built-in `/openapi/v3` document by path (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`, ...).
pub(crate) fn v3() -> &'static BTreeMap<String, Document> {
    static DOCS: OnceLock<BTreeMap<String, Document>> = OnceLock::new();
    DOCS.get_or_init(|| parse_bundle(&decompress("v3.bundle", V3_BUNDLE)))
}

/// `/openapi/v2` as JSON.
pub(crate) fn v2_json() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(decompress("v2.json", V2_JSON)))
        .clone()
}

/// `/openapi/v2` as gnostic protobuf (`openapi_v2.Document`).
pub(crate) fn v2_protobuf() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(decompress("v2.pb", V2_PROTOBUF)))
        .clone()
}

/// `x-kubernetes-group-version-kind` of DeleteOptions in CRD documents: kube-apiserver copies it
/// from its core scheme, which registers DeleteOptions in every built-in group/version but those of
/// admission, imagepolicy, apiextensions and apiregistration (which `/openapi/v2` lists too).
pub(crate) fn delete_options_kinds() -> Option<&'static Value> {
    static KINDS: OnceLock<Option<Value>> = OnceLock::new();
    KINDS
        .get_or_init(|| {
            let mut v2: Value = serde_json::from_slice(&v2_json()).ok()?;
            let mut kinds = v2
                .pointer_mut(
                    "/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions/x-kubernetes-group-version-kind",
                )
                .map(Value::take)?;
            if let Some(list) = kinds.as_array_mut() {
                list.retain(|g| {
                    !matches!(
                        g["group"].as_str(),
                        Some(
                            "admission.k8s.io"
                                | "imagepolicy.k8s.io"
                                | "apiextensions.k8s.io"
                                | "apiregistration.k8s.io"
                        )
                    )
                });
            }
            Some(kinds)
        })
        .as_ref()
}

/// The document path of a group/version: `api/v1` or `apis/apps/v1`.
pub(crate) fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The built-in schema of a kind, with the document whose `components.schemas` its `$ref`s
/// resolve in: found by `x-kubernetes-group-version-kind`.
pub(crate) fn kind_schema(
    group: &str,
    version: &str,
    kind: &str,
) -> Option<(&'static Map<String, Value>, &'static Value)> {
    let doc = v3().get(&gv_path(group, version))?;
    Some((doc.schemas(), doc.kind(group, version, kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_the_core_and_apps_documents_with_their_schemas() {
        let docs = v3();
        for p in [
            "api/v1",
            "apis/apps/v1",
            "apis/apiextensions.k8s.io/v1",
            "api",
            "apis",
        ] {
            assert!(docs.contains_key(p), "{p} missing from the v3 bundle");
        }
        let schemas = docs["api/v1"].schemas();
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert_eq!(docs["api/v1"].hash().len(), 128);
    }

    #[test]
    fn kinds_are_found_by_group_version_kind() {
        let (_, s) = kind_schema("apps", "v1", "Deployment").expect("Deployment schema");
        assert!(s.pointer("/properties/spec").is_some());
        assert!(kind_schema("apps", "v1", "Nope").is_none());
    }

    #[test]
    fn v2_is_served_in_both_forms() {
        let json: Value = serde_json::from_slice(&v2_json()).expect("v2 JSON parses");
        assert_eq!(json["swagger"], "2.0");
        assert!(json["definitions"]["io.k8s.api.core.v1.ConfigMap"].is_object());
        assert!(v2_protobuf().len() > 1_000_000);
    }
}
