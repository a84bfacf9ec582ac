//! JSON patch (RFC 6902), as `application/json-patch+json` applies it.

use json_patch::{PatchErrorKind, PatchOperation};
use serde::Deserialize as _;
use serde_json::Value;

use super::PatchError;

/// kube-apiserver's cap on the operations of one JSON patch.
const MAX_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 JSON patch (a list of operations) to `target` in place, atomically: on
/// error `target` is left as it was.
///
/// # Errors
/// [`PatchError::Invalid`] when the body is not a list of valid operations (unknown `op`, missing
/// `path`/`value`/`from`), when a path does not exist, when a `test` operation does not match (the
/// message names the operation's index, `op` and path), or when it has more than 10,000 operations.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Array(raw_ops) = patch else {
        return Err(PatchError::Invalid(format!(
            "json patch must be a JSON array of operations, got {}",
            super::type_name(patch)
        )));
    };
    if raw_ops.len() > MAX_OPERATIONS {
        return Err(PatchError::Invalid(format!(
            "the allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            raw_ops.len()
        )));
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (index, raw) in raw_ops.iter().enumerate() {
        let op = PatchOperation::deserialize(raw).map_err(|source| {
            PatchError::Invalid(format!(
                "invalid json patch operation {index} ({}): {source}",
                describe_raw(raw)
            ))
        })?;
        ops.push(op);
    }
    json_patch::patch(target, &ops).map_err(|err| {
        let op = ops.get(err.operation);
        let name = op.map_or("?", op_name);
        let from = match op {
            Some(PatchOperation::Move(m)) => format!(" from \"{}\"", m.from),
            Some(PatchOperation::Copy(c)) => format!(" from \"{}\"", c.from),
            _ => String::new(),
        };
        let why = match err.kind {
            PatchErrorKind::TestFailed => {
                "the value at the path did not match the test value".to_owned()
            }
            PatchErrorKind::InvalidPointer => "the path does not exist".to_owned(),
            PatchErrorKind::InvalidFromPointer => "the \"from\" path does not exist".to_owned(),
            ref other => other.to_string(),
        };
        PatchError::Invalid(format!(
            "json patch operation {} ({name} \"{}\"{from}) failed: {why}",
            err.operation, err.path
        ))
    })
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// `op "path"` of a raw operation that failed to parse, as far as it can be read.
fn describe_raw(raw: &Value) -> String {
    let op = raw.get("op").and_then(Value::as_str).unwrap_or("<no op>");
    let path = raw
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("<no path>");
    format!("{op} \"{path}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "nginx"}]}})
    }

    fn patched(patch: Value) -> Result<Value, PatchError> {
        let mut target = pod();
        json_patch(&mut target, &patch).map(|()| target)
    }

    fn invalid_message(result: Result<Value, PatchError>) -> String {
        match result {
            Err(PatchError::Invalid(message)) => message,
            other => panic!("expected an invalid patch error, got {other:?}"),
        }
    }

    #[test]
    fn json_patch_add_inserts_a_value_and_appends_to_a_list() {
        let out = patched(json!([
            {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}}
        ]))
        .expect("applies");
        assert_eq!(out["metadata"]["labels"]["tier"], "fe");
        assert_eq!(out["spec"]["containers"][1], json!({"name": "b"}));
    }

    #[test]
    fn json_patch_remove_deletes_a_value() {
        let out =
            patched(json!([{"op": "remove", "path": "/metadata/labels/app"}])).expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({}));
    }

    #[test]
    fn json_patch_replace_changes_a_value() {
        let out = patched(
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "redis"}]),
        )
        .expect("applies");
        assert_eq!(out["spec"]["containers"][0]["image"], "redis");
    }

    #[test]
    fn json_patch_move_and_copy_relocate_values() {
        let out = patched(json!([
            {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
            {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/moved"}
        ]))
        .expect("applies");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"copy": "web", "moved": "web"})
        );
    }

    #[test]
    fn json_patch_test_that_matches_lets_the_patch_apply() {
        let out = patched(json!([
            {"op": "test", "path": "/metadata/labels/app", "value": "web"},
            {"op": "replace", "path": "/metadata/labels/app", "value": "api"}
        ]))
        .expect("applies");
        assert_eq!(out["metadata"]["labels"]["app"], "api");
    }

    #[test]
    fn json_patch_failed_test_is_invalid_and_names_the_op_and_path() {
        let message = invalid_message(patched(json!([
            {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
            {"op": "test", "path": "/metadata/labels/app", "value": "web"}
        ])));
        assert!(
            message.contains("test \"/metadata/labels/app\""),
            "{message}"
        );
        assert!(message.contains("did not match"), "{message}");
    }

    #[test]
    fn json_patch_failure_leaves_the_target_unchanged() {
        let mut target = pod();
        let patch = json!([
            {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
            {"op": "remove", "path": "/spec/nope"}
        ]);
        json_patch(&mut target, &patch).expect_err("second op fails");
        assert_eq!(target, pod());
    }

    #[test]
    fn json_patch_remove_of_a_missing_path_names_the_op_and_path() {
        let message = invalid_message(patched(json!([{"op": "remove", "path": "/spec/replicas"}])));
        assert!(message.contains("remove \"/spec/replicas\""), "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }

    #[test]
    fn json_patch_replace_of_an_out_of_range_index_is_invalid() {
        let message = invalid_message(patched(
            json!([{"op": "replace", "path": "/spec/containers/5", "value": {}}]),
        ));
        assert!(
            message.contains("replace \"/spec/containers/5\""),
            "{message}"
        );
    }

    #[test]
    fn json_patch_move_from_a_missing_path_names_the_from_path() {
        let message = invalid_message(patched(
            json!([{"op": "move", "from": "/nope", "path": "/x"}]),
        ));
        assert!(message.contains("from \"/nope\""), "{message}");
    }

    #[test]
    fn json_patch_with_an_unknown_op_is_invalid() {
        let message = invalid_message(patched(json!([{"op": "frobnicate", "path": "/a"}])));
        assert!(
            message.contains("operation 0 (frobnicate \"/a\")"),
            "{message}"
        );
    }

    #[test]
    fn json_patch_with_a_missing_value_is_invalid() {
        let message = invalid_message(patched(json!([{"op": "add", "path": "/a"}])));
        assert!(message.contains("add \"/a\""), "{message}");
    }

    #[test]
    fn json_patch_with_more_than_ten_thousand_operations_is_invalid() {
        let ops: Vec<Value> = (0..10_001)
            .map(|_| json!({"op": "test", "path": "/metadata/name", "value": "p"}))
            .collect();
        let message = invalid_message(patched(Value::Array(ops)));
        assert!(message.contains("10000, got 10001"), "{message}");
    }

    #[test]
    fn json_patch_that_is_not_a_list_is_invalid() {
        let message = invalid_message(patched(json!({"op": "add"})));
        assert!(message.contains("array"), "{message}");
    }
}
