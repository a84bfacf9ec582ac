//! Plugins as OCI artifacts: [`push`] a component to a registry, [`pull`] it back by tag or
//! `@sha256:` digest with every digest verified.
//!
//! The artifact uses the wasm OCI artifact layout (the CNCF TAG Runtime's, as wasmCloud, Spin
//! and Kubewarden use it): an OCI image manifest whose config has the media type
//! [`CONFIG_MEDIA_TYPE`] and whose one layer is the component itself, [`LAYER_MEDIA_TYPE`].
//!
//! [`pull`] never returns bytes it has not verified: the manifest's sha256 must be the digest
//! asked for (a digest reference) or the one the registry states, and the layer's sha256 must
//! be the digest the manifest names; a component over the size cap is refused before it is
//! read whole. The bytes are not checked to be a kubewasm component here: the caller loads
//! them with [`crate::runtime::Runtime::load`], as it does a file.

mod auth;

pub use auth::{Credentials, CredentialsError, for_registry as credentials_for};

use std::str::FromStr as _;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

/// The config's media type in the wasm OCI artifact layout.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer's media type: the component's bytes, as they are.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The manifest's media type (an OCI image manifest).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Manifests larger than this are refused (the distribution spec asks registries to accept
/// at least 4 MiB; a wasm artifact's manifest is under 1 KiB).
const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// The media types a pull accepts for the manifest: OCI and Docker manifests and indexes, so an
/// image that is not a wasm artifact is recognised and refused by name, not as "not found".
const ACCEPTED_MANIFESTS: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How to reach the registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Talk plain HTTP instead of HTTPS (a registry on loopback, as in the tests).
    pub plain_http: bool,
    /// The credentials ([`credentials_for`] finds the usual ones).
    pub credentials: Credentials,
    /// The largest component pulled, in bytes (the host's `--max-plugin-size`).
    pub max_size: u64,
}

/// Why a push or pull failed. Every case names the reference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference does not parse.
    #[error("invalid OCI reference {reference:?}: {reason}")]
    BadReference {
        /// As given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// Pushing to a digest: a push needs a tag.
    #[error(
        "cannot push to {reference}: a push needs a tag (REGISTRY/REPOSITORY:TAG), the digest is computed"
    )]
    PushToDigest {
        /// As given.
        reference: String,
    },
    /// No such repository, tag or digest.
    #[error("{reference} was not found in the registry (no such repository, tag or digest)")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The registry refused the credentials, or asks for some.
    #[error(
        "the registry refused {reference} ({credentials}): {detail}; set KUBEWASM_REGISTRY_USERNAME and KUBEWASM_REGISTRY_PASSWORD or log in with a docker config"
    )]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The credentials used (never the password).
        credentials: String,
        /// What the registry said.
        detail: String,
    },
    /// The artifact is something else than a wasm component artifact (a container image, an
    /// index, another config or layer media type, more than one layer).
    #[error("{reference} is not a wasm artifact: {what}")]
    NotWasm {
        /// The reference.
        reference: String,
        /// What it is instead.
        what: String,
    },
    /// The manifest's content is not the digest it was asked for or stated under.
    #[error(
        "{reference}: the manifest's content has digest {actual}, not {expected}; refused (tampered or corrupt registry content)"
    )]
    ManifestDigest {
        /// The reference.
        reference: String,
        /// The digest asked for (or the registry's `Docker-Content-Digest`).
        expected: String,
        /// The sha256 of what was received.
        actual: String,
    },
    /// The layer's content is not the digest the manifest names.
    #[error(
        "{reference}: the component blob has digest {actual}, but the manifest names {expected}; refused (tampered or corrupt registry content)"
    )]
    LayerDigest {
        /// The reference.
        reference: String,
        /// The digest in the manifest.
        expected: String,
        /// The sha256 of what was received.
        actual: String,
    },
    /// The component is over the size cap, as the manifest states it; nothing was downloaded.
    #[error(
        "{reference}: the component is {size} bytes, over the limit of {max} bytes (raise it with --max-plugin-size)"
    )]
    TooLarge {
        /// The reference.
        reference: String,
        /// Its size, as the manifest states it.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The registry sent more bytes for the component than the cap (whatever the manifest
    /// said); the download was stopped there.
    #[error(
        "{reference}: the registry sent more than {max} bytes for the component, over the limit (raise it with --max-plugin-size); refused"
    )]
    SentTooMuch {
        /// The reference.
        reference: String,
        /// The cap.
        max: u64,
    },
    /// The registry cannot be reached at all.
    #[error("cannot reach the registry of {reference}: {detail}{hint}")]
    Unreachable {
        /// The reference.
        reference: String,
        /// Why (connection refused, TLS, DNS).
        detail: String,
        /// A hint when HTTPS met something else (a plain-HTTP registry), else empty.
        hint: &'static str,
    },
    /// Anything else the registry answered.
    #[error("{action} {reference} failed: {source}")]
    Registry {
        /// `pushing` or `pulling`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// What the client said.
        #[source]
        source: OciDistributionError,
    },
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A component pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `REGISTRY/REPOSITORY@sha256:...`: pulls exactly what was pushed.
    pub pinned: String,
    /// The manifest's digest (`sha256:...`).
    pub digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
}

/// A component pulled; its digests were verified.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// The manifest's digest (`sha256:...`): what `REPOSITORY@digest` pulls.
    pub digest: String,
    /// The component layer's digest (the sha256 of `bytes`).
    pub layer_digest: String,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn parse(reference: &str) -> Result<Reference> {
    Reference::from_str(reference).map_err(|e| Error::BadReference {
        reference: reference.to_owned(),
        reason: e.to_string(),
    })
}

fn client(options: &Options) -> Client {
    // The process may have no rustls provider chosen yet (kube's client installs none
    // globally); reqwest needs one even for plain HTTP. Another already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: if options.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..ClientConfig::default()
    })
}

/// Publishes `component` (a `.wasm` file's bytes) at `reference` (`REGISTRY/REPOSITORY:TAG`) in
/// the wasm OCI artifact layout. The caller checks first that it is a kubewasm component.
///
/// # Errors
/// A bad or digest reference, an unreachable registry, refused credentials, or any other
/// registry error.
pub async fn push(reference: &str, component: &[u8], options: &Options) -> Result<Pushed> {
    let image = parse(reference)?;
    if image.digest().is_some() {
        return Err(Error::PushToDigest {
            reference: reference.to_owned(),
        });
    }
    let client = client(options);
    let auth = options.credentials.to_registry_auth();
    let fail = |e| classify("pushing", reference, &options.credentials, e);

    let layer_digest = sha256_digest(component);
    let config = serde_json::to_vec(&serde_json::json!({
        "created": jiff::Timestamp::now().to_string(),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    }))
    .expect("a JSON value serializes");
    let config_digest = sha256_digest(&config);
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        config: OciDescriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: config_digest.clone(),
            size: config.len() as i64,
            ..OciDescriptor::default()
        },
        layers: vec![OciDescriptor {
            media_type: LAYER_MEDIA_TYPE.to_owned(),
            digest: layer_digest.clone(),
            size: component.len() as i64,
            ..OciDescriptor::default()
        }],
        ..OciImageManifest::default()
    };
    // Serialized here, so the digest printed is that of the exact bytes the registry stores.
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let digest = sha256_digest(&manifest);

    client
        .store_auth_if_needed(image.resolve_registry(), &auth)
        .await;
    client
        .auth(&image, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(fail)?;
    client
        .push_blob(&image, component.to_vec(), &layer_digest)
        .await
        .map_err(fail)?;
    client
        .push_blob(&image, config, &config_digest)
        .await
        .map_err(fail)?;
    client
        .push_manifest_raw(
            &image,
            manifest,
            http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
        )
        .await
        .map_err(fail)?;
    Ok(Pushed {
        pinned: format!("{}/{}@{digest}", image.registry(), image.repository()),
        digest,
        layer_digest,
    })
}

/// Fetches the component at `reference` (`REGISTRY/REPOSITORY:TAG` or
/// `REGISTRY/REPOSITORY@sha256:...`), verifying the manifest's digest and the layer's.
///
/// # Errors
/// Not found, unauthorized, not a wasm artifact, a digest mismatch (naming both digests), over
/// `options.max_size`, an unreachable registry; no bytes are returned in any of these cases.
pub async fn pull(reference: &str, options: &Options) -> Result<Pulled> {
    let image = parse(reference)?;
    let client = client(options);
    let auth = options.credentials.to_registry_auth();
    let fail = |e| classify("pulling", reference, &options.credentials, e);

    let (manifest, stated) = client
        .pull_manifest_raw(&image, &auth, ACCEPTED_MANIFESTS)
        .await
        .map_err(|e| match e {
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => Error::ManifestDigest {
                reference: reference.to_owned(),
                expected,
                actual,
            },
            e => fail(e),
        })?;
    if manifest.len() > MAX_MANIFEST_SIZE {
        return Err(Error::NotWasm {
            reference: reference.to_owned(),
            what: format!(
                "its manifest is {} bytes, over {MAX_MANIFEST_SIZE} (a wasm artifact's is under 1 KiB)",
                manifest.len()
            ),
        });
    }
    // Checked here as well as in the client, so the guarantee does not rest on its internals.
    let digest = sha256_digest(&manifest);
    let expected = image.digest().map_or(stated, str::to_owned);
    if digest != expected {
        return Err(Error::ManifestDigest {
            reference: reference.to_owned(),
            expected,
            actual: digest,
        });
    }
    let layer = wasm_layer(reference, &manifest)?;
    let max = options.max_size;
    if u64::try_from(layer.size).unwrap_or(u64::MAX) > max {
        return Err(Error::TooLarge {
            reference: reference.to_owned(),
            size: layer.size.max(0) as u64,
            max,
        });
    }

    let mut out = Capped {
        bytes: Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0).min(max as usize)),
        max,
    };
    let pulled = client.pull_blob(&image, &layer, &mut out).await;
    let too_large = out.bytes.len() as u64 > max;
    match pulled {
        Ok(()) => {}
        Err(_) if too_large => {
            return Err(Error::SentTooMuch {
                reference: reference.to_owned(),
                max,
            });
        }
        Err(OciDistributionError::DigestError(DigestError::VerificationError {
            actual, ..
        })) => {
            return Err(Error::LayerDigest {
                reference: reference.to_owned(),
                expected: layer.digest,
                actual,
            });
        }
        Err(e) => return Err(fail(e)),
    }
    let actual = sha256_digest(&out.bytes);
    if actual != layer.digest {
        return Err(Error::LayerDigest {
            reference: reference.to_owned(),
            expected: layer.digest,
            actual,
        });
    }
    Ok(Pulled {
        bytes: out.bytes,
        digest,
        layer_digest: actual,
    })
}

/// The one `application/wasm` layer of a wasm artifact's manifest.
fn wasm_layer(reference: &str, manifest: &[u8]) -> Result<OciDescriptor> {
    let not_wasm = |what: String| Error::NotWasm {
        reference: reference.to_owned(),
        what,
    };
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| not_wasm(format!("its manifest is not JSON: {e}")))?;
    let media_type = value.get("mediaType").and_then(|m| m.as_str());
    if value.get("manifests").is_some()
        || media_type.is_some_and(|m| m.contains("index") || m.contains("list"))
    {
        return Err(not_wasm(format!(
            "it is an image index ({}), as multi-platform container images are",
            media_type.unwrap_or("no media type")
        )));
    }
    let manifest: OciImageManifest = serde_json::from_value(value)
        .map_err(|e| not_wasm(format!("its manifest does not parse: {e}")))?;
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its config media type is {}, not {CONFIG_MEDIA_TYPE} (a container image?)",
            manifest.config.media_type
        )));
    }
    let [layer] = <[OciDescriptor; 1]>::try_from(manifest.layers).map_err(|layers| {
        not_wasm(format!(
            "it has {} layers, a wasm artifact has exactly one",
            layers.len()
        ))
    })?;
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its layer media type is {}, not {LAYER_MEDIA_TYPE}",
            layer.media_type
        )));
    }
    Ok(layer)
}

/// Where a blob is written: refuses (an I/O error) any write past `max` bytes, keeping one
/// byte over so the caller can tell.
struct Capped {
    bytes: Vec<u8>,
    max: u64,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let room = self.max.saturating_sub(self.bytes.len() as u64);
        if buf.len() as u64 > room {
            let keep = room as usize + 1;
            self.bytes.extend_from_slice(&buf[..keep.min(buf.len())]);
            return std::task::Poll::Ready(Err(std::io::Error::other("over the size cap")));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Sorts a client error into not found, unauthorized, unreachable or other.
fn classify(
    action: &'static str,
    reference: &str,
    credentials: &Credentials,
    e: OciDistributionError,
) -> Error {
    let reference = reference.to_owned();
    let unauthorized = |detail: String| Error::Unauthorized {
        reference: reference.clone(),
        credentials: credentials.describe(),
        detail,
    };
    match &e {
        OciDistributionError::ImageManifestNotFoundError(_) => Error::NotFound { reference },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                Error::NotFound { reference }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                let messages: Vec<&str> =
                    envelope.errors.iter().map(|e| e.message.as_str()).collect();
                unauthorized(messages.join("; "))
            } else {
                Error::Registry {
                    action,
                    reference,
                    source: e,
                }
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => Error::NotFound { reference },
        OciDistributionError::ServerError {
            code: 401 | 403,
            message,
            ..
        } => unauthorized(message.clone()),
        OciDistributionError::UnauthorizedError { url } => {
            unauthorized(format!("401 Unauthorized from {url}"))
        }
        OciDistributionError::AuthenticationFailure(detail) => {
            unauthorized(registry_message(detail))
        }
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
            let detail = error_chain(r);
            // rustls's words for a plain-HTTP answer to its TLS hello.
            let hint = if detail.contains("InvalidContentType")
                || detail.contains("corrupt message")
            {
                " (the registry does not speak HTTPS there; for a plain-HTTP registry pass --plain-http)"
            } else {
                ""
            };
            Error::Unreachable {
                reference,
                detail,
                hint,
            }
        }
        _ => Error::Registry {
            action,
            reference,
            source: e,
        },
    }
}

/// The `message`s of a registry's JSON error body (`{"errors": [{"code", "message"}]}`), else
/// the body as it is, on one line.
fn registry_message(body: &str) -> String {
    let messages: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?
                .as_array()?
                .iter()
                .map(|e| e.get("message")?.as_str().map(str::to_owned))
                .collect()
        });
    match messages {
        Some(m) if !m.is_empty() => m.join("; "),
        _ => body.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_error_body_is_reduced_to_its_messages() {
        let body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":[]}]}\n";
        assert_eq!(registry_message(body), "authentication required");
        assert_eq!(registry_message("plain\n text "), "plain text");
    }

    #[test]
    fn only_a_single_application_wasm_layer_under_the_wasm_config_is_a_wasm_artifact() {
        let manifest = |config: &str, layers: &[&str]| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": config, "digest": format!("sha256:{}", "a".repeat(64)), "size": 2},
                "layers": layers.iter().map(|m| serde_json::json!({
                    "mediaType": m, "digest": format!("sha256:{}", "b".repeat(64)), "size": 8
                })).collect::<Vec<_>>(),
            }))
            .unwrap()
        };
        assert!(wasm_layer("r", &manifest(CONFIG_MEDIA_TYPE, &[LAYER_MEDIA_TYPE])).is_ok());
        for (bytes, says) in [
            (manifest(CONFIG_MEDIA_TYPE, &[]), "0 layers"),
            (
                manifest(CONFIG_MEDIA_TYPE, &[LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPE]),
                "2 layers",
            ),
            (
                manifest(CONFIG_MEDIA_TYPE, &["application/vnd.oci.image.layer.v1.tar+gzip"]),
                "layer media type is application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                manifest("application/vnd.oci.image.config.v1+json", &[LAYER_MEDIA_TYPE]),
                "config media type is application/vnd.oci.image.config.v1+json",
            ),
            (
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec(),
                "image index",
            ),
        ] {
            let err = wasm_layer("r", &bytes).unwrap_err().to_string();
            assert!(err.starts_with("r is not a wasm artifact") && err.contains(says), "{err}");
        }
    }
}
