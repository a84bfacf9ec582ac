//! The JSONPath subset CRD printer columns use (`.a.b`, `['k']`, `[n]`, `[*]`, `[?(@.k=="v")]`), evaluated
//! as `k8s.io/client-go/util/jsonpath` with missing keys allowed: every match, in order.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path == "value")]` (or `!=`).
    Filter {
        path: Vec<String>,
        value: Value,
        equal: bool,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if i == start {
                    continue;
                }
                if name == "*" {
                    steps.push(Step::All);
                } else {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let mut depth = 0;
                let start = i + 1;
                let mut end = None;
                let mut quote: Option<char> = None;
                for (j, &c) in chars.iter().enumerate().skip(i) {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(c),
                        (None, '[') => depth += 1,
                        (None, ']') => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end?;
                let inner: String = chars[start..end].iter().collect();
                steps.push(bracket(inner.trim())?);
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Some(k) = unquote(inner) {
        return Some(Step::Field(k.to_string()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Some(Step::Index(n));
    }
    let cond = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, rhs, equal) = if let Some((l, r)) = cond.split_once("==") {
        (l, r, true)
    } else {
        let (l, r) = cond.split_once("!=")?;
        (l, r, false)
    };
    let lhs = lhs.trim().strip_prefix('@')?;
    let path: Vec<String> = lhs
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let rhs = rhs.trim();
    let value = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs).ok()?,
    };
    Some(Step::Filter { path, value, equal })
}

/// Every value `path` selects in `obj`, in order (none when the path does not parse or nothing matches).
pub fn find<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut cur = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(k) => next.extend(v.get(k.as_str())),
                Step::Index(n) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                        if idx >= 0 {
                            next.extend(a.get(idx as usize));
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, value, equal } => {
                    for item in v.as_array().into_iter().flatten() {
                        let mut x = Some(item);
                        for k in path {
                            x = x.and_then(|x| x.get(k.as_str()));
                        }
                        let same = x.is_some_and(|x| x == value);
                        if x.is_some() && same == *equal {
                            next.push(item);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// A value as jsonpath prints it: strings as they are, other values as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_printer_columns_use() {
        let o = json!({"spec": {"replicas": 3, "list": [{"a": 1}, {"a": 2}]},
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        assert_eq!(find(&o, ".spec.replicas"), vec![&json!(3)]);
        assert_eq!(find(&o, ".spec.list[1].a"), vec![&json!(2)]);
        assert_eq!(find(&o, ".spec.list[-1].a"), vec![&json!(2)]);
        assert_eq!(find(&o, ".spec.list[*].a"), vec![&json!(1), &json!(2)]);
        assert_eq!(
            find(&o, ".status.conditions[?(@.type==\"Synced\")].status"),
            vec![&json!("False")]
        );
        assert_eq!(
            find(&o, ".status.conditions[?(@.type=='Ready')].status"),
            vec![&json!("True")]
        );
        assert_eq!(
            find(&o, ".metadata.labels['app.kubernetes.io/name']"),
            vec![&json!("x")]
        );
        assert_eq!(
            find(&o, ".metadata.labels.app\\.kubernetes\\.io/name"),
            vec![&json!("x")]
        );
        assert!(find(&o, ".spec.missing.deeper").is_empty());
        assert!(find(&o, ".spec.list[").is_empty());
        assert_eq!(text(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(text(&json!(true)), "true");
    }
}
