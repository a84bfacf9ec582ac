//! What kube-apiserver's defaulting (`SetDefaults_*` in `pkg/apis/*/v1/defaults.go` and the
//! generated `SetObjectDefaults_*`) and create strategies fill in on built-in kinds, so that an
//! operator's "desired vs actual" comparison sees in dev mode what it sees in a cluster: a Service
//! of `type: ClusterIP` with a clusterIP, a StatefulSet with `podManagementPolicy` and
//! `status.replicas: 0`, containers with `imagePullPolicy` and `terminationMessagePath`, and so on.
//! Only the kinds the embedded server serves are covered; fields whose default depends on feature
//! gates follow kube-apiserver 1.37's defaults.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Fills in the defaults of `obj` (a built-in kind; custom resources get the defaults of their
/// schema elsewhere), on every write, before the field manager records who set what.
pub fn apply(ty: &ResourceType, obj: &mut Value) {
    if !ty.builtin {
        return;
    }
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (ty.group.as_str(), ty.resource.as_str()) {
        ("", "pods") => {
            if let Some(spec) = object(o, "spec") {
                pod_spec(spec);
                pod_only(spec);
            }
        }
        ("", "services") => service(o),
        ("", "secrets") => {
            // Decoding folds stringData into data before anything else sees the Secret.
            crate::normalize::fold_string_data(o);
            set(o, "type", json!("Opaque"));
        }
        ("", "namespaces") => namespace(o),
        ("", "nodes") => {
            if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut)
                && !status.contains_key("allocatable")
                && let Some(capacity) = status.get("capacity").cloned()
            {
                status.insert("allocatable".into(), capacity);
            }
        }
        ("apps", "deployments") => {
            if let Some(spec) = object(o, "spec") {
                deployment_spec(spec);
            }
        }
        ("apps", "statefulsets") => {
            if let Some(spec) = object(o, "spec") {
                stateful_set_spec(spec);
            }
        }
        ("apps", "replicasets") => {
            if let Some(spec) = object(o, "spec") {
                set(spec, "replicas", json!(1));
                template(spec);
            }
        }
        ("apps", "daemonsets") => {
            let generation = o
                .get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if let Some(annotations) =
                object(object(o, "metadata").expect("an object"), "annotations")
            {
                set(
                    annotations,
                    "deprecated.daemonset.template.generation",
                    json!(generation.to_string()),
                );
            }
            if let Some(spec) = object(o, "spec") {
                daemon_set_spec(spec);
            }
        }
        ("batch", "jobs") => job(o),
        ("batch", "cronjobs") => {
            if let Some(spec) = object(o, "spec") {
                set(spec, "concurrencyPolicy", json!("Allow"));
                set(spec, "suspend", json!(false));
                set(spec, "successfulJobsHistoryLimit", json!(3));
                set(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(job_template) = object(spec, "jobTemplate") {
                    object(job_template, "metadata");
                    if let Some(job_spec) = object(job_template, "spec") {
                        template(job_spec);
                    }
                }
            }
        }
        ("", "events") | ("events.k8s.io", "events") => {
            // Stored as core/v1: fields without omitempty are always serialised.
            set(o, "eventTime", Value::Null);
            set(o, "firstTimestamp", Value::Null);
            set(o, "lastTimestamp", Value::Null);
            object(o, "source");
            set(o, "reportingComponent", json!(""));
            set(o, "reportingInstance", json!(""));
        }
        ("networking.k8s.io", "networkpolicies") => {
            if let Some(spec) = object(o, "spec") {
                network_policy_spec(spec);
            }
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            if let Some(spec) = object(o, "spec") {
                set(spec, "minReplicas", json!(1));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            if let Some(spec) = object(o, "spec") {
                crd_spec(spec);
            }
        }
        _ => {}
    }
}

/// A CRD's `conversion` (`None`) and the names derived from its kind.
fn crd_spec(spec: &mut Map<String, Value>) {
    let conversion = object(spec, "conversion").expect("an object");
    set(conversion, "strategy", json!("None"));
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !kind.is_empty() {
            set(names, "singular", json!(kind.to_lowercase()));
            set(names, "listKind", json!(format!("{kind}List")));
        }
    }
}

/// What a create strategy sets on a new object after the field manager ran (so nobody owns
/// it): the initial status, a namespace's finalizer.
pub fn prepare_for_create(ty: &ResourceType, obj: &mut Value) {
    if !ty.builtin {
        return;
    }
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (ty.group.as_str(), ty.resource.as_str()) {
        ("", "pods") => {
            let qos = qos_class(o.get("spec"));
            let gated = o
                .get("spec")
                .and_then(|s| s.get("schedulingGates"))
                .and_then(Value::as_array)
                .is_some_and(|g| !g.is_empty());
            let status = object(o, "status").expect("status is an object now");
            status.entry("phase").or_insert_with(|| json!("Pending"));
            status.insert("qosClass".into(), json!(qos));
            if gated {
                status.insert(
                    "conditions".into(),
                    json!([{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                            "lastTransitionTime": crate::object::now_rfc3339(),
                            "reason": "SchedulingGated",
                            "message": "Scheduling is blocked due to non-empty scheduling gates"}]),
                );
            }
        }
        ("", "services") => {
            // The status is not a pointer: a Service always serialises `status.loadBalancer`.
            let status = object(o, "status").expect("an object");
            status.entry("loadBalancer").or_insert_with(|| json!({}));
        }
        ("", "namespaces") => {
            // The namespace controller's finalizer: the namespace goes once it is empty.
            o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        }
        ("apps", "deployments") => {
            o.insert("status".into(), json!({}));
        }
        ("apps", "statefulsets") => {
            o.insert(
                "status".into(),
                json!({"replicas": 0, "availableReplicas": 0}),
            );
        }
        ("apps", "replicasets") => {
            o.insert("status".into(), json!({"replicas": 0}));
        }
        ("apps", "daemonsets") => {
            o.insert(
                "status".into(),
                json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                       "numberMisscheduled": 0, "numberReady": 0}),
            );
        }
        ("batch", "jobs") => {
            job_selector(o);
            o.insert("status".into(), json!({}));
        }
        ("batch", "cronjobs") | ("", "resourcequotas") => {
            o.insert("status".into(), json!({}));
        }
        ("policy", "poddisruptionbudgets") => {
            o.insert(
                "status".into(),
                json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0,
                       "expectedPods": 0}),
            );
        }
        ("networking.k8s.io", "ingresses") => {
            o.insert("status".into(), json!({"loadBalancer": {}}));
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            o.insert(
                "status".into(),
                json!({"currentMetrics": null, "desiredReplicas": 0}),
            );
        }
        _ => {}
    }
}

/// The object at `key` of `map`, created empty when missing (None when it is not an object).
fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let v = map.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.as_object_mut()
}

/// Sets `key` to `value` unless it has a value already (null and "" count as unset, as the Go
/// zero values they decode to).
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    let unset = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if unset {
        map.insert(key.to_owned(), value);
    }
}

/// Sets a number `key` unless it is set to something other than 0 (Go ints default at 0).
fn set_nonzero(map: &mut Map<String, Value>, key: &str, value: i64) {
    if map.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
        map.insert(key.to_owned(), json!(value));
    }
}

fn each_object(value: Option<&mut Value>, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(items)) = value {
        for item in items {
            if let Some(m) = item.as_object_mut() {
                f(m);
            }
        }
    }
}

/// `spec.template` of a workload: its Pod spec gets a Pod's defaults (and its metadata, a struct
/// that is not a pointer, is always serialised).
fn template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        object(t, "metadata");
        if let Some(pod) = object(t, "spec") {
            pod_spec(pod);
        }
    }
}

fn daemon_set_spec(spec: &mut Map<String, Value>) {
    let strategy = object(spec, "updateStrategy").expect("an object");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object(strategy, "rollingUpdate").expect("an object");
        set(rolling, "maxUnavailable", json!(1));
        set(rolling, "maxSurge", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

/// `SetDefaults_Job`: completions and parallelism, backoff, completion mode, suspend, the pod
/// replacement policy, `manualSelector: false` and the template's Pod defaults.
fn job(o: &mut Map<String, Value>) {
    let Some(spec) = object(o, "spec") else {
        return;
    };
    let completions_unset = spec.get("completions").is_none_or(Value::is_null);
    let parallelism_unset = spec.get("parallelism").is_none_or(Value::is_null);
    if completions_unset && parallelism_unset {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    } else if parallelism_unset {
        spec.insert("parallelism".into(), json!(1));
    }
    if spec.get("backoffLimitPerIndex").is_none_or(Value::is_null) {
        set(spec, "backoffLimit", json!(6));
    }
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some_and(|p| !p.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set(spec, "podReplacementPolicy", json!(replacement));
    set(spec, "manualSelector", json!(false));
    template(spec);
}

/// The Job strategy's `PrepareForCreate`: unless `manualSelector`, the selector and the template's
/// labels name the Job's uid, and a Job without labels takes its template's. This comes after the
/// field manager, so nobody owns what it adds.
fn job_selector(o: &mut Map<String, Value>) {
    let meta = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let uid = meta
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(spec) = object(o, "spec") else {
        return;
    };
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if manual || uid.is_empty() {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let t = object(spec, "template").expect("an object");
    let labels = object(object(t, "metadata").expect("an object"), "labels").expect("an object");
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid.as_str()),
        ("job-name", name.as_str()),
    ] {
        labels.insert(k.into(), json!(v));
    }
    let template_labels = Value::Object(labels.clone());
    let meta = object(o, "metadata").expect("an object");
    if meta
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
    {
        meta.insert("labels".into(), template_labels);
    }
}

/// `SetDefaults_NetworkPolicy`: ports default to TCP; policyTypes lists Ingress, and Egress when
/// egress rules are given.
fn network_policy_spec(spec: &mut Map<String, Value>) {
    for rules in ["ingress", "egress"] {
        each_object(spec.get_mut(rules), |rule| {
            each_object(rule.get_mut("ports"), |port| {
                set(port, "protocol", json!("TCP"))
            });
        });
    }
    if spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

fn deployment_spec(spec: &mut Map<String, Value>) {
    set(spec, "replicas", json!(1));
    let strategy = object(spec, "strategy").expect("an object");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object(strategy, "rollingUpdate").expect("an object");
        set(rolling, "maxUnavailable", json!("25%"));
        set(rolling, "maxSurge", json!("25%"));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

fn stateful_set_spec(spec: &mut Map<String, Value>) {
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = object(spec, "updateStrategy").expect("an object");
    if strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        strategy.insert("type".into(), json!("RollingUpdate"));
        if !strategy.get("rollingUpdate").is_some_and(Value::is_object) {
            strategy.insert("rollingUpdate".into(), json!({}));
        }
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(rolling) = strategy
            .get_mut("rollingUpdate")
            .and_then(Value::as_object_mut)
    {
        set(rolling, "partition", json!(0));
        // The MaxUnavailableStatefulSet feature, on by default in 1.37.
        set(rolling, "maxUnavailable", json!(1));
    }
    let retention = object(spec, "persistentVolumeClaimRetentionPolicy").expect("an object");
    set(retention, "whenDeleted", json!("Retain"));
    set(retention, "whenScaled", json!("Retain"));
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    template(spec);
    each_object(spec.get_mut("volumeClaimTemplates"), |pvc| {
        // Embedded objects are serialised with their type.
        set(pvc, "apiVersion", json!("v1"));
        set(pvc, "kind", json!("PersistentVolumeClaim"));
        if let Some(s) = object(pvc, "spec") {
            set(s, "volumeMode", json!("Filesystem"));
        }
        let status = object(pvc, "status").expect("an object");
        set(status, "phase", json!("Pending"));
    });
}

/// `SetDefaults_PodSpec` and what the generated defaulters do to containers, probes, ports and
/// volumes.
fn pod_spec(spec: &mut Map<String, Value>) {
    // serviceAccount is the deprecated alias of serviceAccountName; each fills the other.
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && let Some(sa) = spec.get("serviceAccount").cloned()
    {
        spec.insert("serviceAccountName".into(), sa);
    }
    if let Some(sa) = spec.get("serviceAccountName").cloned()
        && sa.as_str().is_some_and(|s| !s.is_empty())
    {
        spec.insert("serviceAccount".into(), sa);
    }
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "securityContext", json!({}));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        each_object(spec.get_mut(list), container);
    }
    each_object(spec.get_mut("ephemeralContainers"), container);
    each_object(spec.get_mut("volumes"), volume);
}

/// What `SetDefaults_Pod` adds to a Pod's spec (and not to a workload's Pod template).
fn pod_only(spec: &mut Map<String, Value>) {
    set(spec, "enableServiceLinks", json!(true));
    if spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s < 0)
    {
        spec.insert("terminationGracePeriodSeconds".into(), json!(1));
    }
    // Requests default to the limits.
    for list in ["containers", "initContainers"] {
        each_object(spec.get_mut(list), |c| {
            let Some(resources) = c.get_mut("resources").and_then(Value::as_object_mut) else {
                return;
            };
            if let Some(Value::Object(limits)) = resources.get("limits").cloned() {
                let requests = object(resources, "requests").expect("an object");
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        });
    }
}

fn container(c: &mut Map<String, Value>) {
    if c.get("imagePullPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    // ResourceRequirements is not a pointer: it is always serialised.
    object(c, "resources");
    each_object(c.get_mut("ports"), |p| set(p, "protocol", json!("TCP")));
    each_object(c.get_mut("env"), |e| {
        if let Some(field) = e
            .get_mut("valueFrom")
            .and_then(Value::as_object_mut)
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            set(field, "apiVersion", json!("v1"));
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_nonzero(p, "timeoutSeconds", 1);
            set_nonzero(p, "periodSeconds", 10);
            set_nonzero(p, "successThreshold", 1);
            set_nonzero(p, "failureThreshold", 3);
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set(get, "path", json!("/"));
                set(get, "scheme", json!("HTTP"));
            }
            if let Some(grpc) = p.get_mut("grpc").and_then(Value::as_object_mut) {
                grpc.entry("service").or_insert_with(|| json!(""));
            }
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(get) = lifecycle
                .get_mut(hook)
                .and_then(Value::as_object_mut)
                .and_then(|h| h.get_mut("httpGet"))
                .and_then(Value::as_object_mut)
            {
                set(get, "path", json!("/"));
                set(get, "scheme", json!("HTTP"));
            }
        }
    }
}

/// The tag of an image reference (`latest` when it has neither tag nor digest).
fn image_tag(image: &str) -> &str {
    if image.contains('@') {
        return "";
    }
    // A ':' after the last '/' separates the tag (one before it belongs to a registry port).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

fn volume(v: &mut Map<String, Value>) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for (source, mode) in [
        ("secret", 420),
        ("configMap", 420),
        ("downwardAPI", 420),
        ("projected", 420),
    ] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            set(s, "defaultMode", json!(mode));
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        h.entry("type").or_insert_with(|| json!(""));
    }
    let downward = v
        .get_mut("downwardAPI")
        .and_then(Value::as_object_mut)
        .and_then(|d| d.get_mut("items"));
    each_object(downward, |item| {
        if let Some(f) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
            set(f, "apiVersion", json!("v1"));
        }
    });
    if let Some(p) = v.get_mut("projected").and_then(Value::as_object_mut) {
        each_object(p.get_mut("sources"), |s| {
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = s.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                each_object(d.get_mut("items"), |item| {
                    if let Some(f) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                        set(f, "apiVersion", json!("v1"));
                    }
                });
            }
        });
    }
}

/// A Pod's QoS class: Guaranteed when every container limits CPU and memory with requests equal
/// to the limits, BestEffort when no container requests or limits anything, else Burstable.
fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>| {
            m.is_some_and(|m| m.keys().any(|k| k == "cpu" || k == "memory"))
        };
        any |= relevant(limits) || relevant(requests);
        for r in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(r));
            let request = requests.and_then(|q| q.get(r)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn service(o: &mut Map<String, Value>) {
    let Some(spec) = object(o, "spec") else {
        return;
    };
    set(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("None") {
        spec.remove("sessionAffinityConfig");
    } else if spec
        .get("sessionAffinityConfig")
        .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
        .is_none()
    {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    set(spec, "type", json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    each_object(spec.get_mut("ports"), |p| {
        set(p, "protocol", json!("TCP"));
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    let external = ty == "NodePort" || ty == "LoadBalancer";
    if external {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn namespace(o: &mut Map<String, Value>) {
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !name.is_empty()
        && let Some(meta) = object(o, "metadata")
    {
        let labels = object(meta, "labels").expect("an object");
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn defaulted(resource: &str, group: &str, mut obj: Value) -> Value {
        let ty = Registry::builtin()
            .get(group, "v1", resource)
            .expect("a served type");
        apply(&ty, &mut obj);
        prepare_for_create(&ty, &mut obj);
        obj
    }

    #[test]
    fn a_service_gets_kube_apiservers_defaults() {
        let svc = defaulted(
            "services",
            "",
            json!({"spec": {"selector": {"app": "x"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(svc["spec"]["ports"][1]["targetPort"], "dns");
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        assert!(svc["spec"].get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn containers_of_a_stateful_sets_template_get_pod_defaults() {
        let sts = defaulted(
            "statefulsets",
            "apps",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "redis:7.2",
                "readinessProbe": {"exec": {"command": ["true"]}}}]}}}}),
        );
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            sts["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}})
        );
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(
            sts["status"],
            json!({"replicas": 0, "availableReplicas": 0})
        );
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(sts["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn an_image_without_a_tag_or_tagged_latest_is_always_pulled() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("registry:5000/nginx"), "latest");
        assert_eq!(image_tag("registry:5000/nginx:1.27"), "1.27");
        assert_eq!(image_tag("nginx@sha256:abc"), "");
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let c = |r: Value| json!({"containers": [{"name": "c", "resources": r}]});
        assert_eq!(qos_class(Some(&c(json!({})))), "BestEffort");
        assert_eq!(
            qos_class(Some(&c(json!({"limits": {"cpu": "1", "memory": "1Gi"}})))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(Some(&c(json!({"requests": {"cpu": "1"}})))),
            "Burstable"
        );
    }
}
