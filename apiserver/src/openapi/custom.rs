//! `/openapi/v3` documents for CRD-defined group/versions, built as kube-apiserver's
//! `apiextensions-apiserver/pkg/controller/openapi/builder` builds them: one model per kind named by
//! the reversed group (`com.example.stable.v1.CronTab` and `...CronTabList`) with
//! `x-kubernetes-group-version-kind`, `metadata` as a `$ref` to ObjectMeta, the meta definitions the
//! paths refer to copied in, and every CRD of the group/version merged into one document.

use serde_json::{Map, Value, json};

use super::builtin;
use crate::registry::ResourceType;

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const EMBEDDED_API_VERSION_DESCRIPTION: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DESCRIPTION: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
const REF_PREFIX: &str = "#/components/schemas/";

/// `stable.example.com` -> `com.example.stable`.
fn reversed_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The model name of a kind: `com.example.stable.v1.CronTab`.
pub(crate) fn model_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}.{version}.{kind}", reversed_group(group))
}

/// `probe.example.com` + `v1` -> `ProbeExampleComV1` (operation ids) and `probeExampleCom_v1` (tags).
fn camel(group: &str) -> String {
    group
        .split(['.', '-'])
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn tag(group: &str, version: &str) -> String {
    let c = camel(group);
    let mut chars = c.chars();
    let lower: String = chars
        .next()
        .map(|f| f.to_lowercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{lower}_{version}")
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

fn content(model: &str) -> Value {
    json!({
        "application/json": {"schema": schema_ref(model)},
        "application/yaml": {"schema": schema_ref(model)},
    })
}

/// kube-apiserver's query and path parameters by name, taken from the built-in core/v1 document so
/// their descriptions are the server's own; `patch` picks the PATCH operation's variants.
struct Params {
    plain: Map<String, Value>,
    patch: Map<String, Value>,
}

impl Params {
    fn load() -> Params {
        let mut plain = Map::new();
        let mut patch = Map::new();
        let doc: Value = builtin::v3()
            .get("api/v1")
            .and_then(|d| serde_json::from_slice(&d.bytes).ok())
            .unwrap_or(Value::Null);
        let collect = |target: &mut Map<String, Value>, list: Option<&Value>| {
            for p in list.and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = p["name"].as_str() {
                    target.entry(name).or_insert_with(|| p.clone());
                }
            }
        };
        for item in doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            collect(&mut plain, item.get("parameters"));
            for (method, op) in item.as_object().into_iter().flatten() {
                if method == "patch" {
                    collect(&mut patch, op.get("parameters"));
                } else if method != "parameters" {
                    collect(&mut plain, op.get("parameters"));
                }
            }
        }
        Params { plain, patch }
    }

    fn get(&self, name: &str) -> Value {
        self.plain.get(name).cloned().unwrap_or_else(
            || json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
        )
    }

    fn list(&self, names: &[&str]) -> Value {
        Value::Array(names.iter().map(|n| self.get(n)).collect())
    }

    fn for_patch(&self, names: &[&str]) -> Value {
        Value::Array(
            names
                .iter()
                .map(|n| self.patch.get(*n).cloned().unwrap_or_else(|| self.get(n)))
                .collect(),
        )
    }
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "shardSelector",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];

fn unauthorized(mut responses: Map<String, Value>) -> Value {
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(responses)
}

fn responses(codes: &[(&str, &str)], model: &str) -> Value {
    let mut m = Map::new();
    for (code, description) in codes {
        m.insert(
            (*code).into(),
            json!({"description": description, "content": content(model)}),
        );
    }
    unauthorized(m)
}

struct Op<'a> {
    t: &'a ResourceType,
    tag: String,
    prefix: String,
}

impl Op<'_> {
    /// One operation: `verb` names the operation id's verb, `what` the id's object part.
    fn make(
        &self,
        verb: &str,
        what: &str,
        action: &str,
        description: String,
    ) -> Map<String, Value> {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert("description".into(), json!(description));
        op.insert(
            "operationId".into(),
            json!(format!("{verb}{}{what}", self.prefix)),
        );
        op.insert("x-kubernetes-action".into(), json!(action));
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": self.t.group, "version": self.t.version, "kind": self.t.kind}),
        );
        op
    }
}

/// One served CRD version: its resource type and the CRD's `spec.names.listKind`.
pub(crate) struct CustomKind<'a> {
    /// The served resource.
    pub t: &'a ResourceType,
    /// The kind of its lists (`WidgetList` unless the CRD names another).
    pub list_kind: String,
}

/// The paths of one CRD version's resource (and its `/status` and `/scale`).
fn paths_for(c: &CustomKind<'_>, params: &Params, paths: &mut Map<String, Value>) {
    let t = c.t;
    let kind = &t.kind;
    let model = model_name(&t.group, &t.version, kind);
    let list_model = model_name(&t.group, &t.version, &c.list_kind);
    let status = format!("{META}.Status");
    let base = format!("/apis/{}/{}", t.group, t.version);
    let ns = if t.namespaced { "Namespaced" } else { "" };
    let op = Op {
        t,
        tag: tag(&t.group, &t.version),
        prefix: format!("{}{}", camel(&t.group), camel(&t.version)),
    };
    let name_param = |of: &str| {
        json!({"name": "name", "in": "path", "description": format!("name of the {of}"), "required": true,
               "schema": {"type": "string", "uniqueItems": true}})
    };
    let mut scope_params = Vec::new();
    if t.namespaced {
        scope_params.push(params.get("namespace"));
    }
    let with = |mut m: Map<String, Value>, key: &str, v: Value| {
        m.insert(key.into(), v);
        m
    };
    let body = |model: &str| json!({"content": content(model), "required": true});
    let patch_body = json!({
        "content": {
            "application/apply-patch+yaml": {"schema": schema_ref(&format!("{META}.Patch"))},
            "application/json-patch+json": {"schema": schema_ref(&format!("{META}.Patch"))},
            "application/merge-patch+json": {"schema": schema_ref(&format!("{META}.Patch"))},
        },
        "required": true,
    });

    // Collection.
    let collection = if t.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", t.resource)
    } else {
        format!("{base}/{}", t.resource)
    };
    let mut item = Map::new();
    let list = op.make(
        "list",
        &format!("{ns}{kind}"),
        "list",
        format!("list objects of kind {kind}"),
    );
    let list = with(list, "parameters", params.list(LIST_PARAMS));
    item.insert(
        "get".into(),
        Value::Object(with(
            list,
            "responses",
            responses(&[("200", "OK")], &list_model),
        )),
    );
    let create = op.make(
        "create",
        &format!("{ns}{kind}"),
        "post",
        format!("create a {kind}"),
    );
    let create = with(create, "parameters", params.list(WRITE_PARAMS));
    let create = with(create, "requestBody", body(&model));
    item.insert(
        "post".into(),
        Value::Object(with(
            create,
            "responses",
            responses(
                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                &model,
            ),
        )),
    );
    let dc = op.make(
        "delete",
        &format!("Collection{ns}{kind}"),
        "deletecollection",
        format!("delete collection of {kind}"),
    );
    let dc = with(dc, "parameters", params.list(LIST_PARAMS));
    item.insert(
        "delete".into(),
        Value::Object(with(dc, "responses", responses(&[("200", "OK")], &status))),
    );
    let mut p = scope_params.clone();
    p.push(params.get("pretty"));
    item.insert("parameters".into(), Value::Array(p));
    paths.insert(collection.clone(), Value::Object(item));

    // Object.
    let mut item = Map::new();
    let get = op.make(
        "read",
        &format!("{ns}{kind}"),
        "get",
        format!("read the specified {kind}"),
    );
    let get = with(get, "parameters", params.list(&["resourceVersion"]));
    item.insert(
        "get".into(),
        Value::Object(with(get, "responses", responses(&[("200", "OK")], &model))),
    );
    let put = op.make(
        "replace",
        &format!("{ns}{kind}"),
        "put",
        format!("replace the specified {kind}"),
    );
    let put = with(put, "parameters", params.list(WRITE_PARAMS));
    let put = with(put, "requestBody", body(&model));
    item.insert(
        "put".into(),
        Value::Object(with(
            put,
            "responses",
            responses(&[("200", "OK"), ("201", "Created")], &model),
        )),
    );
    let del = op.make(
        "delete",
        &format!("{ns}{kind}"),
        "delete",
        format!("delete a {kind}"),
    );
    let del = with(del, "parameters", params.list(DELETE_PARAMS));
    let del = with(
        del,
        "requestBody",
        json!({"content": content(&format!("{META}.DeleteOptions"))}),
    );
    item.insert(
        "delete".into(),
        Value::Object(with(
            del,
            "responses",
            responses(&[("200", "OK"), ("202", "Accepted")], &status),
        )),
    );
    let patch = op.make(
        "patch",
        &format!("{ns}{kind}"),
        "patch",
        format!("partially update the specified {kind}"),
    );
    let patch = with(patch, "parameters", params.for_patch(PATCH_PARAMS));
    let patch = with(patch, "requestBody", patch_body.clone());
    item.insert(
        "patch".into(),
        Value::Object(with(
            patch,
            "responses",
            responses(&[("200", "OK")], &model),
        )),
    );
    let mut p = vec![name_param(kind)];
    p.extend(scope_params.iter().cloned());
    p.push(params.get("pretty"));
    item.insert("parameters".into(), Value::Array(p.clone()));
    paths.insert(format!("{collection}/{{name}}"), Value::Object(item));

    // Subresources.
    let mut subs: Vec<(&str, String)> = Vec::new();
    if t.has_status {
        subs.push(("status", model.clone()));
    }
    if t.scale.is_some() {
        subs.push(("scale", SCALE.to_string()));
    }
    for (sub, sub_model) in subs {
        let what = format!("{ns}{kind}{}", camel(sub));
        let mut item = Map::new();
        let get = op.make(
            "read",
            &what,
            "get",
            format!("read {sub} of the specified {kind}"),
        );
        let get = with(get, "parameters", params.list(&["resourceVersion"]));
        item.insert(
            "get".into(),
            Value::Object(with(
                get,
                "responses",
                responses(&[("200", "OK")], &sub_model),
            )),
        );
        let put = op.make(
            "replace",
            &what,
            "put",
            format!("replace {sub} of the specified {kind}"),
        );
        let put = with(put, "parameters", params.list(WRITE_PARAMS));
        let put = with(put, "requestBody", body(&sub_model));
        item.insert(
            "put".into(),
            Value::Object(with(
                put,
                "responses",
                responses(&[("200", "OK"), ("201", "Created")], &sub_model),
            )),
        );
        let patch = op.make(
            "patch",
            &what,
            "patch",
            format!("partially update {sub} of the specified {kind}"),
        );
        let patch = with(patch, "parameters", params.for_patch(PATCH_PARAMS));
        let patch = with(patch, "requestBody", patch_body.clone());
        item.insert(
            "patch".into(),
            Value::Object(with(
                patch,
                "responses",
                responses(&[("200", "OK")], &sub_model),
            )),
        );
        item.insert("parameters".into(), Value::Array(p.clone()));
        paths.insert(format!("{collection}/{{name}}/{sub}"), Value::Object(item));
    }

    // All namespaces.
    if t.namespaced {
        let mut item = Map::new();
        let list = op.make(
            "list",
            &format!("{kind}ForAllNamespaces"),
            "list",
            format!("list objects of kind {kind}"),
        );
        item.insert(
            "get".into(),
            Value::Object(with(
                list,
                "responses",
                responses(&[("200", "OK")], &list_model),
            )),
        );
        let mut p: Vec<Value> = LIST_PARAMS.iter().map(|n| params.get(n)).collect();
        p.insert(5, params.get("pretty"));
        item.insert("parameters".into(), Value::Array(p));
        paths.insert(format!("{base}/{}", t.resource), Value::Object(item));
    }
}

/// Adds `apiVersion`, `kind` and `metadata` to objects marked `x-kubernetes-embedded-resource`, and
/// spells `x-kubernetes-int-or-string` out as `anyOf`, as kube's structural schema does.
fn unfold(schema: &mut Value, root: bool) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !obj.contains_key("anyOf")
    {
        obj.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if !root && obj.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert(
                "apiVersion".into(),
                json!({"description": EMBEDDED_API_VERSION_DESCRIPTION, "type": "string"}),
            );
            props.insert(
                "kind".into(),
                json!({"description": EMBEDDED_KIND_DESCRIPTION, "type": "string"}),
            );
            props.insert(
                "metadata".into(),
                json!({"description": METADATA_DESCRIPTION, "allOf": [schema_ref(&format!("{META}.ObjectMeta"))]}),
            );
        }
        let required = obj.entry("required").or_insert_with(|| json!([]));
        if let Some(required) = required.as_array_mut() {
            for field in ["kind", "apiVersion"] {
                if !required.iter().any(|r| r == field) {
                    required.push(json!(field));
                }
            }
        }
    }
    for key in ["properties", "patternProperties"] {
        if let Some(props) = obj.get_mut(key).and_then(Value::as_object_mut) {
            for child in props.values_mut() {
                unfold(child, false);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = obj.get_mut(key) {
            unfold(child, false);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            for child in list {
                unfold(child, false);
            }
        }
    }
}

/// The model of one CRD version's kind: its schema with the Kubernetes object fields.
fn kind_model(t: &ResourceType) -> Value {
    let mut schema = t
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object"}));
    unfold(&mut schema, true);
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("type").or_insert_with(|| json!("object"));
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert(
                "apiVersion".into(),
                json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
            );
            props.insert(
                "kind".into(),
                json!({"description": KIND_DESCRIPTION, "type": "string"}),
            );
            props.insert(
                "metadata".into(),
                json!({"description": METADATA_DESCRIPTION, "allOf": [schema_ref(&format!("{META}.ObjectMeta"))]}),
            );
        }
        obj.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": t.group, "kind": t.kind, "version": t.version}]),
        );
    }
    schema
}

fn list_model(c: &CustomKind<'_>) -> Value {
    let t = c.t;
    let list_kind = &c.list_kind;
    json!({
        "description": format!("{list_kind} is a list of {}", t.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", t.resource),
                "type": "array",
                "items": schema_ref(&model_name(&t.group, &t.version, &t.kind)),
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {"description": LIST_METADATA_DESCRIPTION, "allOf": [schema_ref(&format!("{META}.ListMeta"))]},
        },
        "x-kubernetes-group-version-kind": [{"group": t.group, "kind": list_kind, "version": t.version}],
    })
}

/// Every `$ref` target under `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                out.push(r.to_string());
            }
            m.values().for_each(|c| refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// Copies the built-in definitions the document refers to (ObjectMeta, ListMeta, Status,
/// DeleteOptions, Patch, Scale and what they refer to) from the built-in documents.
fn copy_referenced(doc: &Value, schemas: &mut Map<String, Value>) {
    let sources = ["api/v1", "apis/autoscaling/v1"];
    let mut pending = Vec::new();
    refs(doc, &mut pending);
    refs(&Value::Object(schemas.clone()), &mut pending);
    while let Some(name) = pending.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        let found = sources
            .iter()
            .filter_map(|p| builtin::v3().get(*p))
            .find_map(|d| d.schemas().get(&name).cloned());
        if let Some(mut def) = found {
            refs(&def, &mut pending);
            if name == format!("{META}.DeleteOptions")
                && let Some(gvks) = builtin::delete_options_kinds()
            {
                // The CRD document's DeleteOptions names every group the server serves, as
                // /openapi/v2's does; the core/v1 document's names only core/v1.
                def["x-kubernetes-group-version-kind"] = gvks.clone();
            }
            schemas.insert(name, def);
        }
    }
}

/// The `/openapi/v3/apis/{group}/{version}` document of the custom resources served at that
/// group/version (all CRDs of it merged), or None if there are none.
pub(crate) fn document(kinds: &[CustomKind<'_>]) -> Option<Value> {
    if kinds.is_empty() {
        return None;
    }
    static PARAMS: std::sync::OnceLock<Params> = std::sync::OnceLock::new();
    let params = PARAMS.get_or_init(Params::load);
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for c in kinds {
        let t = c.t;
        paths_for(c, params, &mut paths);
        schemas.insert(model_name(&t.group, &t.version, &t.kind), kind_model(t));
        schemas.insert(
            model_name(&t.group, &t.version, &c.list_kind),
            list_model(c),
        );
    }
    let paths = Value::Object(paths);
    copy_referenced(&paths, &mut schemas);
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_reverse_the_group() {
        assert_eq!(
            model_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert_eq!(camel("probe.kube-wasm.dev"), "ProbeKubeWasmDev");
        assert_eq!(tag("probe.kubewasm.dev", "v1"), "probeKubewasmDev_v1");
    }

    #[test]
    fn int_or_string_is_spelled_out_and_embedded_resources_get_object_fields() {
        let mut s = json!({"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true},
        }});
        unfold(&mut s, true);
        assert_eq!(s["properties"]["port"]["anyOf"][1]["type"], "string");
        let template = &s["properties"]["template"];
        assert_eq!(
            template["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(template["required"], json!(["kind", "apiVersion"]));
    }
}
