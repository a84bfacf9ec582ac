//! The StatefulSet and Service a `RedisCluster` owns, and whether the ones in the cluster
//! still match them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, PodSpec, PodTemplateSpec, Probe, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cluster::{RedisCluster, Spec};

/// The Redis port.
pub const PORT: i32 = 6379;
/// Name of the Redis container in the pod template.
pub const CONTAINER: &str = "redis";
/// `app.kubernetes.io/managed-by` on everything this operator creates.
pub const MANAGER: &str = "kubewasm-rediscluster";

/// Who controls an owned object found in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// This RedisCluster (same uid).
    Ours,
    /// An earlier RedisCluster of the same name (deleted and re-created): the cache is behind
    /// or its cleanup has not finished.
    Predecessor,
    /// Someone else: never taken over.
    Foreign,
}

/// Who controls `meta`, from the point of view of the RedisCluster `name` with `uid`.
pub fn ownership(meta: &ObjectMeta, name: &str, uid: &str) -> Ownership {
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    match controller {
        Some(r) if r.uid == uid => Ownership::Ours,
        Some(r) if r.kind == "RedisCluster" && r.name == name => Ownership::Predecessor,
        _ => Ownership::Foreign,
    }
}

/// True when `meta`'s controller is a RedisCluster named `name` (of any uid).
pub fn owned_by_name(meta: &ObjectMeta, name: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| {
        r.controller == Some(true)
            && r.kind == "RedisCluster"
            && r.api_version.starts_with("cache.example.com/")
            && r.name == name
    })
}

fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "redis".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
    ])
}

fn labels(name: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(name);
    l.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        MANAGER.to_owned(),
    );
    l
}

fn metadata(rc: &RedisCluster, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: rc.metadata.name.clone(),
        namespace: rc.metadata.namespace.clone(),
        labels: Some(labels(rc.metadata.name.as_deref().unwrap_or_default())),
        owner_references: Some(vec![OwnerReference {
            api_version: RedisCluster::api_version(),
            kind: "RedisCluster".to_owned(),
            name: rc.metadata.name.clone().unwrap_or_default(),
            uid: uid.to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    }
}

/// The StatefulSet that runs `spec.replicas` Redis pods of `spec.image`.
pub fn stateful_set(rc: &RedisCluster, uid: &str, spec: &Spec) -> StatefulSet {
    let name = rc.metadata.name.clone().unwrap_or_default();
    StatefulSet {
        metadata: metadata(rc, uid),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas),
            service_name: Some(name.clone()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: CONTAINER.to_owned(),
                        image: Some(spec.image.clone()),
                        ports: Some(vec![ContainerPort {
                            name: Some("redis".to_owned()),
                            container_port: PORT,
                            ..ContainerPort::default()
                        }]),
                        readiness_probe: Some(Probe {
                            exec: Some(ExecAction {
                                command: Some(vec!["redis-cli".to_owned(), "ping".to_owned()]),
                            }),
                            ..Probe::default()
                        }),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// The headless Service that governs the StatefulSet (stable pod DNS names).
pub fn service(rc: &RedisCluster, uid: &str) -> Service {
    let name = rc.metadata.name.clone().unwrap_or_default();
    Service {
        metadata: metadata(rc, uid),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some("redis".to_owned()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// `spec.replicas` of a StatefulSet (Kubernetes defaults it to 1).
pub fn replicas(sts: &StatefulSet) -> i32 {
    sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The image of the Redis container, if there is one.
pub fn image(sts: &StatefulSet) -> Option<&str> {
    sts.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == CONTAINER)?
        .image
        .as_deref()
}

/// `status.readyReplicas` of a StatefulSet (0 when nothing reported it yet).
pub fn ready(sts: &StatefulSet) -> i32 {
    sts.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// True when the Service in the cluster still routes to the Redis pods on the Redis port.
pub fn service_matches(current: &Service, desired: &Service) -> bool {
    let (Some(cur), Some(want)) = (&current.spec, &desired.spec) else {
        return false;
    };
    cur.selector == want.selector
        && cur.cluster_ip == want.cluster_ip
        && cur.ports.iter().flatten().any(|p| p.port == PORT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> RedisCluster {
        serde_json::from_value(json!({
            "metadata": {"name": "cache", "namespace": "demo", "uid": "u1"},
            "spec": {"replicas": 3, "image": "redis:7.2"}
        }))
        .unwrap()
    }

    #[test]
    fn the_stateful_set_carries_replicas_image_and_a_controller_reference() {
        let spec = Spec::parse(&cluster().spec).unwrap();
        let sts = stateful_set(&cluster(), "u1", &spec);
        assert_eq!(replicas(&sts), 3);
        assert_eq!(image(&sts), Some("redis:7.2"));
        assert_eq!(ownership(&sts.metadata, "cache", "u1"), Ownership::Ours);
        assert_eq!(
            ownership(&sts.metadata, "cache", "u2"),
            Ownership::Predecessor
        );
        let v = serde_json::to_value(&sts).unwrap();
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["kind"], "StatefulSet");
        assert_eq!(
            v["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
    }

    #[test]
    fn an_object_without_a_redis_cluster_controller_is_foreign() {
        let meta = ObjectMeta::default();
        assert_eq!(ownership(&meta, "cache", "u1"), Ownership::Foreign);
        assert!(!owned_by_name(&meta, "cache"));
    }
}
