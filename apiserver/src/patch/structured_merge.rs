//! Merging an applied configuration into a live object, as structured-merge-diff does.

use serde_json::{Map, Value};

use super::fieldset::{self, Level};
use super::merge_keys::{ListKind, Shape};

/// Merges an applied configuration value into a live value: objects field by field, associative
/// lists item by item (by key), sets by value, everything else replaced. `null` in the
/// configuration leaves the live value alone.
pub(crate) fn merge_value(live: &mut Value, config: &Value, shape: Shape<'_>, level: Level) {
    match config {
        Value::Object(config_map) if !shape.is_atomic_object() => {
            if !live.is_object() {
                *live = Value::Object(Map::new());
            }
            let Value::Object(live_map) = live else {
                return;
            };
            for (key, value) in config_map {
                if value.is_null() {
                    continue;
                }
                if level == Level::Metadata && key == "managedFields" {
                    continue;
                }
                let slot = live_map.entry(key.clone()).or_insert(Value::Null);
                merge_value(slot, value, shape.field(key), level.below(key));
            }
        }
        Value::Array(config_items) => match (shape.list_kind(), live.as_array_mut()) {
            (ListKind::Set, Some(live_items)) => {
                let merged = merge_list_items(
                    std::mem::take(live_items),
                    config_items,
                    |item| Some(fieldset::value_element(item)),
                    |slot, _| slot,
                );
                *live_items = merged;
            }
            (ListKind::Map(keys), Some(live_items)) => {
                let item_shape = shape.items();
                let merged = merge_list_items(
                    std::mem::take(live_items),
                    config_items,
                    |item| fieldset::key_element(item, keys),
                    |mut slot, config_item| {
                        merge_value(&mut slot, config_item, item_shape, Level::Inner);
                        slot
                    },
                );
                *live_items = merged;
            }
            _ => *live = without_nulls(config),
        },
        other => *live = without_nulls(other),
    }
}

/// structured-merge-diff's associative merge of a live list with an applied list: the applied
/// items come in the applied order (merged with their live counterparts), and live-only items keep
/// their place relative to the items around them.
fn merge_list_items(
    live: Vec<Value>,
    config: &[Value],
    key_of: impl Fn(&Value) -> Option<String>,
    merge: impl Fn(Value, &Value) -> Value,
) -> Vec<Value> {
    use std::collections::{HashMap, HashSet};

    let live_keys: Vec<Option<String>> = live.iter().map(&key_of).collect();
    let config_keys: Vec<Option<String>> = config.iter().map(&key_of).collect();
    let in_config: HashMap<&str, usize> = config_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_deref().map(|k| (k, i)))
        .collect();
    let live_index: HashMap<&str, usize> = live_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_deref().map(|k| (k, i)))
        .collect();
    let mut shared = config_keys
        .iter()
        .filter_map(|k| k.as_deref())
        .filter(|k| live_index.contains_key(k));
    let mut next_shared = shared.next();
    let mut live_slots: Vec<Option<Value>> = live.into_iter().map(Some).collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(live_slots.len() + config.len());
    let (mut l, mut r) = (0, 0);
    while l < live_keys.len() || r < config.len() {
        let live_key = live_keys.get(l).and_then(|k| k.as_deref());
        if l < live_keys.len() && r < config.len() {
            let config_key = config_keys.get(r).and_then(|k| k.as_deref());
            if live_key.is_some() && live_key == config_key {
                if let (Some(key), Some(item), Some(cfg)) = (
                    live_key,
                    live_slots.get_mut(l).and_then(Option::take),
                    config.get(r),
                ) {
                    done.insert(key);
                    out.push(merge(item, cfg));
                }
                if next_shared == live_key {
                    next_shared = shared.next();
                }
                l += 1;
                r += 1;
                continue;
            }
            if live_key.is_some_and(|k| in_config.contains_key(k))
                && next_shared.is_some()
                && next_shared != live_key
            {
                l += 1;
                continue;
            }
        }
        if l < live_keys.len() {
            match live_key {
                Some(key) if in_config.contains_key(key) => {
                    if done.contains(key) {
                        l += 1;
                        continue;
                    }
                }
                _ => {
                    out.extend(live_slots.get_mut(l).and_then(Option::take));
                    l += 1;
                    continue;
                }
            }
        }
        if let Some(cfg) = config.get(r) {
            let config_key = config_keys.get(r).and_then(|k| k.as_deref());
            let existing = config_key
                .filter(|k| !done.contains(k))
                .and_then(|k| live_index.get(k))
                .and_then(|&i| live_slots.get_mut(i).and_then(Option::take));
            out.push(match existing {
                Some(item) => merge(item, cfg),
                None => without_nulls(cfg),
            });
            if let Some(key) = config_key {
                done.insert(key);
            }
            if next_shared.is_some() && next_shared == config_key {
                next_shared = shared.next();
            }
            r += 1;
        } else {
            // Only reachable with duplicate keys in the live list: keep the rest as they are.
            out.extend(live_slots.get_mut(l).and_then(Option::take));
            l += 1;
        }
    }
    out
}

/// A configuration value with `null` fields dropped (they mean "not specified").
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_merge_follows_the_applied_order_and_keeps_live_only_items() {
        let key = |v: &Value| v.as_str().map(str::to_owned);
        let keep = |slot: Value, _: &Value| slot;
        let merged = merge_list_items(
            vec![json!("a"), json!("b")],
            &[json!("b"), json!("a")],
            key,
            keep,
        );
        assert_eq!(merged, vec![json!("b"), json!("a")]);
        let merged = merge_list_items(
            vec![json!("a"), json!("z"), json!("b")],
            &[json!("a"), json!("b"), json!("c")],
            key,
            keep,
        );
        assert_eq!(merged, vec![json!("a"), json!("z"), json!("b"), json!("c")]);
    }
}
