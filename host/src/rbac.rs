//! [`Rbac`]: the least-privilege RBAC objects for a host running a set of plugins — exactly the
//! rules their manifests need, plus what the host itself needs (Leases, Events).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::runtime::{Kind, Manifest, Verb, Verbs, WatchMapping};

/// Why the RBAC objects could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// An object could not be serialized to YAML.
    #[error("failed to serialize {what} to YAML: {source}")]
    Yaml {
        /// Which object.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Who the rules are granted to.
#[derive(Debug, Clone)]
pub struct RbacTarget {
    /// Name of the ClusterRole, Role and their bindings.
    pub name: String,
    /// Namespace of the ServiceAccount and of the leader-election Lease.
    pub namespace: String,
    /// The host's ServiceAccount.
    pub service_account: String,
}

impl Default for RbacTarget {
    fn default() -> Self {
        Self {
            name: "kubewasm".into(),
            namespace: "kubewasm-system".into(),
            service_account: "kubewasm".into(),
        }
    }
}

/// Verbs per (apiGroup, resource), ordered, so the output is stable.
pub type Rules = BTreeMap<(String, String), Vec<&'static str>>;

/// Adds `verbs` on `group`/`resource` to `rules`, keeping the verbs in Kubernetes' usual order.
fn add(rules: &mut Rules, group: &str, resource: &str, verbs: &[&'static str]) {
    const ORDER: [&str; 7] = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    let entry = rules
        .entry((group.to_owned(), resource.to_owned()))
        .or_default();
    for v in verbs {
        if !entry.contains(v) {
            entry.push(v);
        }
    }
    entry.sort_by_key(|v| ORDER.iter().position(|o| o == v).unwrap_or(ORDER.len()));
}

/// Whether `kind` may have a `scale` subresource: the built-in kinds that serve one
/// (Deployment, ReplicaSet, StatefulSet, ReplicationController) and custom resources (their CRD
/// may declare one). Built-in kinds without one (a ConfigMap) get no `<plural>/scale` rule.
fn has_scale(kind: &Kind) -> bool {
    let custom = kind.group.contains('.') && !kind.group.ends_with(".k8s.io");
    custom
        || matches!(
            (kind.group.as_str(), kind.kind.as_str()),
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") | ("", "ReplicationController")
        )
}

/// Adds the rules for `verbs` on `kind`: reads as get/list/watch when `reads`, the write verbs
/// when `writes`.
fn add_grant(rules: &mut Rules, kind: &Kind, verbs: Verbs, reads: bool, writes: bool) {
    let (group, plural) = (kind.group.as_str(), kind.plural.as_str());
    let status = format!("{plural}/status");
    let scale = has_scale(kind).then(|| format!("{plural}/scale"));
    if reads
        && (verbs.contains(Verb::Get) || verbs.contains(Verb::List) || verbs.contains(Verb::Watch))
    {
        add(rules, group, plural, &["get", "list", "watch"]);
    }
    if !writes {
        return;
    }
    if verbs.contains(Verb::Create) {
        add(rules, group, plural, &["create"]);
    }
    if verbs.contains(Verb::Update) {
        add(rules, group, plural, &["update"]);
        add(rules, group, &status, &["update"]);
        if let Some(scale) = &scale {
            add(rules, group, scale, &["update"]);
        }
    }
    if verbs.contains(Verb::Patch) {
        add(rules, group, plural, &["patch"]);
        add(rules, group, &status, &["patch"]);
        if let Some(scale) = &scale {
            add(rules, group, scale, &["patch"]);
        }
    }
    if verbs.contains(Verb::Delete) {
        add(rules, group, plural, &["delete"]);
    }
}

/// The reconciled kind, when the plugin writes objects that point back at it with
/// `ownerReferences` (the kinds it owns, or watches through their owner references).
///
/// Such references usually set `blockOwnerDeletion` (kube-rs's `controller_owner_ref` and
/// controller-runtime's `SetControllerReference` do), and a cluster with the
/// `OwnerReferencesPermissionEnforcement` admission plugin only allows that to whoever may
/// `update` the owner's `finalizers` subresource.
fn owner_of_writes(manifest: &Manifest) -> Option<&Kind> {
    let writes = |kind: &Kind| {
        manifest.verbs(&kind.group, &kind.kind).is_some_and(|v| {
            v.contains(Verb::Create) || v.contains(Verb::Update) || v.contains(Verb::Patch)
        })
    };
    let owned = manifest.owns.iter().any(writes)
        || manifest
            .watches
            .iter()
            .any(|w| matches!(w.mapping, WatchMapping::OwnerReferences) && writes(&w.kind));
    owned.then_some(&manifest.reconciles.kind)
}

/// Adds `update` on the `finalizers` subresource of `owner` (see [`owner_of_writes`]).
fn add_owner_finalizers(rules: &mut Rules, owner: &Kind) {
    add(
        rules,
        &owner.group,
        &format!("{}/finalizers", owner.plural),
        &["update"],
    );
}

/// The cluster-wide rules the plugins with these manifests need.
///
/// Every readable kind (reconciled, owned, watched, or granted get/list/watch) is served from an
/// informer, so it needs get, list and watch. `update` and `patch` also cover `<plural>/status`
/// and, for kinds that can have one, `<plural>/scale` (plugins may write either subresource); a plugin that writes objects it owns
/// gets `update` on `<reconciled plural>/finalizers` (see `owner_of_writes`). Writes to
/// namespaced kinds of a manifest a policy narrowed to some namespaces are left out here:
/// [`namespaced_rules`] grants them in those namespaces only.
pub fn plugin_rules<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> Rules {
    let mut rules = Rules::new();
    for manifest in manifests {
        let narrowed = manifest.allowed_namespaces().is_some();
        for (kind, verbs) in manifest.grants() {
            add_grant(
                &mut rules,
                kind,
                verbs,
                true,
                !(narrowed && kind.namespaced),
            );
        }
        if let Some(owner) = owner_of_writes(manifest)
            && !(narrowed && owner.namespaced)
        {
            add_owner_finalizers(&mut rules, owner);
        }
    }
    rules
}

/// Per namespace, the write rules of manifests a policy narrowed to some namespaces (see
/// [`crate::policy`]): their writes to namespaced kinds are granted only where the policy allows
/// them. Reads stay cluster-wide (in [`plugin_rules`]): the host's informers list and watch
/// every namespace, and the host filters reads by the policy.
pub fn namespaced_rules<'a>(
    manifests: impl IntoIterator<Item = &'a Manifest>,
) -> BTreeMap<String, Rules> {
    let mut out: BTreeMap<String, Rules> = BTreeMap::new();
    for manifest in manifests {
        let Some(namespaces) = manifest.allowed_namespaces() else {
            continue;
        };
        for ns in namespaces {
            let rules = out.entry(ns.clone()).or_default();
            for (kind, verbs) in manifest.grants().filter(|(k, _)| k.namespaced) {
                add_grant(rules, kind, verbs, false, true);
            }
            if let Some(owner) = owner_of_writes(manifest).filter(|k| k.namespaced) {
                add_owner_finalizers(rules, owner);
            }
        }
    }
    out.retain(|_, rules| !rules.is_empty());
    out
}

/// What the host itself needs cluster-wide: recording Events in any namespace.
pub fn host_rules() -> Rules {
    let mut rules = Rules::new();
    add(&mut rules, "", "events", &["create", "patch"]);
    add(&mut rules, "events.k8s.io", "events", &["create", "patch"]);
    rules
}

/// What the host needs in its own namespace: the leader-election Lease.
pub fn lease_rules() -> Rules {
    let mut rules = Rules::new();
    add(
        &mut rules,
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    );
    rules
}

fn policy_rules(rules: &Rules) -> Vec<PolicyRule> {
    rules
        .iter()
        .map(|((group, resource), verbs)| PolicyRule {
            api_groups: Some(vec![group.clone()]),
            resources: Some(vec![resource.clone()]),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect()
}

/// The four RBAC objects for a host running plugins with `manifests`.
#[derive(Debug, Clone)]
pub struct Rbac {
    /// Plugin rules and Events, cluster-wide.
    pub cluster_role: ClusterRole,
    /// Binds the ClusterRole to the ServiceAccount.
    pub cluster_role_binding: ClusterRoleBinding,
    /// Leases in the host's namespace.
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// Writes of policy-narrowed plugins, one Role (`<name>-plugins`) and binding per allowed
    /// namespace (see [`namespaced_rules`]); empty without a namespace-narrowing policy.
    pub namespaced: Vec<(Role, RoleBinding)>,
}

impl Rbac {
    /// Builds the objects for `manifests`, granted to `target`.
    pub fn new<'a>(
        manifests: impl IntoIterator<Item = &'a Manifest> + Clone,
        target: &RbacTarget,
    ) -> Self {
        let per_namespace = namespaced_rules(manifests.clone());
        let mut cluster = plugin_rules(manifests);
        for (k, verbs) in host_rules() {
            add(&mut cluster, &k.0, &k.1, &verbs);
        }
        let subject = || {
            vec![Subject {
                kind: "ServiceAccount".into(),
                name: target.service_account.clone(),
                namespace: Some(target.namespace.clone()),
                ..Subject::default()
            }]
        };
        let labels = Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "kubewasm".to_owned(),
        )]));
        let meta = |namespaced: bool| ObjectMeta {
            name: Some(target.name.clone()),
            namespace: namespaced.then(|| target.namespace.clone()),
            labels: labels.clone(),
            ..ObjectMeta::default()
        };
        let role_ref = |kind: &str| RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: kind.into(),
            name: target.name.clone(),
        };
        Self {
            cluster_role: ClusterRole {
                metadata: meta(false),
                rules: Some(policy_rules(&cluster)),
                ..ClusterRole::default()
            },
            cluster_role_binding: ClusterRoleBinding {
                metadata: meta(false),
                role_ref: role_ref("ClusterRole"),
                subjects: Some(subject()),
            },
            role: Role {
                metadata: meta(true),
                rules: Some(policy_rules(&lease_rules())),
            },
            role_binding: RoleBinding {
                metadata: meta(true),
                role_ref: role_ref("Role"),
                subjects: Some(subject()),
            },
            namespaced: per_namespace
                .into_iter()
                .map(|(ns, rules)| {
                    let meta = ObjectMeta {
                        name: Some(format!("{}-plugins", target.name)),
                        namespace: Some(ns),
                        labels: labels.clone(),
                        ..ObjectMeta::default()
                    };
                    (
                        Role {
                            metadata: meta.clone(),
                            rules: Some(policy_rules(&rules)),
                        },
                        RoleBinding {
                            metadata: meta,
                            role_ref: RoleRef {
                                api_group: "rbac.authorization.k8s.io".into(),
                                kind: "Role".into(),
                                name: format!("{}-plugins", target.name),
                            },
                            subjects: Some(subject()),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The objects as one multi-document YAML stream (apiVersion and kind included).
    ///
    /// # Errors
    /// [`RbacError::Yaml`] if serialization fails.
    pub fn to_yaml(&self) -> Result<String, RbacError> {
        fn doc<T: k8s_openapi::Resource + serde::Serialize>(
            what: &'static str,
            object: &T,
        ) -> Result<String, RbacError> {
            serde_yaml::to_string(object).map_err(|source| RbacError::Yaml { what, source })
        }
        let mut docs = vec![
            doc("the ClusterRole", &self.cluster_role)?,
            doc("the ClusterRoleBinding", &self.cluster_role_binding)?,
            doc("the Role", &self.role)?,
            doc("the RoleBinding", &self.role_binding)?,
        ];
        for (role, binding) in &self.namespaced {
            docs.push(doc("a plugins Role", role)?);
            docs.push(doc("a plugins RoleBinding", binding)?);
        }
        Ok(docs.join("---\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_merged_per_resource_in_the_usual_order() {
        let mut rules = Rules::new();
        add(&mut rules, "", "pods", &["patch", "get"]);
        add(&mut rules, "", "pods", &["get", "create"]);
        assert_eq!(
            rules[&(String::new(), "pods".to_owned())],
            vec!["get", "create", "patch"]
        );
    }

    #[test]
    fn yaml_carries_api_version_and_kind_of_every_object() {
        let yaml = Rbac::new([], &RbacTarget::default())
            .to_yaml()
            .expect("yaml");
        for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
            assert!(yaml.contains(&format!("kind: {kind}\n")), "{yaml}");
        }
        assert!(yaml.contains("apiVersion: rbac.authorization.k8s.io/v1"));
        assert!(yaml.contains("leases"));
    }
}
