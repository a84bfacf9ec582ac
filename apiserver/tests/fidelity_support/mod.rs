//! The differential fidelity suite: every case of the corpus runs against the embedded API
//! server and against a real kube-apiserver, the answers are normalised and compared, and the
//! result is written to `target/fidelity/report.md`.

pub mod compare;
pub mod corpus;
pub mod run;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use compare::{Normaliser, differences, select};
use corpus::Case;
use futures::StreamExt as _;
use run::{Answer, Names, run_case};

/// The outcome of one compared request.
#[derive(Debug)]
pub struct Outcome {
    /// `case/step` (step numbered from 1).
    pub id: String,
    pub case: String,
    pub request: String,
    pub differences: Vec<String>,
}

impl Outcome {
    pub fn matched(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Folder of the corpus and the list of matching requests.
pub fn fidelity_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fidelity")
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}

/// Runs every case on both servers (eight cases at a time) and compares the answers.
pub async fn run_all(embedded: &kube::Client, real: &kube::Client, cases: &[Case]) -> Vec<Outcome> {
    let per_case = futures::stream::iter(cases.iter().enumerate())
        .map(|(i, case)| async move {
            let names = Names {
                ns: format!("fid-{i}-{}", random_token()),
                u: format!("f{}", random_token()),
            };
            let (ours, theirs) = tokio::join!(
                run_case(embedded, case, &names),
                run_case(real, case, &names)
            );
            compare_case(case, &names, &ours, &theirs)
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    per_case.into_iter().flatten().collect()
}

fn compare_case(case: &Case, names: &Names, ours: &[Answer], theirs: &[Answer]) -> Vec<Outcome> {
    let mut norm_ours = Normaliser::new(names.placeholders());
    let mut norm_theirs = Normaliser::new(names.placeholders());
    let mut out = Vec::new();
    for step in &case.steps {
        if let Some(prefix) = step
            .body
            .as_ref()
            .and_then(|b| b.pointer("/metadata/generateName"))
            .and_then(serde_json::Value::as_str)
        {
            norm_ours.generate_name(prefix);
            norm_theirs.generate_name(prefix);
        }
    }
    for (i, step) in case.steps.iter().enumerate() {
        // Normalise every answer (compared or not), so uids are numbered alike on both sides.
        let a = norm_ours.normalise(&ours[i].to_value());
        let b = norm_theirs.normalise(&theirs[i].to_value());
        if !step.compare {
            continue;
        }
        let (a, b) = if step.select.is_empty() {
            (a, b)
        } else {
            let paths: Vec<String> = step.select.iter().map(|p| format!("/body{p}")).collect();
            let mut with_status = vec!["/status".to_owned()];
            with_status.extend(paths);
            (select(&a, &with_status), select(&b, &with_status))
        };
        out.push(Outcome {
            id: format!("{}/{}", case.name, i + 1),
            case: case.name.clone(),
            request: step.req.clone(),
            differences: differences(&a, &b),
        });
    }
    out
}

/// The request ids `expected.toml` lists as matching.
pub fn expected(path: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeSet::new();
    };
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    doc.get("matching")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites `expected.toml` with the requests that match now.
pub fn write_expected(path: &Path, version: &str, outcomes: &[Outcome]) {
    let mut text = format!(
        "# Requests of the fidelity corpus (case/step) whose answer from the embedded API server\n\
         # matched kube-apiserver {version} when this file was written. The fidelity test fails when\n\
         # one of them stops matching. Rewrite it with `FIDELITY_UPDATE=1 cargo xtask test -E 'test(fidelity)'`.\n\
         kubernetes = \"{version}\"\nmatching = [\n"
    );
    for o in outcomes.iter().filter(|o| o.matched()) {
        let _ = writeln!(text, "  \"{}\",", o.id);
    }
    text.push_str("]\n");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// `target/fidelity/report.md`: the figure, a line per case, every difference.
pub fn report(version: &str, cases: &[Case], outcomes: &[Outcome]) -> String {
    let matched = outcomes.iter().filter(|o| o.matched()).count();
    let cases_matched = cases
        .iter()
        .filter(|c| {
            outcomes
                .iter()
                .filter(|o| o.case == c.name)
                .all(Outcome::matched)
        })
        .count();
    let mut text = format!(
        "# Fidelity of the embedded API server against kube-apiserver {version}\n\n\
         matched {matched} / {} requests ({cases_matched} / {} cases)\n\n\
         Every case runs in a namespace of its own on both servers; answers (status and body) are\n\
         compared after normalising uids, timestamps, resourceVersions, generated names, allocated\n\
         IPs and ports, continue tokens and the case's own names. Corpus: `apiserver/fidelity/corpus/`.\n\n\
         | case | matched | about |\n|---|---|---|\n",
        outcomes.len(),
        cases.len()
    );
    for c in cases {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.case == c.name).collect();
        let ok = mine.iter().filter(|o| o.matched()).count();
        let _ = writeln!(text, "| {} | {ok} / {} | {} |", c.name, mine.len(), c.about);
    }
    text.push_str("\n## Differences\n");
    for o in outcomes.iter().filter(|o| !o.matched()) {
        let _ = writeln!(text, "\n### {} `{}`\n\n```", o.id, o.request);
        for d in o.differences.iter().take(40) {
            let _ = writeln!(text, "{d}");
        }
        if o.differences.len() > 40 {
            let _ = writeln!(text, "… {} more", o.differences.len() - 40);
        }
        text.push_str("```\n");
    }
    text
}

/// The real server's version, from `/version`.
pub async fn server_version(client: &kube::Client) -> String {
    client
        .apiserver_version()
        .await
        .map_or_else(|e| format!("(unknown: {e})"), |v| v.git_version)
}
