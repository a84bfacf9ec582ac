//! The manifest's `custom-resources`: the CustomResourceDefinitions a plugin ships, checked
//! the same way by the host (when it loads the plugin) and the SDK's fake host.

use serde_json::Value;

use super::ManifestError;

/// Parses and checks the manifest's `custom-resources`: each must be a JSON
/// `apiextensions.k8s.io/v1` `CustomResourceDefinition` with a group, names (kind and
/// plural), a scope and at least one version.
///
/// # Errors
/// [`ManifestError`] naming each bad entry by its position and what is wrong.
pub fn custom_resources(raw: &[Vec<u8>]) -> Result<Vec<Value>, ManifestError> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, bytes) in raw.iter().enumerate() {
        let what = format!("custom-resources[{i}]");
        let crd: Value = match serde_json::from_slice(bytes) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                problems.push(format!("{what}: not a JSON object"));
                continue;
            }
            Err(e) => {
                problems.push(format!("{what}: not JSON: {e}"));
                continue;
            }
        };
        let text = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let mut bad = Vec::new();
        if text("/apiVersion") != "apiextensions.k8s.io/v1" {
            bad.push(format!(
                "apiVersion is {:?}, not \"apiextensions.k8s.io/v1\"",
                text("/apiVersion")
            ));
        }
        if text("/kind") != "CustomResourceDefinition" {
            bad.push(format!(
                "kind is {:?}, not \"CustomResourceDefinition\"",
                text("/kind")
            ));
        }
        for field in ["/spec/group", "/spec/names/kind", "/spec/names/plural"] {
            if text(field).is_empty() {
                bad.push(format!("{} is missing", &field[1..].replace('/', ".")));
            }
        }
        if !matches!(text("/spec/scope"), "Namespaced" | "Cluster") {
            bad.push(format!(
                "spec.scope is {:?}, not \"Namespaced\" or \"Cluster\"",
                text("/spec/scope")
            ));
        }
        if crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .is_none_or(|v| v.is_empty())
        {
            bad.push("spec.versions is missing or empty".into());
        }
        let name = text("/metadata/name");
        let expected = format!("{}.{}", text("/spec/names/plural"), text("/spec/group"));
        if bad.is_empty() && name != expected {
            bad.push(format!(
                "metadata.name is {name:?}, but a CRD must be named {expected:?}"
            ));
        }
        if bad.is_empty() {
            out.push(crd);
        } else {
            problems.push(format!(
                "{what} is not a valid apiextensions.k8s.io/v1 CustomResourceDefinition: {}",
                bad.join("; ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ManifestError { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn custom_resources_must_be_v1_crds_and_each_bad_one_is_named() {
        let good = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "geese.zoo.example.com"},
            "spec": {"group": "zoo.example.com", "scope": "Namespaced",
                     "names": {"kind": "Goose", "plural": "geese"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}
        });
        assert_eq!(
            custom_resources(&[crd(good.clone())]).unwrap(),
            vec![good.clone()]
        );
        let mut beta = good.clone();
        beta["apiVersion"] = "apiextensions.k8s.io/v1beta1".into();
        let mut unscoped = good.clone();
        unscoped["spec"]["scope"] = "Everywhere".into();
        let e = custom_resources(&[
            crd(good),
            crd(beta),
            b"apiVersion: v1".to_vec(),
            crd(unscoped),
        ])
        .unwrap_err();
        assert_eq!(e.problems.len(), 3, "{e}");
        assert!(e.problems[0].starts_with("custom-resources[1]"), "{e}");
        assert!(e.problems[0].contains("v1beta1"), "{e}");
        assert!(
            e.problems[1].contains("custom-resources[2]: not JSON"),
            "{e}"
        );
        assert!(
            e.problems[2].contains("spec.scope is \"Everywhere\""),
            "{e}"
        );
    }

    #[test]
    fn a_crd_named_other_than_plural_dot_group_is_refused() {
        let crd = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "goose.zoo.example.com"},
            "spec": {"group": "zoo.example.com", "scope": "Cluster",
                     "names": {"kind": "Goose", "plural": "geese"},
                     "versions": [{"name": "v1"}]}
        });
        let e = custom_resources(&[serde_json::to_vec(&crd).unwrap()]).unwrap_err();
        assert!(e.to_string().contains("\"geese.zoo.example.com\""), "{e}");
    }
}
