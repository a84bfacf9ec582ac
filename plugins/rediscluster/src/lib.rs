//! Example kubewasm operator: runs Redis as a StatefulSet and a headless Service per
//! `RedisCluster` (`cache.example.com/v1alpha1`), keeps them in line with the spec (replicas,
//! image), reports `status.readyReplicas` and `status.phase` (patched only when they
//! change), records Events, and uses a finalizer (the SDK's `finalizer` helper) so deletion
//! always cleans up.
//!
//! Writes that lose a race with the cache — `conflict` (stale resourceVersion),
//! `already-exists` (our own create not in the cache yet), `not-found` (the object went
//! meanwhile) — requeue the key shortly instead of failing: the next reconcile reads a
//! fresher cache and converges.

mod cluster;
mod desired;

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, Event, FinalizerEvent, Manifest, Patch, Plugin, Request,
    Result, Verb, finalizer, log,
};

use crate::cluster::{FINALIZER, Phase, RedisCluster, Spec, Status};
use crate::desired::Ownership;

/// How soon a key is retried after a write lost a race with the cache.
const RETRY_SOON: Duration = Duration::from_millis(500);

struct RedisOperator;

impl Plugin for RedisOperator {
    fn manifest() -> Manifest {
        Manifest::reconcile::<RedisCluster>()
            .custom_resource::<RedisCluster>()
            .owns::<StatefulSet>()
            .owns::<Service>()
            .permit::<RedisCluster>(&[Verb::Patch])
            .permit::<StatefulSet>(&[Verb::Create, Verb::Patch, Verb::Delete])
            .permit::<Service>(&[Verb::Create, Verb::Patch, Verb::Delete])
            .concurrency(4)
    }

    fn reconcile(req: Request) -> Result<Action> {
        match reconcile(&req.namespace, &req.name) {
            Err(e @ (Error::Conflict(_) | Error::AlreadyExists(_) | Error::NotFound(_))) => {
                log::debug(format!("the cache is behind ({e}); retrying soon"));
                Ok(Action::requeue(RETRY_SOON))
            }
            other => other,
        }
    }
}

kubewasm_sdk::export_plugin!(RedisOperator);

fn reconcile(ns: &str, name: &str) -> Result<Action> {
    let clusters = Api::<RedisCluster>::namespaced(ns);
    let Some(rc) = clusters.get(name)? else {
        // Gone without our finalizer (removed by hand, or deleted before the first
        // reconcile): delete what is still controlled by a RedisCluster of this name.
        delete_orphans(ns, name)?;
        return Ok(Action::done());
    };
    finalizer(&clusters, FINALIZER, rc, |event| match event {
        FinalizerEvent::Apply(rc) => apply(&rc),
        FinalizerEvent::Cleanup(rc) => cleanup(&rc),
    })
}

/// Brings the Service and the StatefulSet in line with `rc` and reports its status.
fn apply(rc: &RedisCluster) -> Result<Action> {
    let (ns, name) = key(rc);
    let (services, stateful_sets) = (
        Api::<Service>::namespaced(ns),
        Api::<StatefulSet>::namespaced(ns),
    );
    let uid = rc
        .metadata
        .uid
        .clone()
        .ok_or_else(|| Error::other(format!("RedisCluster {ns}/{name} has no metadata.uid")))?;
    let spec = match Spec::parse(&rc.spec) {
        Ok(spec) => spec,
        Err(message) => return fail(rc, "InvalidSpec", message),
    };

    // The Service first: the StatefulSet names it as its governing service.
    let current_svc = services.get(name)?;
    match current_svc
        .as_ref()
        .map(|s| desired::ownership(&s.metadata, name, &uid))
    {
        Some(Ownership::Foreign) => {
            return fail(
                rc,
                "NameTaken",
                format!("Service {ns}/{name} exists and is not owned by this RedisCluster"),
            );
        }
        Some(Ownership::Predecessor) => {
            // Left by an earlier RedisCluster of this name, whose owner is gone.
            ignore_not_found(services.delete(name, &DeleteParams::default()))?;
            return Ok(Action::requeue(RETRY_SOON));
        }
        _ => {}
    }
    let want_svc = desired::service(rc, &uid);
    let svc_result = match &current_svc {
        None => services.create(&want_svc).map(Some),
        Some(cur) if !desired::service_matches(cur, &want_svc) => services
            .patch(name, &Patch::apply(&want_svc)?.force())
            .map(Some),
        Some(_) => Ok(None),
    };
    match svc_result {
        Ok(Some(_)) if current_svc.is_none() => {
            event(
                rc,
                Event::normal("Created", format!("created Service {ns}/{name}")).action("Create"),
            );
        }
        Ok(_) => {}
        Err(Error::Invalid(m)) => {
            return fail(rc, "Failed", format!("the Service was rejected: {m}"));
        }
        Err(e) => return Err(e),
    }

    let current = stateful_sets.get(name)?;
    match current
        .as_ref()
        .map(|s| desired::ownership(&s.metadata, name, &uid))
    {
        Some(Ownership::Foreign) => {
            return fail(
                rc,
                "NameTaken",
                format!("StatefulSet {ns}/{name} exists and is not owned by this RedisCluster"),
            );
        }
        Some(Ownership::Predecessor) => {
            ignore_not_found(stateful_sets.delete(name, &DeleteParams::default()))?;
            return Ok(Action::requeue(RETRY_SOON));
        }
        _ => {}
    }
    let want = desired::stateful_set(rc, &uid, &spec);
    let sts = match &current {
        None => stateful_sets.create(&want).inspect(|_| {
            let note = format!(
                "created StatefulSet {ns}/{name} with {} replicas of {}",
                spec.replicas, spec.image
            );
            event(rc, Event::normal("Created", note).action("Create"));
        }),
        Some(cur) => {
            let (had, had_image) = (desired::replicas(cur), desired::image(cur));
            if had == spec.replicas && had_image == Some(spec.image.as_str()) {
                Ok(cur.clone())
            } else {
                let patch = Patch::apply(&want)?.force();
                stateful_sets.patch(name, &patch).inspect(|_| {
                    if had != spec.replicas {
                        let note = format!("scaling from {had} to {} replicas", spec.replicas);
                        event(rc, Event::normal("Scaling", note).action("Scale"));
                    }
                    if had_image != Some(spec.image.as_str()) {
                        let note = format!(
                            "changing the image from {} to {}",
                            had_image.unwrap_or("(none)"),
                            spec.image
                        );
                        event(rc, Event::normal("ImageChanged", note).action("Update"));
                    }
                })
            }
        }
    };
    let sts = match sts {
        Ok(sts) => sts,
        Err(Error::Invalid(m)) => {
            return fail(rc, "Failed", format!("the StatefulSet was rejected: {m}"));
        }
        Err(e) => return Err(e),
    };

    let ready = desired::ready(&sts);
    write_status(
        rc,
        Status {
            ready_replicas: ready,
            phase: Phase::of(spec.replicas, ready),
            observed_generation: rc.metadata.generation,
            message: None,
        },
    )?;
    Ok(Action::done())
}

/// Records an Event; a failure to record one is logged, never fails the reconcile.
fn event(rc: &RedisCluster, e: Event) {
    if let Err(err) = kubewasm_sdk::event(rc, &e) {
        log::warn(format!("failed to record event {}: {err}", e.reason));
    }
}

/// Sets phase `Failed` with `message` and, when that is news, a warning Event. Returns `done`:
/// nothing changes until the spec (or the blocking object) does.
fn fail(rc: &RedisCluster, reason: &str, message: String) -> Result<Action> {
    let ready = rc.current_status().map_or(0, |s| s.ready_replicas);
    let changed = write_status(
        rc,
        Status {
            ready_replicas: ready,
            phase: Phase::Failed,
            observed_generation: rc.metadata.generation,
            message: Some(message.clone()),
        },
    )?;
    if changed {
        event(rc, Event::warning(reason, message));
    }
    Ok(Action::done())
}

/// Writes `status` through the status subresource when it differs from the stored one.
/// Returns whether it wrote.
fn write_status(rc: &RedisCluster, status: Status) -> Result<bool> {
    let (ns, _) = key(rc);
    let written = Api::<RedisCluster>::namespaced(ns).patch_status_if_changed(rc, &status)?;
    Ok(written.is_some())
}

fn key(rc: &RedisCluster) -> (&str, &str) {
    (
        rc.metadata.namespace.as_deref().unwrap_or_default(),
        rc.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The RedisCluster is being deleted: delete its StatefulSet and Service; the finalizer
/// helper then removes the finalizer and lets it go.
fn cleanup(rc: &RedisCluster) -> Result<Action> {
    let (ns, name) = key(rc);
    let uid = rc.metadata.uid.as_deref().unwrap_or_default();
    let sts = delete_owned::<StatefulSet>(ns, name, uid)?;
    let svc = delete_owned::<Service>(ns, name, uid)?;
    if sts || svc {
        event(
            rc,
            Event::normal(
                "CleanedUp",
                format!("deleted StatefulSet and Service {ns}/{name}"),
            )
            .action("Delete"),
        );
    }
    log::info(format!("RedisCluster {ns}/{name} cleaned up"));
    Ok(Action::done())
}

/// Deletes `ns/name` of kind `K` unless the cache shows it belongs to someone else.
/// A missing object counts as deleted. Returns whether a delete was sent and succeeded.
fn delete_owned<K>(ns: &str, name: &str, uid: &str) -> Result<bool>
where
    K: kubewasm_sdk::Object,
{
    let api = Api::<K>::namespaced(ns);
    if let Some(obj) = api.get(name)?
        && desired::ownership(obj.meta(), name, uid) == Ownership::Foreign
    {
        return Ok(false);
    }
    ignore_not_found(api.delete(name, &DeleteParams::default()))
}

fn ignore_not_found(r: Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The RedisCluster is gone: delete owned objects still controlled by one of its name.
fn delete_orphans(ns: &str, name: &str) -> Result<()> {
    let stateful_sets = Api::<StatefulSet>::namespaced(ns);
    if let Some(sts) = stateful_sets.get(name)?
        && desired::owned_by_name(&sts.metadata, name)
    {
        ignore_not_found(stateful_sets.delete(name, &DeleteParams::default()))?;
    }
    let services = Api::<Service>::namespaced(ns);
    if let Some(svc) = services.get(name)?
        && desired::owned_by_name(&svc.metadata, name)
    {
        ignore_not_found(services.delete(name, &DeleteParams::default()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Reconciles against the SDK's fake host. It models the cache, resourceVersions and
    //! finalizers, but server-side apply is a plain merge patch there (no field ownership,
    //! no apply conflicts) and nothing garbage-collects owned objects: these tests check
    //! what the operator sends and what it deletes itself, not apply ownership.

    use super::*;
    use kubewasm_sdk::testing::{Call, FakeHost};
    use serde_json::json;

    fn seed_cluster(host: &FakeHost, replicas: i64) {
        host.seed_json::<RedisCluster>(json!({
            "metadata": {"namespace": "demo", "name": "cache", "generation": 1},
            "spec": {"replicas": replicas, "image": "redis:7.2"}
        }));
    }

    fn cluster(host: &FakeHost) -> RedisCluster {
        host.object("demo", "cache")
            .expect("the RedisCluster exists")
    }

    fn status(host: &FakeHost) -> Status {
        cluster(host)
            .current_status()
            .expect("a status was written")
    }

    #[test]
    fn a_new_cluster_gets_a_controlled_service_and_stateful_set_and_the_finalizer() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        seed_cluster(&host, 3);
        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::done())
        );
        let rc = cluster(&host);
        assert_eq!(
            rc.metadata.finalizers.as_deref(),
            Some(&[FINALIZER.to_owned()][..])
        );
        let uid = rc.metadata.uid.clone().unwrap();

        let sts: StatefulSet = host.object("demo", "cache").expect("StatefulSet created");
        assert_eq!(desired::replicas(&sts), 3);
        assert_eq!(desired::image(&sts), Some("redis:7.2"));
        let svc: Service = host.object("demo", "cache").expect("Service created");
        for meta in [&sts.metadata, &svc.metadata] {
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
                ("RedisCluster", uid.as_str(), Some(true))
            );
        }
        assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("None"));
        let created: Vec<_> = host
            .writes()
            .into_iter()
            .filter(|w| w.call == Call::Create)
            .map(|w| w.kind.kind)
            .collect();
        assert_eq!(
            created,
            ["Service", "StatefulSet"],
            "the Service goes first"
        );
        assert_eq!(
            host.events()
                .iter()
                .filter(|e| e.event.reason == "Created")
                .count(),
            2
        );
    }

    #[test]
    fn a_replica_change_in_the_spec_scales_the_stateful_set() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        seed_cluster(&host, 3);
        host.reconcile::<RedisOperator>("demo", "cache").unwrap();
        host.clear_records();

        let mut rc = cluster(&host);
        rc.spec = json!({"replicas": 5, "image": "redis:7.2"});
        rc.metadata.generation = Some(2);
        host.seed(&rc);
        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::done())
        );
        let sts: StatefulSet = host.object("demo", "cache").unwrap();
        assert_eq!(desired::replicas(&sts), 5);
        // In the fake host apply is a merge patch: this checks the operator applies the
        // StatefulSet, not that it owns the fields it applied.
        let applies: Vec<_> = host
            .writes()
            .into_iter()
            .filter(|w| w.call == Call::Apply)
            .map(|w| w.kind.kind)
            .collect();
        assert_eq!(
            applies,
            ["StatefulSet"],
            "the unchanged Service is left alone"
        );
        let events = host.events();
        assert!(
            events
                .iter()
                .any(|e| e.event.reason == "Scaling"
                    && e.event.note == "scaling from 3 to 5 replicas"),
            "{events:?}"
        );
        assert_eq!(status(&host).observed_generation, Some(2));
    }

    #[test]
    fn status_reports_ready_replicas_and_the_phase_and_is_not_rewritten_when_unchanged() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        seed_cluster(&host, 3);
        host.reconcile::<RedisOperator>("demo", "cache").unwrap();
        assert_eq!(
            status(&host),
            Status {
                ready_replicas: 0,
                phase: Phase::Pending,
                observed_generation: Some(1),
                message: None,
            }
        );

        // The StatefulSet controller reports two ready pods, then three.
        for (ready, phase) in [(2, Phase::Scaling), (3, Phase::Running)] {
            let mut sts: StatefulSet = host.object("demo", "cache").unwrap();
            sts.status = Some(k8s_openapi::api::apps::v1::StatefulSetStatus {
                ready_replicas: Some(ready),
                ..Default::default()
            });
            host.seed(&sts);
            host.reconcile::<RedisOperator>("demo", "cache").unwrap();
            let st = status(&host);
            assert_eq!((st.ready_replicas, st.phase), (ready, phase));
        }

        host.clear_records();
        host.reconcile::<RedisOperator>("demo", "cache").unwrap();
        assert!(host.writes().is_empty(), "{:?}", host.writes());
    }

    #[test]
    fn an_invalid_spec_sets_phase_failed_with_a_warning_and_creates_nothing() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        seed_cluster(&host, 0);
        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::done())
        );
        let st = status(&host);
        assert_eq!(st.phase, Phase::Failed);
        assert!(
            st.message.as_deref().unwrap().contains("between 1 and 20"),
            "{st:?}"
        );
        assert!(host.objects::<StatefulSet>().is_empty());
        assert_eq!(host.events()[0].event.reason, "InvalidSpec");
    }

    #[test]
    fn deleting_the_cluster_deletes_its_objects_and_then_releases_the_finalizer() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        seed_cluster(&host, 3);
        host.reconcile::<RedisOperator>("demo", "cache").unwrap();

        // What the API server does on delete while the finalizer is on: it only marks it.
        let mut rc = cluster(&host);
        rc.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2000-01-01T00:00:00Z".parse().unwrap(),
            ));
        host.seed(&rc);
        host.clear_records();
        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::done())
        );
        assert!(host.object::<StatefulSet>("demo", "cache").is_none());
        assert!(host.object::<Service>("demo", "cache").is_none());
        assert!(
            host.object::<RedisCluster>("demo", "cache").is_none(),
            "the finalizer is removed once the owned objects are gone"
        );
        assert_eq!(host.events()[0].event.reason, "CleanedUp");
    }

    #[test]
    fn a_conflict_on_the_finalizer_patch_requeues_and_keeps_other_finalizers() {
        let host = FakeHost::for_plugin::<RedisOperator>();
        host.seed_json::<RedisCluster>(json!({
            "metadata": {"namespace": "demo", "name": "cache", "generation": 1,
                         "finalizers": ["example.com/keep"]},
            "spec": {"replicas": 1, "image": "redis:7.2"}
        }));
        host.fail_next(Call::Patch, Error::Conflict("stale resourceVersion".into()));
        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::requeue(RETRY_SOON))
        );
        assert!(
            host.objects::<StatefulSet>().is_empty(),
            "stopped at the conflict"
        );

        assert_eq!(
            host.reconcile::<RedisOperator>("demo", "cache"),
            Ok(Action::done())
        );
        assert_eq!(
            cluster(&host).metadata.finalizers.unwrap(),
            ["example.com/keep", FINALIZER]
        );
        assert!(host.object::<StatefulSet>("demo", "cache").is_some());
    }
}
