//! What a mirror is: how sources and mirrors are recognised, and the mirror of a source in a
//! namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label that makes a ConfigMap a source: `mirror.kubewasm.dev/enabled=true`.
pub const ENABLED: &str = "mirror.kubewasm.dev/enabled";
/// Annotation on a source: a label selector for the target namespaces (default: every
/// namespace except the source's own).
pub const SELECTOR: &str = "mirror.kubewasm.dev/namespace-selector";
/// Annotation on a mirror: `<namespace>/<name>` of its source. Indexed as `by-source`.
pub const SOURCE: &str = "mirror.kubewasm.dev/source";
/// The index over [`SOURCE`].
pub const BY_SOURCE: &str = "by-source";
/// `app.kubernetes.io/managed-by` on every mirror: only these are ever updated or deleted.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGER: &str = "kubewasm-configmap-mirror";

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `<namespace>/<name>` of an object.
pub fn key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The source a mirror copies, when `cm` is a mirror written by this operator.
pub fn source_of(cm: &ConfigMap) -> Option<(&str, &str)> {
    if label(&cm.metadata, MANAGED_BY) != Some(MANAGER) {
        return None;
    }
    annotation(&cm.metadata, SOURCE)?.split_once('/')
}

/// True when `cm` asks to be mirrored and is not being deleted.
pub fn is_active_source(cm: &ConfigMap) -> bool {
    label(&cm.metadata, ENABLED) == Some("true") && cm.metadata.deletion_timestamp.is_none()
}

/// The namespace selector of a source; `None` means "every other namespace".
pub fn selector(source: &ConfigMap) -> Option<&str> {
    annotation(&source.metadata, SELECTOR).filter(|s| !s.trim().is_empty())
}

/// True when objects may be created in `ns` (it is not being deleted).
pub fn accepts_objects(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// The mirror of `source` in `namespace`: same name, data and binaryData; the source's labels
/// without [`ENABLED`] (a mirror must never be a source), plus [`MANAGED_BY`] and [`SOURCE`].
pub fn mirror(source: &ConfigMap, namespace: &str) -> ConfigMap {
    let mut labels = source.metadata.labels.clone().unwrap_or_default();
    labels.remove(ENABLED);
    labels.insert(MANAGED_BY.to_owned(), MANAGER.to_owned());
    ConfigMap {
        metadata: ObjectMeta {
            name: source.metadata.name.clone(),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(SOURCE.to_owned(), key(&source.metadata))])),
            ..ObjectMeta::default()
        },
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
        ..ConfigMap::default()
    }
}

/// True when `current` already holds what `desired` would write.
pub fn in_sync(current: &ConfigMap, desired: &ConfigMap) -> bool {
    let empty = |d: &Option<BTreeMap<String, String>>| d.as_ref().is_none_or(BTreeMap::is_empty);
    (current.data == desired.data || (empty(&current.data) && empty(&desired.data)))
        && current.binary_data == desired.binary_data
        && current.metadata.labels == desired.metadata.labels
        && annotation(&current.metadata, SOURCE) == annotation(&desired.metadata, SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source() -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": "settings", "namespace": "team-a",
                         "labels": {ENABLED: "true", "app": "web"}},
            "data": {"k": "v"}
        }))
        .unwrap()
    }

    #[test]
    fn a_mirror_copies_data_and_labels_but_is_never_a_source() {
        let m = mirror(&source(), "team-b");
        assert_eq!(m.metadata.namespace.as_deref(), Some("team-b"));
        assert_eq!(m.data, source().data);
        assert!(!is_active_source(&m));
        assert_eq!(source_of(&m), Some(("team-a", "settings")));
        assert_eq!(label(&m.metadata, "app"), Some("web"));
        assert!(in_sync(&m, &mirror(&source(), "team-b")));
    }

    #[test]
    fn a_configmap_that_only_claims_a_source_is_not_a_mirror() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "n", "annotations": {SOURCE: "a/b"}}
        }))
        .unwrap();
        assert_eq!(source_of(&cm), None);
    }
}
