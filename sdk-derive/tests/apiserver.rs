//! The CRDs `#[derive(CustomResource)]` generates are real: the project's API server
//! (`kubewasm-apiserver`, which validates CRDs and custom objects as kube-apiserver does)
//! accepts them, serves the kind, stores objects of the generated type, and refuses an object
//! that breaks the schema's validation attributes.

use std::time::Duration;

use http_body_util::BodyExt as _;
use kubewasm_apiserver::{ApiServer, Config};
use kubewasm_sdk::schemars::{self, JsonSchema};
use kubewasm_sdk::{CustomResource, CustomResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Scales a Deployment on a schedule.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kubewasm(
    group = "demo.kubewasm.dev",
    version = "v1",
    kind = "ScaleSchedule",
    namespaced
)]
#[kubewasm(status = "ScaleScheduleStatus", shortname = "ss")]
#[kubewasm(printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#)]
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
    pub mode: Option<Mode>,
    /// A window, if any.
    pub window: Option<Window>,
    /// A port, by number or name (`x-kubernetes-int-or-string`, as k8s-openapi's
    /// `IntOrString`).
    pub port: Option<Port>,
    /// Free-form settings kept as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A port number or name, with the schema k8s-openapi gives `IntOrString`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Port {
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Mode {
    /// All at once.
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
}

/// A cluster-scoped kind.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kubewasm(
    group = "demo.kubewasm.dev",
    version = "v1alpha1",
    kind = "Mouse",
    plural = "mice"
)]
pub struct MouseSpec {
    pub name: String,
}

struct Reply {
    code: u16,
    body: Value,
}

async fn send(client: &kube::Client, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let mut req = http::Request::builder().method(method).uri(path);
    let bytes = match body {
        Some(b) => {
            req = req.header(
                http::header::CONTENT_TYPE,
                if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                },
            );
            serde_json::to_vec(b).unwrap()
        }
        None => Vec::new(),
    };
    let req = req.body(kube::client::Body::from(bytes)).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.send(req))
        .await
        .expect("an answer within 30 s")
        .expect("the request is sent");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        code,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn start() -> (ApiServer, kube::Client) {
    let server = ApiServer::start(Config::default())
        .await
        .expect("the API server starts");
    let config = kube::Config::new(server.url().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    (server, client)
}

/// Installs `crd` and waits until its kind is served.
async fn install(client: &kube::Client, crd: &Value, served_at: &str) {
    let r = send(
        client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(crd),
    )
    .await;
    assert_eq!(r.code, 201, "the CRD is refused: {:#}", r.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while send(client, "GET", served_at, None).await.code != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{served_at} is not served 30 s after the CRD was created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SCHEDULES: &str = "/apis/demo.kubewasm.dev/v1/namespaces/default/scaleschedules";

fn spec(replicas: i32) -> ScaleScheduleSpec {
    ScaleScheduleSpec {
        deployment: "web".into(),
        replicas,
        until: None,
        mode: Some(Mode::Gradual),
        window: Some(Window::Daily { from: 22, to: 6 }),
        port: None,
        extra: Some(json!({"anything": [1, "two", {"three": null}]})),
    }
}

#[tokio::test]
async fn the_api_server_accepts_the_crd_stores_objects_and_enforces_the_schema() {
    let (_server, client) = start().await;
    install(&client, &ScaleSchedule::crd(), SCHEDULES).await;

    // Created from the generated type, read back into it unchanged.
    let mut body = serde_json::to_value(ScaleSchedule::new("nightly", spec(3))).unwrap();
    body["metadata"]["namespace"] = json!("default");
    let r = send(&client, "POST", SCHEDULES, Some(&body)).await;
    assert_eq!(r.code, 201, "{:#}", r.body);
    let r = send(&client, "GET", &format!("{SCHEDULES}/nightly"), None).await;
    assert_eq!(r.code, 200);
    let stored: ScaleSchedule = serde_json::from_value(r.body).expect("decodes");
    assert_eq!(stored.spec, spec(3), "nothing pruned or changed");
    // An optional int-or-string takes a name, a number, or null (`None`).
    for port in [Port::Name("http".into()), Port::Number(8080)] {
        let mut body = serde_json::to_value(ScaleSchedule::new(
            "with-port",
            ScaleScheduleSpec {
                port: Some(port.clone()),
                ..spec(3)
            },
        ))
        .unwrap();
        body["metadata"]["namespace"] = json!("default");
        let r = send(&client, "POST", SCHEDULES, Some(&body)).await;
        assert_eq!(r.code, 201, "{:#}", r.body);
        let stored: ScaleSchedule = serde_json::from_value(r.body).unwrap();
        assert_eq!(stored.spec.port, Some(port));
        let r = send(&client, "DELETE", &format!("{SCHEDULES}/with-port"), None).await;
        assert_eq!(r.code, 200, "{:#}", r.body);
    }

    // Out of the range the attribute gave: refused, naming the field.
    for (replicas, bound) in [(101, "100"), (-1, "0")] {
        let mut bad = serde_json::to_value(ScaleSchedule::new("too-many", spec(replicas))).unwrap();
        bad["metadata"]["namespace"] = json!("default");
        let r = send(&client, "POST", SCHEDULES, Some(&bad)).await;
        assert_eq!(r.code, 422, "replicas {replicas} accepted: {:#}", r.body);
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("spec.replicas") && message.contains(bound),
            "{message}"
        );
    }
    // Other validations of the schema: a short string, an enum, a tagged enum's tag.
    for (field, value) in [
        ("deployment", json!("")),
        ("mode", json!("Sideways")),
        ("window", json!({"kind": "weekly"})),
        ("replicas", json!("three")),
    ] {
        let mut bad = serde_json::to_value(ScaleSchedule::new("bad", spec(1))).unwrap();
        bad["metadata"]["namespace"] = json!("default");
        bad["spec"][field] = value.clone();
        let r = send(&client, "POST", SCHEDULES, Some(&bad)).await;
        assert_eq!(r.code, 422, "spec.{field} = {value} accepted: {:#}", r.body);
    }
    // Required fields: the spec and its non-Option fields.
    let r = send(
        &client,
        "POST",
        SCHEDULES,
        Some(
            &json!({"apiVersion": "demo.kubewasm.dev/v1", "kind": "ScaleSchedule",
                     "metadata": {"name": "no-replicas"}, "spec": {"deployment": "web"}}),
        ),
    )
    .await;
    assert_eq!(r.code, 422, "{:#}", r.body);

    // The status subresource: a status patch lands, a spec change through it does not.
    let r = send(
        &client,
        "PATCH",
        &format!("{SCHEDULES}/nightly/status"),
        Some(&json!({"status": {"applied": true}, "spec": {"replicas": 7}})),
    )
    .await;
    assert_eq!(r.code, 200, "{:#}", r.body);
    let stored: ScaleSchedule = serde_json::from_value(r.body).expect("decodes");
    assert_eq!(stored.status, Some(ScaleScheduleStatus { applied: true }));
    assert_eq!(stored.spec.replicas, 3);

    // The short name and the printer column.
    let r = send(&client, "GET", "/apis/demo.kubewasm.dev/v1", None).await;
    let resource = r.body["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|x| x["name"] == "scaleschedules"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(resource["shortNames"], json!(["ss"]), "{:#}", r.body);
    assert_eq!(resource["namespaced"], true);
    let req = http::Request::builder()
        .uri(SCHEDULES)
        .header(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let table: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(columns.contains(&"Replicas"), "{table:#}");
}

#[tokio::test]
async fn a_cluster_scoped_kind_with_its_own_plural_is_served_at_the_cluster_level() {
    let (_server, client) = start().await;
    let mice = "/apis/demo.kubewasm.dev/v1alpha1/mice";
    install(&client, &Mouse::crd(), mice).await;
    let body = serde_json::to_value(Mouse::new("jerry", MouseSpec { name: "J".into() })).unwrap();
    let r = send(&client, "POST", mice, Some(&body)).await;
    assert_eq!(r.code, 201, "{:#}", r.body);
    assert!(r.body["metadata"].get("namespace").is_none());
    let r = send(&client, "GET", &format!("{mice}/jerry"), None).await;
    let jerry: Mouse = serde_json::from_value(r.body).unwrap();
    assert_eq!(jerry.spec.name, "J");
}
