//! The `hello` example plugin as the tests drive it: it stamps every ConfigMap it reconciles with
//! its key count (annotation [`KEYS`]) and logs `stamped <ns>/<name>: ...`.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;

/// The annotation `hello` writes.
pub const KEYS: &str = "hello.kubewasm.dev/keys";

/// Creates ConfigMap `name` with one key.
pub async fn create_configmap(cms: &Api<ConfigMap>, name: &str) {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"a": "1"}
    }))
    .expect("configmap");
    cms.create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

/// The stamp on ConfigMap `name`, if it has one.
pub async fn stamp(cms: &Api<ConfigMap>, name: &str) -> Option<String> {
    cms.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|cm| cm.metadata.annotations?.get(KEYS).cloned())
}

/// Whether ConfigMap `name` is stamped.
pub async fn stamped(cms: &Api<ConfigMap>, name: &str) -> bool {
    stamp(cms, name).await.is_some()
}

/// Waits until ConfigMap `name` is stamped.
pub async fn wait_stamped(cms: &Api<ConfigMap>, name: &str) {
    super::eventually(&format!("{name} to be stamped"), || stamp(cms, name)).await;
}

/// The holder of Lease `name`, if someone holds it.
pub async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}
