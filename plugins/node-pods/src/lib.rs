//! Example kubewasm operator: keeps a ConfigMap per Node (`kube-system/node-pods-<node>`)
//! with the number of Pods on that Node by phase, found through a field index on the Pods'
//! `spec.nodeName` (the client-go `IndexFunc` pattern of the reference articles).
//!
//! - Reconciles Nodes. A Pod change maps to its Node through the index lookup
//!   `by-name` (Nodes by `metadata.name`) at the Pod's `spec.nodeName`.
//! - Reads the Node's Pods through the index `by-node`, projected to their phase (the host
//!   sends a few bytes per Pod instead of the whole Pod).
//! - Writes with create / replace-with-resourceVersion: a `conflict` or `already-exists`
//!   means the cache is behind, and the key is retried shortly.
//! - When the Node goes, its summary goes (the ConfigMap is also owned by the Node).

mod summary;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, Event, ListParams, Manifest, Object, Plugin, Request, Result,
    Verb, WatchMapping, log,
};
use serde::{Deserialize, Serialize};

use crate::summary::{MANAGED_BY, MANAGER, NAMESPACE, PodPhase};

/// How soon a key is retried after a write lost a race with the cache.
const RETRY_SOON: Duration = Duration::from_millis(500);
/// How soon after `already-exists`: longer, because an object of that name that is not ours
/// (and so not in our label-filtered cache) would otherwise be retried in a tight loop.
const RETRY_EXISTS: Duration = Duration::from_secs(2);

/// A Node with only its metadata decoded (its status, with images and conditions, is large).
#[derive(Serialize, Deserialize, Default, Debug)]
struct NodeMeta {
    metadata: ObjectMeta,
}

impl Object for NodeMeta {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Node";
    const NAMESPACED: bool = false;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

struct NodePods;

impl Plugin for NodePods {
    fn manifest() -> Manifest {
        Manifest::reconcile::<Node>()
            .index::<Node>("by-name", "metadata.name")
            .index::<PodPhase>("by-node", "spec.nodeName")
            .watches::<PodPhase>(WatchMapping::IndexLookup {
                index: "by-name".into(),
                field: "spec.nodeName".into(),
            })
            .watches_with_labels::<ConfigMap>(
                format!("{MANAGED_BY}={MANAGER}"),
                WatchMapping::OwnerReferences,
            )
            .permit::<ConfigMap>(&[Verb::Create, Verb::Update, Verb::Delete])
            .concurrency(4)
    }

    fn reconcile(req: Request) -> Result<Action> {
        match reconcile(&req.name) {
            Err(e @ (Error::Conflict(_) | Error::NotFound(_))) => {
                log::debug(format!("the cache is behind ({e}); retrying soon"));
                Ok(Action::requeue(RETRY_SOON))
            }
            Err(e @ Error::AlreadyExists(_)) => {
                log::debug(format!("the cache is behind ({e}); retrying soon"));
                Ok(Action::requeue(RETRY_EXISTS))
            }
            other => other,
        }
    }
}

kubewasm_sdk::export_plugin!(NodePods);

fn reconcile(node: &str) -> Result<Action> {
    let cm_name = summary::name(node);
    let summaries = Api::<ConfigMap>::namespaced(NAMESPACE);
    let current = summaries.get(&cm_name)?;
    let Some(n) = Api::<NodeMeta>::all().get(node)? else {
        // The Node is gone: so is its summary. Only ever delete our own.
        if let Some(cm) = &current
            && summary::is_summary_of(cm, node)
        {
            match summaries.delete(&cm_name, &DeleteParams::default()) {
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
            log::info(format!("deleted the summary of Node {node}"));
        }
        return Ok(Action::done());
    };
    let uid = n
        .metadata
        .uid
        .ok_or_else(|| Error::other(format!("Node {node} has no metadata.uid")))?;
    let pods: Vec<PodPhase> = Api::<PodPhase>::all().list_fields(
        &ListParams::default().index("by-node", node),
        &["status.phase"],
    )?;
    let data = summary::counts(
        pods.iter()
            .map(|p| p.status.as_ref().and_then(|s| s.phase.as_deref())),
    );
    let mut want = summary::config_map(node, &uid, data);
    match current {
        None => {
            summaries.create(&want)?;
        }
        Some(cm) if !summary::is_summary_of(&cm, node) => {
            let note = format!(
                "ConfigMap {NAMESPACE}/{cm_name} exists and is not a summary written by {MANAGER}"
            );
            let warning = Event::warning("NameTaken", note);
            Api::<Node>::all().event(node, &warning)?;
        }
        Some(cm) => {
            let same_owner = cm
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid);
            if same_owner
                && cm.data == want.data
                && cm.metadata.labels == want.metadata.labels
                && cm.metadata.annotations == want.metadata.annotations
            {
                return Ok(Action::done());
            }
            want.metadata.resource_version = cm.metadata.resource_version;
            summaries.replace(&cm_name, &want)?;
        }
    }
    Ok(Action::done())
}

#[cfg(test)]
mod tests {
    //! Reconciles against the SDK's fake host, which serves index lookups from the index the
    //! manifest declares. It has no garbage collector, so removal of a Node's summary is the
    //! operator's own delete (in a cluster the ownerReference would also remove it).

    use super::*;
    use crate::summary::NODE_ANNOTATION;
    use kubewasm_sdk::testing::{Call, FakeHost};
    use serde_json::json;

    fn seed_node(host: &FakeHost, name: &str) {
        host.seed_json::<Node>(json!({"metadata": {"name": name, "uid": format!("uid-{name}")}}));
    }

    fn seed_pod(host: &FakeHost, name: &str, node: &str, phase: Option<&str>) {
        let mut pod = json!({
            "metadata": {"namespace": "apps", "name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]}
        });
        if let Some(phase) = phase {
            pod["status"] = json!({"phase": phase});
        }
        host.seed_json::<k8s_openapi::api::core::v1::Pod>(pod);
    }

    fn summary_data(host: &FakeHost, node: &str) -> std::collections::BTreeMap<String, String> {
        let cm: ConfigMap = host
            .object(NAMESPACE, &summary::name(node))
            .expect("the summary exists");
        cm.data.unwrap_or_default()
    }

    #[test]
    fn a_node_gets_a_summary_counting_only_its_own_pods_by_phase() {
        let host = FakeHost::for_plugin::<NodePods>();
        seed_node(&host, "n1");
        seed_node(&host, "n2");
        seed_pod(&host, "a", "n1", Some("Running"));
        seed_pod(&host, "b", "n1", Some("Running"));
        seed_pod(&host, "c", "n1", None);
        seed_pod(&host, "d", "n2", Some("Failed"));
        assert_eq!(host.reconcile::<NodePods>("", "n1"), Ok(Action::done()));

        let data = summary_data(&host, "n1");
        assert_eq!(
            (data["total"].as_str(), data["Running"].as_str()),
            ("3", "2")
        );
        assert_eq!(data["Pending"], "1", "a Pod without a phase is Pending");
        assert_eq!(data["Failed"], "0", "the Pod on n2 is not counted");
        let cm: ConfigMap = host.object(NAMESPACE, "node-pods-n1").unwrap();
        assert_eq!(cm.metadata.annotations.unwrap()[NODE_ANNOTATION], "n1");
        let owner = &cm.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Node", "uid-n1", Some(true))
        );
        assert_eq!(host.writes().len(), 1);
        assert_eq!(host.writes()[0].call, Call::Create);
    }

    #[test]
    fn a_pod_change_replaces_the_summary_and_an_unchanged_one_writes_nothing() {
        let host = FakeHost::for_plugin::<NodePods>();
        seed_node(&host, "n1");
        seed_pod(&host, "a", "n1", Some("Pending"));
        host.reconcile::<NodePods>("", "n1").unwrap();
        seed_pod(&host, "a", "n1", Some("Running"));
        seed_pod(&host, "b", "n1", Some("Succeeded"));
        host.clear_records();

        host.reconcile::<NodePods>("", "n1").unwrap();
        let data = summary_data(&host, "n1");
        assert_eq!(
            (
                data["total"].as_str(),
                data["Pending"].as_str(),
                data["Running"].as_str(),
                data["Succeeded"].as_str()
            ),
            ("2", "0", "1", "1")
        );
        assert_eq!(host.writes().len(), 1);
        assert_eq!(host.writes()[0].call, Call::Replace);

        host.clear_records();
        host.reconcile::<NodePods>("", "n1").unwrap();
        assert!(host.writes().is_empty(), "{:?}", host.writes());
    }

    #[test]
    fn the_summary_is_deleted_when_its_node_is_gone_and_other_configmaps_are_kept() {
        // Nodes n1 and n2 are gone. n1's summary (as an earlier reconcile wrote it) is left;
        // n2's summary name is taken by a ConfigMap this operator did not write.
        let host = FakeHost::for_plugin::<NodePods>();
        host.seed(&summary::config_map("n1", "uid-n1", summary::counts([])));
        host.seed_json::<ConfigMap>(
            json!({"metadata": {"namespace": NAMESPACE, "name": "node-pods-n2"}}),
        );
        assert_eq!(host.reconcile::<NodePods>("", "n1"), Ok(Action::done()));
        assert!(
            host.object::<ConfigMap>(NAMESPACE, "node-pods-n1")
                .is_none()
        );

        assert_eq!(host.reconcile::<NodePods>("", "n2"), Ok(Action::done()));
        assert!(
            host.object::<ConfigMap>(NAMESPACE, "node-pods-n2")
                .is_some(),
            "a ConfigMap that is not a summary is never deleted"
        );
        assert_eq!(host.writes().len(), 1);
    }

    #[test]
    fn a_configmap_of_the_summary_name_that_is_not_ours_gets_a_warning_not_a_write() {
        let host = FakeHost::for_plugin::<NodePods>();
        seed_node(&host, "n1");
        host.seed_json::<ConfigMap>(json!({
            "metadata": {"namespace": NAMESPACE, "name": "node-pods-n1"},
            "data": {"mine": "yes"}
        }));
        assert_eq!(host.reconcile::<NodePods>("", "n1"), Ok(Action::done()));
        assert!(host.writes().is_empty());
        assert_eq!(summary_data(&host, "n1")["mine"], "yes");
        assert_eq!(host.events()[0].event.reason, "NameTaken");
    }

    #[test]
    fn a_conflict_on_replace_requeues_and_the_retry_writes_the_new_counts() {
        let host = FakeHost::for_plugin::<NodePods>();
        seed_node(&host, "n1");
        seed_pod(&host, "a", "n1", Some("Running"));
        host.reconcile::<NodePods>("", "n1").unwrap();
        seed_pod(&host, "b", "n1", Some("Running"));

        host.fail_next(
            Call::Replace,
            Error::Conflict("stale resourceVersion".into()),
        );
        assert_eq!(
            host.reconcile::<NodePods>("", "n1"),
            Ok(Action::requeue(RETRY_SOON))
        );
        assert_eq!(
            summary_data(&host, "n1")["total"],
            "1",
            "the stored summary is untouched"
        );
        assert_eq!(host.reconcile::<NodePods>("", "n1"), Ok(Action::done()));
        assert_eq!(summary_data(&host, "n1")["total"], "2");
    }

    #[test]
    fn a_create_that_finds_the_summary_already_there_retries_later() {
        let host = FakeHost::for_plugin::<NodePods>();
        seed_node(&host, "n1");
        host.fail_next(Call::Create, Error::AlreadyExists("cache is behind".into()));
        assert_eq!(
            host.reconcile::<NodePods>("", "n1"),
            Ok(Action::requeue(RETRY_EXISTS))
        );
    }
}
