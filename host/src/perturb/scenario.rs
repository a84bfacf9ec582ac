//! [`Scenario`]: what a perturbation test applies and the end state it expects (YAML, see
//! `docs/testing-plugins.md`), and how both are carried out against an API server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde::Deserialize;
use serde_json::Value;

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a scenario (bad YAML, unknown or missing fields).
    #[error("scenario {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when the YAML parser knows it.
        message: String,
    },
}

/// A perturbation test's script: objects to apply, later steps, and the end state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for reports; the file's stem when not given.
    #[serde(default)]
    pub name: String,
    /// Objects applied first, in order (created, or merge-patched when they exist).
    #[serde(default)]
    pub apply: Vec<Value>,
    /// Later steps, each after the previous one's `expect` held (when it has one).
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The end state the plugin must reach (after every step).
    pub expect: Expect,
}

/// One later step: objects applied, then objects deleted, then an optional state to wait for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Objects applied (created, or merge-patched when they exist).
    #[serde(default)]
    pub apply: Vec<Value>,
    /// Objects deleted (a missing one is no error).
    #[serde(default)]
    pub delete: Vec<ObjectRef>,
    /// A state to reach before the next step.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// An object by kind and name.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    /// `v1`, `apps/v1`, ...
    pub api_version: String,
    /// `ConfigMap`, ...
    pub kind: String,
    /// The namespace (namespaced kinds; `default` when not given).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// An object that must exist, and fields it must have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Present {
    /// `v1`, `apps/v1`, ...
    pub api_version: String,
    /// `ConfigMap`, ...
    pub kind: String,
    /// The namespace (namespaced kinds; `default` when not given).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// A partial object: every field given must have this value (maps are compared key by
    /// key, anything else as a whole).
    #[serde(default)]
    pub matches: Option<Value>,
}

impl Present {
    /// Which object.
    pub fn object(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// A state of the cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Objects that must exist, with the fields given.
    #[serde(default)]
    pub present: Vec<Present>,
    /// Objects that must not exist.
    #[serde(default)]
    pub absent: Vec<ObjectRef>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] when it cannot be read or is not a valid scenario.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut scenario = Self::parse(&text).map_err(|message| ScenarioError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if scenario.name.is_empty() {
            scenario.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        Ok(scenario)
    }

    /// Parses a scenario from YAML text and checks its objects.
    ///
    /// # Errors
    /// What is wrong, as a message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Self = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let objects = scenario
            .apply
            .iter()
            .chain(scenario.steps.iter().flat_map(|s| &s.apply));
        for (i, o) in objects.enumerate() {
            ObjectRef::of(o).map_err(|e| format!("object {} to apply: {e}", i + 1))?;
        }
        if scenario.expect.present.is_empty() && scenario.expect.absent.is_empty() {
            return Err("expect names no object: say what the end state is".into());
        }
        Ok(scenario)
    }
}

impl ObjectRef {
    /// The reference of an object given in full.
    ///
    /// # Errors
    /// What it lacks.
    pub fn of(object: &Value) -> Result<Self, String> {
        let text = |v: Option<&Value>, what: &str| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("it has no {what}"))
        };
        Ok(Self {
            api_version: text(object.get("apiVersion"), "apiVersion")?,
            kind: text(object.get("kind"), "kind")?,
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: text(object.pointer("/metadata/name"), "metadata.name")?,
        })
    }

    /// The API of this object's kind, in its namespace.
    async fn api(&self, client: &kube::Client) -> Result<Api<DynamicObject>, String> {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &self.kind);
        // A CRD applied just before may take a moment to be served.
        let mut tries = 0;
        let (resource, caps) = loop {
            match kube::discovery::pinned_kind(client, &gvk).await {
                Ok(found) => break found,
                Err(e) if tries >= 50 => {
                    return Err(format!("{} {}: {e}", self.api_version, self.kind));
                }
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Ok(match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                self.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        })
    }
}

/// Creates `object`, or merge-patches it onto the one that exists (so a later step may give
/// only the fields it changes).
///
/// # Errors
/// The API server's answer, as a message.
pub(crate) async fn apply(client: &kube::Client, object: &Value) -> Result<(), String> {
    let target = ObjectRef::of(object)?;
    let api = target.api(client).await?;
    let exists = api
        .get_opt(&target.name)
        .await
        .map_err(|e| format!("reading {target}: {}", api_error(e)))?
        .is_some();
    if exists {
        return api
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(object))
            .await
            .map(|_| ())
            .map_err(|e| format!("updating {target}: {}", api_error(e)));
    }
    let parsed: DynamicObject =
        serde_json::from_value(object.clone()).map_err(|e| format!("{target}: {e}"))?;
    api.create(&PostParams::default(), &parsed)
        .await
        .map(|_| ())
        .map_err(|e| format!("creating {target}: {}", api_error(e)))
}

/// The API server's own message for a refused request, else the client's error.
fn api_error(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message,
        e => e.to_string(),
    }
}

/// Deletes an object; one that does not exist is no error.
///
/// # Errors
/// The API server's answer, as a message.
pub(crate) async fn delete(client: &kube::Client, target: &ObjectRef) -> Result<(), String> {
    let api = target.api(client).await?;
    match api.delete(&target.name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!("deleting {target}: {}", api_error(e))),
    }
}

impl Expect {
    /// How the cluster differs from this state, one line per difference (empty: it holds).
    ///
    /// # Errors
    /// A read that failed, as a message.
    pub(crate) async fn differences(&self, client: &kube::Client) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for p in &self.present {
            let object = p.object();
            let api = object.api(client).await?;
            let found = api
                .get_opt(&object.name)
                .await
                .map_err(|e| format!("reading {object}: {}", api_error(e)))?;
            match found {
                None => out.push(format!("{object}: missing")),
                Some(o) => {
                    if let Some(want) = &p.matches {
                        let have = serde_json::to_value(&o).unwrap_or_default();
                        let mut diffs = Vec::new();
                        differences(String::new(), want, Some(&have), &mut diffs);
                        out.extend(diffs.into_iter().map(|d| format!("{object}: {d}")));
                    }
                }
            }
        }
        for a in &self.absent {
            let api = a.api(client).await?;
            let found = api
                .get_opt(&a.name)
                .await
                .map_err(|e| format!("reading {a}: {}", api_error(e)))?;
            if found.is_some() {
                out.push(format!("{a}: exists, expected absent"));
            }
        }
        Ok(out)
    }
}

/// Where `have` differs from the partial object `want`, one line each.
fn differences(path: String, want: &Value, have: Option<&Value>, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(want), Some(Value::Object(have))) => {
            for (k, w) in want {
                differences(format!("{path}.{k}"), w, have.get(k), out);
            }
        }
        (want, None) => out.push(format!("{path} is not set, expected {want}")),
        (want, Some(have)) if !same(want, have) => {
            out.push(format!("{path} is {have}, expected {want}"));
        }
        _ => {}
    }
}

/// Equal, with numbers compared by value (YAML's `3` and JSON's `3.0` are the same).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_partial_object_names_each_field_that_differs() {
        let mut out = Vec::new();
        differences(
            String::new(),
            &json!({"spec": {"replicas": 3, "image": "redis"}, "status": {"phase": "Running"}}),
            Some(&json!({"spec": {"replicas": 2, "image": "redis"}, "status": {}})),
            &mut out,
        );
        assert_eq!(
            out,
            [
                ".spec.replicas is 2, expected 3",
                ".status.phase is not set, expected \"Running\""
            ]
        );
    }

    #[test]
    fn a_scenario_without_an_end_state_or_with_a_nameless_object_is_refused() {
        let e = Scenario::parse("apply: []\nexpect: {}\n").unwrap_err();
        assert!(e.contains("expect names no object"), "{e}");
        let e = Scenario::parse(
            "apply:\n- {apiVersion: v1, kind: ConfigMap, metadata: {}}\nexpect:\n  absent: [{apiVersion: v1, kind: ConfigMap, name: x}]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("object 1 to apply: it has no metadata.name"),
            "{e}"
        );
        let e = Scenario::parse("expect:\n  presnt: []\n").unwrap_err();
        assert!(e.contains("unknown field `presnt`"), "{e}");
    }

    #[test]
    fn steps_and_expectations_parse() {
        let s = Scenario::parse(
            r"
apply:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: ns}}
steps:
- delete: [{apiVersion: v1, kind: ConfigMap, namespace: ns, name: a}]
  expect:
    absent: [{apiVersion: v1, kind: ConfigMap, namespace: ns, name: b}]
expect:
  present:
  - {apiVersion: v1, kind: ConfigMap, namespace: ns, name: b, matches: {data: {k: v}}}
",
        )
        .unwrap();
        assert_eq!(s.apply.len(), 1);
        assert_eq!(s.steps[0].delete[0].to_string(), "ConfigMap ns/a");
        assert_eq!(
            s.expect.present[0].matches,
            Some(json!({"data": {"k": "v"}}))
        );
    }
}
