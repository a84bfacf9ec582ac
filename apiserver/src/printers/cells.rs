//! The cells of built-in kinds, computed as `k8s.io/kubernetes/pkg/printers/internalversion` (and the
//! kube-aggregator and apiextensions-apiserver table convertors) compute them from the object, with
//! `GenerateOptions{Wide: true}` as kube-apiserver uses.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// `duration.HumanDuration` of a span in milliseconds.
pub fn human_duration(ms: i64) -> String {
    let seconds = ms / 1000;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: the time since `t`.
pub fn since(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    human_duration(now.as_millisecond() - t.as_millisecond())
}

fn parse_time(v: Option<&Value>) -> Option<jiff::Timestamp> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
}

fn s<'a>(o: &'a Value, ptr: &str) -> &'a str {
    o.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn i(o: &Value, ptr: &str) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(o: &'a Value, ptr: &str) -> &'a [Value] {
    o.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn len_of(o: &Value, ptr: &str) -> usize {
    match o.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.into()
    }
}

/// `labels.FormatLabels`: "k=v,..." sorted by key, `<none>` when empty.
pub fn format_labels(m: Option<&Value>) -> String {
    let pairs: Vec<String> = m
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(...).String()`: requirements sorted by key; `None` when invalid.
pub fn selector_string(sel: Option<&Value>) -> Option<String> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Some(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: BTreeSet<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let vals = values.into_iter().collect::<Vec<_>>().join(",");
        let r = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" if !vals.is_empty() => format!("{k} in ({vals})"),
            "NotIn" if !vals.is_empty() => format!("{k} notin ({vals})"),
            "Exists" if vals.is_empty() => k.to_string(),
            "DoesNotExist" if vals.is_empty() => format!("!{k}"),
            _ => return None,
        };
        reqs.push((k.to_string(), r));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        reqs.into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
pub fn format_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        None => "<error>".into(),
        Some(s) if s.is_empty() => "<none>".into(),
        Some(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, comma-separated.
fn containers(o: &Value, ptr: &str) -> (String, String) {
    let cs = arr(o, ptr);
    let names: Vec<&str> = cs
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or_default())
        .collect();
    let images: Vec<&str> = cs
        .iter()
        .map(|c| c.get("image").and_then(Value::as_str).unwrap_or_default())
        .collect();
    (names.join(","), images.join(","))
}

fn cond_true(conds: &[Value], ty: &str) -> bool {
    conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

/// An IntOrString as `intstr.String()` prints it.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A Quantity as stored ("<nil>" when absent, as Go prints a nil `*Quantity`).
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".into(),
    }
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Load balancer ingress addresses (IP, else hostname), sorted and distinct.
fn load_balancer(o: &Value, ptr: &str) -> String {
    let set: BTreeSet<&str> = arr(o, ptr)
        .iter()
        .filter_map(|i| {
            let ip = i.get("ip").and_then(Value::as_str).unwrap_or_default();
            let host = i
                .get("hostname")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

/// Computes the cells of one object.
pub struct Printer<'a> {
    o: &'a Value,
    now: jiff::Timestamp,
}

impl<'a> Printer<'a> {
    pub fn new(o: &'a Value, now: jiff::Timestamp) -> Printer<'a> {
        Printer { o, now }
    }

    fn name(&self) -> Value {
        json!(s(self.o, "/metadata/name"))
    }

    /// `translateTimestampSince` of a field; `<unknown>` when unset.
    fn age_of(&self, ptr: &str) -> String {
        parse_time(self.o.pointer(ptr)).map_or_else(|| "<unknown>".into(), |t| since(t, self.now))
    }

    fn age(&self) -> Value {
        json!(self.age_of("/metadata/creationTimestamp"))
    }

    fn deleting(&self) -> bool {
        self.o
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
    }

    /// The cells of a built-in kind other than Pod, by "group/resource".
    pub fn cells(&self, key: &str) -> Vec<Value> {
        let o = self.o;
        match key {
            "configmaps" => vec![
                self.name(),
                json!((len_of(o, "/data") + len_of(o, "/binaryData")) as i64),
                self.age(),
            ],
            "secrets" => vec![
                self.name(),
                json!(s(o, "/type")),
                json!(len_of(o, "/data") as i64),
                self.age(),
            ],
            "services" => self.service(),
            "endpoints" => vec![self.name(), json!(self.endpoints()), self.age()],
            "namespaces" => vec![self.name(), json!(s(o, "/status/phase")), self.age()],
            "nodes" => self.node(),
            "events" | "events.k8s.io/events" => self.event(),
            "serviceaccounts" => vec![self.name(), self.age()],
            "persistentvolumeclaims" => self.pvc(),
            "resourcequotas" => self.resource_quota(),
            "apps/deployments" => self.deployment(),
            "apps/replicasets" => {
                let (names, images) = containers(o, "/spec/template/spec/containers");
                vec![
                    self.name(),
                    json!(
                        o.pointer("/spec/replicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(1)
                    ),
                    json!(i(o, "/status/replicas")),
                    json!(i(o, "/status/readyReplicas")),
                    self.age(),
                    json!(names),
                    json!(images),
                    json!(format_selector(o.pointer("/spec/selector"))),
                ]
            }
            "apps/statefulsets" => {
                let (names, images) = containers(o, "/spec/template/spec/containers");
                let desired = o
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                vec![
                    self.name(),
                    json!(format!("{}/{desired}", i(o, "/status/readyReplicas"))),
                    self.age(),
                    json!(names),
                    json!(images),
                ]
            }
            "apps/daemonsets" => {
                let (names, images) = containers(o, "/spec/template/spec/containers");
                vec![
                    self.name(),
                    json!(i(o, "/status/desiredNumberScheduled")),
                    json!(i(o, "/status/currentNumberScheduled")),
                    json!(i(o, "/status/numberReady")),
                    json!(i(o, "/status/updatedNumberScheduled")),
                    json!(i(o, "/status/numberAvailable")),
                    json!(format_labels(o.pointer("/spec/template/spec/nodeSelector"))),
                    self.age(),
                    json!(names),
                    json!(images),
                    json!(format_selector(o.pointer("/spec/selector"))),
                ]
            }
            "apps/controllerrevisions" => vec![
                self.name(),
                json!(self.controller()),
                json!(i(o, "/revision")),
                self.age(),
            ],
            "batch/jobs" => self.job(),
            "batch/cronjobs" => self.cronjob(),
            "policy/poddisruptionbudgets" => {
                let or_na = |p: &str| {
                    o.pointer(p)
                        .filter(|v| !v.is_null())
                        .map_or_else(|| "N/A".to_string(), int_or_string)
                };
                vec![
                    self.name(),
                    json!(or_na("/spec/minAvailable")),
                    json!(or_na("/spec/maxUnavailable")),
                    json!(i(o, "/status/disruptionsAllowed")),
                    self.age(),
                ]
            }
            "networking.k8s.io/ingresses" => self.ingress(),
            "networking.k8s.io/ingressclasses" => {
                let mut name = s(o, "/metadata/name").to_string();
                if s(
                    o,
                    "/metadata/annotations/ingressclass.kubernetes.io~1is-default-class",
                ) == "true"
                {
                    name.push_str(" (default)");
                }
                let parameters = match o.pointer("/spec/parameters").filter(|v| !v.is_null()) {
                    None => "<none>".to_string(),
                    Some(p) => {
                        let mut out = s(p, "/kind").to_string();
                        if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                            out = format!("{out}.{g}");
                        }
                        format!("{out}/{}", s(p, "/name"))
                    }
                };
                vec![
                    json!(name),
                    json!(s(o, "/spec/controller")),
                    json!(parameters),
                    self.age(),
                ]
            }
            "networking.k8s.io/networkpolicies" => vec![
                self.name(),
                json!(format_selector(Some(
                    o.pointer("/spec/podSelector").unwrap_or(&json!({}))
                ))),
                self.age(),
            ],
            "rbac.authorization.k8s.io/rolebindings"
            | "rbac.authorization.k8s.io/clusterrolebindings" => self.binding(),
            "certificates.k8s.io/certificatesigningrequests" => self.csr(),
            "apiregistration.k8s.io/apiservices" => self.apiservice(),
            "autoscaling/horizontalpodautoscalers" => self.hpa(),
            "discovery.k8s.io/endpointslices" => self.endpoint_slice(),
            "coordination.k8s.io/leases" => {
                vec![self.name(), json!(s(o, "/spec/holderIdentity")), self.age()]
            }
            "apiextensions.k8s.io/customresourcedefinitions" => self.crd(),
            "autoscaling/scale" => vec![
                self.name(),
                json!(i(o, "/spec/replicas")),
                json!(i(o, "/status/replicas")),
                self.age(),
            ],
            // rest.DefaultTableConvertor (Roles, ClusterRoles): Name and "Created At".
            _ => vec![self.name(), json!(self.created_at())],
        }
    }

    /// The creation time as RFC 3339 (what a "date" cell of the default convertor holds).
    fn created_at(&self) -> String {
        parse_time(self.o.pointer("/metadata/creationTimestamp"))
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
    }

    /// printPod: cells and the row's conditions.
    pub fn pod(&self) -> (Vec<Value>, Option<Value>) {
        let o = self.o;
        let phase = s(o, "/status/phase");
        let mut reason = phase.to_string();
        if !s(o, "/status/reason").is_empty() {
            reason = s(o, "/status/reason").to_string();
        }
        let conditions = arr(o, "/status/conditions");
        if conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("PodScheduled")
                && c.get("reason").and_then(Value::as_str) == Some("SchedulingGated")
        }) {
            reason = "SchedulingGated".into();
        }
        let row_conditions = match phase {
            "Succeeded" => Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
            ),
            "Failed" => Some(
                json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
            ),
            _ => None,
        };
        let init_specs = arr(o, "/spec/initContainers");
        let restartable = |name: &str| {
            init_specs.iter().any(|c| {
                c.get("name").and_then(Value::as_str) == Some(name)
                    && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
            })
        };
        let mut total = arr(o, "/spec/containers").len();
        total += init_specs
            .iter()
            .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
            .count();
        let mut restarts = 0i64;
        let mut sidecar_restarts = 0i64;
        let mut ready = 0usize;
        let mut last_restart: Option<jiff::Timestamp> = None;
        let mut last_sidecar_restart: Option<jiff::Timestamp> = None;
        let later = |a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let terminated_at = |c: &Value| parse_time(c.pointer("/lastState/terminated/finishedAt"));
        let mut initializing = false;
        let init_statuses = arr(o, "/status/initContainerStatuses");
        for (idx, c) in init_statuses.iter().enumerate() {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            restarts += i(c, "/restartCount");
            if c.pointer("/lastState/terminated").is_some() {
                last_restart = later(last_restart, terminated_at(c));
            }
            let is_sidecar = restartable(name);
            if is_sidecar {
                sidecar_restarts += i(c, "/restartCount");
                if c.pointer("/lastState/terminated").is_some() {
                    last_sidecar_restart = later(last_sidecar_restart, terminated_at(c));
                }
            }
            let terminated = c.pointer("/state/terminated").filter(|v| !v.is_null());
            let waiting_reason = s(c, "/state/waiting/reason");
            if terminated.is_some_and(|t| i(t, "/exitCode") == 0) {
                continue;
            }
            if is_sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
                if c.get("ready").and_then(Value::as_bool) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            if let Some(t) = terminated {
                let r = s(t, "/reason");
                reason = if !r.is_empty() {
                    format!("Init:{r}")
                } else if i(t, "/signal") != 0 {
                    format!("Init:Signal:{}", i(t, "/signal"))
                } else {
                    format!("Init:ExitCode:{}", i(t, "/exitCode"))
                };
            } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
                reason = format!("Init:{waiting_reason}");
            } else {
                reason = format!("Init:{idx}/{}", init_specs.len());
            }
            initializing = true;
            break;
        }
        let initialized = conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Initialized"))
            .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"));
        if !initializing || initialized {
            restarts = sidecar_restarts;
            last_restart = last_sidecar_restart;
            let mut has_running = false;
            let mut error_reason = String::new();
            for c in arr(o, "/status/containerStatuses").iter().rev() {
                restarts += i(c, "/restartCount");
                if c.pointer("/lastState/terminated").is_some() {
                    last_restart = later(last_restart, terminated_at(c));
                }
                let waiting = s(c, "/state/waiting/reason");
                let terminated = c.pointer("/state/terminated").filter(|v| !v.is_null());
                if !waiting.is_empty() {
                    reason = waiting.to_string();
                } else if let Some(t) = terminated {
                    let r = s(t, "/reason");
                    reason = if !r.is_empty() {
                        r.to_string()
                    } else if i(t, "/signal") != 0 {
                        format!("Signal:{}", i(t, "/signal"))
                    } else {
                        format!("ExitCode:{}", i(t, "/exitCode"))
                    };
                    if i(t, "/exitCode") != 0 {
                        error_reason = reason.clone();
                    }
                } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                    && c.pointer("/state/running").is_some_and(|v| !v.is_null())
                {
                    has_running = true;
                    ready += 1;
                }
            }
            if reason == "Completed" {
                if has_running && cond_true(conditions, "Ready") {
                    reason = "Running".into();
                } else if !error_reason.is_empty() {
                    reason = error_reason;
                } else if has_running {
                    reason = "NotReady".into();
                }
            }
        }
        if self.deleting() && s(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if self.deleting() && phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
        let restarts_str = match last_restart {
            Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(t, self.now)),
            _ => restarts.to_string(),
        };
        let ip = arr(o, "/status/podIPs")
            .first()
            .and_then(|p| p.get("ip"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let gates = arr(o, "/spec/readinessGates");
        let readiness = if gates.is_empty() {
            "<none>".to_string()
        } else {
            let t = gates
                .iter()
                .filter(|g| {
                    let ty = g.get("conditionType").and_then(Value::as_str);
                    conditions
                        .iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == ty)
                        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                })
                .count();
            format!("{t}/{}", gates.len())
        };
        let cells = vec![
            self.name(),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_str),
            self.age(),
            json!(or_none(ip)),
            json!(or_none(s(o, "/spec/nodeName"))),
            json!(or_none(s(o, "/status/nominatedNodeName"))),
            json!(readiness),
        ];
        (cells, row_conditions)
    }

    fn service(&self) -> Vec<Value> {
        let o = self.o;
        let cluster_ip = arr(o, "/spec/clusterIPs")
            .first()
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let external: Vec<&str> = arr(o, "/spec/externalIPs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let external_ip = match s(o, "/spec/type") {
            "ClusterIP" | "NodePort" => {
                if external.is_empty() {
                    "<none>".to_string()
                } else {
                    external.join(",")
                }
            }
            "LoadBalancer" => {
                let lb = load_balancer(o, "/status/loadBalancer/ingress");
                if !external.is_empty() {
                    let mut all: Vec<&str> = Vec::new();
                    if !lb.is_empty() {
                        all.extend(lb.split(','));
                    }
                    all.extend(external.iter().copied());
                    all.join(",")
                } else if !lb.is_empty() {
                    lb
                } else {
                    "<pending>".into()
                }
            }
            "ExternalName" => s(o, "/spec/externalName").to_string(),
            _ => "<unknown>".into(),
        };
        let ports: Vec<String> = arr(o, "/spec/ports")
            .iter()
            .map(|p| {
                let port = i(p, "/port");
                let proto = s(p, "/protocol");
                match i(p, "/nodePort") {
                    n if n > 0 => format!("{port}:{n}/{proto}"),
                    _ => format!("{port}/{proto}"),
                }
            })
            .collect();
        vec![
            self.name(),
            json!(s(o, "/spec/type")),
            json!(cluster_ip),
            json!(external_ip),
            json!(or_none(&ports.join(","))),
            self.age(),
            json!(format_labels(o.pointer("/spec/selector"))),
        ]
    }

    /// formatEndpoints.
    fn endpoints(&self) -> String {
        let subsets = arr(self.o, "/subsets");
        if subsets.is_empty() {
            return "<none>".into();
        }
        let max = 3;
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0;
        for ss in subsets {
            let addrs = arr(ss, "/addresses");
            let ports = arr(ss, "/ports");
            if ports.is_empty() {
                count += addrs.len();
                for a in addrs {
                    if list.len() == max {
                        more = true;
                        break;
                    }
                    list.push(s(a, "/ip").to_string());
                }
                continue;
            }
            for p in ports {
                count += addrs.len();
                for a in addrs {
                    if list.len() == max {
                        more = true;
                        break;
                    }
                    list.push(join_host_port(s(a, "/ip"), i(p, "/port")));
                }
            }
        }
        let ret = list.join(",");
        if more {
            format!("{ret} + {} more...", count - max)
        } else {
            ret
        }
    }

    fn node(&self) -> Vec<Value> {
        let o = self.o;
        let mut status: Vec<String> = Vec::new();
        if let Some(c) = arr(o, "/status/conditions")
            .iter()
            .rev()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        {
            if c.get("status").and_then(Value::as_str) == Some("True") {
                status.push("Ready".into());
            } else {
                status.push("NotReady".into());
            }
        }
        if status.is_empty() {
            status.push("Unknown".into());
        }
        if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
            status.push("SchedulingDisabled".into());
        }
        let mut roles: BTreeSet<String> = BTreeSet::new();
        for (k, v) in o
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                let v = v.as_str().unwrap_or_default();
                if !v.is_empty() {
                    roles.insert(v.to_string());
                }
            }
        }
        let roles = roles.into_iter().collect::<Vec<_>>().join(",");
        let address = |ty: &str| {
            arr(o, "/status/addresses")
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some(ty))
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_string()
        };
        let unknown = |p: &str| {
            let v = s(o, p);
            if v.is_empty() {
                "<unknown>".to_string()
            } else {
                v.to_string()
            }
        };
        let mut kernel = unknown("/status/nodeInfo/kernelVersion");
        let arch = s(o, "/status/nodeInfo/architecture");
        if !arch.is_empty() {
            kernel = format!("{kernel} ({arch})");
        }
        vec![
            self.name(),
            json!(status.join(",")),
            json!(or_none(&roles)),
            self.age(),
            json!(s(o, "/status/nodeInfo/kubeletVersion")),
            json!(address("InternalIP")),
            json!(address("ExternalIP")),
            json!(unknown("/status/nodeInfo/osImage")),
            json!(kernel),
            json!(unknown("/status/nodeInfo/containerRuntimeVersion")),
        ]
    }

    /// printEvent, from the core/v1 shape both event APIs are stored in.
    fn event(&self) -> Vec<Value> {
        let o = self.o;
        let micro = |p: &str| {
            parse_time(o.pointer(p)).map_or_else(|| "<unknown>".to_string(), |t| since(t, self.now))
        };
        let first_set = parse_time(o.get("firstTimestamp")).is_some();
        let first = if first_set {
            self.age_of("/firstTimestamp")
        } else {
            micro("/eventTime")
        };
        let mut last = if parse_time(o.get("lastTimestamp")).is_some() {
            self.age_of("/lastTimestamp")
        } else {
            first.clone()
        };
        let mut count = i(o, "/count");
        if let Some(series) = o.get("series").filter(|v| !v.is_null()) {
            last = micro("/series/lastObservedTime");
            count = i(series, "/count");
        } else if count == 0 {
            count = 1;
        }
        let kind = s(o, "/involvedObject/kind").to_lowercase();
        let name = s(o, "/involvedObject/name");
        let target = if name.is_empty() {
            kind
        } else {
            format!("{kind}/{name}")
        };
        let first_non_empty = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let component = first_non_empty(s(o, "/source/component"), s(o, "/reportingComponent"));
        let instance = first_non_empty(s(o, "/source/host"), s(o, "/reportingInstance"));
        let source = if instance.is_empty() {
            component
        } else {
            format!("{component}, {instance}")
        };
        vec![
            json!(last),
            json!(s(o, "/type")),
            json!(s(o, "/reason")),
            json!(target),
            json!(s(o, "/involvedObject/fieldPath")),
            json!(source),
            json!(s(o, "/message").trim()),
            json!(first),
            json!(count),
            self.name(),
        ]
    }

    fn pvc(&self) -> Vec<Value> {
        let o = self.o;
        let phase = if self.deleting() {
            "Terminating"
        } else {
            s(o, "/status/phase")
        };
        let volume = s(o, "/spec/volumeName");
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                o.pointer("/status/capacity/storage")
                    .map_or_else(|| "0".to_string(), |q| quantity(Some(q))),
                access_modes(arr(o, "/status/accessModes")),
            )
        };
        let class =
            match o.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class") {
                Some(Value::String(c)) => c.clone(),
                _ => s(o, "/spec/storageClassName").to_string(),
            };
        let unset = |p: &str| match o.pointer(p).and_then(Value::as_str) {
            Some(v) => v.to_string(),
            None => "<unset>".to_string(),
        };
        vec![
            self.name(),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(class),
            json!(unset("/spec/volumeAttributesClassName")),
            self.age(),
            json!(unset("/spec/volumeMode")),
        ]
    }

    fn resource_quota(&self) -> Vec<Value> {
        let o = self.o;
        let hard = o.pointer("/status/hard").and_then(Value::as_object);
        let mut request = Vec::new();
        let mut limit = Vec::new();
        for (name, h) in hard.into_iter().flatten() {
            let used = o
                .pointer("/status/used")
                .and_then(|u| u.get(name))
                .map_or_else(|| "0".to_string(), |q| quantity(Some(q)));
            let entry = format!("{name}: {used}/{}", quantity(Some(h)));
            let pieces: Vec<&str> = name.split('.').collect();
            if pieces.len() > 1 && pieces[0] == "limits" {
                limit.push(entry);
            } else {
                request.push(entry);
            }
        }
        vec![
            self.name(),
            json!(request.join(", ")),
            json!(limit.join(", ")),
            self.age(),
        ]
    }

    fn deployment(&self) -> Vec<Value> {
        let o = self.o;
        let desired = o
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let (names, images) = containers(o, "/spec/template/spec/containers");
        let selector =
            selector_string(o.pointer("/spec/selector")).unwrap_or_else(|| "<invalid>".into());
        vec![
            self.name(),
            json!(format!("{}/{desired}", i(o, "/status/readyReplicas"))),
            json!(i(o, "/status/updatedReplicas")),
            json!(i(o, "/status/availableReplicas")),
            self.age(),
            json!(names),
            json!(images),
            json!(selector),
        ]
    }

    /// The controlling owner as "kind.group/name", `<none>` without one.
    fn controller(&self) -> String {
        let Some(r) = arr(self.o, "/metadata/ownerReferences")
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        else {
            return "<none>".into();
        };
        let api_version = s(r, "/apiVersion");
        let group = match api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        };
        let kind = s(r, "/kind");
        let gk = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        if gk.is_empty() {
            return s(r, "/name").into();
        }
        format!("{}/{}", gk.to_lowercase(), s(r, "/name"))
    }

    fn job(&self) -> Vec<Value> {
        let o = self.o;
        let succeeded = i(o, "/status/succeeded");
        let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(c) => format!("{succeeded}/{c}"),
            None => match i(o, "/spec/parallelism") {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let start = parse_time(o.pointer("/status/startTime"));
        let done = parse_time(o.pointer("/status/completionTime"));
        let duration = match (start, done) {
            (None, _) => String::new(),
            (Some(s), None) => since(s, self.now),
            (Some(s), Some(d)) => human_duration(d.as_millisecond() - s.as_millisecond()),
        };
        let conds = arr(o, "/status/conditions");
        let has = |t: &str| {
            conds
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
                .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        };
        let status = if has("Complete") {
            "Complete"
        } else if has("Failed") {
            "Failed"
        } else if self.deleting() {
            "Terminating"
        } else if has("Suspended") {
            "Suspended"
        } else if has("FailureTarget") {
            "FailureTarget"
        } else if has("SuccessCriteriaMet") {
            "SuccessCriteriaMet"
        } else {
            "Running"
        };
        let (names, images) = containers(o, "/spec/template/spec/containers");
        vec![
            self.name(),
            json!(status),
            json!(completions),
            json!(duration),
            self.age(),
            json!(names),
            json!(images),
            json!(format_selector(o.pointer("/spec/selector"))),
        ]
    }

    fn cronjob(&self) -> Vec<Value> {
        let o = self.o;
        let last = if parse_time(o.pointer("/status/lastScheduleTime")).is_some() {
            self.age_of("/status/lastScheduleTime")
        } else {
            "<none>".into()
        };
        let suspend = match o.pointer("/spec/suspend").and_then(Value::as_bool) {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let (names, images) = containers(o, "/spec/jobTemplate/spec/template/spec/containers");
        vec![
            self.name(),
            json!(s(o, "/spec/schedule")),
            json!(
                o.pointer("/spec/timeZone")
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")
            ),
            json!(suspend),
            json!(arr(o, "/status/active").len() as i64),
            json!(last),
            self.age(),
            json!(names),
            json!(images),
            json!(format_selector(
                o.pointer("/spec/jobTemplate/spec/selector")
            )),
        ]
    }

    fn ingress(&self) -> Vec<Value> {
        let o = self.o;
        let rules = arr(o, "/spec/rules");
        let max = 3;
        let mut list: Vec<&str> = Vec::new();
        let mut more = false;
        for r in rules {
            if list.len() == max {
                more = true;
            }
            let host = s(r, "/host");
            if !more && !host.is_empty() {
                list.push(host);
            }
        }
        let hosts = if list.is_empty() {
            "*".to_string()
        } else if more {
            format!("{} + {} more...", list.join(","), rules.len() - max)
        } else {
            list.join(",")
        };
        let ports = if arr(o, "/spec/tls").is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            self.name(),
            json!(
                o.pointer("/spec/ingressClassName")
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")
            ),
            json!(hosts),
            json!(load_balancer(o, "/status/loadBalancer/ingress")),
            json!(ports),
            self.age(),
        ]
    }

    fn binding(&self) -> Vec<Value> {
        let o = self.o;
        let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
        for sub in arr(o, "/subjects") {
            let name = s(sub, "/name");
            match s(sub, "/kind") {
                "User" => users.push(name.to_string()),
                "Group" => groups.push(name.to_string()),
                "ServiceAccount" => {
                    let ns = s(sub, "/namespace");
                    sas.push(if ns.is_empty() {
                        name.to_string()
                    } else {
                        format!("{ns}/{name}")
                    });
                }
                _ => {}
            }
        }
        vec![
            self.name(),
            json!(format!(
                "{}/{}",
                s(o, "/roleRef/kind"),
                s(o, "/roleRef/name")
            )),
            self.age(),
            json!(users.join(", ")),
            json!(groups.join(", ")),
            json!(sas.join(", ")),
        ]
    }

    fn csr(&self) -> Vec<Value> {
        let o = self.o;
        let conds = arr(o, "/status/conditions");
        let has = |t: &str| {
            conds
                .iter()
                .any(|c| c.get("type").and_then(Value::as_str) == Some(t))
        };
        let mut status = if has("Denied") {
            "Denied".to_string()
        } else if has("Approved") {
            "Approved".to_string()
        } else {
            "Pending".to_string()
        };
        if has("Failed") {
            status.push_str(",Failed");
        }
        if !s(o, "/status/certificate").is_empty() {
            status.push_str(",Issued");
        }
        let requested = match o.pointer("/spec/expirationSeconds").and_then(Value::as_i64) {
            Some(secs) => human_duration(secs.saturating_mul(1000)),
            None => "<none>".into(),
        };
        vec![
            self.name(),
            self.age(),
            json!(or_none(s(o, "/spec/signerName"))),
            json!(s(o, "/spec/username")),
            json!(requested),
            json!(status),
        ]
    }

    fn apiservice(&self) -> Vec<Value> {
        let o = self.o;
        let service = match o.pointer("/spec/service").filter(|v| !v.is_null()) {
            Some(sv) => format!("{}/{}", s(sv, "/namespace"), s(sv, "/name")),
            None => "Local".into(),
        };
        let status = match arr(o, "/status/conditions")
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))
        {
            None => "Unknown".to_string(),
            Some(c) => {
                let st = s(c, "/status");
                let reason = s(c, "/reason");
                if st == "True" || reason.is_empty() {
                    st.to_string()
                } else {
                    format!("{st} ({reason})")
                }
            }
        };
        vec![self.name(), json!(service), json!(status), self.age()]
    }

    fn hpa(&self) -> Vec<Value> {
        let o = self.o;
        let min = match o.pointer("/spec/minReplicas").and_then(Value::as_i64) {
            Some(m) => m.to_string(),
            None => "<unset>".into(),
        };
        vec![
            self.name(),
            json!(format!(
                "{}/{}",
                s(o, "/spec/scaleTargetRef/kind"),
                s(o, "/spec/scaleTargetRef/name")
            )),
            json!(hpa_metrics(
                arr(o, "/spec/metrics"),
                arr(o, "/status/currentMetrics")
            )),
            json!(min),
            json!(i(o, "/spec/maxReplicas")),
            json!(i(o, "/status/currentReplicas")),
            self.age(),
        ]
    }

    fn endpoint_slice(&self) -> Vec<Value> {
        let o = self.o;
        let max = 3;
        let ports = arr(o, "/ports");
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        for p in ports {
            if list.len() < max {
                let n = match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(Value::String(name))) => name.clone(),
                    _ => "*".into(),
                };
                list.push(n);
            } else if list.len() == max {
                more = true;
            }
        }
        let ports_cell = list_with_more(&list, more, ports.len(), max);
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0;
        for e in arr(o, "/endpoints") {
            for a in arr(e, "/addresses") {
                if list.len() < max {
                    list.push(a.as_str().unwrap_or_default().to_string());
                } else if list.len() == max {
                    more = true;
                }
                count += 1;
            }
        }
        vec![
            self.name(),
            json!(s(o, "/addressType")),
            json!(ports_cell),
            json!(list_with_more(&list, more, count, max)),
            self.age(),
        ]
    }

    fn crd(&self) -> Vec<Value> {
        let o = self.o;
        let mut versions: Vec<String> = arr(o, "/spec/versions")
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
            .map(|v| {
                let mut label = s(v, "/name").to_string();
                if v.get("storage").and_then(Value::as_bool) == Some(true) {
                    label.push_str("(storage)");
                }
                label
            })
            .collect();
        versions.sort();
        let short: Vec<&str> = arr(o, "/spec/names/shortNames")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        vec![
            self.name(),
            json!(s(o, "/spec/scope")),
            json!(versions.join(",")),
            json!(self.created_at()),
            json!(s(o, "/spec/group")),
            json!(s(o, "/spec/names/kind")),
            json!(short.join(",")),
            json!(cond_true(arr(o, "/status/conditions"), "Established")),
        ]
    }
}

/// formatHPAMetrics (autoscaling/v2 shapes).
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let max = 2;
    let mut list: Vec<String> = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        let status = statuses.get(idx);
        let st = |field: &str| status.and_then(|s| s.get(field)).filter(|v| !v.is_null());
        let entry = match s(spec, "/type") {
            ty @ ("External" | "Object") => {
                let field = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = spec.pointer(&format!("/{field}/target"));
                match target.and_then(|t| t.get("averageValue")) {
                    Some(avg) => {
                        let current = st(field)
                            .and_then(|c| c.pointer("/current/averageValue"))
                            .map_or_else(|| "<unknown>".to_string(), |q| quantity(Some(q)));
                        format!("{current}/{} (avg)", quantity(Some(avg)))
                    }
                    None => {
                        let current = st(field).map_or_else(
                            || "<unknown>".to_string(),
                            |c| quantity(c.pointer("/current/value")),
                        );
                        format!(
                            "{current}/{}",
                            quantity(target.and_then(|t| t.get("value")))
                        )
                    }
                }
            }
            "Pods" => {
                let current = st("pods").map_or_else(
                    || "<unknown>".to_string(),
                    |c| quantity(c.pointer("/current/averageValue")),
                );
                format!(
                    "{current}/{}",
                    quantity(spec.pointer("/pods/target/averageValue"))
                )
            }
            ty @ ("Resource" | "ContainerResource") => {
                let field = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = spec
                    .pointer(&format!("/{field}/name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let target = spec.pointer(&format!("/{field}/target"));
                match target.and_then(|t| t.get("averageValue")) {
                    Some(avg) => {
                        let current = st(field).map_or_else(
                            || "<unknown>".to_string(),
                            |c| quantity(c.pointer("/current/averageValue")),
                        );
                        format!("{name}: {current}/{}", quantity(Some(avg)))
                    }
                    None => {
                        let current = st(field)
                            .and_then(|c| c.pointer("/current/averageUtilization"))
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
                        let target = target
                            .and_then(|t| t.get("averageUtilization"))
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                        format!("{name}: {current}/{target}")
                    }
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > max {
        list.truncate(max);
        return format!("{} + {} more...", list.join(", "), count - max);
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    const NOW: &str = "2026-01-10T12:00:00Z";

    fn print(o: &Value, key: &str) -> Vec<Value> {
        Printer::new(o, at(NOW)).cells(key)
    }

    fn pod(o: &Value) -> (Vec<Value>, Option<Value>) {
        Printer::new(o, at(NOW)).pod()
    }

    #[test]
    fn human_durations_as_apimachinery_writes_them() {
        let cases = [
            (-5_000, "<invalid>"),
            (-1_500, "0s"),
            (0, "0s"),
            (5_000, "5s"),
            (119_000, "119s"),
            (120_000, "2m"),
            (150_000, "2m30s"),
            (600_000, "10m"),
            (179 * 60_000, "179m"),
            (3 * 3_600_000, "3h"),
            (3 * 3_600_000 + 5 * 60_000, "3h5m"),
            (8 * 3_600_000, "8h"),
            (47 * 3_600_000, "47h"),
            (48 * 3_600_000, "2d"),
            (50 * 3_600_000, "2d2h"),
            (8 * 86_400_000, "8d"),
            (400 * 86_400_000, "400d"),
            (2 * 365 * 86_400_000 + 86_400_000, "2y1d"),
            (9 * 365 * 86_400_000, "9y"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_duration(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn pending_pod() {
        let p = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-10T11:59:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Pending"}});
        let (cells, conds) = pod(&p);
        assert_eq!(
            cells,
            [
                "p", "0/2", "Pending", "0", "60s", "<none>", "<none>", "<none>", "<none>"
            ]
        );
        assert_eq!(conds, None);
    }

    #[test]
    fn running_pod_with_restarts_and_gates() {
        let p = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-10T11:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}],
                "readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.1.0.5"}], "nominatedNodeName": "n2",
                "conditions": [{"type": "x", "status": "True"}, {"type": "y", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-10T11:55:00Z"}}},
                    {"name": "b", "ready": false, "restartCount": 1, "state": {"running": {}}}]}});
        let (cells, _) = pod(&p);
        assert_eq!(
            cells,
            [
                "p",
                "1/2",
                "Running",
                "3 (5m ago)",
                "60m",
                "10.1.0.5",
                "n1",
                "n2",
                "1/2"
            ]
        );
    }

    #[test]
    fn pod_status_reasons() {
        let waiting = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod(&waiting).0[2], "ContainerCreating");
        assert_eq!(pod(&waiting).0[4], "<unknown>");

        let completed = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "a", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        let (cells, conds) = pod(&completed);
        assert_eq!(cells[2], "Completed");
        assert_eq!(conds.expect("conditions")[0]["reason"], "Succeeded");

        let failed = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(pod(&failed).0[2], "Signal:9");
        assert_eq!(pod(&failed).1.expect("conditions")[0]["reason"], "Failed");

        let terminating = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-10T11:00:00Z"},
            "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running"}});
        assert_eq!(pod(&terminating).0[2], "Terminating");

        let init = json!({"metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}}]}});
        assert_eq!(pod(&init).0[2], "Init:1/2");

        let crash = json!({"metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod(&crash).0[2], "Init:CrashLoopBackOff");

        let sidecar = json!({"metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "started": true, "ready": true, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod(&sidecar).0[1], "2/2");
        assert_eq!(pod(&sidecar).0[2], "Running");

        let gated = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(pod(&gated).0[2], "SchedulingGated");
    }

    #[test]
    fn service_ports_and_external_ips() {
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIPs": ["10.0.0.9"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30001, "protocol": "TCP"}],
            "selector": {"b": "2", "a": "1"}}});
        let c = print(&svc, "services");
        assert_eq!(
            c[1..5],
            [
                json!("NodePort"),
                json!("10.0.0.9"),
                json!("<none>"),
                json!("80/TCP,443:30001/TCP")
            ]
        );
        assert_eq!(c[6], "a=1,b=2");
        let lb = json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(print(&lb, "services")[3], "<pending>");
        assert_eq!(print(&lb, "services")[2], "<none>");
        assert_eq!(print(&lb, "services")[4], "<none>");
        let lb = json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "h.example"}]}}});
        assert_eq!(print(&lb, "services")[3], "5.6.7.8,h.example,1.2.3.4");
        let ext = json!({"metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(print(&ext, "services")[3], "db.example");
    }

    #[test]
    fn workloads() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "template": {"spec": {"containers": [{"name": "n", "image": "nginx"}, {"name": "s", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            print(&d, "apps/deployments"),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("<unknown>"),
                json!("n,s"),
                json!("nginx,busybox"),
                json!("app=web,tier in (a,b)")
            ]
        );
        let cr = json!({"metadata": {"name": "r", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]}, "revision": 2});
        assert_eq!(
            print(&cr, "apps/controllerrevisions")[1],
            "daemonset.apps/agent"
        );
        assert_eq!(print(&cr, "apps/controllerrevisions")[2], 2);
    }

    #[test]
    fn jobs() {
        let mut j = json!({"metadata": {"name": "j"}, "spec": {"completions": 3, "parallelism": 1,
            "selector": {"matchLabels": {"x": "y"}}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"succeeded": 1, "startTime": "2026-01-10T11:58:00Z"}});
        let c = print(&j, "batch/jobs");
        assert_eq!(c[1..4], [json!("Running"), json!("1/3"), json!("2m")]);
        j["status"]["completionTime"] = json!("2026-01-10T11:58:30Z");
        j["status"]["conditions"] = json!([{"type": "Complete", "status": "True"}]);
        assert_eq!(
            print(&j, "batch/jobs")[1..4],
            [json!("Complete"), json!("1/3"), json!("30s")]
        );
        let mut s = json!({"metadata": {"name": "j"}, "spec": {"parallelism": 2}});
        assert_eq!(print(&s, "batch/jobs")[2], "0/1 of 2");
        assert_eq!(print(&s, "batch/jobs")[3], "");
        s["status"] = json!({"conditions": [{"type": "Suspended", "status": "True"}]});
        assert_eq!(print(&s, "batch/jobs")[1], "Suspended");
        s["status"] = json!({"conditions": [{"type": "Failed", "status": "True"}]});
        assert_eq!(print(&s, "batch/jobs")[1], "Failed");
    }

    #[test]
    fn events_read_both_timestamps() {
        let e = json!({"metadata": {"name": "e1"}, "type": "Normal", "reason": "Pulled", "message": " done \n",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2026-01-10T11:50:00Z", "lastTimestamp": "2026-01-10T11:59:30Z", "count": 4});
        assert_eq!(
            print(&e, "events"),
            [
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/p"),
                json!("spec.containers{c}"),
                json!("kubelet, n1"),
                json!("done"),
                json!("10m"),
                json!(4),
                json!("e1")
            ]
        );
        let new = json!({"metadata": {"name": "e2"}, "eventTime": "2026-01-10T11:59:00.000000Z",
            "reportingComponent": "ctl", "involvedObject": {"kind": "Node"}});
        let c = print(&new, "events");
        assert_eq!(c[0], "60s");
        assert_eq!(c[3], "node");
        assert_eq!(c[5], "ctl");
        assert_eq!(c[8], 1);
    }

    #[test]
    fn small_kinds() {
        let ns = json!({"metadata": {"name": "n"}, "status": {"phase": "Active"}});
        assert_eq!(print(&ns, "namespaces")[1], "Active");
        let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
        assert_eq!(print(&sec, "secrets")[1..3], [json!("Opaque"), json!(2)]);
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            print(&pdb, "policy/poddisruptionbudgets")[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(print(&ep, "endpoints")[1], "10.0.0.1:80,[fd00::1]:80");
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "x"}],
            "endpoints": [{"addresses": ["1.1.1.1", "2.2.2.2"]}, {"addresses": ["3.3.3.3", "4.4.4.4"]}]});
        assert_eq!(
            print(&slice, "discovery.k8s.io/endpointslices")[2..4],
            [json!("80,x"), json!("1.1.1.1,2.2.2.2,3.3.3.3 + 1 more...")]
        );
        let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "s", "username": "u", "expirationSeconds": 3600},
            "status": {"conditions": [{"type": "Approved"}]}});
        assert_eq!(
            print(&csr, "certificates.k8s.io/certificatesigningrequests")[2..6],
            [json!("s"), json!("u"), json!("60m"), json!("Approved")]
        );
        let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]}});
        assert_eq!(
            print(&hpa, "autoscaling/horizontalpodautoscalers")[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: <unknown>/80%"),
                json!("1"),
                json!(5),
                json!(0)
            ]
        );
        let rb = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [
            {"kind": "User", "name": "u1"}, {"kind": "User", "name": "u2"},
            {"kind": "ServiceAccount", "namespace": "kube-system", "name": "sa"}]});
        let c = print(&rb, "rbac.authorization.k8s.io/rolebindings");
        assert_eq!(c[1], "Role/r");
        assert_eq!(
            c[3..6],
            [json!("u1, u2"), json!(""), json!("kube-system/sa")]
        );
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2026-01-10T11:00:00Z"}});
        assert_eq!(
            print(&role, "rbac.authorization.k8s.io/roles"),
            [json!("r"), json!("2026-01-10T11:00:00Z")]
        );
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "nodeInfo": {"kubeletVersion": "v1.37.2", "architecture": "amd64"},
                "addresses": [{"type": "InternalIP", "address": "10.0.1.1"}]}});
        assert_eq!(
            print(&node, "nodes")[1..],
            [
                json!("NotReady,SchedulingDisabled"),
                json!("control-plane"),
                json!("<unknown>"),
                json!("v1.37.2"),
                json!("10.0.1.1"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown> (amd64)"),
                json!("<unknown>")
            ]
        );
        let api = json!({"metadata": {"name": "v1.x"}, "spec": {"service": {"namespace": "a", "name": "b"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            print(&api, "apiregistration.k8s.io/apiservices")[1..3],
            [json!("a/b"), json!("False (MissingEndpoints)")]
        );
        let crd = json!({"metadata": {"name": "a.b", "creationTimestamp": "2026-01-10T11:00:00Z"},
            "spec": {"group": "b", "scope": "Namespaced", "names": {"kind": "A", "shortNames": ["x", "y"]},
                "versions": [{"name": "v2", "served": true, "storage": true}, {"name": "v1", "served": true}, {"name": "v0", "served": false}]},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(
            print(&crd, "apiextensions.k8s.io/customresourcedefinitions")[1..],
            [
                json!("Namespaced"),
                json!("v1,v2(storage)"),
                json!("2026-01-10T11:00:00Z"),
                json!("b"),
                json!("A"),
                json!("x,y"),
                json!(true)
            ]
        );
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
            "used": {"pods": "3", "requests.cpu": "500m"}}});
        assert_eq!(
            print(&q, "resourcequotas")[1..3],
            [
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2")
            ]
        );
    }
}
