//! The workload simulator: in-process controllers that make the embedded server behave like a cluster
//! with kube-controller-manager, a scheduler and kwok-style fake kubelets (no container runs).
//!
//! Turned on by [`Config::simulate`](crate::Config::simulate). One task reacts to every committed change
//! (the store's broadcast, as an informer would) and to its own timers, and runs each controller over
//! the current objects, level-triggered: `nodes.rs` (fake Nodes and their Leases), `deployment.rs`,
//! `replicaset.rs`, `statefulset.rs`, `daemonset.rs`, `cronjob.rs`, `job.rs`, `pods.rs` (the
//! scheduler's binding and the kubelet's Pod status), `podgc.rs` (taint eviction, Pods of vanished
//! nodes), `endpointslice.rs` (the Pods behind each Service) and `disruption.rs` (PodDisruptionBudget
//! status). Every write goes through the same commit functions the HTTP handlers use, under the field
//! manager the real component uses, so watches, resourceVersions, managedFields and admission stay
//! consistent, and each component records the Events its real counterpart records. `subresources.rs`
//! serves `pods/log`, `pods/eviction` and `pods/binding`.

mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod endpointslice;
mod job;
mod nodes;
mod podgc;
mod pods;
mod replicaset;
mod statefulset;
pub(crate) mod subresources;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::commit::{self, Propagation, Track, WriteOpts};
pub use crate::config::Simulation;
use crate::error::ApiResult;
use crate::object::{meta_str, metadata_mut};
use crate::registry::ResourceType;
use crate::state::AppState;

/// The field managers of the components the simulator stands in for.
const CONTROLLER_MANAGER: &str = "kube-controller-manager";
const KUBELET: &str = "kubelet";

/// Storage keys whose changes start no pass (no controller here reads them).
const QUIET_KEYS: &[&str] = &["events", "leases.coordination.k8s.io"];

/// Starts the simulator on the current runtime; it ends when the server shuts down.
pub(crate) fn spawn(state: Arc<AppState>, settings: Simulation) -> JoinHandle<()> {
    tokio::spawn(run(state, settings))
}

async fn run(state: Arc<AppState>, settings: Simulation) {
    let (_, mut changes) = state.store.subscribe_now();
    let mut shutdown = state.shutdown.clone();
    let mut sim = Sim::new(state, settings);
    sim.nodes.register(&sim.ctx);
    let mut lease_tick = tokio::time::interval(
        sim.ctx
            .settings
            .lease_renew_interval
            .max(Duration::from_millis(100)),
    );
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wake = sim.guarded_pass();
    loop {
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            changed = changes.recv() => match changed {
                // Events and Leases move nothing a controller here acts on.
                Ok(c) if QUIET_KEYS.contains(&&*c.key) => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // Let a burst of writes (a kubectl apply of many objects) land, then act once.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                        changes.try_recv()
                    {}
                }
                Err(RecvError::Closed) => break,
            },
            () = sleep => {}
            _ = lease_tick.tick() => {
                sim.nodes.heartbeat(&sim.ctx);
                continue;
            }
        }
        wake = sim.guarded_pass();
    }
    tracing::debug!("workload simulator stopped");
}

/// The simulator's memory between passes: what the real components keep in theirs.
struct Sim {
    ctx: Ctx,
    nodes: nodes::Nodes,
    kubelet: pods::Kubelet,
    podgc: podgc::PodGc,
}

impl Sim {
    fn new(state: Arc<AppState>, settings: Simulation) -> Sim {
        Sim {
            ctx: Ctx {
                state,
                settings,
                wake: std::cell::Cell::new(None),
            },
            nodes: nodes::Nodes::default(),
            kubelet: pods::Kubelet::default(),
            podgc: podgc::PodGc::default(),
        }
    }

    /// [`Sim::pass`], where a panic (a malformed object) costs the pass, never the simulator.
    fn guarded_pass(&mut self) -> Option<Instant> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pass())) {
            Ok(wake) => wake,
            Err(_) => {
                tracing::error!("a workload simulator pass panicked; retrying in a second");
                Some(Instant::now() + Duration::from_secs(1))
            }
        }
    }

    /// Runs every controller once over the current objects; returns when the next timer is due.
    fn pass(&mut self) -> Option<Instant> {
        self.ctx.wake.set(None);
        let ctx = &self.ctx;
        deployment::sync_all(ctx);
        replicaset::sync_all(ctx);
        statefulset::sync_all(ctx);
        daemonset::sync_all(ctx);
        cronjob::sync_all(ctx);
        job::sync_all(ctx);
        pods::schedule_all(ctx);
        self.podgc.sync_all(ctx);
        self.kubelet.sync_all(ctx);
        endpointslice::sync_all(ctx);
        disruption::sync_all(ctx);
        self.ctx.wake.get()
    }
}

/// What every controller works with: the server's state, the settings, and when to run again.
pub(crate) struct Ctx {
    state: Arc<AppState>,
    settings: Simulation,
    /// The earliest time a controller asked to be run again (a Pod due to start, ...).
    wake: std::cell::Cell<Option<Instant>>,
}

impl Ctx {
    /// Asks for another pass at `at`.
    fn wake_at(&self, at: Instant) {
        let next = match self.wake.get() {
            Some(w) if w <= at => w,
            _ => at,
        };
        self.wake.set(Some(next));
    }

    /// A served built-in type.
    fn ty(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.state.registry().get(group, version, resource)
    }

    /// Every object of a type (in one namespace or all), parsed.
    fn list(&self, ty: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        let (_, items) = self.state.store.list(&ty.storage_key(), ns);
        items
            .into_iter()
            .filter_map(|(_, _, o)| o.value().ok())
            .collect()
    }

    /// One object, parsed.
    fn get(&self, ty: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.state
            .store
            .get(&ty.storage_key(), ns, name)
            .and_then(|o| o.value().ok())
    }

    /// Creates an object as `manager`; a failure is logged (the next pass tries again).
    fn create(&self, ty: &Arc<ResourceType>, ns: &str, obj: Value, manager: &str) -> Option<Value> {
        match commit::create_object(
            &self.state,
            ty,
            ns,
            obj,
            Some(manager),
            WriteOpts::default(),
        ) {
            Ok(stored) => stored.value().ok(),
            Err(e) => {
                tracing::debug!(error = %e, namespace = ns, kind = %ty.kind, "simulator create failed");
                None
            }
        }
    }

    /// Updates an object's status through `/status` as `manager`, when `change` changes it.
    fn update_status(
        &self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        manager: &str,
        change: impl FnOnce(&mut Value),
    ) {
        self.update(ty, ns, name, manager, Some("status"), change);
    }

    /// Updates an object (its main resource, or `subresource`) as `manager`; a write that changes
    /// nothing is not made.
    fn update(
        &self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        manager: &str,
        subresource: Option<&str>,
        change: impl FnOnce(&mut Value),
    ) {
        let result = commit::update_object(
            &self.state,
            ty,
            ns,
            name,
            subresource,
            Track::Update {
                manager,
                subresource,
            },
            WriteOpts::default(),
            |old| {
                let mut new = old.clone();
                change(&mut new);
                Ok(new)
            },
        );
        if let Err(e) = result {
            tracing::debug!(error = %e, namespace = ns, name, kind = %ty.kind, "simulator update failed");
        }
    }

    /// Deletes an object (background propagation), if it still has `uid`.
    fn delete(&self, ty: &Arc<ResourceType>, ns: &str, name: &str, uid: &str) -> ApiResult<()> {
        commit::delete_object(
            &self.state,
            ty,
            ns,
            name,
            &json!({"uid": uid}),
            false,
            Propagation::Background,
        )
        .map(|_| ())
    }

    /// Records a core/v1 Event about `obj` as a controller's event recorder does (`source.component`,
    /// and the node as `source.host` for a kubelet), so `kubectl describe` and `kubectl get events`
    /// show what happened.
    fn record(
        &self,
        obj: &Value,
        kind: &str,
        reason: &str,
        message: &str,
        component: &str,
        host: Option<&str>,
    ) {
        let now = crate::object::now_rfc3339();
        let mut source = json!({"component": component});
        if let Some(h) = host {
            source["host"] = json!(h);
        }
        let event = json!({
            "involvedObject": involved(obj),
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "eventTime": null,
            "reportingComponent": component,
            "reportingInstance": host.unwrap_or(""),
        });
        self.publish(obj, event, component);
    }

    /// Records an Event as the events.k8s.io recorder of the scheduler does (`action`, `eventTime`,
    /// reporting component and instance, no counts).
    fn record_action(&self, obj: &Value, kind: &str, reason: &str, action: &str, message: &str) {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let event = json!({
            "involvedObject": involved(obj),
            "reason": reason,
            "action": action,
            "message": message,
            "source": {},
            "firstTimestamp": null,
            "lastTimestamp": null,
            "type": kind,
            "eventTime": now,
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-kubewasm",
        });
        self.publish(obj, event, "kube-scheduler");
    }

    /// Stores an Event named `{object}.{hex nanoseconds}` in the object's namespace.
    fn publish(&self, obj: &Value, mut event: Value, manager: &str) {
        let Some(ty) = self.ty("", "v1", "events") else {
            return;
        };
        let ns = match meta_str(obj, "namespace") {
            "" => "default",
            ns => ns,
        };
        let name = format!(
            "{}.{:x}",
            meta_str(obj, "name"),
            jiff::Timestamp::now().as_nanosecond()
        );
        event["apiVersion"] = json!("v1");
        event["kind"] = json!("Event");
        event["metadata"] = json!({"name": name, "namespace": ns});
        self.create(&ty, ns, event, manager);
    }

    /// Whether an object with `uid` is still stored under `ty`/`ns`/`name`.
    fn exists(&self, ty: &ResourceType, ns: &str, name: &str, uid: &str) -> bool {
        self.state
            .store
            .get(&ty.storage_key(), ns, name)
            .is_some_and(|o| &*o.uid == uid)
    }
}

/// An Event's `involvedObject` for a stored object.
fn involved(obj: &Value) -> Value {
    let mut r = json!({
        "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
        "name": meta_str(obj, "name"),
        "uid": meta_str(obj, "uid"),
        "resourceVersion": meta_str(obj, "resourceVersion"),
    });
    let ns = meta_str(obj, "namespace");
    if !ns.is_empty() {
        r["namespace"] = json!(ns);
    }
    r
}

/// The uid of an object's controller (the ownerReference with `controller: true`).
fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// The ownerReference a controller puts on what it makes.
fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Objects grouped by the uid of their controller.
fn by_controller(objs: Vec<Value>) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for o in objs {
        if let Some(uid) = controller_uid(&o) {
            out.entry(uid.to_string()).or_default().push(o);
        }
    }
    out
}

/// An integer field (0 when missing).
fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `metadata.generation` (0 when missing).
fn generation(obj: &Value) -> i64 {
    int(obj, "/metadata/generation")
}

/// Whether a label selector (`matchLabels`/`matchExpressions`) selects `labels`; a missing or
/// malformed selector selects nothing, as the controllers treat it.
fn selects(selector: Option<&Value>, obj: &Value) -> bool {
    let Some(sel) = selector else {
        return false;
    };
    let Ok(sel) = kubewasm_core::LabelSelector::from_json(sel) else {
        return false;
    };
    let empty = serde_json::Map::new();
    let labels = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    sel.matches(labels)
}

/// A status condition (`type`) of an object.
fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// Sets a condition in a status's `conditions` as the workload controllers do: unchanged when status
/// and reason are the same; otherwise replaced and moved last, keeping `lastTransitionTime` when only
/// the reason changed. `stamp` names the time fields the kind's conditions carry.
fn set_condition(status: &mut Value, cond: Value, stamps: &[&str]) {
    let kind = cond["type"].clone();
    let list = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = list else {
        return;
    };
    let now = json!(crate::object::now_rfc3339());
    let current = list.iter().position(|c| c["type"] == kind);
    let mut cond = cond;
    for s in stamps {
        cond[*s] = now.clone();
    }
    if let Some(i) = current {
        let cur = &list[i];
        if cur["status"] == cond["status"] && cur["reason"] == cond["reason"] {
            return;
        }
        if cur["status"] == cond["status"]
            && let Some(t) = cur.get("lastTransitionTime")
        {
            cond["lastTransitionTime"] = t.clone();
        }
        list.remove(i);
    }
    list.push(cond);
}

/// A stable hash of a pod template (and collision count), encoded as kube's controllers encode theirs
/// (FNV-32a, its decimal digits mapped to consonants and digits), for `pod-template-hash` and
/// `controller-revision-hash`.
fn template_hash(template: &Value, collision_count: i64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(text.as_bytes());
    if collision_count > 0 {
        feed(&collision_count.to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// A Pod made from a workload's template, owned by `owner_ref`, named `name` or generated from
/// `generate_name`.
fn pod_from_template(
    template: &Value,
    ns: &str,
    name: Option<&str>,
    generate_name: &str,
    owner_ref: Value,
) -> Value {
    let mut meta = serde_json::Map::new();
    if let Some(n) = name {
        meta.insert("name".into(), json!(n));
    }
    meta.insert("generateName".into(), json!(generate_name));
    meta.insert("namespace".into(), json!(ns));
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([owner_ref]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// Sets a label on an object.
fn set_label(obj: &mut Value, key: &str, value: &str) {
    if let Ok(meta) = metadata_mut(obj) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(key.into(), json!(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_short_and_change_with_the_template() {
        let a = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let b = json!({"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        assert_eq!(template_hash(&a, 0), template_hash(&a, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&b, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&a, 1));
        let h = template_hash(&a, 0);
        assert!(h.len() <= 10 && !h.is_empty(), "{h}");
        assert!(
            h.bytes()
                .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c))
        );
    }

    #[test]
    fn a_condition_with_the_same_status_and_reason_is_left_alone() {
        let mut status = json!({});
        let c = |s: &str, r: &str| json!({"type": "Available", "status": s, "reason": r});
        set_condition(&mut status, c("True", "A"), &["lastTransitionTime"]);
        let first = status.clone();
        set_condition(&mut status, c("True", "A"), &["lastTransitionTime"]);
        assert_eq!(status, first);
        set_condition(&mut status, c("False", "B"), &["lastTransitionTime"]);
        assert_eq!(status["conditions"][0]["reason"], "B");
        assert_eq!(status["conditions"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn selectors_match_labels_and_a_missing_selector_matches_nothing() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        assert!(selects(Some(&json!({"matchLabels": {"app": "web"}})), &pod));
        assert!(!selects(Some(&json!({"matchLabels": {"app": "db"}})), &pod));
        assert!(selects(
            Some(
                &json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]})
            ),
            &pod
        ));
        assert!(!selects(None, &pod));
    }
}
