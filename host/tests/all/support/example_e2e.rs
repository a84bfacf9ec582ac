//! Shared by the example operators' end-to-end tests (the real manager against the embedded
//! API server, via `support::cluster::TestCluster`, and `kubewasm run` against the real control
//! plane, via `support::real::RealCluster`): JSON reads and writes through kube::Client, and
//! `kubectl apply` of the files in `examples/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::Value;

use crate::support::cluster::TestCluster;

/// A kind as the tests address it.
#[derive(Debug, Clone, Copy)]
pub struct Res {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const REDIS: Res = Res {
    api_version: "cache.example.com/v1alpha1",
    kind: "RedisCluster",
    plural: "redisclusters",
};
pub const STS: Res = Res {
    api_version: "apps/v1",
    kind: "StatefulSet",
    plural: "statefulsets",
};
pub const SVC: Res = Res {
    api_version: "v1",
    kind: "Service",
    plural: "services",
};
pub const CM: Res = Res {
    api_version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
};
pub const POD: Res = Res {
    api_version: "v1",
    kind: "Pod",
    plural: "pods",
};
pub const NODE: Res = Res {
    api_version: "v1",
    kind: "Node",
    plural: "nodes",
};
pub const NS: Res = Res {
    api_version: "v1",
    kind: "Namespace",
    plural: "namespaces",
};

/// A cluster the helpers can talk to.
pub trait Cluster {
    /// A client with the rights to read and write anything.
    fn kube(&self) -> &kube::Client;
}

impl Cluster for TestCluster {
    fn kube(&self) -> &kube::Client {
        &self.client
    }
}

impl Cluster for crate::support::real::RealCluster {
    fn kube(&self) -> &kube::Client {
        &self.client
    }
}

fn api(c: &impl Cluster, r: Res, ns: Option<&str>) -> kube::Api<kube::api::DynamicObject> {
    let (group, version) = r
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", r.api_version));
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk(group, version, r.kind),
        r.plural,
    );
    match ns {
        Some(ns) => kube::Api::namespaced_with(c.kube().clone(), ns, &resource),
        None => kube::Api::all_with(c.kube().clone(), &resource),
    }
}

/// The object as the API server has it now, or `None`.
pub async fn get(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str) -> Option<Value> {
    let obj = api(c, r, ns)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", r.kind))?;
    Some(serde_json::to_value(obj).expect("objects serialize"))
}

/// Like [`get`], but a failed request (e.g. an injected fault) reads as "not there yet":
/// for polling.
pub async fn observe(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str) -> Option<Value> {
    let obj = api(c, r, ns).get_opt(name).await.ok()??;
    Some(serde_json::to_value(obj).expect("objects serialize"))
}

/// True only when the API server answers that the object does not exist (a failed request
/// is not an answer): for polling until something is deleted.
pub async fn absent(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str) -> bool {
    matches!(api(c, r, ns).get_opt(name).await, Ok(None))
}

/// Every object of a kind in `ns` (all namespaces when `None`).
pub async fn list(c: &impl Cluster, r: Res, ns: Option<&str>) -> Vec<Value> {
    api(c, r, ns)
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("list {}: {e}", r.plural))
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("objects serialize"))
        .collect()
}

/// Creates `object` (with apiVersion, kind and metadata).
pub async fn create(c: &impl Cluster, r: Res, object: Value) -> Value {
    let ns = object["metadata"]["namespace"].as_str().map(str::to_owned);
    let obj: kube::api::DynamicObject =
        serde_json::from_value(object).expect("a Kubernetes object");
    let created = api(c, r, ns.as_deref())
        .create(&kube::api::PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", r.kind));
    serde_json::to_value(created).expect("objects serialize")
}

/// A JSON merge patch, as `kubectl patch --type=merge` sends.
pub async fn merge(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str, patch: Value) {
    api(c, r, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("patch {} {name}: {e}", r.kind));
}

/// A JSON merge patch of the status subresource (what a kubelet or StatefulSet controller does).
pub async fn merge_status(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str, patch: Value) {
    api(c, r, ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("patch status of {} {name}: {e}", r.kind));
}

/// Deletes an object (finalizers may keep it a while).
pub async fn delete(c: &impl Cluster, r: Res, ns: Option<&str>, name: &str) {
    api(c, r, ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {} {name}: {e}", r.kind));
}

/// A file of `examples/`.
pub fn example_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path)
}

/// `kubectl apply -f examples/<path>` against the test cluster's API server.
pub fn kubectl_apply(c: &TestCluster, dir: &Path, path: &str) {
    let kubeconfig = dir.join("kubeconfig");
    c.server
        .write_kubeconfig(&kubeconfig)
        .expect("the kubeconfig is written");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["apply", "-f"])
        .arg(example_file(path))
        .output()
        .unwrap_or_else(|e| panic!("kubectl could not be run (is kubectl 1.32 on PATH?): {e}"));
    assert!(
        out.status.success(),
        "kubectl apply -f examples/{path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A string at a JSON pointer, or "".
pub fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Waits until the `node-pods` summary of `node` says `counts` (phase -> count; the others 0)
/// and is owned by the Node as it exists now.
pub async fn summary_is(c: &impl Cluster, node: &str, counts: &[(&str, u32)]) {
    let mut want = serde_json::json!({"Pending": "0", "Running": "0", "Succeeded": "0",
                                      "Failed": "0", "Unknown": "0"});
    let mut total = 0;
    for (phase, n) in counts {
        want[*phase] = serde_json::json!(n.to_string());
        total += n;
    }
    want["total"] = serde_json::json!(total.to_string());
    let what = format!("the summary of {node} to be {want}");
    let want = &want;
    crate::support::eventually(&what, || async move {
        let n = observe(c, NODE, None, node).await?;
        let cm = observe(c, CM, Some("kube-system"), &format!("node-pods-{node}")).await?;
        (cm["data"] == *want && cm["metadata"]["ownerReferences"][0]["uid"] == n["metadata"]["uid"])
            .then_some(())
    })
    .await;
}
