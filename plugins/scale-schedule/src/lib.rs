//! ScaleSchedule: keeps a Deployment at the replicas a custom resource asks for (README.md).

use k8s_openapi::api::apps::v1::Deployment;
use kubewasm_sdk::prelude::*;

/// Keeps a Deployment in the same namespace at `replicas`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kubewasm(group = "demo.kubewasm.dev", version = "v1", namespaced)]
#[kubewasm(kind = "ScaleSchedule", status = "ScaleScheduleStatus")]
#[kubewasm(printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#)]
pub struct ScaleScheduleSpec {
    pub deployment: String,
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleScheduleStatus {
    pub observed_replicas: Option<i32>,
    pub phase: String,
}

const RELEASE: &str = "demo.kubewasm.dev/release";

struct Scaler;

impl Plugin for Scaler {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ScaleSchedule>()
            .custom_resource::<ScaleSchedule>()
            .watches_by_field::<Deployment>("spec.deployment", "metadata.name")
            .permit::<ScaleSchedule>(&[Verb::Patch])
            .permit::<Deployment>(&[Verb::Patch])
    }

    fn reconcile(req: Request) -> Result<Action> {
        let api = Api::<ScaleSchedule>::namespaced(&req.namespace);
        let deployments = Api::namespaced(&req.namespace);
        finalizer(&api, RELEASE, api.get(&req.name)?, |event| match event {
            FinalizerEvent::Apply(s) => scale(&api, &deployments, &s),
            FinalizerEvent::Cleanup(s) => {
                let note = format!("no longer scaled by ScaleSchedule {}", req.name);
                deployments.event(&s.spec.deployment, &Event::normal("Released", note))?;
                Ok(Action::done())
            }
        })
    }
}

kubewasm_sdk::export_plugin!(Scaler);

fn scale(api: &Api<ScaleSchedule>, d: &Api<Deployment>, s: &ScaleSchedule) -> Result<Action> {
    let (name, want) = (&s.spec.deployment, s.spec.replicas);
    let status = if let Some(current) = d.get(name)? {
        let had = current.spec.and_then(|spec| spec.replicas).unwrap_or(1);
        if had != want {
            d.patch_scale(name, &Patch::merge(json!({"spec": {"replicas": want}}))?)?;
            let note = format!("scaled Deployment {name} from {had} to {want} replicas");
            event(s, &Event::normal("Scaled", note).action("Scale"))?;
        }
        json!({"observedReplicas": want, "phase": "Scaled"})
    } else {
        json!({"observedReplicas": null, "phase": "DeploymentMissing"})
    };
    api.patch_status_if_changed(s, &status)?;
    Ok(Action::done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewasm_sdk::testing::{Call, FakeHost};

    fn host_with(replicas: Option<i32>) -> FakeHost {
        let host = FakeHost::for_plugin::<Scaler>();
        host.custom_resource::<ScaleSchedule>();
        host.seed_json::<ScaleSchedule>(json!({
            "metadata": {"namespace": "demo", "name": "nightly"},
            "spec": {"deployment": "web", "replicas": 5}}));
        if let Some(replicas) = replicas {
            host.seed_json::<Deployment>(json!({
                "metadata": {"namespace": "demo", "name": "web"},
                "spec": {"replicas": replicas, "selector": {}, "template": {}}}));
        }
        host
    }

    fn schedule(host: &FakeHost) -> ScaleSchedule {
        host.object("demo", "nightly").expect("the ScaleSchedule")
    }

    #[test]
    fn scales_the_deployment_reports_it_and_records_an_event() {
        let host = host_with(Some(2));
        assert_eq!(
            host.reconcile::<Scaler>("demo", "nightly"),
            Ok(Action::done())
        );
        let web: Deployment = host.object("demo", "web").unwrap();
        assert_eq!(web.spec.unwrap().replicas, Some(5));
        let s = schedule(&host);
        assert_eq!(s.metadata.finalizers.unwrap(), [RELEASE]);
        let status = s.status.unwrap();
        assert_eq!(
            (status.observed_replicas, status.phase.as_str()),
            (Some(5), "Scaled")
        );
        let events = host.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].name.as_str(), events[0].event.reason.as_str()),
            ("nightly", "Scaled")
        );
        assert!(
            host.writes().iter().any(|w| w.call == Call::PatchScale),
            "{:?}",
            host.writes()
        );
    }

    #[test]
    fn a_second_reconcile_writes_nothing() {
        let host = host_with(Some(2));
        host.reconcile::<Scaler>("demo", "nightly").unwrap();
        host.clear_records();
        host.reconcile::<Scaler>("demo", "nightly").unwrap();
        assert_eq!(host.writes(), [], "nothing changed, nothing written");
        assert_eq!(host.events(), []);
    }

    #[test]
    fn a_missing_deployment_is_reported_in_the_status() {
        let host = host_with(None);
        host.reconcile::<Scaler>("demo", "nightly").unwrap();
        let status = schedule(&host).status.unwrap();
        assert_eq!(
            (status.observed_replicas, status.phase.as_str()),
            (None, "DeploymentMissing")
        );
        assert_eq!(host.events(), []);
    }

    #[test]
    fn deletion_releases_the_deployment_and_removes_the_finalizer() {
        let host = host_with(Some(5));
        host.seed_json::<ScaleSchedule>(json!({
            "metadata": {"namespace": "demo", "name": "nightly", "finalizers": [RELEASE],
                         "deletionTimestamp": "2026-12-04T00:00:00Z"},
            "spec": {"deployment": "web", "replicas": 5}}));
        assert_eq!(
            host.reconcile::<Scaler>("demo", "nightly"),
            Ok(Action::done())
        );
        let events = host.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].name.as_str(), events[0].event.reason.as_str()),
            ("web", "Released")
        );
        assert!(
            host.object::<ScaleSchedule>("demo", "nightly").is_none(),
            "the finalizer is gone, and so is the object"
        );
    }

    #[test]
    fn a_deleted_schedule_needs_nothing() {
        let host = FakeHost::for_plugin::<Scaler>();
        assert_eq!(host.reconcile::<Scaler>("demo", "gone"), Ok(Action::done()));
        assert_eq!(host.writes(), []);
    }

    #[test]
    fn the_crd_enforces_the_replicas_range_and_has_a_status() {
        let crd = ScaleSchedule::crd();
        let version = &crd["spec"]["versions"][0];
        let replicas =
            &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"];
        assert_eq!(
            (replicas["minimum"].as_f64(), replicas["maximum"].as_f64()),
            (Some(0.0), Some(100.0))
        );
        assert_eq!(version["subresources"]["status"], json!({}));
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(
            version["additionalPrinterColumns"][0]["jsonPath"], ".status.phase",
            "kubectl get scaleschedules shows the phase"
        );
    }
}

#[cfg(test)]
mod size {
    /// The example's promise (README.md): the whole operator, its custom resource and CRD
    /// included, in at most 60 non-blank lines of code and docs (tests not counted).
    #[test]
    fn the_operator_fits_in_60_lines() {
        let source = include_str!("lib.rs");
        let code = &source[..source.find("#[cfg(test)]").expect("the tests")];
        let lines = code.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines <= 60, "{lines} non-blank lines before the tests");
    }
}
