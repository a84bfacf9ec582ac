//! Label selectors (equality and set-based) and field selectors, parsed from query strings.

use serde_json::Value;

use crate::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub(crate) fn valid_label_key(k: &str) -> bool {
    let name = match k.split_once('/') {
        Some((prefix, name)) => {
            // The prefix is a DNS subdomain: lowercase labels of alphanumerics and '-'.
            let subdomain = prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                });
            if !subdomain {
                return false;
            }
            name
        }
        None => k,
    };
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub(crate) fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

impl LabelSelector {
    /// Parses `app=web,tier!=db,env in (a,b),!legacy`.
    ///
    /// # Errors
    /// 400 BadRequest naming the requirement that could not be parsed.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(LabelSelector { reqs });
        }
        let bad = |part: &str, why: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector {s:?}: {part:?}: {why}"
            ))
        };
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(bad(p, "empty requirement"));
            }
            let check_key = |k: &str| -> Result<String, ApiError> {
                if valid_label_key(k) {
                    Ok(k.to_string())
                } else {
                    Err(bad(p, "invalid label key"))
                }
            };
            let check_val = |v: &str| -> Result<String, ApiError> {
                if valid_label_value(v) {
                    Ok(v.to_string())
                } else {
                    Err(bad(p, "invalid label value"))
                }
            };
            let set = |rest: &str| -> Result<Vec<String>, ApiError> {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad(p, "expected a parenthesised set of values"))?;
                inner
                    .split(',')
                    .map(|v| check_val(v.trim()))
                    .collect::<Result<Vec<_>, _>>()
            };
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(LabelReq::NotExists(check_key(k.trim())?));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(LabelReq::NotEq(check_key(k.trim())?, check_val(v.trim())?));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(LabelReq::Eq(check_key(k.trim())?, check_val(v.trim())?));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(LabelReq::Eq(check_key(k.trim())?, check_val(v.trim())?));
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                reqs.push(LabelReq::NotIn(check_key(k.trim())?, set(rest)?));
            } else if let Some((k, rest)) = p.split_once(" in ") {
                reqs.push(LabelReq::In(check_key(k.trim())?, set(rest)?));
            } else if p.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
                return Err(bad(p, "unknown operator"));
            } else {
                reqs.push(LabelReq::Exists(check_key(p)?));
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` (the object's `metadata.labels`, or None) satisfy the selector.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
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
