//! Sending a case's requests to one server and collecting the answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use super::corpus::{Case, Step, Until};

/// One answer: the status code and the body (JSON, or a string when it is not JSON; a watch
/// gives an array of its events).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// As one JSON value for comparing: `{"status": N, "body": ...}`.
    pub fn to_value(&self) -> Value {
        json!({"status": self.status, "body": self.body})
    }
}

/// The names a case's requests are written with.
#[derive(Debug, Clone)]
pub struct Names {
    /// The case's namespace (`{ns}`).
    pub ns: String,
    /// A token unique to this run of the case (`{u}`), for cluster-scoped names.
    pub u: String,
}

impl Names {
    /// Placeholders the answers are normalised with (longest first, so `{ns}` wins over `{u}`
    /// inside it).
    pub fn placeholders(&self) -> Vec<(String, String)> {
        vec![
            (self.ns.clone(), "{ns}".into()),
            (self.u.clone(), "{u}".into()),
        ]
    }
}

fn substitute(text: &str, names: &Names, saved: &BTreeMap<String, String>, encode: bool) -> String {
    let mut out = text.replace("{ns}", &names.ns).replace("{u}", &names.u);
    for (k, v) in saved {
        let v = if encode { percent_encode(v) } else { v.clone() };
        out = out.replace(&format!("{{{k}}}"), &v);
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn substitute_value(v: &Value, names: &Names, saved: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, names, saved, false)),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute_value(x, names, saved))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        substitute(k, names, saved, false),
                        substitute_value(x, names, saved),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sends one step (repeating it while `until` is not met) and returns its answer.
pub async fn send(
    client: &kube::Client,
    step: &Step,
    names: &Names,
    saved: &BTreeMap<String, String>,
) -> Answer {
    // Generous: a real control plane's namespace controller works through every namespace the
    // corpus deleted before, one by one, and a busy machine slows every controller down.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = send_once(client, step, names, saved).await;
        match &step.until {
            Some(until) if !met(until, &answer) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return answer,
        }
    }
}

fn met(until: &Until, answer: &Answer) -> bool {
    if until.status.is_some_and(|s| s != answer.status) {
        return false;
    }
    if let Some(pointer) = &until.pointer {
        let found = answer.body.pointer(pointer);
        if let Some(exists) = until.exists
            && found.is_some() != exists
        {
            return false;
        }
        if let Some(want) = &until.equals
            && found != Some(want)
        {
            return false;
        }
    }
    true
}

async fn send_once(
    client: &kube::Client,
    step: &Step,
    names: &Names,
    saved: &BTreeMap<String, String>,
) -> Answer {
    let (method, target) = step
        .req
        .split_once(' ')
        .unwrap_or_else(|| panic!("`{}`: a step is `METHOD /path`", step.req));
    let target = substitute(target.trim(), names, saved, true);
    let body: Vec<u8> = match (&step.raw, &step.body) {
        _ if step.raw_base64.is_some() => {
            use base64::Engine as _;
            let b64 = step.raw_base64.as_deref().unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(b64.split_whitespace().collect::<String>())
                .unwrap_or_else(|e| panic!("`{}`: raw_base64 is not base64: {e}", step.req))
        }
        (Some(raw), _) => substitute(raw, names, saved, false).into_bytes(),
        (None, Some(v)) => serde_json::to_vec(&substitute_value(v, names, saved)).expect("JSON"),
        (None, None) => Vec::new(),
    };
    let mut request = http::Request::builder().method(method).uri(&target);
    if !body.is_empty() {
        request = request.header(http::header::CONTENT_TYPE, step.media_type());
    }
    request = request.header(
        http::header::ACCEPT,
        step.accept.as_deref().unwrap_or("application/json"),
    );
    let request = request
        .body(kube::client::Body::from(body))
        .unwrap_or_else(|e| panic!("`{}` is not a request: {e}", step.req));
    let response = match client.send(request).await {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: 0,
                body: Value::String(format!("no answer: {e}")),
            };
        }
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    // A watch that is refused answers with a plain Status, not a stream.
    if let Some(watch) = step.watch.as_ref().filter(|_| status == 200) {
        let mut events = Vec::new();
        let mut pending = Vec::new();
        let until = Instant::now() + Duration::from_secs(watch.seconds);
        while events.len() < watch.events {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(Some(Ok(frame))) = tokio::time::timeout(left, body.frame()).await else {
                break;
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    events.push(v);
                }
            }
        }
        events.truncate(watch.events);
        return Answer {
            status,
            body: Value::Array(events),
        };
    }
    let bytes = match tokio::time::timeout(Duration::from_secs(30), body.collect()).await {
        Ok(Ok(c)) => c.to_bytes().to_vec(),
        _ => b"<the body did not arrive>".to_vec(),
    };
    Answer {
        status,
        body: parse(&bytes),
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).trim().to_owned()))
}

/// Runs every step of `case` on one server in `names.ns` (created first, deleted after),
/// returning each step's answer.
pub async fn run_case(client: &kube::Client, case: &Case, names: &Names) -> Vec<Answer> {
    let ns_step = |req: &str, body: Option<Value>| Step {
        req: req.into(),
        body,
        raw: None,
        raw_base64: None,
        content_type: None,
        accept: None,
        compare: false,
        select: Vec::new(),
        watch: None,
        until: None,
        save: BTreeMap::new(),
    };
    let created = send(
        client,
        &ns_step(
            "POST /api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{ns}"}})),
        ),
        names,
        &BTreeMap::new(),
    )
    .await;
    assert_eq!(
        created.status, 201,
        "creating the case's namespace: {:?}",
        created.body
    );
    let mut saved = BTreeMap::new();
    let mut answers = Vec::new();
    for step in &case.steps {
        let answer = send(client, step, names, &saved).await;
        for (name, pointer) in &step.save {
            let v = answer.body.pointer(pointer).cloned().unwrap_or(Value::Null);
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            saved.insert(name.clone(), text);
        }
        answers.push(answer);
    }
    let _ = send(
        client,
        &ns_step("DELETE /api/v1/namespaces/{ns}", None),
        names,
        &BTreeMap::new(),
    )
    .await;
    answers
}
