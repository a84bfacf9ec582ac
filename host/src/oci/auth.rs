//! Registry credentials: `KUBEWASM_REGISTRY_USERNAME`/`KUBEWASM_REGISTRY_PASSWORD`, else a docker
//! config file's `auths` entry for the registry, else anonymous.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// How a push or pull authenticates to the registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (the registry may still hand out an anonymous token).
    Anonymous,
    /// HTTP basic credentials (also used to ask the registry's token service for a token).
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <password>)"),
        }
    }
}

impl Credentials {
    /// What these credentials are, for error messages (never the password).
    pub fn describe(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Basic { username, .. } => format!("basic auth as {username:?}"),
        }
    }

    pub(super) fn to_registry_auth(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Self::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

/// Why the credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Only one of the two variables is set.
    #[error(
        "set both KUBEWASM_REGISTRY_USERNAME and KUBEWASM_REGISTRY_PASSWORD, or neither (only {0} is set)"
    )]
    HalfSet(&'static str),
    /// The docker config file exists but cannot be read or parsed.
    #[error("failed to read the docker config {path}: {reason}")]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The credentials for `registry` (`host[:port]`), looked up in this order:
///
/// 1. `KUBEWASM_REGISTRY_USERNAME` and `KUBEWASM_REGISTRY_PASSWORD` (both, for any registry);
/// 2. the docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): the
///    `auths` entry for `registry` (also spelt `https://registry` or `http://registry`), with
///    `auth` (base64 of `user:password`) or `username` and `password`. Credential helpers
///    (`credsStore`, `credHelpers`) are not run;
/// 3. anonymous.
///
/// # Errors
/// Only one of the two variables set; a docker config that exists but is not valid JSON or
/// has an `auth` that is not base64 of `user:password`.
pub fn for_registry(registry: &str) -> Result<Credentials, CredentialsError> {
    let username = std::env::var("KUBEWASM_REGISTRY_USERNAME").ok();
    let password = std::env::var("KUBEWASM_REGISTRY_PASSWORD").ok();
    match (username, password) {
        (Some(username), Some(password)) => return Ok(Credentials::Basic { username, password }),
        (Some(_), None) => return Err(CredentialsError::HalfSet("KUBEWASM_REGISTRY_USERNAME")),
        (None, Some(_)) => return Err(CredentialsError::HalfSet("KUBEWASM_REGISTRY_PASSWORD")),
        (None, None) => {}
    }
    match docker_config_path() {
        Some(path) if path.is_file() => from_docker_config(&path, registry),
        _ => Ok(Credentials::Anonymous),
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The `auths` entry for `registry` in the docker config at `path`; anonymous when none.
///
/// # Errors
/// The file cannot be read or parsed, or the entry is malformed.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Credentials, CredentialsError> {
    let fail = |reason: String| CredentialsError::DockerConfig {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(Credentials::Anonymous);
    };
    let keys = [
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    let Some(entry) = keys.iter().find_map(|k| auths.get(k)) else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| fail(format!("the `auth` of {registry} is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| fail(format!("the `auth` of {registry} is not UTF-8")))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(fail(format!(
                "the `auth` of {registry} is not base64 of `user:password`"
            )));
        };
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    match (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(username), Some(password)) => Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        _ => Ok(Credentials::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_docker_config_auth_entry_gives_basic_credentials() {
        // base64("alice:s3cret:with-colon")
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with-colon");
        let (_dir, path) = config(&format!(
            r#"{{"auths": {{"https://reg.example:5000": {{"auth": "{auth}"}}}}}}"#
        ));
        assert_eq!(
            from_docker_config(&path, "reg.example:5000").unwrap(),
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cret:with-colon".into()
            }
        );
    }

    #[test]
    fn a_registry_without_an_entry_is_anonymous() {
        let (_dir, path) =
            config(r#"{"auths": {"other.example": {"username": "u", "password": "p"}}}"#);
        assert_eq!(
            from_docker_config(&path, "reg.example").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn a_broken_docker_config_is_an_error_naming_the_file() {
        let (_dir, path) = config("{not json");
        let err = from_docker_config(&path, "reg.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        let (_dir, path) = config(r#"{"auths": {"reg.example": {"auth": "bm9jb2xvbg=="}}}"#);
        let err = from_docker_config(&path, "reg.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("user:password"), "{err}");
    }
}
