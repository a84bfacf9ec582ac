//! How each field merges: patch merge keys of built-in kinds and list types of CRD schemas.
//!
//! Strategic merge patch and server-side apply both walk an object with a [`Shape`] that answers
//! "what is this field" (a struct, a granular map, a list merged by key, a set, an atomic value).
//! For built-in kinds the answers come from a small table of the Kubernetes API types the server
//! serves (the `patchMergeKey`/`patchStrategy`/`listType` tags of k8s.io/api); for custom resources
//! from the CRD's `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type`.

use serde_json::Value;

use super::TypeInfo;

/// A known built-in API type (or a family of types that merge the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Nothing known: objects merge field by field, lists are atomic.
    Any,
    /// `map[string]string`-like granular map (labels, annotations, nodeSelector, data).
    StringMap,
    /// Replaced as a whole (e.g. a `LabelSelector`, `x-kubernetes-map-type: atomic`).
    AtomicStruct,
    /// A list with its merge strategy and element type.
    List(&'static ListInfo),
    /// The top level of an object of this kind family.
    Root(Root),
    ObjectMeta,
    PodTemplateSpec,
    PodSpec,
    Container,
    PodStatus,
    WorkloadSpec,
    JobTemplateSpec,
    CronJobSpec,
    GenericStatus,
    ServiceSpec,
    NodeSpec,
    NodeStatus,
}

/// Kind families whose `spec`/`status` have the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Pod,
    PodTemplate,
    Workload,
    CronJob,
    Service,
    Node,
    Data,
    ServiceAccount,
    Other,
}

/// How a list merges, and what its elements are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ListInfo {
    pub(crate) kind: StaticListKind,
    pub(crate) elem: Ty,
}

/// The merge strategy of a built-in list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StaticListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars, merged by value (`patchStrategy: merge` on a primitive list).
    Set,
    /// Objects merged by these key fields (server-side apply's `x-kubernetes-list-map-keys`; the
    /// first one is strategic merge patch's `patchMergeKey`).
    Map(&'static [&'static str]),
}

macro_rules! list {
    ($name:ident, $kind:expr, $elem:expr) => {
        static $name: ListInfo = ListInfo {
            kind: $kind,
            elem: $elem,
        };
    };
}

list!(CONTAINERS, StaticListKind::Map(&["name"]), Ty::Container);
list!(BY_NAME, StaticListKind::Map(&["name"]), Ty::Any);
list!(
    CONTAINER_PORTS,
    StaticListKind::Map(&["containerPort", "protocol"]),
    Ty::Any
);
list!(
    SERVICE_PORTS,
    StaticListKind::Map(&["port", "protocol"]),
    Ty::Any
);
list!(VOLUME_MOUNTS, StaticListKind::Map(&["mountPath"]), Ty::Any);
list!(
    VOLUME_DEVICES,
    StaticListKind::Map(&["devicePath"]),
    Ty::Any
);
list!(HOST_ALIASES, StaticListKind::Map(&["ip"]), Ty::Any);
list!(BY_IP, StaticListKind::Map(&["ip"]), Ty::Any);
list!(BY_TYPE, StaticListKind::Map(&["type"]), Ty::Any);
list!(OWNER_REFERENCES, StaticListKind::Map(&["uid"]), Ty::Any);
list!(
    TOPOLOGY_SPREAD,
    StaticListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
    Ty::Any
);
list!(
    RESIZE_POLICY,
    StaticListKind::Map(&["resourceName"]),
    Ty::Any
);
list!(STRING_SET, StaticListKind::Set, Ty::Any);
list!(ATOMIC, StaticListKind::Atomic, Ty::Any);

impl Ty {
    /// The shape at the top of an object of `kind`.
    pub(crate) fn root(kind: &str) -> Ty {
        Ty::Root(match kind {
            "Pod" => Root::Pod,
            "PodTemplate" => Root::PodTemplate,
            "Deployment"
            | "StatefulSet"
            | "ReplicaSet"
            | "DaemonSet"
            | "Job"
            | "ReplicationController" => Root::Workload,
            "CronJob" => Root::CronJob,
            "Service" => Root::Service,
            "Node" => Root::Node,
            "ConfigMap" | "Secret" => Root::Data,
            "ServiceAccount" => Root::ServiceAccount,
            _ => Root::Other,
        })
    }

    /// The type of field `name` of a value of this type.
    pub(crate) fn field(self, name: &str) -> Ty {
        match (self, name) {
            (Ty::Root(_), "metadata") | (Ty::PodTemplateSpec | Ty::JobTemplateSpec, "metadata") => {
                Ty::ObjectMeta
            }
            (Ty::Root(root), _) => root_field(root, name),
            (Ty::ObjectMeta, "labels" | "annotations") => Ty::StringMap,
            (Ty::ObjectMeta, "ownerReferences") => Ty::List(&OWNER_REFERENCES),
            (Ty::ObjectMeta, "finalizers") => Ty::List(&STRING_SET),
            (Ty::ObjectMeta, "managedFields") => Ty::List(&ATOMIC),
            (Ty::PodTemplateSpec, "spec") => Ty::PodSpec,
            (Ty::JobTemplateSpec, "spec") => Ty::WorkloadSpec,
            (Ty::CronJobSpec, "jobTemplate") => Ty::JobTemplateSpec,
            (Ty::WorkloadSpec, "template") => Ty::PodTemplateSpec,
            (Ty::WorkloadSpec, "selector") => Ty::AtomicStruct,
            (Ty::WorkloadSpec, "volumeClaimTemplates") => Ty::List(&ATOMIC),
            (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                Ty::List(&CONTAINERS)
            }
            (Ty::PodSpec, "volumes") => Ty::List(&BY_NAME),
            (Ty::PodSpec, "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
                Ty::List(&BY_NAME)
            }
            (Ty::PodSpec, "hostAliases") => Ty::List(&HOST_ALIASES),
            (Ty::PodSpec, "topologySpreadConstraints") => Ty::List(&TOPOLOGY_SPREAD),
            // `+mapType=atomic` in the Kubernetes API: replaced and owned as a whole.
            (Ty::PodSpec, "nodeSelector") => Ty::AtomicStruct,
            (Ty::PodSpec, "overhead") => Ty::StringMap,
            (Ty::Container, "env") => Ty::List(&BY_NAME),
            (Ty::Container, "ports") => Ty::List(&CONTAINER_PORTS),
            (Ty::Container, "volumeMounts") => Ty::List(&VOLUME_MOUNTS),
            (Ty::Container, "volumeDevices") => Ty::List(&VOLUME_DEVICES),
            (Ty::Container, "resizePolicy") => Ty::List(&RESIZE_POLICY),
            (Ty::PodStatus | Ty::GenericStatus | Ty::NodeStatus, "conditions") => {
                Ty::List(&BY_TYPE)
            }
            (Ty::PodStatus, "podIPs" | "hostIPs") => Ty::List(&BY_IP),
            (Ty::ServiceSpec, "ports") => Ty::List(&SERVICE_PORTS),
            (Ty::ServiceSpec, "selector") => Ty::AtomicStruct,
            (Ty::NodeSpec, "podCIDRs") => Ty::List(&STRING_SET),
            (Ty::NodeStatus, "addresses") => Ty::List(&BY_TYPE),
            (Ty::NodeStatus, "capacity" | "allocatable") => Ty::StringMap,
            // A LabelSelector is `+structType=atomic` wherever it appears (PodDisruptionBudget,
            // NetworkPolicy, affinity terms, topology spread constraints).
            (Ty::Any, "selector" | "podSelector" | "namespaceSelector" | "labelSelector") => {
                Ty::AtomicStruct
            }
            // So are the selectors of an env var's or a volume item's source.
            (Ty::Any, "fieldRef" | "resourceFieldRef" | "configMapKeyRef" | "secretKeyRef") => {
                Ty::AtomicStruct
            }
            _ => Ty::Any,
        }
    }

    /// The element type of a list of this type.
    pub(crate) fn items(self) -> Ty {
        match self {
            Ty::List(info) => info.elem,
            _ => Ty::Any,
        }
    }
}

fn root_field(root: Root, name: &str) -> Ty {
    match (root, name) {
        (Root::Pod, "spec") => Ty::PodSpec,
        (Root::Pod, "status") => Ty::PodStatus,
        (Root::PodTemplate, "template") => Ty::PodTemplateSpec,
        (Root::Workload, "spec") => Ty::WorkloadSpec,
        (Root::CronJob, "spec") => Ty::CronJobSpec,
        (Root::Service, "spec") => Ty::ServiceSpec,
        (Root::Node, "spec") => Ty::NodeSpec,
        (Root::Node, "status") => Ty::NodeStatus,
        (Root::Data, "data" | "stringData" | "binaryData") => Ty::StringMap,
        (Root::ServiceAccount, "secrets") => Ty::List(&BY_NAME),
        (_, "status") => Ty::GenericStatus,
        // `+structType=atomic` references: an Event's object, a binding's role.
        (Root::Other, "involvedObject" | "regarding" | "related" | "roleRef") => Ty::AtomicStruct,
        // A ControllerRevision's `data` is a RawExtension: opaque, owned as a whole.
        (Root::Other, "data") => Ty::AtomicStruct,
        _ => Ty::Any,
    }
}

/// How a list merges, for built-in and CRD-defined fields alike.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListKind<'a> {
    /// Replaced as a whole.
    Atomic,
    /// Scalars merged by value.
    Set,
    /// Objects merged by key fields.
    Map(Keys<'a>),
}

/// The key fields of an associative list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys<'a> {
    /// Built-in keys (the first one is the strategic `patchMergeKey`).
    Static(&'static [&'static str]),
    /// `x-kubernetes-list-map-keys`, with the item schema for key defaults.
    Schema {
        names: &'a [Value],
        items: Option<&'a Value>,
    },
}

impl<'a> Keys<'a> {
    /// The key field names, in declaration order.
    pub(crate) fn names(self) -> impl Iterator<Item = &'a str> {
        let (fixed, schema): (&'static [&'static str], &'a [Value]) = match self {
            Keys::Static(names) => (names, &[]),
            Keys::Schema { names, .. } => (&[], names),
        };
        fixed
            .iter()
            .copied()
            .chain(schema.iter().filter_map(Value::as_str))
    }

    /// The first key: strategic merge patch's single `patchMergeKey`.
    pub(crate) fn first(self) -> Option<&'a str> {
        self.names().next()
    }

    /// The value a key field has when an item leaves it out: structured-merge-diff fills key
    /// fields from their schema defaults (`protocol: TCP` for ports).
    pub(crate) fn default_for(self, name: &str) -> Option<Value> {
        match self {
            Keys::Static(_) => (name == "protocol").then(|| Value::String("TCP".to_owned())),
            Keys::Schema { items, .. } => items
                .and_then(|items| items.get("properties"))
                .and_then(|props| props.get(name))
                .and_then(|prop| prop.get("default"))
                .cloned(),
        }
    }
}

/// What is known about a value at some path of an object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// A built-in type from the table.
    Builtin(Ty),
    /// The root of a custom resource: `metadata` is `ObjectMeta`, the rest follows the schema.
    CustomRoot(Option<&'a Value>),
    /// A node of a CRD's structural schema.
    Schema(&'a Value),
}

impl<'a> Shape<'a> {
    /// The shape at the top of an object described by `info`.
    pub(crate) fn root(info: &TypeInfo<'a>) -> Shape<'a> {
        if info.builtin {
            Shape::Builtin(Ty::root(info.kind))
        } else {
            Shape::CustomRoot(info.schema)
        }
    }

    /// The shape of field `name` of an object of this shape.
    pub(crate) fn field(self, name: &str) -> Shape<'a> {
        match self {
            Shape::Builtin(ty) => Shape::Builtin(ty.field(name)),
            Shape::CustomRoot(_) if name == "metadata" => Shape::Builtin(Ty::ObjectMeta),
            Shape::CustomRoot(None) => Shape::Builtin(Ty::Any),
            Shape::CustomRoot(Some(schema)) | Shape::Schema(schema) => {
                if flag(schema, "x-kubernetes-embedded-resource") && name == "metadata" {
                    return Shape::Builtin(Ty::ObjectMeta);
                }
                let child = schema
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                child.map_or(Shape::Builtin(Ty::Any), Shape::Schema)
            }
        }
    }

    /// The shape of the elements of a list of this shape.
    pub(crate) fn items(self) -> Shape<'a> {
        match self {
            Shape::Builtin(ty) => Shape::Builtin(ty.items()),
            Shape::Schema(schema) => schema
                .get("items")
                .map_or(Shape::Builtin(Ty::Any), Shape::Schema),
            Shape::CustomRoot(_) => Shape::Builtin(Ty::Any),
        }
    }

    /// Whether an object of this shape can hold field `name`: always for built-ins; for custom
    /// resources, when the schema declares it (or keeps unknown fields). Fields it cannot hold are
    /// pruned on write, so they are never in a manager's field set.
    pub(crate) fn declares(self, name: &str) -> bool {
        let schema_declares = |schema: &Value| {
            flag(schema, "x-kubernetes-preserve-unknown-fields")
                || schema.get("properties").and_then(|p| p.get(name)).is_some()
                || schema
                    .get("additionalProperties")
                    .is_some_and(|a| a.is_object() || a.as_bool() == Some(true))
        };
        match self {
            Shape::Builtin(_) | Shape::CustomRoot(None) => true,
            Shape::CustomRoot(Some(schema)) => {
                matches!(name, "apiVersion" | "kind" | "metadata") || schema_declares(schema)
            }
            Shape::Schema(schema) => {
                (flag(schema, "x-kubernetes-embedded-resource")
                    && matches!(name, "apiVersion" | "kind" | "metadata"))
                    || schema_declares(schema)
            }
        }
    }

    /// How a list of this shape merges; lists nobody described are atomic.
    pub(crate) fn list_kind(self) -> ListKind<'a> {
        match self {
            Shape::Builtin(Ty::List(info)) => match info.kind {
                StaticListKind::Atomic => ListKind::Atomic,
                StaticListKind::Set => ListKind::Set,
                StaticListKind::Map(keys) => ListKind::Map(Keys::Static(keys)),
            },
            Shape::Schema(schema) => {
                match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => match schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                    {
                        Some(keys) if !keys.is_empty() => ListKind::Map(Keys::Schema {
                            names: keys,
                            items: schema.get("items"),
                        }),
                        _ => ListKind::Atomic,
                    },
                    _ => ListKind::Atomic,
                }
            }
            _ => ListKind::Atomic,
        }
    }

    /// True when an object of this shape is replaced as a whole rather than merged field by field.
    pub(crate) fn is_atomic_object(self) -> bool {
        match self {
            Shape::Builtin(ty) => ty == Ty::AtomicStruct,
            Shape::Schema(schema) => {
                schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            Shape::CustomRoot(_) => false,
        }
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(kind: ListKind<'_>) -> Vec<String> {
        match kind {
            ListKind::Map(keys) => keys.names().map(str::to_owned).collect(),
            other => panic!("expected an associative list, got {other:?}"),
        }
    }

    fn builtin(kind: &'static str, path: &[&str]) -> Shape<'static> {
        let info = TypeInfo {
            api_version: "v1",
            kind,
            builtin: true,
            schema: None,
        };
        path.iter().fold(Shape::root(&info), |shape, part| {
            if *part == "[]" {
                shape.items()
            } else {
                shape.field(part)
            }
        })
    }

    #[test]
    fn deployment_template_containers_and_their_env_merge_by_name() {
        let containers = builtin("Deployment", &["spec", "template", "spec", "containers"]);
        assert_eq!(keys(containers.list_kind()), vec!["name"]);
        let env = builtin(
            "Deployment",
            &["spec", "template", "spec", "containers", "[]", "env"],
        );
        assert_eq!(keys(env.list_kind()), vec!["name"]);
        let ports = builtin(
            "Deployment",
            &["spec", "template", "spec", "containers", "[]", "ports"],
        );
        assert_eq!(keys(ports.list_kind()), vec!["containerPort", "protocol"]);
    }

    #[test]
    fn cronjob_pod_template_is_found_through_the_job_template() {
        let mounts = builtin(
            "CronJob",
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
                "[]",
                "volumeMounts",
            ],
        );
        assert_eq!(keys(mounts.list_kind()), vec!["mountPath"]);
    }

    #[test]
    fn service_ports_merge_by_port_and_tolerations_are_atomic() {
        assert_eq!(
            keys(builtin("Service", &["spec", "ports"]).list_kind()),
            vec!["port", "protocol"]
        );
        assert!(matches!(
            builtin("Pod", &["spec", "tolerations"]).list_kind(),
            ListKind::Atomic
        ));
        assert!(matches!(
            builtin("Pod", &["metadata", "finalizers"]).list_kind(),
            ListKind::Set
        ));
        assert!(builtin("Deployment", &["spec", "selector"]).is_atomic_object());
        assert!(
            builtin("Pod", &["spec", "volumes", "[]"])
                .field("x")
                .list_kind()
                .is_atomic()
        );
    }

    #[test]
    fn crd_list_types_come_from_the_schema() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "zone"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "plain": {"type": "array", "items": {"type": "string"}}
        }}}});
        let info = TypeInfo {
            api_version: "x/v1",
            kind: "X",
            builtin: false,
            schema: Some(&schema),
        };
        let spec = Shape::root(&info).field("spec");
        assert_eq!(
            keys(spec.field("servers").list_kind()),
            vec!["name", "zone"]
        );
        assert!(matches!(spec.field("tags").list_kind(), ListKind::Set));
        assert!(matches!(spec.field("plain").list_kind(), ListKind::Atomic));
        assert!(matches!(
            Shape::root(&info)
                .field("metadata")
                .field("finalizers")
                .list_kind(),
            ListKind::Set
        ));
    }

    impl ListKind<'_> {
        fn is_atomic(self) -> bool {
            matches!(self, ListKind::Atomic)
        }
    }
}
