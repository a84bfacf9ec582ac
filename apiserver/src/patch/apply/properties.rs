//! Randomized properties of server-side apply over seeded sequences of writes.

use serde_json::{Map, Value, json};

use super::tests::crd_schema;
use super::*;
use crate::patch::PatchType;

/// A tiny deterministic generator, so the randomized test below is reproducible.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> Vec<&'a str> {
        from.iter()
            .copied()
            .filter(|_| self.below(2) == 0)
            .collect()
    }
}

fn random_config(rng: &mut Lcg) -> Value {
    let mut spec = Map::new();
    if rng.below(2) == 0 {
        spec.insert("replicas".into(), json!(rng.below(5)));
    }
    let mut servers: Vec<Value> = rng
        .pick(&["a", "b", "c", "d"])
        .into_iter()
        .map(|name| {
            let mut server = json!({"name": name});
            if rng.below(2) == 0 {
                server["port"] = json!(rng.below(3));
            }
            server
        })
        .collect();
    if rng.below(2) == 0 {
        servers.reverse();
    }
    if !servers.is_empty() {
        spec.insert("servers".into(), Value::Array(servers));
    }
    let zones = rng.pick(&["x", "y", "z"]);
    if !zones.is_empty() {
        spec.insert("zones".into(), json!(zones));
    }
    if rng.below(2) == 0 {
        spec.insert("args".into(), json!(rng.pick(&["1", "2"])));
    }
    let mut labels = Map::new();
    for key in rng.pick(&["l1", "l2"]) {
        labels.insert(key.into(), json!("v"));
    }
    json!({"apiVersion": "cache.example.com/v1", "kind": "Redis",
           "metadata": {"name": "r", "labels": labels}, "spec": spec})
}

fn without_managed_fields(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    object
}

#[test]
fn a_sole_applier_going_from_a_to_b_and_back_to_a_ends_where_a_alone_ends() {
    let schema = crd_schema();
    let info = TypeInfo {
        api_version: "cache.example.com/v1",
        kind: "Redis",
        builtin: false,
        schema: Some(&schema),
    };
    let mut rng = Lcg(7);
    for round in 0..300 {
        let a = random_config(&mut rng);
        let b = random_config(&mut rng);
        let x1 = server_side_apply(&info, None, &a, "m", false).expect("creates");
        let x2 = server_side_apply(&info, Some(&x1), &b, "m", false).expect("applies b");
        let x3 = server_side_apply(&info, Some(&x2), &a, "m", false).expect("applies a again");
        assert_eq!(
            without_managed_fields(x3.clone()),
            without_managed_fields(x1.clone()),
            "round {round}: a={a} b={b}"
        );
        let again = server_side_apply(&info, Some(&x3), &a, "m", false).expect("re-applies");
        assert_eq!(again, x3, "round {round}: re-applying must change nothing");
    }
}

/// Every member path of every managedFields entry exists in the object.
fn assert_owned_fields_exist(object: &Value, context: &str) {
    for entry in managed_fields::read(object) {
        entry.fields.for_each_member(&mut |path, _| {
            assert!(
                fieldset::get_path(object, path).is_some(),
                "{context}: {} owns {} which is not in {object}",
                entry.manager,
                fieldset::display(path)
            );
        });
    }
}

/// Every leaf of the object is owned by some manager (at its path or an atomic ancestor).
fn assert_every_leaf_is_owned(info: &TypeInfo<'_>, object: &Value, context: &str) {
    let mut leaves = FieldSet::default();
    fieldset::collect(
        object,
        Shape::root(info),
        Level::Root,
        Style::Apply,
        &mut leaves,
    )
    .expect("collects");
    leaves.compact();
    let entries = managed_fields::read(object);
    leaves.for_each_member(&mut |path, node| {
        if !node.children.is_empty() {
            return;
        }
        // A key field is implied by its item's `k:` element: whoever owns anything in the
        // item pins its key.
        if let [.., item, field] = path
            && let Some(key) = item.strip_prefix("k:")
            && serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|key| {
                field
                    .strip_prefix("f:")
                    .is_some_and(|f| key.contains_key(f))
            })
            && entries
                .iter()
                .any(|e| e.fields.touches(&path[..path.len() - 1]))
        {
            return;
        }
        let owned = entries.iter().any(|e| {
            (1..=path.len()).any(|n| {
                e.fields
                    .node(&path[..n])
                    .is_some_and(|f| f.member && (n == path.len() || f.children.is_empty()))
            })
        });
        assert!(
            owned,
            "{context}: nobody owns {} in {object}",
            fieldset::display(path)
        );
    });
}

#[test]
fn managed_fields_stay_consistent_with_the_object_across_random_writes_by_several_managers() {
    let schema = crd_schema();
    let info = TypeInfo {
        api_version: "cache.example.com/v1",
        kind: "Redis",
        builtin: false,
        schema: Some(&schema),
    };
    let mut rng = Lcg(11);
    for round in 0..200 {
        let mut object =
            server_side_apply(&info, None, &random_config(&mut rng), "m1", false).expect("creates");
        for step in 0..6 {
            let context = format!("round {round} step {step}");
            object = match rng.below(3) {
                0 => server_side_apply(&info, Some(&object), &random_config(&mut rng), "m1", true),
                1 => server_side_apply(&info, Some(&object), &random_config(&mut rng), "m2", true),
                _ => {
                    let patch = json!({"spec": {"replicas": rng.below(5), "servers": [{"name": "a", "port": 9}]},
                                       "metadata": {"labels": {"l1": null, "l3": "u"}}});
                    crate::patch::apply_patch(PatchType::Merge, &info, Some(&object), &patch, "m3", false)
                }
            }
            .expect(&context);
            assert_owned_fields_exist(&object, &context);
            assert_every_leaf_is_owned(&info, &object, &context);
        }
    }
}
