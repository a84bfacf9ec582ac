//! The run-time half of the CRD: code, emitted into each `crd()`, that turns the schema
//! `schemars` generates (OpenAPI 3, subschemas inlined) into a structural schema as
//! Kubernetes requires it for a CustomResourceDefinition (the rules kube-rs's
//! `StructuralSchemaRewriter` applies, on `serde_json::Value`).
//!
//! It is emitted rather than shared because a proc-macro crate can only export macros and the
//! SDK should not carry it for plugins without custom resources; it is a few hundred bytes
//! of wasm per custom resource type.

use proc_macro2::TokenStream;
use quote::quote;

/// Items `structural_root(&mut Value)` and its helpers, for a function body. Written for
/// every Rust edition (no let chains): the code is compiled with the plugin's edition.
pub fn structural_fn(json: &TokenStream) -> TokenStream {
    quote! {
        type Value = #json::Value;
        type Map = #json::Map<::std::string::String, #json::Value>;

        /// The root: an object whose `metadata` the API server validates itself.
        fn structural_root(schema: &mut Value) {
            if let Value::Object(map) = schema {
                for key in ["$schema", "$defs", "definitions", "title"] {
                    map.remove(key);
                }
                map.insert("type".into(), "object".into());
            }
            structural(schema);
        }

        /// `null`'s schema after schemars' `AddNullable`: `{"nullable": true, "enum": [null]}`.
        fn is_null(schema: &Value) -> bool {
            schema.get("type").and_then(Value::as_str) == ::core::option::Option::Some("null")
                || schema.get("enum").and_then(Value::as_array).is_some_and(|e| e.len() == 1 && e[0].is_null())
        }

        /// A field with no type at all (`serde_json::Value`, `()`): any JSON, kept whole.
        fn preserve_untyped(schema: &mut Value) {
            if let Value::Object(map) = schema {
                const TYPED: [&str; 9] = [
                    "type", "anyOf", "oneOf", "allOf", "not", "enum", "$ref",
                    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
                ];
                if !TYPED.iter().any(|k| map.contains_key(*k)) {
                    map.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
                    // Any JSON, null included (schemars cannot mark `Option<Value>`).
                    map.insert("nullable".into(), true.into());
                }
            }
        }

        /// Adds `from`'s enum values to `into`'s (an internally tagged enum's tag property).
        fn merge_enum(into: &mut Value, from: Value) {
            let extra = match from.get("enum").and_then(Value::as_array) {
                ::core::option::Option::Some(e) => e.clone(),
                ::core::option::Option::None => return,
            };
            if let ::core::option::Option::Some(Value::Array(values)) = into.get_mut("enum") {
                for v in extra {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
        }

        fn structural(schema: &mut Value) {
            let Value::Object(map) = schema else { return };

            // Children first.
            for key in ["properties", "patternProperties"] {
                if let ::core::option::Option::Some(Value::Object(props)) = map.get_mut(key) {
                    for child in props.values_mut() {
                        structural(child);
                        preserve_untyped(child);
                    }
                }
            }
            for key in ["items", "additionalProperties"] {
                if let ::core::option::Option::Some(child) = map.get_mut(key) {
                    if child.is_object() {
                        structural(child);
                        preserve_untyped(child);
                    }
                }
            }
            for key in ["anyOf", "oneOf", "allOf"] {
                if let ::core::option::Option::Some(Value::Array(subs)) = map.get_mut(key) {
                    for sub in subs {
                        structural(sub);
                    }
                }
            }

            for key in ["anyOf", "oneOf"] {
                let subs = match map.get(key) {
                    ::core::option::Option::Some(Value::Array(subs)) => subs,
                    _ => continue,
                };
                // `Option<T>`: `anyOf [T, null]` -> T with `nullable: true`.
                if subs.len() == 2 && subs.iter().filter(|s| is_null(s)).count() == 1 {
                    if let ::core::option::Option::Some(Value::Array(subs)) = map.remove(key) {
                        for sub in subs {
                            if let Value::Object(inner) = sub {
                                if !is_null(&Value::Object(inner.clone())) {
                                    for (k, v) in inner {
                                        map.entry(k).or_insert(v);
                                    }
                                }
                            }
                        }
                    }
                    map.insert("nullable".into(), true.into());
                    continue;
                }
                // A unit enum with documented variants: `oneOf [{enum: [A]}, ..]` -> `enum [A, ..]`.
                if !subs.is_empty()
                    && subs.iter().all(|s| {
                        s.get("enum").is_some_and(Value::is_array) && s.get("properties").is_none()
                    })
                {
                    if let ::core::option::Option::Some(Value::Array(subs)) = map.remove(key) {
                        let mut values = ::std::vec::Vec::new();
                        for sub in subs {
                            if !map.contains_key("type") {
                                if let ::core::option::Option::Some(ty) = sub.get("type") {
                                    map.insert("type".into(), ty.clone());
                                }
                            }
                            if let ::core::option::Option::Some(Value::Array(e)) = sub.get("enum") {
                                values.extend(e.iter().cloned());
                            }
                        }
                        map.insert("enum".into(), Value::Array(values));
                    }
                    continue;
                }
                // A tagged enum (or untagged structs): one object with every variant's
                // properties; the variants keep only which properties they require.
                if !subs.is_empty()
                    && subs.iter().all(|s| {
                        s.get("properties").is_some_and(Value::is_object)
                            || s.get("type").and_then(Value::as_str) == ::core::option::Option::Some("object")
                    })
                {
                    if let ::core::option::Option::Some(Value::Array(subs)) = map.remove(key) {
                        let mut variants = ::std::vec::Vec::new();
                        for sub in subs {
                            let Value::Object(mut sub) = sub else { continue };
                            if let ::core::option::Option::Some(Value::Object(props)) = sub.remove("properties") {
                                let target = map
                                    .entry("properties")
                                    .or_insert_with(|| Value::Object(Map::new()));
                                if let Value::Object(target) = target {
                                    for (k, v) in props {
                                        match target.get_mut(&k) {
                                            ::core::option::Option::Some(existing) => merge_enum(existing, v),
                                            ::core::option::Option::None => {
                                                target.insert(k, v);
                                            }
                                        }
                                    }
                                }
                            }
                            let mut variant = Map::new();
                            if let ::core::option::Option::Some(required) = sub.remove("required") {
                                variant.insert("required".into(), required);
                            }
                            variants.push(Value::Object(variant));
                        }
                        map.insert("type".into(), "object".into());
                        if variants.iter().all(|v| v.get("required").is_some()) {
                            map.insert(key.into(), Value::Array(variants));
                        }
                    }
                }
            }

            // An optional int-or-string (`Option<IntOrString>`, `Option<Quantity>`): schemars
            // cannot mark a schema without `type` as nullable; a field that is not required
            // may be null (it is an `Option` or has a serde default).
            let required: ::std::vec::Vec<Value> = map
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let ::core::option::Option::Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, child) in props.iter_mut() {
                    let int_or_string = child.get("x-kubernetes-int-or-string")
                        == ::core::option::Option::Some(&Value::Bool(true));
                    if int_or_string && !required.iter().any(|r| r.as_str() == ::core::option::Option::Some(name.as_str())) {
                        if let Value::Object(child) = child {
                            child.insert("nullable".into(), true.into());
                        }
                    }
                }
            }

            // Maps: `additionalProperties: true` keeps unknown fields; a schema may not have
            // both `properties` and `additionalProperties`; `false` is the default anyway.
            let has_properties = map
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty());
            match map.get("additionalProperties") {
                ::core::option::Option::Some(Value::Bool(false)) => {
                    map.remove("additionalProperties");
                }
                ::core::option::Option::Some(_) if has_properties => {
                    map.remove("additionalProperties");
                    map.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
                }
                ::core::option::Option::Some(Value::Bool(true)) => {
                    map.insert(
                        "additionalProperties".into(),
                        #json::json!({"x-kubernetes-preserve-unknown-fields": true}),
                    );
                }
                _ => {}
            }

            // Kubernetes refuses `uniqueItems: true` (use `x-kubernetes-list-type: set`).
            map.remove("uniqueItems");
            // `null` is allowed by `nullable`, not as an enum value (a schema of `null`
            // alone stays as it is, for its parent's `anyOf` above to recognize).
            if map.get("nullable") == ::core::option::Option::Some(&Value::Bool(true)) {
                if let ::core::option::Option::Some(Value::Array(values)) = map.get_mut("enum") {
                    if values.iter().any(|v| !v.is_null()) {
                        values.retain(|v| !v.is_null());
                    }
                }
            }
            // `#[serde(default)]` on an `Option`: absent already means null, and Kubernetes
            // refuses a null default on a field that is not nullable.
            if map.get("default") == ::core::option::Option::Some(&Value::Null)
                && map.get("nullable") != ::core::option::Option::Some(&Value::Bool(true))
            {
                map.remove("default");
            }
        }
    }
}
