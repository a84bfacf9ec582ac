//! One storage for core/v1 and events.k8s.io/v1 Events, as in kube-apiserver: objects are stored in the
//! core/v1 shape and converted when read or written through events.k8s.io/v1, so an Event recorded by
//! kube-runtime's `Recorder` shows up in `kubectl get events` and `kubectl describe`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::registry::{ResourceType, View};

/// (events.k8s.io/v1 field, core/v1 field) pairs that only differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Fields with the same name and shape in both versions.
const SAME: &[&str] = &[
    "metadata",
    "reason",
    "type",
    "action",
    "eventTime",
    "series",
    "related",
    "reportingInstance",
];

fn convert(obj: &Value, api_version: &str, to_core: bool) -> Value {
    let Some(src) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    for k in SAME {
        if let Some(v) = src.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    for (v1, core) in RENAMED {
        let (from, to) = if to_core { (v1, core) } else { (core, v1) };
        if let Some(v) = src.get(*from) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The object as the client sees it at `ty` (borrowed as is, except for events.k8s.io/v1 Events).
pub fn to_view<'a>(ty: &ResourceType, stored: &'a Value) -> Cow<'a, Value> {
    match ty.view {
        View::Native => Cow::Borrowed(stored),
        View::EventsV1 => Cow::Owned(convert(stored, "events.k8s.io/v1", false)),
    }
}

/// [`to_view`] for an owned object.
pub fn into_view(ty: &ResourceType, stored: Value) -> Value {
    match ty.view {
        View::Native => stored,
        View::EventsV1 => convert(&stored, "events.k8s.io/v1", false),
    }
}

/// The object as it is stored, from what a client sent at `ty`.
pub fn to_storage(ty: &ResourceType, sent: Value) -> Value {
    match ty.view {
        View::Native => sent,
        View::EventsV1 => convert(&sent, "v1", true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_the_two_versions() {
        let r = Registry::builtin();
        let ty = r
            .get("events.k8s.io", "v1", "events")
            .expect("events.k8s.io");
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "pulled image", "reason": "Pulled", "type": "Normal",
            "reportingController": "kubelet", "reportingInstance": "node-1",
            "eventTime": "2025-01-01T00:00:00.000000Z", "action": "Pull",
        });
        let core = to_storage(&ty, v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "pulled image");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(*to_view(&ty, &core), v1);
        assert_eq!(ty.storage_key(), "events");
    }
}
