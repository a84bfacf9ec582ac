//! Test plugin: runs one projected cache read, chosen by the request's name, and returns
//! the host's answer as its error (`other(<JSON>)` on success, the host's error otherwise),
//! so host tests can assert on exactly what crossed the boundary.
//!
//! The manifest reconciles ConfigMaps (so `get` and `list` on them are implied), declares
//! the index `by-owner` on `metadata.labels.owner`, and grants only `get` on Pods.
//!
//! | request name            | call                                                                      |
//! |-------------------------|---------------------------------------------------------------------------|
//! | `get`                   | `get-fields` ConfigMap `<ns>/cm`, fields `data.a`, `metadata.labels[owner]` |
//! | `get-missing`           | the same for `<ns>/missing` (`other("none")` when absent)                 |
//! | `list`                  | `list-fields` ConfigMaps in `<ns>` with `owner=me`, field `data.a`        |
//! | `list-by-index`         | `list-by-index-fields` `by-owner` = `me`, field `data.a`                  |
//! | `get-pod`               | `get-fields` Pod `<ns>/p`, field `spec.nodeName` (allowed: `get`)         |
//! | `list-pods`             | `list-fields` Pods (forbidden: no `list`)                                 |
//! | `list-pods-by-index`    | `list-by-index-fields` on Pods (forbidden: no `list`)                     |
//! | `bad-path`              | `get-fields` with the field `data..a` (invalid)                           |
//! | `bad-index`             | `list-by-index-fields` with an undeclared index (invalid)                 |

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kubewasm_sdk::{Action, Api, Error, ListParams, Manifest, Plugin, Request, Result, Verb};

struct Projection;

fn answer(json: Vec<u8>) -> Result<Action> {
    Err(Error::other(String::from_utf8_lossy(&json).into_owned()))
}

fn answer_opt(json: Option<Vec<u8>>) -> Result<Action> {
    answer(json.unwrap_or_else(|| b"none".to_vec()))
}

impl Plugin for Projection {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .index::<ConfigMap>("by-owner", "metadata.labels.owner")
            .permit::<Pod>(&[Verb::Get])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let ns = req.namespace.as_str();
        let (cms, pods) = (Api::<ConfigMap>::namespaced(ns), Api::<Pod>::namespaced(ns));
        let by_index = |index: &str, value: &str| ListParams::default().index(index, value);
        let cm_fields = &["data.a", "metadata.labels[owner]"];
        match req.name.as_str() {
            "get" => answer_opt(cms.get_fields_raw("cm", cm_fields)?),
            "get-missing" => answer_opt(cms.get_fields_raw("missing", cm_fields)?),
            "list" => {
                let owned = ListParams::default().labels("owner=me");
                let cms: Vec<ConfigMap> = cms.list_fields(&owned, &["data.a"])?;
                let names: Vec<String> = cms
                    .iter()
                    .map(|c| {
                        let a = c.data.as_ref().and_then(|d| d.get("a")).cloned();
                        let other_keys = c
                            .data
                            .as_ref()
                            .map_or(0, |d| d.len() - usize::from(a.is_some()));
                        format!(
                            "{}={}+{}",
                            c.metadata.name.as_deref().unwrap_or("?"),
                            a.unwrap_or_default(),
                            other_keys
                        )
                    })
                    .collect();
                let mut names = names;
                names.sort();
                answer(names.join(",").into_bytes())
            }
            "list-by-index" => {
                let cms: Vec<ConfigMap> = Api::<ConfigMap>::all()
                    .list_fields(&by_index("by-owner", "me"), &["data.a"])?;
                let mut names: Vec<String> =
                    cms.iter().filter_map(|c| c.metadata.name.clone()).collect();
                names.sort();
                answer(names.join(",").into_bytes())
            }
            "get-pod" => answer_opt(pods.get_fields_raw("p", &["spec.nodeName"])?),
            "list-pods" => pods
                .list_fields_raw(&ListParams::default(), &["spec.nodeName"])
                .map(|_| Action::done()),
            "list-pods-by-index" => Api::<Pod>::all()
                .list_fields_raw(&by_index("by-node", "n"), &["spec.nodeName"])
                .map(|_| Action::done()),
            "bad-path" => cms
                .get_fields_raw("cm", &["data..a"])
                .map(|_| Action::done()),
            "bad-index" => Api::<ConfigMap>::all()
                .list_fields_raw(&by_index("nope", "me"), &["data.a"])
                .map(|_| Action::done()),
            other => Err(Error::other(format!("projection: unknown request {other}"))),
        }
    }
}

kubewasm_sdk::export_plugin!(Projection);
