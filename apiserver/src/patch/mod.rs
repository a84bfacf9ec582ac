//! PATCH semantics of the API server: JSON patch, merge patch, strategic merge patch, server-side apply and managedFields.
//!
//! The server calls [`apply_patch`] for every PATCH request and [`track_update`] for every create and
//! update, so `metadata.managedFields` always says which manager owns which field, in the real
//! `FieldsV1` format. Writes through `/status` should use [`apply_patch_subresource`] and
//! [`track_update_subresource`] with `Some("status")`, as kube-apiserver records those separately.
//! Everything here is a pure function over [`serde_json::Value`].
//!
//! Where things are: `json.rs` and `merge.rs` (RFC 6902 / RFC 7386), `strategic.rs` (apimachinery's
//! strategic merge), `apply.rs` (ownership and conflicts) with `structured_merge.rs` (the merge
//! itself), `fieldset.rs` (`FieldsV1` sets), `managed_fields.rs` (entries and Update tracking) and
//! `merge_keys.rs` (how each field of a built-in kind or CRD schema merges).
//!
//! An entry whose fields do not change keeps its timestamp, so a write that changes nothing returns
//! an object equal to the stored one, managedFields included: the server can compare whole objects
//! to detect no-op writes (and must not ignore managedFields when it does, or ownership changes
//! such as kubectl's client-side-to-server-side apply migration are lost).

mod apply;
mod fieldset;
mod json;
mod managed_fields;
mod merge;
mod merge_keys;
mod strategic;
mod structured_merge;

use serde_json::Value;

pub use apply::{server_side_apply, server_side_apply_subresource};
pub use json::json_patch;
pub use managed_fields::{track_update, track_update_subresource};
pub use merge::merge_patch;
pub use strategic::strategic_merge_patch;

/// The four PATCH flavours, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386 merge patch.
    Merge,
    /// `application/strategic-merge-patch+json`: Kubernetes strategic merge patch (built-in kinds only).
    StrategicMerge,
    /// `application/apply-patch+yaml` (or `+json`): server-side apply.
    Apply,
}

impl PatchType {
    /// Reads a `Content-Type` header value; parameters such as `; charset=utf-8` are ignored and the
    /// media type is matched case-insensitively.
    ///
    /// Returns `None` for anything else: the server answers 415 Unsupported Media Type.
    #[must_use]
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        let is = |name: &str| media.eq_ignore_ascii_case(name);
        if is("application/json-patch+json") {
            Some(PatchType::Json)
        } else if is("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if is("application/strategic-merge-patch+json") {
            Some(PatchType::StrategicMerge)
        } else if is("application/apply-patch+yaml") || is("application/apply-patch+json") {
            Some(PatchType::Apply)
        } else {
            None
        }
    }

    /// The media type a client sends for this patch type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// What kind of object is being patched; strategic merge and apply use it to find list merge keys
/// (built-in kinds) or `x-kubernetes-list-type`/`x-kubernetes-list-map-keys` (CRDs, from the schema).
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo<'a> {
    /// `"v1"`, `"apps/v1"`, `"cache.example.com/v1alpha1"`.
    pub api_version: &'a str,
    /// `"Pod"`.
    pub kind: &'a str,
    /// True for kinds compiled into the server (Pod, Deployment, ...); strategic merge is only for these.
    pub builtin: bool,
    /// The CRD's `openAPIV3Schema` for this version, if any (list-type hints for apply).
    pub schema: Option<&'a Value>,
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// 400/422-worthy: the patch body itself is malformed (not an object, bad op, bad path, test failed...).
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// 415: strategic merge patch on a custom resource.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 409 on apply without force: fields owned by other managers would change.
    #[error("{}", conflict_message(.conflicts))]
    Conflict {
        /// One entry per (manager, field) pair, sorted by manager then field.
        conflicts: Vec<ApplyConflict>,
    },
}

/// One field that an apply would change although another manager owns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApplyConflict {
    /// The manager that owns the field (`kubectl-client-side-apply`, `kube-controller`, ...).
    pub manager: String,
    /// The field path, kube-style: `.spec.replicas`, `.spec.containers[name="web"].image`.
    pub field: String,
}

/// kube-apiserver's message for apply conflicts (structured-merge-diff's wording), e.g.
/// `Apply failed with 1 conflict: conflict with "kubectl-edit": .spec.replicas`, or for several:
/// `Apply failed with 2 conflicts: conflicts with "a":\n- .spec.replicas\n- .spec.paused`.
fn conflict_message(conflicts: &[ApplyConflict]) -> String {
    use std::fmt::Write as _;
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    let mut message = format!("Apply failed with {} conflict{plural}: ", conflicts.len());
    if let [only] = conflicts {
        let _ = write!(
            message,
            "conflict with \"{}\": {}",
            only.manager, only.field
        );
        return message;
    }
    let mut sorted: Vec<&ApplyConflict> = conflicts.iter().collect();
    sorted.sort();
    let mut lines: Vec<String> = Vec::new();
    let mut manager: Option<&str> = None;
    for c in sorted {
        if manager != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with \"{}\":", c.manager));
            manager = Some(c.manager.as_str());
        }
        lines.push(format!("- {}", c.field));
    }
    message.push_str(&lines.join("\n"));
    message
}

/// The server calls this for PATCH. `current` is the stored object (`None` only for apply creating a
/// new object). For [`PatchType::Apply`], `field_manager` is required (the server answers 400 before
/// calling when it is missing) and `force` is the `force` query parameter.
///
/// Returns the new full object, with `metadata.managedFields` updated: operation `Apply` for apply,
/// operation `Update` by `field_manager` for the other types. It does not touch `resourceVersion`,
/// `generation`, `uid` or timestamps: the server does that afterwards.
///
/// # Errors
/// - [`PatchError::Invalid`] for a malformed patch (wrong JSON shape, bad operation, failed `test`,
///   missing merge key, a non-apply patch with no current object);
/// - [`PatchError::UnsupportedMediaType`] for a strategic merge patch on a custom resource;
/// - [`PatchError::Conflict`] for an apply without `force` that would change other managers' fields.
pub fn apply_patch(
    ty: PatchType,
    info: &TypeInfo<'_>,
    current: Option<&Value>,
    patch: &Value,
    field_manager: &str,
    force: bool,
) -> Result<Value, PatchError> {
    apply_patch_subresource(ty, info, current, patch, field_manager, force, None)
}

/// [`apply_patch`] for a PATCH through a subresource (`Some("status")`): managedFields entries are
/// recorded with `subresource: status`, separate from the same manager's main-resource entries
/// (see [`server_side_apply_subresource`]).
///
/// # Errors
/// As [`apply_patch`].
pub fn apply_patch_subresource(
    ty: PatchType,
    info: &TypeInfo<'_>,
    current: Option<&Value>,
    patch: &Value,
    field_manager: &str,
    force: bool,
    subresource: Option<&str>,
) -> Result<Value, PatchError> {
    if ty == PatchType::StrategicMerge && !info.builtin {
        return Err(strategic::unsupported_for_custom_resources());
    }
    let mut updated = match (ty, current) {
        (PatchType::Apply, _) => {
            return server_side_apply_subresource(
                info,
                current,
                patch,
                field_manager,
                force,
                subresource,
            );
        }
        (_, None) => {
            return Err(PatchError::Invalid(
                "only server-side apply can create an object that does not exist".to_owned(),
            ));
        }
        (_, Some(current)) => current.clone(),
    };
    match ty {
        PatchType::Json => json_patch(&mut updated, patch)?,
        PatchType::Merge => merge_patch(&mut updated, patch)?,
        PatchType::StrategicMerge => strategic_merge_patch(info, &mut updated, patch)?,
        PatchType::Apply => {} // returned above
    }
    if !updated.is_object() {
        return Err(PatchError::Invalid(format!(
            "the patched object must be a JSON object, got {}",
            type_name(&updated)
        )));
    }
    track_update_subresource(info, current, &mut updated, field_manager, subresource);
    Ok(updated)
}

/// The JSON type name of a value, as Kubernetes error messages spell it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: TypeInfo<'static> = TypeInfo {
        api_version: "v1",
        kind: "Pod",
        builtin: true,
        schema: None,
    };
    const CR: TypeInfo<'static> = TypeInfo {
        api_version: "cache.example.com/v1",
        kind: "RedisCluster",
        builtin: false,
        schema: None,
    };

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters_and_case() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("Application/Strategic-Merge-Patch+JSON"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+json"),
            Some(PatchType::Apply)
        );
    }

    #[test]
    fn unknown_content_types_are_unsupported() {
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+cbor"),
            None
        );
        assert_eq!(PatchType::from_content_type(""), None);
    }

    #[test]
    fn strategic_merge_on_a_custom_resource_is_unsupported_media_type() {
        let current = json!({"apiVersion": "cache.example.com/v1", "kind": "RedisCluster", "metadata": {"name": "r"}});
        let err = apply_patch(
            PatchType::StrategicMerge,
            &CR,
            Some(&current),
            &json!({"spec": {}}),
            "m",
            false,
        )
        .expect_err("415");
        assert!(
            matches!(err, PatchError::UnsupportedMediaType(ref m) if m.contains("application/merge-patch+json"))
        );
    }

    #[test]
    fn merge_patch_on_a_custom_resource_applies_and_records_an_update_manager() {
        let current = json!({"apiVersion": "cache.example.com/v1", "kind": "RedisCluster", "metadata": {"name": "r"}, "spec": {"replicas": 1}});
        let out = apply_patch(
            PatchType::Merge,
            &CR,
            Some(&current),
            &json!({"spec": {"replicas": 3}}),
            "kubectl-patch",
            false,
        )
        .expect("applies");
        assert_eq!(out["spec"]["replicas"], 3);
        let entries = out["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "kubectl-patch");
        assert_eq!(entries[0]["operation"], "Update");
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn a_json_patch_replacing_managed_fields_sets_them_as_kubectl_migration_does() {
        let current = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
            "spec": {"x": 1}});
        let migrated = json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
            "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}}]);
        let patch = json!([
            {"op": "replace", "path": "/metadata/managedFields", "value": migrated},
            {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"}
        ]);
        let out = apply_patch(
            PatchType::Json,
            &POD,
            Some(&current),
            &patch,
            "kubectl-last-applied",
            false,
        )
        .expect("applies");
        assert_eq!(out["metadata"]["managedFields"], migrated);
    }

    #[test]
    fn json_patch_errors_pass_through_apply_patch() {
        let current = json!({"metadata": {"name": "p"}});
        let err = apply_patch(
            PatchType::Json,
            &POD,
            Some(&current),
            &json!([{"op": "remove", "path": "/x"}]),
            "m",
            false,
        )
        .expect_err("invalid");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn a_patch_that_replaces_the_object_with_a_scalar_is_invalid() {
        let current = json!({"metadata": {"name": "p"}});
        let err = apply_patch(
            PatchType::Json,
            &POD,
            Some(&current),
            &json!([{"op": "replace", "path": "", "value": 3}]),
            "m",
            false,
        )
        .expect_err("invalid");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("integer")),
            "{err}"
        );
    }

    #[test]
    fn a_non_apply_patch_without_a_current_object_is_invalid() {
        let err =
            apply_patch(PatchType::Merge, &POD, None, &json!({}), "m", false).expect_err("invalid");
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn conflict_errors_read_like_kube_apiserver() {
        let err = PatchError::Conflict {
            conflicts: vec![
                ApplyConflict {
                    manager: "kubectl-edit".into(),
                    field: ".spec.replicas".into(),
                },
                ApplyConflict {
                    manager: "other".into(),
                    field: ".metadata.labels.app".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\":\n- .spec.replicas\nconflicts with \"other\":\n- .metadata.labels.app"
        );
        let one = PatchError::Conflict {
            conflicts: vec![ApplyConflict {
                manager: "hpa".into(),
                field: ".spec.replicas".into(),
            }],
        };
        assert_eq!(
            one.to_string(),
            "Apply failed with 1 conflict: conflict with \"hpa\": .spec.replicas"
        );
    }
}
