//! The `RedisCluster` custom resource (`cache.example.com/v1alpha1`), its spec validation and
//! its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubewasm_sdk::{CustomResourceExt, Object};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The finalizer that makes deletion wait until the StatefulSet and Service are gone.
pub const FINALIZER: &str = "cache.example.com/cleanup";
/// Smallest and largest `spec.replicas` (the CRD schema enforces the same range).
pub const REPLICAS: std::ops::RangeInclusive<i64> = 1..=20;

/// A `RedisCluster`. The spec is kept as JSON and checked by [`Spec::parse`], so an object the
/// API server let through with a bad spec (a CRD without its schema) becomes phase `Failed`
/// with a message instead of a reconcile that fails to decode forever.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RedisCluster {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl Object for RedisCluster {
    const GROUP: &'static str = "cache.example.com";
    const VERSION: &'static str = "v1alpha1";
    const KIND: &'static str = "RedisCluster";
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

impl CustomResourceExt for RedisCluster {
    /// The CRD the manifest ships (the same as `examples/rediscluster/crd.yaml`, which a test
    /// keeps in step): a status subresource (the operator writes status through it) and a
    /// scale subresource (`kubectl scale rediscluster/NAME --replicas=N`).
    fn crd() -> Value {
        let int = |description: &str| json!({"type": "integer", "description": description});
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "redisclusters.cache.example.com"},
            "spec": {
                "group": "cache.example.com",
                "names": {
                    "kind": "RedisCluster",
                    "listKind": "RedisClusterList",
                    "plural": "redisclusters",
                    "singular": "rediscluster",
                    "shortNames": ["redis"]
                },
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1alpha1",
                    "served": true,
                    "storage": true,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.readyReplicas"
                        }
                    },
                    "additionalPrinterColumns": [
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Image", "type": "string", "jsonPath": ".spec.image"}
                    ],
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas", "image"],
                                "properties": {
                                    "replicas": {
                                        "type": "integer",
                                        "minimum": REPLICAS.start(),
                                        "maximum": REPLICAS.end(),
                                        "description": "Redis cluster replica count"
                                    },
                                    "image": {
                                        "type": "string",
                                        "minLength": 1,
                                        "description": "Redis container image, e.g. redis:7.2"
                                    }
                                }
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "readyReplicas": int("Current ready Redis nodes"),
                                    "phase": {
                                        "type": "string",
                                        "description": "Cluster phase",
                                        "enum": ["Pending", "Running", "Scaling", "Failed"]
                                    },
                                    "observedGeneration": {
                                        "type": "integer",
                                        "format": "int64",
                                        "description": "The metadata.generation this status describes"
                                    },
                                    "message": {
                                        "type": "string",
                                        "description": "Why the phase is Failed"
                                    }
                                }
                            }
                        }
                    }}
                }]
            }
        })
    }
}

impl RedisCluster {
    /// `apiVersion` of the kind, for ownerReferences.
    pub fn api_version() -> String {
        format!("{}/{}", Self::GROUP, Self::VERSION)
    }

    /// The status as stored, if it decodes.
    pub fn current_status(&self) -> Option<Status> {
        self.status
            .as_ref()
            .and_then(|s| serde_json::from_value(s.clone()).ok())
    }
}

/// A valid spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Number of Redis pods, 1..=20.
    pub replicas: i32,
    /// Container image, e.g. `redis:7.2`.
    pub image: String,
}

impl Spec {
    /// Checks `spec` as the CRD schema would; the error says what is wrong, in a sentence
    /// fit for `status.message` and an Event.
    pub fn parse(spec: &Value) -> Result<Self, String> {
        let replicas = match spec.get("replicas") {
            None | Some(Value::Null) => return Err("spec.replicas is required".into()),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| format!("spec.replicas must be an integer, not {v}"))?,
        };
        if !REPLICAS.contains(&replicas) {
            return Err(format!(
                "spec.replicas must be between {} and {}, not {replicas}",
                REPLICAS.start(),
                REPLICAS.end()
            ));
        }
        let image = match spec.get("image") {
            None | Some(Value::Null) => return Err("spec.image is required".into()),
            Some(Value::String(s)) => s.trim(),
            Some(v) => return Err(format!("spec.image must be a string, not {v}")),
        };
        if image.is_empty() || image.contains(char::is_whitespace) {
            return Err(format!("spec.image {image:?} is not an image reference"));
        }
        Ok(Self {
            // In range 1..=20, so the conversion cannot fail.
            replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
            image: image.to_owned(),
        })
    }
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// No StatefulSet yet, or none of its pods ready.
    Pending,
    /// Every desired replica is ready.
    Running,
    /// Some, but not the desired number of, replicas are ready.
    Scaling,
    /// The spec is invalid or the owned objects could not be written; `status.message` says why.
    Failed,
}

impl Phase {
    /// The phase of a cluster that wants `desired` replicas and has `ready`.
    pub fn of(desired: i32, ready: i32) -> Self {
        if ready == desired {
            Self::Running
        } else if ready == 0 {
            Self::Pending
        } else {
            Self::Scaling
        }
    }
}

/// `status`, as this operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Ready pods of the StatefulSet.
    #[serde(default)]
    pub ready_replicas: i32,
    /// See [`Phase`].
    pub phase: Phase,
    /// The `metadata.generation` this status describes.
    #[serde(default)]
    pub observed_generation: Option<i64>,
    /// Why the phase is `Failed`.
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_in_the_manifest_is_the_one_in_the_examples() {
        let yaml = include_str!("../../../examples/rediscluster/crd.yaml");
        let example: Value = serde_yaml::from_str(yaml).expect("crd.yaml parses");
        assert_eq!(RedisCluster::crd(), example);
    }

    #[test]
    fn a_spec_inside_the_schema_parses() {
        assert_eq!(
            Spec::parse(&json!({"replicas": 3, "image": "redis:7.2"})),
            Ok(Spec {
                replicas: 3,
                image: "redis:7.2".into()
            })
        );
    }

    #[test]
    fn a_spec_outside_the_schema_says_what_is_wrong() {
        for (spec, want) in [
            (json!({"image": "redis"}), "spec.replicas is required"),
            (json!({"replicas": 0, "image": "redis"}), "between 1 and 20"),
            (
                json!({"replicas": 21, "image": "redis"}),
                "between 1 and 20",
            ),
            (
                json!({"replicas": "3", "image": "redis"}),
                "must be an integer",
            ),
            (json!({"replicas": 3}), "spec.image is required"),
            (
                json!({"replicas": 3, "image": ""}),
                "not an image reference",
            ),
            (json!({"replicas": 3, "image": 7}), "must be a string"),
        ] {
            let err = Spec::parse(&spec).unwrap_err();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn the_phase_follows_ready_against_desired_replicas() {
        assert_eq!(Phase::of(3, 0), Phase::Pending);
        assert_eq!(Phase::of(3, 2), Phase::Scaling);
        assert_eq!(Phase::of(3, 3), Phase::Running);
        assert_eq!(Phase::of(2, 3), Phase::Scaling);
    }
}
