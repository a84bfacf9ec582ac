//! Normalising an answer (what legitimately differs between two servers: uids, timestamps,
//! resourceVersions, generated names, allocated IPs and ports, continue tokens, the test's own
//! names) and listing the differences between two normalised answers.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Names a server made from a `generateName` prefix: the prefix and five characters of the
/// alphabet kube's name generator uses.
fn generated_names(prefix: &str) -> regex::Regex {
    regex::Regex::new(&format!(
        "{}[bcdfghjklmnpqrstvwxz2456789]{{5}}",
        regex::escape(prefix)
    ))
    .expect("a valid pattern")
}

/// Per server and case: the uids seen so far, so `<uid:1>` names the same object in every step
/// (an ownerReference and its owner stay visibly the same).
#[derive(Debug, Default)]
pub struct Normaliser {
    uids: HashMap<String, usize>,
    /// Strings replaced by placeholders everywhere: the case's namespace, the unique token.
    names: Vec<(String, String)>,
    /// `generateName` prefixes the case's requests used: generated names become
    /// `<prefix><generated>` wherever they appear (error messages included).
    generated: Vec<(String, regex::Regex)>,
}

/// Keys whose string values are timestamps.
const TIMES: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "time",
    "lastTransitionTime",
    "eventTime",
    "firstTimestamp",
    "lastTimestamp",
    "renewTime",
    "acquireTime",
    "lastHeartbeatTime",
    "lastProbeTime",
    "lastUpdateTime",
    "startTime",
    "startedAt",
    "expirationTimestamp",
];

/// Keys whose values a server allocates (IPs, ports).
const ALLOCATED: &[&str] = &[
    "clusterIP",
    "clusterIPs",
    "nodePort",
    "podIP",
    "podIPs",
    "hostIP",
    "hostIPs",
];

impl Normaliser {
    pub fn new(names: Vec<(String, String)>) -> Self {
        Self {
            uids: HashMap::new(),
            names,
            generated: Vec::new(),
        }
    }

    /// Also replaces names generated from `prefix`.
    pub fn generate_name(&mut self, prefix: &str) {
        if !prefix.is_empty() && !self.generated.iter().any(|(p, _)| p == prefix) {
            self.generated
                .push((prefix.to_owned(), generated_names(prefix)));
        }
    }

    /// `value` with everything that legitimately differs replaced by placeholders.
    pub fn normalise(&mut self, value: &Value) -> Value {
        let mut v = value.clone();
        self.walk(&mut v, None);
        v
    }

    fn walk(&mut self, v: &mut Value, key: Option<&str>) {
        match v {
            Value::Object(map) => {
                generated_name(map);
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let entry = map.get_mut(&k).expect("a key just listed");
                    self.walk(entry, Some(&k));
                }
                if let Some(Value::String(c)) = map.get_mut("continue")
                    && !c.is_empty()
                {
                    *c = "<continue>".into();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, key);
                }
            }
            Value::String(s) => match key {
                // A Job's generated selector and labels name its uid.
                Some(k) if k == "uid" || k.ends_with("controller-uid") => {
                    let n = self.uids.len() + 1;
                    let n = *self.uids.entry(s.clone()).or_insert(n);
                    *s = format!("<uid:{n}>");
                }
                Some("resourceVersion") if !s.is_empty() => *s = "<rv>".into(),
                Some(k) if TIMES.contains(&k) => *s = "<time>".into(),
                Some(k) if ALLOCATED.contains(&k) && s != "None" => *s = "<allocated>".into(),
                _ => {
                    for (prefix, pattern) in &self.generated {
                        if pattern.is_match(s) {
                            *s = pattern
                                .replace_all(s, format!("{prefix}<generated>").as_str())
                                .into_owned();
                        }
                    }
                    for (from, to) in &self.names {
                        if s.contains(from.as_str()) {
                            *s = s.replace(from.as_str(), to);
                        }
                    }
                }
            },
            Value::Number(_) if key.is_some_and(|k| ALLOCATED.contains(&k)) => {
                *v = Value::String("<allocated>".into());
            }
            _ => {}
        }
        // Keys holding the test's names (labels, annotations, data) are renamed too.
        if let Value::Object(map) = v {
            let renamed: Vec<(String, String)> = map
                .keys()
                .filter_map(|k| {
                    let mut n = k.clone();
                    for (from, to) in &self.names {
                        n = n.replace(from.as_str(), to);
                    }
                    (n != *k).then(|| (k.clone(), n))
                })
                .collect();
            for (old, new) in renamed {
                if let Some(x) = map.remove(&old) {
                    map.insert(new, x);
                }
            }
        }
    }
}

/// A name made from `metadata.generateName` keeps the prefix, not the random part.
fn generated_name(map: &mut Map<String, Value>) {
    let Some(Value::String(prefix)) = map.get("generateName").cloned() else {
        return;
    };
    if let Some(Value::String(name)) = map.get_mut("name")
        && name.starts_with(&prefix)
        && name.len() > prefix.len()
    {
        *name = format!("{prefix}<generated>");
    }
}

/// The parts of `v` at `paths` (see `corpus::Step::select`), as one array.
pub fn select(v: &Value, paths: &[String]) -> Value {
    Value::Array(paths.iter().map(|p| pick(v, p)).collect())
}

fn pick(v: &Value, path: &str) -> Value {
    let mut cur = v.clone();
    for seg in path.split('/').skip(1) {
        cur = if let Some(filter) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let (k, want) = filter.split_once('=').unwrap_or((filter, ""));
            cur.as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|i| i.get(k).and_then(Value::as_str) == Some(want))
                })
                .cloned()
                .unwrap_or(Value::Null)
        } else {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            match &cur {
                Value::Object(m) => m.get(&seg).cloned().unwrap_or(Value::Null),
                Value::Array(a) => seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i).cloned())
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            }
        };
    }
    cur
}

/// The differences between the embedded server's answer and the real one, one line each:
/// `~ /path: embedded X, real Y`, `- /path: only embedded: X`, `+ /path: only real: Y`.
pub fn differences(embedded: &Value, real: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(embedded, real, String::new(), &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        format!("{}…", &s[..s.floor_char_boundary(160)])
    } else {
        s
    }
}

/// Two long strings shown from a little before where they first differ.
fn around_difference(a: &str, b: &str) -> (String, String) {
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let from = a.floor_char_boundary(at.saturating_sub(30));
    let cut = |s: &str| {
        let s = s.get(from..).unwrap_or(s);
        let end = s.floor_char_boundary(120);
        let more = if s.len() > end { "…" } else { "" };
        let less = if from > 0 { "…" } else { "" };
        format!("\"{less}{}{more}\"", &s[..end])
    };
    (cut(a), cut(b))
}

fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(va, vb, p, out),
                    (Some(va), None) => out.push(format!("- {p}: only embedded: {}", short(va))),
                    (None, Some(vb)) => out.push(format!("+ {p}: only real: {}", short(vb))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(va, vb, format!("{path}/{i}"), out);
            }
        }
        _ if a == b => {}
        (Value::String(x), Value::String(y)) if x.len() > 100 || y.len() > 100 => {
            let (x, y) = around_difference(x, y);
            out.push(format!(
                "~ {}: embedded {x}, real {y}",
                if path.is_empty() { "/" } else { &path }
            ));
        }
        _ => out.push(format!(
            "~ {}: embedded {}, real {}",
            if path.is_empty() { "/" } else { &path },
            short(a),
            short(b)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uids_keep_their_identity_and_times_and_versions_become_placeholders() {
        let mut n = Normaliser::new(vec![("fid-1-abc".into(), "{ns}".into())]);
        let v = n.normalise(&json!({
            "metadata": {"name": "x", "namespace": "fid-1-abc", "uid": "u-1",
                         "resourceVersion": "42", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "ownerReferences": [{"uid": "u-0"}]},
            "spec": {"clusterIP": "10.0.0.7"}
        }));
        assert_eq!(v["metadata"]["namespace"], "{ns}");
        // Numbered in key order (the owner's reference comes before `uid`).
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "<uid:1>");
        assert_eq!(v["metadata"]["uid"], "<uid:2>");
        assert_eq!(v["metadata"]["resourceVersion"], "<rv>");
        assert_eq!(v["spec"]["clusterIP"], "<allocated>");
        let again = n.normalise(&json!({"metadata": {"uid": "u-0"}}));
        assert_eq!(again["metadata"]["uid"], "<uid:1>");
    }

    #[test]
    fn differences_name_the_path_and_both_values() {
        let d = differences(
            &json!({"a": 1, "b": [1, 2]}),
            &json!({"a": 2, "c": true, "b": [1, 3]}),
        );
        assert_eq!(
            d,
            [
                "~ /a: embedded 1, real 2",
                "~ /b/1: embedded 2, real 3",
                "+ /c: only real: true"
            ]
        );
    }

    #[test]
    fn select_picks_array_elements_by_key() {
        let v = json!({"resources": [{"name": "pods", "verbs": ["get"]}, {"name": "configmaps"}]});
        assert_eq!(
            select(&v, &["/resources/[name=pods]/verbs".into()]),
            json!([["get"]])
        );
    }
}
