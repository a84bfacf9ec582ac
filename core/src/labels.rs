//! `Labels`: an object's labels packed into two allocations, sorted by key, and `LabelSource`, what a
//! selector can be matched against.

use std::collections::BTreeMap;
use std::fmt;

/// Something a [`crate::LabelSelector`] can be matched against.
pub trait LabelSource {
    /// The value of label `key`, if set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl LabelSource for serde_json::Map<String, serde_json::Value> {
    /// A label map as JSON (`metadata.labels`); a value that is not a string is no label.
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }
}

/// Labels of a cached object, sorted by key. Keys and values live in one string buffer with one
/// offset table, instead of a `BTreeMap` (whose first node alone reserves room for 11 pairs) and two
/// allocations per label: labels are kept for every cached object, so this matters at 100k objects.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    text: Box<str>,
    /// (key start, key end = value start, value end) into `text`.
    spans: Box<[(u32, u32, u32)]>,
}

impl Labels {
    /// Packs a label map (already sorted by key).
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(map.iter().map(|(k, v)| k.len() + v.len()).sum());
        let mut spans = Vec::with_capacity(map.len());
        for (k, v) in map {
            let start = offset(text.len());
            text.push_str(k);
            let mid = offset(text.len());
            text.push_str(v);
            spans.push((start, mid, offset(text.len())));
        }
        Self {
            text: text.into_boxed_str(),
            spans: spans.into_boxed_slice(),
        }
    }

    fn pair(&self, span: (u32, u32, u32)) -> (&str, &str) {
        let (a, b, c) = (span.0 as usize, span.1 as usize, span.2 as usize);
        (
            self.text.get(a..b).unwrap_or(""),
            self.text.get(b..c).unwrap_or(""),
        )
    }

    /// The value of `key`, if set (binary search).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.spans
            .binary_search_by(|s| self.pair(*s).0.cmp(key))
            .ok()
            .map(|i| self.pair(self.spans[i]).1)
    }

    /// The labels as (key, value), sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|s| self.pair(*s))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The labels as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.text.len() + self.spans.len() * size_of::<(u32, u32, u32)>()
    }
}

/// Label keys and values are at most a few hundred bytes; saturate rather than wrap on absurd input.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl LabelSource for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_pack_sorted_pairs_and_find_them() {
        let map: BTreeMap<String, String> = [
            ("tier", "front"),
            ("app", "web"),
            ("app.kubernetes.io/name", ""),
            ("z", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let l = Labels::from_map(&map);
        assert_eq!(l.len(), 4);
        assert_eq!(l.get("app"), Some("web"));
        assert_eq!(l.get("app.kubernetes.io/name"), Some(""));
        assert_eq!(l.get("tier"), Some("front"));
        assert_eq!(l.get("z"), Some("1"));
        assert_eq!(l.get("ap"), None);
        assert_eq!(l.get("zz"), None);
        assert_eq!(l.to_map(), map);
        assert_eq!(
            l.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["app", "app.kubernetes.io/name", "tier", "z"]
        );
        assert!(Labels::from_map(&BTreeMap::new()).is_empty());
    }
}
