//! The corpus: cases of requests read from `apiserver/fidelity/corpus/*.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One file of the corpus.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub cases: Vec<Case>,
}

/// A sequence of requests sent in a fresh namespace `{ns}` of each server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// What the case shows, for the report.
    #[serde(default)]
    pub about: String,
    pub steps: Vec<Step>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
}

/// One request, and how its answer is compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// `METHOD /path?query`; `{ns}`, `{u}` and saved `{names}` are substituted.
    pub req: String,
    /// The body (YAML, sent as JSON unless `type` says otherwise).
    #[serde(default)]
    pub body: Option<Value>,
    /// A body sent as is (e.g. YAML for server-side apply, or malformed JSON).
    #[serde(default)]
    pub raw: Option<String>,
    /// A binary body, base64-encoded (protobuf bodies).
    #[serde(default)]
    pub raw_base64: Option<String>,
    /// The body's content type: `json` (default), `merge`, `json-patch`, `strategic`, `apply`
    /// or a full media type.
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    /// An `Accept` header.
    #[serde(default)]
    pub accept: Option<String>,
    /// False for setup steps whose answer is not compared.
    #[serde(default = "yes")]
    pub compare: bool,
    /// Compare only these parts of the answer: JSON pointers, where a segment
    /// `[key=value]` picks the element of an array whose `key` is `value`.
    #[serde(default)]
    pub select: Vec<String>,
    /// Read the answer as a watch stream: at most `events` events, at most `seconds`.
    #[serde(default)]
    pub watch: Option<Watch>,
    /// Repeat the request until the answer satisfies this (for what a server does in the
    /// background: garbage collection, finalization), at most 15 s; the last answer is
    /// compared.
    #[serde(default)]
    pub until: Option<Until>,
    /// Remember values of the answer for later steps: `name: /json/pointer`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    pub events: usize,
    #[serde(default = "two_seconds")]
    pub seconds: u64,
}

fn two_seconds() -> u64 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    #[serde(default)]
    pub status: Option<u16>,
    /// A JSON pointer that must exist (`exists: true`) or not.
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
    #[serde(default)]
    pub equals: Option<Value>,
}

impl Step {
    /// The Content-Type header for the body.
    pub fn media_type(&self) -> &str {
        match self.content_type.as_deref() {
            None | Some("json") => "application/json",
            Some("merge") => "application/merge-patch+json",
            Some("json-patch") => "application/json-patch+json",
            Some("strategic") => "application/strategic-merge-patch+json",
            Some("apply") => "application/apply-patch+yaml",
            Some(other) => other,
        }
    }
}

/// Every case of every `*.yaml` in `dir`, in file then case order.
///
/// # Panics
/// On a file that does not parse, or two cases of one name: the corpus is part of the tests.
pub fn load(dir: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let file: File = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a corpus file: {e}", path.display()));
        for mut case in file.cases {
            case.file = path.clone();
            assert!(
                !cases.iter().any(|c: &Case| c.name == case.name),
                "two cases named {} ({})",
                case.name,
                path.display()
            );
            cases.push(case);
        }
    }
    cases
}
