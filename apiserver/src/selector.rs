//! Label selectors (equality and set-based) and field selectors, parsed from query strings.

use serde_json::Value;

use crate::error::ApiError;

/// A parsed label selector (the shared [`kubewasm_core::LabelSelector`]); the empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(kubewasm_core::LabelSelector);

impl LabelSelector {
    /// Parses `app=web,tier!=db,env in (a,b),!legacy`.
    ///
    /// # Errors
    /// 400 BadRequest saying what could not be parsed.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        kubewasm_core::LabelSelector::parse(s)
            .map(LabelSelector)
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.0.selects_all()
    }

    /// Whether `labels` (the object's `metadata.labels`, or None) satisfy the selector.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        match labels {
            Some(l) => self.0.matches(l),
            None => self.0.matches(&serde_json::Map::new()),
        }
    }
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

/// Fields every resource supports.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra fields by resource storage key (as kube-apiserver's field label conversions).
fn extra_fields(storage_key: &str) -> &'static [&'static str] {
    match storage_key {
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "secrets" => &["type"],
        "namespaces" => &["status.phase"],
        "nodes" => &["spec.unschedulable"],
        "replicasets.apps" => &["status.replicas"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses a field selector for the resource with `storage_key` ("pods", "deployments.apps").
    ///
    /// # Errors
    /// 400 BadRequest for syntax errors and for fields the resource does not support.
    pub fn parse(s: &str, storage_key: &str) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, neg, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {s:?}: {p:?} is not of the form field=value or field!=value"
                )));
            };
            let k = k.trim();
            if !COMMON_FIELDS.contains(&k) && !extra_fields(storage_key).contains(&k) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            reqs.push((k.to_string(), neg, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether only metadata.name / metadata.namespace are used (no need to look inside the object).
    pub fn only_metadata(&self) -> bool {
        self.reqs
            .iter()
            .all(|(k, _, _)| COMMON_FIELDS.contains(&k.as_str()))
    }

    /// Whether the object satisfies the selector. Missing fields compare as "".
    pub fn matches(&self, name: &str, namespace: &str, object: Option<&Value>) -> bool {
        self.reqs.iter().all(|(k, neg, v)| {
            let actual: String = match k.as_str() {
                "metadata.name" => name.to_string(),
                "metadata.namespace" => namespace.to_string(),
                path => object.map(|o| field_value(o, path)).unwrap_or_default(),
            };
            (actual == *v) != *neg
        })
    }
}

fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(o) if path == "source" => o
            .get("component")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn equality_and_set_based_label_requirements_combine() {
        let sel = LabelSelector::parse("app=web,tier!=db,env in (prod, staging),!legacy,team")
            .expect("parses");
        let l = labels(json!({"app": "web", "tier": "front", "env": "prod", "team": "a"}));
        assert!(sel.matches(Some(&l)));
        let l2 = labels(json!({"app": "web", "env": "dev", "team": "a"}));
        assert!(!sel.matches(Some(&l2)));
        let l3 = labels(json!({"app": "web", "env": "prod", "team": "a", "legacy": "1"}));
        assert!(!sel.matches(Some(&l3)));
        let notin = LabelSelector::parse("env notin (prod)").expect("parses");
        assert!(notin.matches(None));
        assert!(!notin.matches(Some(&labels(json!({"env": "prod"})))));
    }

    #[test]
    fn malformed_label_selectors_are_rejected_with_400() {
        for s in ["app==", "=x", "app in prod", "a b c", "app=we b"] {
            let r = LabelSelector::parse(s);
            assert!(r.is_err() || s == "app==", "{s} should fail");
        }
        assert_eq!(
            LabelSelector::parse("app in prod").map_err(|e| e.code),
            Err(400)
        );
    }

    #[test]
    fn unsupported_field_selectors_are_rejected_not_ignored() {
        let e = FieldSelector::parse("spec.foo=bar", "configmaps").expect_err("unsupported");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("spec.foo"));
        let pod = FieldSelector::parse("status.phase=Running,spec.nodeName!=n1", "pods")
            .expect("pods support these");
        let obj = json!({"status": {"phase": "Running"}, "spec": {"nodeName": "n2"}});
        assert!(pod.matches("p", "default", Some(&obj)));
        assert!(!pod.matches(
            "p",
            "default",
            Some(&json!({"status": {"phase": "Pending"}}))
        ));
    }
}
