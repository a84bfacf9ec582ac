//! The resource registry: which group/version/resource names exist (built-ins and CRDs added at run time).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// One servable resource at one version, as discovery describes it.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group ("" for core).
    pub group: String,
    /// Version ("v1").
    pub version: String,
    /// Plural resource name ("pods").
    pub resource: String,
    /// Kind ("Pod").
    pub kind: String,
    /// Singular name ("pod").
    pub singular: String,
    /// kubectl short names ("po").
    pub short_names: Vec<String>,
    /// Categories ("all").
    pub categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `/status` is served (and the main resource ignores `.status`).
    pub has_status: bool,
    /// Compiled into the server (strategic merge allowed) rather than defined by a CRD.
    pub builtin: bool,
    /// The CRD's openAPIV3Schema for this version, if any.
    pub schema: Option<Value>,
    /// A custom resource's printer columns (its CRD's `additionalPrinterColumns`); built-in kinds are
    /// printed by `printers`.
    pub columns: Vec<PrinterColumn>,
    /// Whether (and how) `/scale` is served.
    pub scale: Option<ScalePaths>,
    /// How stored objects map to what clients see at this version.
    pub view: View,
    /// The version objects are stored at (a CRD's storage version; a built-in's own version).
    pub storage_version: String,
}

/// A CRD's printer column (`additionalPrinterColumns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The header.
    pub name: String,
    /// The JSONPath of the cell (".spec.replicas", ".status.conditions[?(@.type==\"Ready\")].status").
    pub json_path: String,
    /// string, integer, number, boolean or date.
    pub type_: String,
    /// The OpenAPI format ("" when none).
    pub format: String,
    /// The description ("" when none).
    pub description: String,
    /// 0 for the default view, more for `-o wide`.
    pub priority: i64,
}

/// How a resource's stored objects relate to what clients read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Stored as served.
    Native,
    /// events.k8s.io/v1 Events, stored as core/v1 Events (see `events.rs`).
    EventsV1,
}

/// A subresource as discovery lists it (`pods/log`, `deployments/scale`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    /// The name after the object's path ("status", "log").
    pub name: &'static str,
    /// Group of the kind it answers with ("" for the parent's group, or core).
    pub group: &'static str,
    /// Version of that kind ("" for the parent's version).
    pub version: &'static str,
    /// The kind it answers with; `None` for the parent's kind.
    pub kind: Option<&'static str>,
    /// Verbs it serves.
    pub verbs: &'static [&'static str],
}

/// Subresources of built-in kinds beyond `status` and `scale`: what kube-apiserver lists for them.
/// `status` and `scale` come from [`ResourceType::has_status`] and [`ResourceType::scale`].
const EXTRA_SUBRESOURCES: &[(&str, &str, Subresource)] = &[
    ("", "namespaces", sub("finalize", "", "", None, &["update"])),
    (
        "",
        "pods",
        sub(
            "attach",
            "",
            "",
            Some("PodAttachOptions"),
            &["create", "get"],
        ),
    ),
    (
        "",
        "pods",
        sub("binding", "", "", Some("Binding"), &["create"]),
    ),
    (
        "",
        "pods",
        sub("eviction", "policy", "v1", Some("Eviction"), &["create"]),
    ),
    (
        "",
        "pods",
        sub("exec", "", "", Some("PodExecOptions"), &["create", "get"]),
    ),
    ("", "pods", sub("log", "", "", None, &["get"])),
    (
        "",
        "pods",
        sub(
            "portforward",
            "",
            "",
            Some("PodPortForwardOptions"),
            &["create", "get"],
        ),
    ),
    (
        "",
        "serviceaccounts",
        sub(
            "token",
            "authentication.k8s.io",
            "v1",
            Some("TokenRequest"),
            &["create"],
        ),
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        sub("approval", "", "", None, &["get", "patch", "update"]),
    ),
];

const fn sub(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: Option<&'static str>,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

const PARENT_VERBS: &[&str] = &["get", "patch", "update"];

impl ResourceType {
    /// Every subresource served, sorted by name as discovery lists them.
    pub fn subresources(&self) -> Vec<Subresource> {
        let mut v: Vec<Subresource> = Vec::new();
        if self.builtin {
            v.extend(
                EXTRA_SUBRESOURCES
                    .iter()
                    .filter(|(g, r, _)| *g == self.group && *r == self.resource)
                    .map(|(_, _, s)| s.clone()),
            );
        }
        if self.scale.is_some() {
            v.push(sub(
                "scale",
                "autoscaling",
                "v1",
                Some("Scale"),
                PARENT_VERBS,
            ));
        }
        if self.has_status {
            v.push(sub("status", "", "", None, PARENT_VERBS));
        }
        v.sort_by_key(|s| s.name);
        v
    }

    /// The `storageVersionHash` legacy discovery lists: the first 8 bytes of the SHA-256 of the
    /// stored group/version/kind, in base64, as kube-apiserver computes it (clients such as the
    /// storage version migrator compare it to notice a changed storage version).
    pub fn storage_version_hash(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let (group, version) = match self.view {
            // Stored as core/v1 Events.
            View::EventsV1 => ("", "v1"),
            View::Native => (self.group.as_str(), self.storage_version.as_str()),
        };
        let digest = sha2::Sha256::digest(format!("{group}/{version}/{}", self.kind).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&digest[..8])
    }

    /// Whether `name` is one of [`ResourceType::subresources`].
    pub fn serves_subresource(&self, name: &str) -> bool {
        self.subresources().iter().any(|s| s.name == name)
    }

    /// Whether this is a review (`SelfSubjectAccessReview`, `SelfSubjectReview`, ...): created to
    /// get an answer, never stored.
    pub fn is_review(&self) -> bool {
        self.builtin
            && matches!(
                self.group.as_str(),
                "authorization.k8s.io" | "authentication.k8s.io"
            )
    }

    /// The collection verbs discovery lists (a namespace cannot be deleted as a collection).
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.is_review() {
            &["create"]
        } else if self.builtin && self.group.is_empty() && self.resource == "namespaces" {
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

/// Where a resource keeps the fields its `/scale` subresource exposes (JSON paths like ".spec.replicas").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// Desired replicas.
    pub spec_replicas: String,
    /// Observed replicas.
    pub status_replicas: String,
    /// The label selector (a string, or for built-ins `.spec.selector` as a LabelSelector object).
    pub label_selector: Option<String>,
}

impl ResourceType {
    /// "v1" or "apps/v1".
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key shared by all versions of the resource: "pods" or "deployments.apps"
    /// (events.k8s.io Events share core/v1's "events").
    pub fn storage_key(&self) -> String {
        match self.view {
            View::Native => storage_key(&self.group, &self.resource),
            View::EventsV1 => "events".to_string(),
        }
    }

    /// The apiVersion objects are stored with.
    pub fn storage_api_version(&self) -> String {
        match self.view {
            View::Native => self.api_version(),
            View::EventsV1 => "v1".to_string(),
        }
    }
}

/// "pods" or "deployments.apps".
pub fn storage_key(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// All resource types, by (group, version, resource). Immutable snapshots are swapped on CRD changes.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
    /// Preferred (first served) version per group, in registration order of groups.
    group_order: Vec<String>,
    preferred: BTreeMap<String, String>,
}

impl Registry {
    /// The registry of the built-in kinds.
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        for t in builtin_types() {
            r.add(t);
        }
        r
    }

    /// Adds (or replaces) a resource type.
    pub fn add(&mut self, t: ResourceType) {
        if !self.group_order.contains(&t.group) {
            self.group_order.push(t.group.clone());
        }
        self.preferred
            .entry(t.group.clone())
            .or_insert_with(|| t.version.clone());
        self.types.insert(
            (t.group.clone(), t.version.clone(), t.resource.clone()),
            Arc::new(t),
        );
    }

    /// Sets the preferred version of a group (CRDs: the first served version by kube's priority).
    pub fn set_preferred(&mut self, group: &str, version: &str) {
        self.preferred
            .insert(group.to_string(), version.to_string());
    }

    /// Removes every version of `resource` in `group`.
    pub fn remove(&mut self, group: &str, resource: &str) {
        self.types
            .retain(|(g, _, r), _| !(g == group && r == resource));
        if !self.types.keys().any(|(g, _, _)| g == group) {
            self.group_order.retain(|g| g != group);
            self.preferred.remove(group);
        }
    }

    /// Looks a resource up.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .cloned()
    }

    /// Whether the group is served at any version (the core group always is).
    pub fn has_group(&self, group: &str) -> bool {
        group.is_empty() || self.group_order.iter().any(|g| g == group)
    }

    /// Whether any resource is served at group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .keys()
            .any(|(g, v, _)| g == group && v == version)
    }

    /// Resources served at group/version.
    pub fn resources(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Named groups (not core) with their versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>, String)> {
        let mut out = Vec::new();
        for g in &self.group_order {
            if g.is_empty() {
                continue;
            }
            let mut versions: Vec<String> = Vec::new();
            for (gg, v, _) in self.types.keys() {
                if gg == g && !versions.contains(v) {
                    versions.push(v.clone());
                }
            }
            let preferred = self
                .preferred
                .get(g)
                .cloned()
                .unwrap_or_else(|| versions.first().cloned().unwrap_or_default());
            versions.sort_by_key(|v| v != &preferred);
            out.push((g.clone(), versions, preferred));
        }
        out
    }

    /// Every registered type.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }
}

#[allow(clippy::too_many_arguments)]
fn t(
    group: &str,
    version: &str,
    resource: &str,
    kind: &str,
    short: &[&str],
    namespaced: bool,
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
        kind: kind.into(),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        namespaced,
        has_status,
        builtin: true,
        schema: None,
        columns: Vec::new(),
        scale: None,
        view: View::Native,
        storage_version: version.into(),
    }
}

fn builtin_types() -> Vec<ResourceType> {
    let mut v = vec![
        t("", "v1", "namespaces", "Namespace", &["ns"], false, true),
        t("", "v1", "nodes", "Node", &["no"], false, true),
        t("", "v1", "pods", "Pod", &["po"], true, true),
        t("", "v1", "configmaps", "ConfigMap", &["cm"], true, false),
        t("", "v1", "secrets", "Secret", &[], true, false),
        t("", "v1", "services", "Service", &["svc"], true, true),
        t("", "v1", "events", "Event", &["ev"], true, false),
        t(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            &["sa"],
            true,
            false,
        ),
        t(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            &["ev"],
            true,
            false,
        ),
        t(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            &["deploy"],
            true,
            true,
        ),
        t(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            &["sts"],
            true,
            true,
        ),
        t(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            &["rs"],
            true,
            true,
        ),
        t(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            &[],
            true,
            false,
        ),
        t("", "v1", "endpoints", "Endpoints", &["ep"], true, false),
        t(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            &["pvc"],
            true,
            true,
        ),
        t(
            "",
            "v1",
            "resourcequotas",
            "ResourceQuota",
            &["quota"],
            true,
            true,
        ),
        t("apps", "v1", "daemonsets", "DaemonSet", &["ds"], true, true),
        t(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            &[],
            true,
            false,
        ),
        t("batch", "v1", "jobs", "Job", &[], true, true),
        t("batch", "v1", "cronjobs", "CronJob", &["cj"], true, true),
        t(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            &["pdb"],
            true,
            true,
        ),
        t(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            &["ing"],
            true,
            true,
        ),
        t(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            &[],
            false,
            false,
        ),
        t(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            &["netpol"],
            true,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            &[],
            true,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            &[],
            true,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            &[],
            false,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            &[],
            false,
            false,
        ),
        t(
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            &["csr"],
            false,
            true,
        ),
        t(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            &[],
            false,
            true,
        ),
        t(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            &["hpa"],
            true,
            true,
        ),
        t(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            &[],
            true,
            false,
        ),
        t(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            &[],
            false,
            false,
        ),
        t(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            &[],
            false,
            false,
        ),
        t(
            "authorization.k8s.io",
            "v1",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            &[],
            true,
            false,
        ),
        t(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "SelfSubjectReview",
            &[],
            false,
            false,
        ),
        t(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            &["crd", "crds"],
            false,
            true,
        ),
    ];
    for ty in &mut v {
        if ty.group == "events.k8s.io" {
            ty.view = View::EventsV1;
        }
        if ty.group == "apps"
            && matches!(
                ty.resource.as_str(),
                "deployments" | "statefulsets" | "replicasets"
            )
        {
            ty.scale = Some(ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".spec.selector".into()),
            });
        }
        if matches!(
            ty.resource.as_str(),
            "pods"
                | "services"
                | "deployments"
                | "statefulsets"
                | "replicasets"
                | "daemonsets"
                | "jobs"
                | "cronjobs"
        ) {
            ty.categories.push("all".into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_serves_core_and_apps_kinds() {
        let r = Registry::builtin();
        assert!(r.get("", "v1", "pods").is_some_and(|t| t.namespaced));
        assert!(r.get("", "v1", "nodes").is_some_and(|t| !t.namespaced));
        assert_eq!(
            r.get("apps", "v1", "deployments").map(|t| t.kind.clone()),
            Some("Deployment".to_string())
        );
        assert!(
            r.groups()
                .iter()
                .any(|(g, _, _)| g == "coordination.k8s.io")
        );
    }

    #[test]
    fn storage_version_hashes_are_kube_apiservers() {
        // The values kube-apiserver 1.37 lists in /api/v1 and /apis/apps/v1.
        let r = Registry::builtin();
        let hash = |g: &str, res: &str| r.get(g, "v1", res).unwrap().storage_version_hash();
        assert_eq!(hash("", "configmaps"), "qFsyl6wFWjQ=");
        assert_eq!(hash("apps", "deployments"), "8aSe+NMegvE=");
        assert_eq!(hash("events.k8s.io", "events"), hash("", "events"));
    }

    #[test]
    fn removing_the_last_resource_of_a_group_removes_the_group() {
        let mut r = Registry::builtin();
        r.remove("coordination.k8s.io", "leases");
        assert!(
            !r.groups()
                .iter()
                .any(|(g, _, _)| g == "coordination.k8s.io")
        );
    }
}
