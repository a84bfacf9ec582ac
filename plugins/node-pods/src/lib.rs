//! Example kubewasm operator: keeps a ConfigMap per Node (`kube-system/node-pods-<node>`)
//! with the number of Pods on that Node by phase, found through a field index on the Pods'
//! `spec.nodeName` (the client-go `IndexFunc` pattern of the reference articles).
//!
//! - Reconciles Nodes. A Pod change maps to its Node through the index lookup
//!   `by-name` (Nodes by `metadata.name`) at the Pod's `spec.nodeName`.
//! - Reads the Node's Pods with `list_by_index("by-node", node)`, decoding only their phase.
//! - Writes with create / replace-with-resourceVersion: a `conflict` or `already-exists`
//!   means the cache is behind, and the key is retried shortly.
//! - When the Node goes, its summary goes (the ConfigMap is also owned by the Node).

mod summary;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{
    Action, Error, Event, Manifest, Object, Plugin, Request, Result, Verb, WatchMapping, log,
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
    const PLURAL: Option<&'static str> = Some("nodes");
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
    let current = kubewasm_sdk::get::<ConfigMap>(NAMESPACE, &cm_name)?;
    let Some(n) = kubewasm_sdk::get::<NodeMeta>("", node)? else {
        // The Node is gone: so is its summary. Only ever delete our own.
        if let Some(cm) = &current
            && summary::is_summary_of(cm, node)
        {
            match kubewasm_sdk::delete::<ConfigMap>(NAMESPACE, &cm_name) {
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
    let pods = kubewasm_sdk::list_by_index::<PodPhase>("by-node", node)?;
    let data = summary::counts(
        pods.iter()
            .map(|p| p.status.as_ref().and_then(|s| s.phase.as_deref())),
    );
    let mut want = summary::config_map(node, &uid, data);
    match current {
        None => {
            kubewasm_sdk::create(&want)?;
        }
        Some(cm) if !summary::is_summary_of(&cm, node) => {
            let note = format!(
                "ConfigMap {NAMESPACE}/{cm_name} exists and is not a summary written by {MANAGER}"
            );
            let warning = Event::warning("NameTaken", note);
            kubewasm_sdk::event_for::<Node>("", node, &warning)?;
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
            kubewasm_sdk::replace(&want)?;
        }
    }
    Ok(Action::done())
}
