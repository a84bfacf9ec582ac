//! JSON merge patch (RFC 7386), as `application/merge-patch+json` applies it.

use serde_json::Value;

use super::PatchError;

/// Applies an RFC 7386 merge patch to `target` in place.
///
/// Objects merge key by key, `null` removes a key, anything else (arrays included) replaces the
/// target value as a whole.
///
/// # Errors
/// [`PatchError::Invalid`] when the patch is not a JSON object: a Kubernetes object patch that
/// replaced the whole object with a scalar or list could never be stored.
pub fn merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Invalid(format!(
            "merge patch must be a JSON object, got {}",
            super::type_name(patch)
        )));
    }
    json_patch::merge(target, patch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut target = target;
        merge_patch(&mut target, &patch).expect("patch applies");
        target
    }

    #[test]
    fn merge_patch_replaces_scalars_and_adds_new_keys() {
        let out = merged(json!({"a": 1, "b": "x"}), json!({"a": 2, "c": true}));
        assert_eq!(out, json!({"a": 2, "b": "x", "c": true}));
    }

    #[test]
    fn merge_patch_null_removes_a_key() {
        let out = merged(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": null}}}),
        );
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}}));
    }

    #[test]
    fn merge_patch_replaces_lists_as_a_whole() {
        let out = merged(
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "y"}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "image": "y"}]}})
        );
    }

    #[test]
    fn merge_patch_creates_nested_objects_without_nulls() {
        let out = merged(json!({}), json!({"spec": {"a": {"b": 1, "c": null}}}));
        assert_eq!(out, json!({"spec": {"a": {"b": 1}}}));
    }

    #[test]
    fn merge_patch_replaces_a_scalar_with_an_object() {
        let out = merged(json!({"a": 1}), json!({"a": {"b": 2}}));
        assert_eq!(out, json!({"a": {"b": 2}}));
    }

    #[test]
    fn merge_patch_rejects_a_non_object_body() {
        let mut target = json!({"a": 1});
        let err =
            merge_patch(&mut target, &json!([1, 2])).expect_err("a list is not a merge patch");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m.contains("array")),
            "{err}"
        );
        assert_eq!(
            target,
            json!({"a": 1}),
            "a rejected patch leaves the object unchanged"
        );
    }
}
