//! Status conditions ([`Conditions`]) and a status patch sent only when it changes something
//! ([`Api::patch_status_if_changed`]).
//!
//! ```
//! # use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//! # #[derive(serde::Serialize, serde::Deserialize, Clone, Default)]
//! # struct Greeting { metadata: ObjectMeta, status: Option<GreetingStatus> }
//! # impl kubewasm_sdk::Object for Greeting {
//! #     const GROUP: &'static str = "example.com";
//! #     const VERSION: &'static str = "v1";
//! #     const KIND: &'static str = "Greeting";
//! #     const NAMESPACED: bool = true;
//! #     fn meta(&self) -> &ObjectMeta { &self.metadata }
//! # }
//! # let host = kubewasm_sdk::testing::FakeHost::new();
//! # host.seed_json::<Greeting>(serde_json::json!({"metadata": {"namespace": "demo", "name": "hi", "generation": 4}}));
//! use kubewasm_sdk::Api;
//! use kubewasm_sdk::conditions::{Condition, Conditions, Status, condition};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Clone, Default)]
//! #[serde(rename_all = "camelCase")]
//! struct GreetingStatus {
//!     conditions: Vec<Condition>,
//! }
//!
//! let greetings = Api::<Greeting>::namespaced("demo");
//! let hi = greetings.get("hi")?.unwrap();
//! let mut status = hi.status.clone().unwrap_or_default();
//! status.conditions.set(Condition {
//!     observed_generation: hi.metadata.generation,
//!     ..condition("Ready", Status::True, "Greeted", "the greeting was delivered")
//! });
//! // Sends a patch the first time, nothing when the status already says so.
//! assert!(greetings.patch_status_if_changed(&hi, &status)?.is_some());
//! let hi = greetings.get("hi")?.unwrap();
//! assert!(greetings.patch_status_if_changed(&hi, &status)?.is_none());
//! assert!(hi.status.unwrap().conditions.is_true("Ready"));
//! # Ok::<(), kubewasm_sdk::Error>(())
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, Patch};
use crate::error::{Error, Result};
use crate::object::Object;

/// A status condition as Kubernetes defines it (`metav1.Condition`).
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`.
    Unknown,
}

impl Status {
    /// As Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// A condition of type `type_` with `lastTransitionTime` now and no `observedGeneration`
/// (set it with struct update syntax, see the [module docs](self)).
pub fn condition(
    type_: impl Into<String>,
    status: Status,
    reason: impl Into<String>,
    message: impl Into<String>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.as_str().to_owned(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: None,
        last_transition_time: Time(crate::sys::now()),
    }
}

/// Reads and sets conditions by type, on `Vec<Condition>` and on the
/// `Option<Vec<Condition>>` most k8s-openapi statuses hold.
pub trait Conditions {
    /// The condition of type `type_`, if set.
    fn get(&self, type_: &str) -> Option<&Condition>;

    /// True when the condition `type_` is set with status `"True"`.
    fn is_true(&self, type_: &str) -> bool {
        self.get(type_).is_some_and(|c| c.status == "True")
    }

    /// Sets `condition` in place of the one of the same type (or adds it). Its
    /// `lastTransitionTime` is kept from the old condition when the status did not change, as
    /// Kubernetes conventions ask. Returns whether anything changed (status, reason, message
    /// or observedGeneration), so an unchanged condition need not be written.
    fn set(&mut self, condition: Condition) -> bool;
}

impl Conditions for Vec<Condition> {
    fn get(&self, type_: &str) -> Option<&Condition> {
        self.iter().find(|c| c.type_ == type_)
    }

    fn set(&mut self, mut condition: Condition) -> bool {
        match self.iter_mut().find(|c| c.type_ == condition.type_) {
            None => {
                self.push(condition);
                true
            }
            Some(old) => {
                if old.status == condition.status {
                    condition
                        .last_transition_time
                        .clone_from(&old.last_transition_time);
                }
                let changed = *old != condition;
                *old = condition;
                changed
            }
        }
    }
}

impl Conditions for Option<Vec<Condition>> {
    fn get(&self, type_: &str) -> Option<&Condition> {
        self.as_ref().and_then(|c| c.get(type_))
    }

    fn set(&mut self, condition: Condition) -> bool {
        self.get_or_insert_with(Vec::new).set(condition)
    }
}

/// Merges `patch` into `target` as a JSON merge patch (RFC 7386) does.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

impl<K: Object> Api<K> {
    /// Patches the status of `current` to `status` (a merge patch of `{"status": status}`),
    /// but only when that would change the status `current` holds: a reconcile that finds
    /// nothing new writes nothing, so it does not wake itself up again. Returns the object as
    /// stored, or `None` when no patch was needed.
    ///
    /// Decide from a fresh read: `current` is compared as given (the cache may lag behind
    /// your last write, in which case the patch is sent again, harmlessly).
    ///
    /// # Errors
    /// As [`Api::patch_status`]; [`Error::Invalid`] when `current` has no name,
    /// [`Error::Decode`] when `current` or `status` do not serialize.
    pub fn patch_status_if_changed<S: Serialize>(
        &self,
        current: &K,
        status: &S,
    ) -> Result<Option<K>> {
        let name = current
            .meta()
            .name
            .as_deref()
            .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", K::KIND)))?;
        let desired = serde_json::to_value(status)?;
        let now = serde_json::to_value(current)?
            .get("status")
            .cloned()
            .unwrap_or(Value::Null);
        let mut merged = now.clone();
        merge(&mut merged, &desired);
        if merged == now {
            return Ok(None);
        }
        let patch = Patch::Merge(serde_json::json!({ "status": desired }));
        self.patch_status(name, &patch).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Call, FakeHost};
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
    use k8s_openapi::jiff::Timestamp;

    fn at(c: &Condition) -> &Timestamp {
        &c.last_transition_time.0
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let _host = FakeHost::new();
        let mut conditions: Vec<Condition> = Vec::new();
        assert!(conditions.set(condition("Ready", Status::False, "Starting", "0 of 3")));
        let earlier = Timestamp::from_second(1).unwrap();
        conditions[0].last_transition_time = Time(earlier);

        assert!(conditions.set(condition("Ready", Status::False, "Starting", "1 of 3")));
        assert_eq!(at(&conditions[0]), &earlier, "same status: time kept");
        assert_eq!(conditions[0].message, "1 of 3");
        assert!(!conditions.set(condition("Ready", Status::False, "Starting", "1 of 3")));

        assert!(conditions.set(Condition {
            observed_generation: Some(2),
            ..condition("Ready", true.into(), "Up", "3 of 3")
        }));
        assert_ne!(at(&conditions[0]), &earlier, "status changed: time moves");
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert!(conditions.is_true("Ready"));
        assert_eq!(conditions.len(), 1, "set by type, not appended");

        let mut none: Option<Vec<Condition>> = None;
        assert!(!none.is_true("Ready"));
        assert!(none.set(condition("Degraded", Status::Unknown, "Probing", "")));
        assert_eq!(none.get("Degraded").unwrap().status, "Unknown");
    }

    #[test]
    fn a_status_patch_is_sent_only_when_the_status_would_change() {
        let host = FakeHost::new();
        host.seed_json::<Deployment>(serde_json::json!({
            "metadata": {"namespace": "a", "name": "web"},
            "status": {"replicas": 2, "readyReplicas": 1}}));
        let api = Api::<Deployment>::namespaced("a");
        let web = api.get("web").unwrap().unwrap();
        let same = DeploymentStatus {
            replicas: Some(2),
            ..DeploymentStatus::default()
        };
        assert!(api.patch_status_if_changed(&web, &same).unwrap().is_none());
        assert!(host.writes().is_empty());

        let more = DeploymentStatus {
            ready_replicas: Some(2),
            ..same
        };
        let stored = api.patch_status_if_changed(&web, &more).unwrap().unwrap();
        assert_eq!(stored.status.unwrap().ready_replicas, Some(2));
        assert_eq!(host.writes()[0].call, Call::PatchStatus);
    }
}
