//! `metadata.managedFields`: reading and writing entries, and ownership tracking for non-apply writes.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::TypeInfo;
use super::fieldset::{self, FieldSet, Level};
use super::merge_keys::Shape;

/// The operation of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: String,
    pub(crate) subresource: Option<String>,
    pub(crate) fields: FieldSet,
}

impl Entry {
    /// A fresh entry stamped with the current time.
    pub(crate) fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
        fields: FieldSet,
    ) -> Entry {
        Entry {
            manager: manager.to_owned(),
            operation,
            api_version: api_version.to_owned(),
            time: now_rfc3339(),
            subresource: subresource.map(str::to_owned),
            fields,
        }
    }

    /// Whether this entry is `manager`'s entry for `operation` through `subresource` (`None`:
    /// the main resource).
    pub(crate) fn is(
        &self,
        manager: &str,
        operation: Operation,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".to_owned(), Value::String(self.manager.clone()));
        map.insert(
            "operation".to_owned(),
            Value::String(self.operation.as_str().to_owned()),
        );
        map.insert(
            "apiVersion".to_owned(),
            Value::String(self.api_version.clone()),
        );
        map.insert("time".to_owned(), Value::String(self.time.clone()));
        map.insert(
            "fieldsType".to_owned(),
            Value::String("FieldsV1".to_owned()),
        );
        map.insert("fieldsV1".to_owned(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".to_owned(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }

    fn from_value(value: &Value) -> Option<Entry> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let operation = match value.get("operation").and_then(Value::as_str)? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        Some(Entry {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time").unwrap_or_default(),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            fields: value
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
    }
}

/// The managedFields entries of `object` (entries that cannot be read are dropped).
pub(crate) fn read(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(Entry::from_value).collect())
        .unwrap_or_default()
}

/// Writes `entries` (without empty ones) to `object.metadata.managedFields` in kube-apiserver's
/// order (`Apply` before `Update`, then oldest first, then by manager); removes the field when
/// nothing is left.
pub(crate) fn write(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut entries);
    entries.sort_by(|a, b| {
        a.operation
            .as_str()
            .cmp(b.operation.as_str())
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let values: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_value)
        .collect();
    let Some(root) = object.as_object_mut() else {
        return;
    };
    if values.is_empty() && !root.contains_key("metadata") {
        return;
    }
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    if values.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".to_owned(), Value::Array(values));
    }
}

/// At most this many `Update` entries are kept, as in kube-apiserver.
const MAX_UPDATE_MANAGERS: usize = 10;
/// The entry the oldest `Update` entries are folded into beyond [`MAX_UPDATE_MANAGERS`].
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Folds the oldest `Update` entries into one `ancient-changes` entry so that writes by ever-new
/// manager names cannot grow managedFields without bound (kube-apiserver's cap of 10).
fn cap_update_managers(entries: &mut Vec<Entry>) {
    let updates = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .count();
    if updates <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut by_age: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.operation == Operation::Update && e.manager != ANCIENT_CHANGES)
        .map(|(i, _)| i)
        .collect();
    by_age.sort_by(|&a, &b| entries[a].time.cmp(&entries[b].time));
    let existing = entries
        .iter()
        .position(|e| e.operation == Operation::Update && e.manager == ANCIENT_CHANGES);
    let fold = updates - MAX_UPDATE_MANAGERS + usize::from(existing.is_none());
    let mut doomed: Vec<usize> = by_age.into_iter().take(fold).collect();
    let mut ancient = match existing {
        Some(index) => {
            doomed.push(index);
            entries[index].clone()
        }
        None => Entry {
            manager: ANCIENT_CHANGES.to_owned(),
            operation: Operation::Update,
            api_version: String::new(),
            time: String::new(),
            subresource: None,
            fields: FieldSet::default(),
        },
    };
    doomed.sort_unstable();
    for index in doomed.into_iter().rev() {
        let entry = entries.remove(index);
        if entry.manager != ANCIENT_CHANGES {
            ancient.fields.union(&entry.fields);
            if entry.time > ancient.time {
                ancient.time = entry.time;
                ancient.api_version = entry.api_version;
            }
        }
    }
    entries.push(ancient);
}

/// Copies `old`'s managedFields into `new` as they are (or removes them from `new`).
fn restore(old: Option<&Value>, new: &mut Value) {
    let stored = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .cloned();
    match (
        stored,
        new.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        (Some(stored), Some(metadata)) => {
            metadata.insert("managedFields".to_owned(), stored);
        }
        (None, Some(metadata)) => {
            metadata.remove("managedFields");
        }
        (Some(stored), None) => write_raw(new, stored),
        (None, None) => {}
    }
}

fn write_raw(object: &mut Value, managed_fields: Value) {
    if let Some(root) = object.as_object_mut() {
        let mut metadata = Map::new();
        metadata.insert("managedFields".to_owned(), managed_fields);
        root.insert("metadata".to_owned(), Value::Object(metadata));
    }
}

/// For create/update (PUT) and non-apply PATCH writes: records managedFields with operation
/// `Update` for `field_manager`. Fields that changed between `old` and `new` become owned by that
/// manager and leave other managers' sets; fields the write removed leave every set. `old` is
/// `None` on create.
///
/// `new.metadata.managedFields` decides the starting entries, as kube-apiserver does: absent or
/// `[]` keeps the stored ones; `[{}]` clears them all (and nothing is recorded); any other list
/// replaces them. An entry whose fields do not change keeps its timestamp, so a write that changes
/// nothing leaves the object byte-for-byte equal (the server can skip it as a no-op).
pub fn track_update(
    info: &TypeInfo<'_>,
    old: Option<&Value>,
    new: &mut Value,
    field_manager: &str,
) {
    track_update_subresource(info, old, new, field_manager, None);
}

/// [`track_update`] for a write through a subresource (`Some("status")`): the manager's entry
/// carries `subresource: status`, as kube-apiserver records it, and is separate from the same
/// manager's entry for the main resource.
pub fn track_update_subresource(
    info: &TypeInfo<'_>,
    old: Option<&Value>,
    new: &mut Value,
    field_manager: &str,
    subresource: Option<&str>,
) {
    /// Where the entries to update come from.
    enum Start {
        Clear,
        Given,
        Stored,
    }
    let start = match new.pointer("/metadata/managedFields") {
        Some(Value::Array(list))
            if list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty) =>
        {
            Start::Clear
        }
        Some(Value::Array(list)) if !list.is_empty() => Start::Given,
        _ => Start::Stored,
    };
    if matches!(start, Start::Clear) {
        write(new, Vec::new());
        return;
    }

    let shape = Shape::root(info);
    let mut changed = FieldSet::default();
    let mut removed = FieldSet::default();
    match old {
        Some(old) => fieldset::diff(old, new, shape, Level::Root, &mut changed, &mut removed),
        None => fieldset::diff(
            &zero_value(info),
            new,
            shape,
            Level::Root,
            &mut changed,
            &mut removed,
        ),
    }
    changed.compact();
    removed.compact();

    let mut entries: Vec<Entry> = match start {
        Start::Given => read(new),
        Start::Stored | Start::Clear => {
            if changed.is_empty() && removed.is_empty() {
                // Nothing changed hands: keep the stored entries exactly (no parse, no re-encode).
                restore(old, new);
                return;
            }
            old.map(read).unwrap_or_default()
        }
    };

    let mut mine = None;
    for (index, entry) in entries.iter_mut().enumerate() {
        if !removed.is_empty() {
            entry.fields.remove_subtrees(&removed);
        }
        if entry.is(field_manager, Operation::Update, subresource) {
            mine = Some(index);
        } else if !changed.is_empty() {
            entry.fields.subtract(&changed);
        }
    }
    if !changed.is_empty() {
        match mine.and_then(|index| entries.get_mut(index)) {
            Some(entry) => {
                entry.fields.union(&changed);
                entry.time = now_rfc3339();
                info.api_version.clone_into(&mut entry.api_version);
            }
            None => entries.push(Entry::new(
                field_manager,
                Operation::Update,
                info.api_version,
                subresource,
                changed,
            )),
        }
    }
    write(new, entries);
}

/// The object a create is compared with: what kube-apiserver's typed zero value of the kind
/// serialises to (structs that are not pointers, and lists without `omitempty`, are there even
/// when empty). A map or list the create adds is owned as a whole (`".": {}`), one that was
/// already in the zero value is not, exactly as structured-merge-diff records it. A custom
/// resource is unstructured: its zero value is empty.
pub(crate) fn zero_value(info: &TypeInfo<'_>) -> Value {
    let pod_template = || json!({"metadata": {}, "spec": {"containers": []}});
    if !info.builtin {
        return json!({"metadata": {}});
    }
    match info.kind {
        "Pod" => json!({"metadata": {}, "spec": {"containers": []}, "status": {}}),
        "Deployment" => json!({"metadata": {}, "spec": {"template": pod_template(),
                                "strategy": {}}, "status": {}}),
        "StatefulSet" | "DaemonSet" => json!({"metadata": {}, "spec": {"template": pod_template(),
                                "updateStrategy": {}}, "status": {}}),
        "ReplicaSet" | "Job" | "ReplicationController" => {
            json!({"metadata": {}, "spec": {"template": pod_template()}, "status": {}})
        }
        "PodTemplate" => json!({"metadata": {}, "template": pod_template()}),
        "Service" => json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}}),
        "Namespace" | "Node" | "PersistentVolumeClaim" => {
            json!({"metadata": {}, "spec": {}, "status": {}})
        }
        "Lease" => json!({"metadata": {}, "spec": {}}),
        "CronJob" => json!({"metadata": {}, "spec": {"jobTemplate": {"metadata": {},
                                "spec": {"template": pod_template()}}}, "status": {}}),
        "Event" if info.api_version == "events.k8s.io/v1" => {
            json!({"metadata": {}, "regarding": {}, "deprecatedSource": {}})
        }
        "Event" => json!({"metadata": {}, "involvedObject": {}, "source": {},
                          "reportingComponent": "", "reportingInstance": ""}),
        "RoleBinding" | "ClusterRoleBinding" => json!({"metadata": {}, "roleRef": {}}),
        "PodDisruptionBudget" | "ResourceQuota" => {
            json!({"metadata": {}, "spec": {}, "status": {}})
        }
        "Ingress" => json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}}),
        "NetworkPolicy" => json!({"metadata": {}, "spec": {"podSelector": {}}}),
        "HorizontalPodAutoscaler" => {
            json!({"metadata": {}, "spec": {"scaleTargetRef": {}}, "status": {}})
        }
        _ => json!({"metadata": {}}),
    }
}

/// The current time as RFC 3339 in UTC with second precision (`2024-05-01T12:00:00Z`), the format
/// of Kubernetes `metav1.Time`.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(secs)
}

fn format_rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CM: TypeInfo<'static> = TypeInfo {
        api_version: "v1",
        kind: "ConfigMap",
        builtin: true,
        schema: None,
    };

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "uid": "u", "resourceVersion": "5"}, "data": data})
    }

    fn fields_of(object: &Value, manager: &str) -> Value {
        object["metadata"]["managedFields"]
            .as_array()
            .and_then(|list| list.iter().find(|e| e["manager"] == manager))
            .map(|e| e["fieldsV1"].clone())
            .unwrap_or(Value::Null)
    }

    #[test]
    fn rfc3339_formatting_matches_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn create_records_an_update_entry_with_every_set_field_but_server_fields() {
        let mut new = cm(json!({"a": "1"}));
        track_update(&CM, None, &mut new, "kubectl-create");
        let entries = new["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields");
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry["manager"], "kubectl-create");
        assert_eq!(entry["operation"], "Update");
        assert_eq!(entry["apiVersion"], "v1");
        assert_eq!(entry["fieldsType"], "FieldsV1");
        assert_eq!(entry["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}}}));
        let time = entry["time"].as_str().expect("time");
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let mut old = cm(json!({"a": "1", "b": "2"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        new["data"]["a"] = json!("10");
        track_update(&CM, Some(&old), &mut new, "editor");
        assert_eq!(
            fields_of(&new, "creator"),
            json!({"f:data": {".": {}, "f:b": {}}})
        );
        assert_eq!(fields_of(&new, "editor"), json!({"f:data": {"f:a": {}}}));
    }

    #[test]
    fn removed_fields_leave_every_manager() {
        let mut old = cm(json!({"a": "1", "b": "2"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        new["data"] = json!({"a": "1"});
        track_update(&CM, Some(&old), &mut new, "editor");
        assert_eq!(
            fields_of(&new, "creator"),
            json!({"f:data": {".": {}, "f:a": {}}})
        );
        assert_eq!(
            fields_of(&new, "editor"),
            Value::Null,
            "a write that only removes owns nothing"
        );
    }

    #[test]
    fn an_unchanged_update_records_nothing_new() {
        let mut old = cm(json!({"a": "1"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        track_update(&CM, Some(&old), &mut new, "other");
        assert_eq!(
            new["metadata"]["managedFields"],
            old["metadata"]["managedFields"]
        );
    }

    #[test]
    fn entries_are_written_apply_first_then_oldest_first() {
        let set = FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}}}));
        let entry = |manager: &str, operation, time: &str| Entry {
            manager: manager.to_owned(),
            operation,
            api_version: "v1".to_owned(),
            time: time.to_owned(),
            subresource: None,
            fields: set.clone(),
        };
        let mut object = cm(json!({"a": "1"}));
        write(
            &mut object,
            vec![
                entry("late", Operation::Update, "2024-01-02T00:00:00Z"),
                entry("early", Operation::Update, "2024-01-01T00:00:00Z"),
                entry("applier", Operation::Apply, "2024-01-03T00:00:00Z"),
            ],
        );
        let managers: Vec<&str> = object["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, vec!["applier", "early", "late"]);
    }

    #[test]
    fn a_status_write_is_recorded_with_its_subresource() {
        let mut old = cm(json!({"a": "1"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        new["status"] = json!({"ok": true});
        track_update_subresource(&CM, Some(&old), &mut new, "ctrl", Some("status"));
        let entries = new["metadata"]["managedFields"]
            .as_array()
            .expect("entries");
        let sub = entries
            .iter()
            .find(|e| e["manager"] == "ctrl")
            .expect("ctrl entry");
        assert_eq!(sub["subresource"], "status");
        // The status it added is its own as a whole, as structured-merge-diff records it.
        assert_eq!(sub["fieldsV1"], json!({"f:status": {".": {}, "f:ok": {}}}));
    }

    #[test]
    fn more_than_ten_update_managers_fold_the_oldest_into_ancient_changes() {
        let mut object = cm(json!({}));
        track_update(&CM, None, &mut object, "creator");
        for i in 0..12 {
            let old = object.clone();
            object["data"][format!("k{i}")] = json!("v");
            // Distinct times so that "oldest" is well defined.
            track_update(&CM, Some(&old), &mut object, &format!("m{i:02}"));
            if let Some(list) = object["metadata"]["managedFields"].as_array_mut() {
                for entry in list
                    .iter_mut()
                    .filter(|e| e["manager"] == format!("m{i:02}"))
                {
                    entry["time"] = json!(format!("2024-01-01T00:00:{i:02}Z"));
                }
            }
        }
        let entries = object["metadata"]["managedFields"]
            .as_array()
            .expect("entries");
        assert_eq!(entries.len(), 10);
        let ancient = entries
            .iter()
            .find(|e| e["manager"] == "ancient-changes")
            .expect("folded entry");
        assert_eq!(ancient["fieldsV1"]["f:data"]["f:k0"], json!({}));
        assert!(entries.iter().any(|e| e["manager"] == "m11"));
        assert!(!entries.iter().any(|e| e["manager"] == "m00"));
    }

    #[test]
    fn a_single_empty_entry_clears_managed_fields() {
        let mut old = cm(json!({"a": "1"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        new["metadata"]["managedFields"] = json!([{}]);
        track_update(&CM, Some(&old), &mut new, "editor");
        assert!(new["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn an_empty_list_keeps_the_stored_managed_fields() {
        let mut old = cm(json!({"a": "1"}));
        track_update(&CM, None, &mut old, "creator");
        let mut new = old.clone();
        new["metadata"]["managedFields"] = json!([]);
        track_update(&CM, Some(&old), &mut new, "editor");
        assert_eq!(
            fields_of(&new, "creator"),
            json!({"f:data": {".": {}, "f:a": {}}})
        );
    }
}
