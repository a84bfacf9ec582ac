//! `#[derive(CustomResource)]` through the SDK, as a plugin uses it: the generated type, its
//! `Object` impl, its serialization, and the CRD (names, scope, subresource, printer columns,
//! a structural schema with the validation attributes).

use std::collections::BTreeMap;

use kubewasm_sdk::schemars::{self, JsonSchema};
use kubewasm_sdk::{CustomResource, CustomResourceExt, Object};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Scales a Deployment on a schedule.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kubewasm(
    group = "demo.kubewasm.dev",
    version = "v1",
    kind = "ScaleSchedule",
    namespaced
)]
#[kubewasm(status = "ScaleScheduleStatus", shortname = "ss", derive = "Default")]
#[kubewasm(
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.deployment","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScaleScheduleSpec {
    /// The Deployment to scale.
    #[schemars(length(min = 1))]
    pub deployment: String,
    /// Replicas while the schedule is active.
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// When to scale back, if ever.
    pub until: Option<String>,
    /// How to scale.
    #[serde(default)]
    pub mode: Mode,
    /// A window, if any.
    pub window: Option<Window>,
    /// Free-form settings kept as they are.
    #[serde(default)]
    pub extra: Option<Value>,
    /// Labels to set.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Tags (a set).
    #[serde(default)]
    pub tags: std::collections::BTreeSet<String>,
    /// A port, if any (int or string).
    pub port: Option<Port>,
    /// The target port (int or string).
    pub target_port: Port,
}

/// A port number or name, with the schema k8s-openapi gives `IntOrString`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(untagged)]
pub enum Port {
    #[default]
    None,
    Number(i32),
    Name(String),
}

impl JsonSchema for Port {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"x-kubernetes-int-or-string": true})
    }
}

/// How to scale.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub enum Mode {
    /// All at once.
    #[default]
    Now,
    /// A step at a time.
    Gradual,
}

/// A time window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Window {
    /// Daily, between two hours.
    Daily { from: u8, to: u8 },
    /// Once.
    Once { at: String },
}

/// What the controller last did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct ScaleScheduleStatus {
    pub applied: bool,
    pub message: Option<String>,
}

// A cluster-scoped kind without status, with its own plural and no printer columns (and no
// doc comment: the schema's description says what it is).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kubewasm(group = "demo.kubewasm.dev", version = "v1alpha1", kind = "Mouse")]
#[kubewasm(plural = "mice", category = "all")]
pub struct MouseSpec {
    pub name: String,
}

#[test]
fn the_generated_type_is_an_object_of_its_kind() {
    assert_eq!(ScaleSchedule::GROUP, "demo.kubewasm.dev");
    assert_eq!(ScaleSchedule::VERSION, "v1");
    assert_eq!(ScaleSchedule::KIND, "ScaleSchedule");
    const { assert!(ScaleSchedule::NAMESPACED) };
    const { assert!(!Mouse::NAMESPACED) };
    let s = ScaleSchedule::new("nightly", ScaleScheduleSpec::default());
    assert_eq!(s.meta().name.as_deref(), Some("nightly"));
    assert_eq!(s.status, None);
    let d = ScaleSchedule::default();
    assert_eq!(d.metadata.name, None);
}

#[test]
fn serialization_writes_api_version_and_kind_and_reads_them_back() {
    let mut s = ScaleSchedule::new(
        "nightly",
        ScaleScheduleSpec {
            deployment: "web".into(),
            replicas: 3,
            ..Default::default()
        },
    );
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["apiVersion"], "demo.kubewasm.dev/v1");
    assert_eq!(v["kind"], "ScaleSchedule");
    assert_eq!(v["metadata"]["name"], "nightly");
    assert_eq!(v["spec"]["replicas"], 3);
    assert!(
        v.get("status").is_none(),
        "no status until there is one: {v}"
    );

    s.status = Some(ScaleScheduleStatus {
        applied: true,
        message: None,
    });
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["status"]["applied"], true);
    let back: ScaleSchedule = serde_json::from_value(v).unwrap();
    assert_eq!(back.spec, s.spec);
    assert_eq!(back.status, s.status);

    let m = serde_json::to_value(Mouse::new("jerry", MouseSpec { name: "j".into() })).unwrap();
    assert_eq!(m["apiVersion"], "demo.kubewasm.dev/v1alpha1");
    assert!(m.get("status").is_none());
}

#[test]
fn the_crd_names_scope_version_subresource_and_columns() {
    let crd = ScaleSchedule::crd();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "scaleschedules.demo.kubewasm.dev");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "demo.kubewasm.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(
        spec["names"],
        json!({"plural": "scaleschedules", "singular": "scaleschedule", "kind": "ScaleSchedule",
               "listKind": "ScaleScheduleList", "shortNames": ["ss"]})
    );
    let versions = spec["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(
        (&v["name"], &v["served"], &v["storage"]),
        (&json!("v1"), &json!(true), &json!(true))
    );
    assert_eq!(v["subresources"], json!({"status": {}}));
    assert_eq!(
        v["additionalPrinterColumns"],
        json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Target", "type": "string", "jsonPath": ".spec.deployment", "priority": 1},
        ])
    );

    let mouse = Mouse::crd();
    assert_eq!(mouse["metadata"]["name"], "mice.demo.kubewasm.dev");
    assert_eq!(mouse["spec"]["scope"], "Cluster");
    assert_eq!(mouse["spec"]["names"]["plural"], "mice");
    assert_eq!(mouse["spec"]["names"]["categories"], json!(["all"]));
    let v = &mouse["spec"]["versions"][0];
    assert_eq!(v["name"], "v1alpha1");
    assert!(v.get("subresources").is_none(), "{v}");
    assert!(v.get("additionalPrinterColumns").is_none(), "{v}");
    let schema = &v["schema"]["openAPIV3Schema"];
    assert!(schema["properties"].get("status").is_none());
    assert_eq!(
        schema["description"],
        "A Mouse (demo.kubewasm.dev/v1alpha1)."
    );
}

/// Every schema node, with its JSON pointer.
fn nodes<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            out.push((at.clone(), v));
            for (k, child) in m {
                nodes(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                nodes(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_schema_is_structural_and_carries_the_validation_attributes() {
    let crd = ScaleSchedule::crd();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let text = schema.to_string();
    for banned in [
        "$ref",
        "$schema",
        "definitions",
        "$defs",
        "\"const\"",
        "uniqueItems",
    ] {
        assert!(!text.contains(banned), "{banned} in {schema:#}");
    }
    let mut all = Vec::new();
    nodes(schema, String::new(), &mut all);
    for (at, node) in &all {
        if let Some(Value::Array(any)) = node.get("anyOf") {
            assert!(
                !any.iter().any(|s| s.get("enum") == Some(&json!([null]))
                    || s.get("type") == Some(&json!("null"))),
                "anyOf with null at {at}: {node}"
            );
        }
        if let Some(Value::Array(types)) = node.get("type") {
            panic!("a type list at {at}: {types:?}");
        }
    }

    assert_eq!(schema["type"], "object");
    assert_eq!(schema["description"], "Scales a Deployment on a schedule.");
    assert!(
        schema["properties"].get("metadata").is_none(),
        "metadata is the server's"
    );
    assert_eq!(schema["required"], json!(["spec"]));
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["type"], "object");
    let props = &spec["properties"];
    assert_eq!(props["replicas"]["type"], "integer");
    assert_eq!(props["replicas"]["minimum"], 0);
    assert_eq!(props["replicas"]["maximum"], 100);
    assert_eq!(props["deployment"]["minLength"], 1);
    assert_eq!(
        props["deployment"]["description"],
        "The Deployment to scale."
    );
    let required = spec["required"].as_array().unwrap();
    assert!(required.contains(&json!("deployment")) && required.contains(&json!("replicas")));
    assert!(!required.contains(&json!("until")));
    // Option<String>: nullable, not anyOf.
    assert_eq!(
        props["until"],
        json!({"type": "string", "nullable": true, "description": "When to scale back, if ever."})
    );
    // A unit enum whose variants have docs: one enum of strings.
    assert_eq!(props["mode"]["type"], "string");
    assert_eq!(props["mode"]["enum"], json!(["Now", "Gradual"]));
    // An optional internally tagged enum: one nullable object with every variant's fields.
    let window = &props["window"];
    assert_eq!(window["type"], "object");
    assert_eq!(window["nullable"], true);
    assert_eq!(
        window["properties"]["kind"]["enum"],
        json!(["daily", "once"])
    );
    assert_eq!(window["properties"]["from"]["maximum"], 255);
    assert_eq!(window["properties"]["at"]["type"], "string");
    // Any JSON is kept as it is.
    assert_eq!(props["extra"]["x-kubernetes-preserve-unknown-fields"], true);
    // A map of strings.
    assert_eq!(props["labels"]["type"], "object");
    assert_eq!(props["labels"]["additionalProperties"]["type"], "string");
    assert_eq!(props["tags"]["type"], "array");
    // An optional int-or-string may be null (schemars cannot say so without a type).
    assert_eq!(props["port"]["x-kubernetes-int-or-string"], true);
    assert_eq!(props["port"]["nullable"], true);
    assert!(props["targetPort"].get("nullable").is_none());
    // The status.
    let status = &schema["properties"]["status"];
    assert_eq!(status["type"], "object");
    assert_eq!(status["nullable"], true);
    assert_eq!(status["properties"]["applied"]["type"], "boolean");
}
