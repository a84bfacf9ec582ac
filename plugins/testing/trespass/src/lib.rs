//! Test plugin: does what a ConfigMap "order" asks — writes, reads and events in any namespace and
//! kind its manifest declares, and attempts to leave the sandbox (files, environment, arguments,
//! sockets) — and writes every answer the host gave into a result ConfigMap, so a test running a
//! real host can see on the API server what was refused and why.
//!
//! An order is a ConfigMap with a data key `attempts`: one attempt per line, `VERB KIND NAMESPACE
//! NAME` (namespace `-` for cluster-scoped kinds) or `read-file PATH`, `env`, `args`,
//! `connect HOST:PORT`. The answers go to ConfigMap `<order>-result` in the namespace of data key
//! `reply-to` (default: the order's), data key `N` for line N: `ok`, `ok: DETAIL` or
//! `CASE: MESSAGE` (e.g. `forbidden: the policy ...`). An order is carried out once: when its
//! result exists the plugin does nothing.
//!
//! The manifest reconciles ConfigMaps (with an index `by-trespass` on their label `trespass`,
//! listed by `index ConfigMap VALUE -`) and may create, update, patch and delete them; it may get,
//! list, create and delete Secrets, and create Namespaces (cluster-scoped). Attempts on Pods
//! (`create Pod NS NAME`, `list Pod NS -`) exercise a kind the manifest does not declare.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, Event, ListParams, Manifest, Object, Patch, Plugin, Request,
    Result, Verb,
};
use serde_json::json;

struct Trespass;

fn describe(result: Result<String>) -> String {
    match result {
        Ok(detail) if detail.is_empty() => "ok".into(),
        Ok(detail) => format!("ok: {detail}"),
        Err(Error::Forbidden(m)) => format!("forbidden: {m}"),
        Err(Error::NotFound(m)) => format!("not-found: {m}"),
        Err(Error::AlreadyExists(m)) => format!("already-exists: {m}"),
        Err(Error::Invalid(m)) => format!("invalid: {m}"),
        Err(e) => format!("error: {e:?}"),
    }
}

fn object(namespace: &str, name: &str) -> serde_json::Value {
    if namespace == "-" {
        json!({"metadata": {"name": name, "labels": {"trespass": "written"}}})
    } else {
        json!({"metadata": {"name": name, "namespace": namespace, "labels": {"trespass": "written"}}})
    }
}

fn names(items: &[ConfigMap]) -> String {
    let mut out: Vec<String> = items
        .iter()
        .map(|o| {
            let m = &o.metadata;
            format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or("-"),
                m.name.as_deref().unwrap_or("")
            )
        })
        .collect();
    out.sort();
    out.join(",")
}

/// `namespace` `""` (written `-` in an attempt) = every namespace.
fn api<K: Object>(namespace: &str) -> Api<K> {
    if namespace.is_empty() {
        Api::all()
    } else {
        Api::namespaced(namespace)
    }
}

/// Carries out one attempt and says what happened.
fn attempt(line: &str) -> Result<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["read-file", path] => std::fs::read(path)
            .map(|b| format!("read {} bytes", b.len()))
            .map_err(|e| Error::other(format!("read failed: {e}"))),
        ["env"] => Ok(format!("{} variables", std::env::vars().count())),
        ["args"] => Ok(format!("{} arguments", std::env::args().count())),
        ["connect", addr] => std::net::TcpStream::connect(addr)
            .map(|_| "connected".to_owned())
            .map_err(|e| Error::other(format!("connect failed: {e}"))),
        [verb, kind, namespace, name] => {
            let ns = if *namespace == "-" { "" } else { namespace };
            match (*verb, *kind) {
                ("create", "ConfigMap") => {
                    let mut cm: ConfigMap = serde_json::from_value(object(namespace, name))?;
                    cm.data = Some([("by".to_owned(), "trespass".to_owned())].into());
                    api::<ConfigMap>(ns).create(&cm).map(|_| String::new())
                }
                ("replace", "ConfigMap") => {
                    let cm: ConfigMap = serde_json::from_value(object(namespace, name))?;
                    api::<ConfigMap>(ns)
                        .replace(name, &cm)
                        .map(|_| String::new())
                }
                ("patch", "ConfigMap") => {
                    let patch = Patch::merge(json!({"data": {"patched-by": "trespass"}}))?;
                    api::<ConfigMap>(ns)
                        .patch(name, &patch)
                        .map(|_| String::new())
                }
                ("delete", "ConfigMap") => api::<ConfigMap>(ns)
                    .delete(name, &DeleteParams::default())
                    .map(|()| String::new()),
                ("get", "ConfigMap") => api::<ConfigMap>(ns)
                    .get(name)
                    .map(|o| if o.is_some() { "found" } else { "absent" }.to_owned()),
                ("list", "ConfigMap") => api::<ConfigMap>(ns)
                    .list(&ListParams::default().labels("trespass=victim"))
                    .map(|items| names(&items)),
                // `index ConfigMap VALUE -`: ConfigMaps whose label `trespass` is VALUE.
                ("index", "ConfigMap") => Api::<ConfigMap>::all()
                    .list(&ListParams::default().index("by-trespass", *namespace))
                    .map(|items| names(&items)),
                ("event", "ConfigMap") => api::<ConfigMap>(ns)
                    .event(name, &Event::normal("Trespass", "an event from trespass"))
                    .map(|()| String::new()),
                ("create", "Secret") => {
                    let s: Secret = serde_json::from_value(object(namespace, name))?;
                    api::<Secret>(ns).create(&s).map(|_| String::new())
                }
                ("get", "Secret") => api::<Secret>(ns)
                    .get(name)
                    .map(|o| if o.is_some() { "found" } else { "absent" }.to_owned()),
                ("delete", "Secret") => api::<Secret>(ns)
                    .delete(name, &DeleteParams::default())
                    .map(|()| String::new()),
                // Pods are not in the manifest at all.
                ("create", "Pod") => {
                    let p: Pod = serde_json::from_value(object(namespace, name))?;
                    api::<Pod>(ns).create(&p).map(|_| String::new())
                }
                ("list", "Pod") => api::<Pod>(ns)
                    .list(&ListParams::default())
                    .map(|p| p.len().to_string()),
                ("create", "Namespace") => {
                    let n: Namespace = serde_json::from_value(object("-", name))?;
                    Api::<Namespace>::all().create(&n).map(|_| String::new())
                }
                _ => Err(Error::other(format!("trespass: unknown attempt {line:?}"))),
            }
        }
        _ => Err(Error::other(format!("trespass: unknown attempt {line:?}"))),
    }
}

impl Plugin for Trespass {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .index::<ConfigMap>("by-trespass", "metadata.labels.trespass")
            .permit::<ConfigMap>(&[Verb::Create, Verb::Update, Verb::Patch, Verb::Delete])
            .permit::<Secret>(&[Verb::Get, Verb::List, Verb::Create, Verb::Delete])
            .permit::<Namespace>(&[Verb::Create])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let Some(order) = Api::<ConfigMap>::namespaced(&req.namespace).get(&req.name)? else {
            return Ok(Action::done());
        };
        let data = order.data.unwrap_or_default();
        let Some(attempts) = data.get("attempts") else {
            return Ok(Action::done());
        };
        let reply_to = data
            .get("reply-to")
            .map_or(req.namespace.as_str(), String::as_str);
        let result_name = format!("{}-result", req.name);
        let replies = Api::<ConfigMap>::namespaced(reply_to);
        if replies.get(&result_name)?.is_some() {
            return Ok(Action::done());
        }
        let answers: std::collections::BTreeMap<String, String> = attempts
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, line)| {
                (
                    i.to_string(),
                    format!("{line} => {}", describe(attempt(line))),
                )
            })
            .collect();
        let mut result: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": result_name, "namespace": reply_to},
        }))?;
        result.data = Some(answers);
        replies.create(&result)?;
        Ok(Action::done())
    }
}

kubewasm_sdk::export_plugin!(Trespass);
