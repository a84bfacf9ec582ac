//! Example kubewasm operator: mirrors every ConfigMap labelled
//! `mirror.kubewasm.dev/enabled=true` into each namespace matched by the label selector in
//! its `mirror.kubewasm.dev/namespace-selector` annotation (default: every other namespace),
//! and removes the mirrors when the source goes, loses the label, or a namespace stops
//! matching.
//!
//! It reconciles *every* ConfigMap, not only labelled ones, because cleanup must not depend
//! on having seen the source (and a deleted mirror, which has the source's name, leads back to
//! its source): a mirror whose source is missing or no longer labelled deletes
//! itself when reconciled, and every ConfigMap is reconciled after a restart. So no finalizer
//! is needed, and nothing is left behind when the source was deleted or unlabelled while the
//! host was down. Unrelated ConfigMaps cost one cache read each.
//!
//! Mirrors are never cross-namespace owned (Kubernetes has no such ownerReferences): they
//! carry `app.kubernetes.io/managed-by=kubewasm-configmap-mirror` and the annotation
//! `mirror.kubewasm.dev/source=<namespace>/<name>`, indexed as `by-source`. Only ConfigMaps
//! carrying both are ever changed or deleted; a ConfigMap of the same name that is not a
//! mirror is left alone (with a warning Event on the source).

mod mirror;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kubewasm_sdk::{
    Action, Api, DeleteParams, Error, Event, ListParams, Manifest, Plugin, Request, Result, Verb,
    WatchMapping, log,
};

use crate::mirror::{BY_SOURCE, SOURCE};

/// How soon a key is retried after a write lost a race with the cache.
const RETRY_SOON: Duration = Duration::from_millis(500);

struct Mirror;

impl Plugin for Mirror {
    fn manifest() -> Manifest {
        Manifest::reconcile::<ConfigMap>()
            .index::<ConfigMap>(BY_SOURCE, format!("metadata.annotations['{SOURCE}']"))
            .watches::<Namespace>(WatchMapping::All)
            .permit::<ConfigMap>(&[Verb::Create, Verb::Update, Verb::Delete])
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

kubewasm_sdk::export_plugin!(Mirror);

fn reconcile(ns: &str, name: &str) -> Result<Action> {
    let Some(cm) = Api::<ConfigMap>::namespaced(ns).get(name)? else {
        // Gone. If it was a source, its mirrors go too.
        delete_mirrors_of(&format!("{ns}/{name}"), &BTreeSet::new())?;
        // If it was a mirror, its source (same name, another namespace) puts it back.
        let sources = ListParams::default()
            .labels(format!("{}=true", mirror::ENABLED))
            .fields(format!("metadata.name={name},metadata.namespace!={ns}"));
        for source in Api::<ConfigMap>::all().list(&sources)? {
            if mirror::is_active_source(&source) && mirror::is_active_source(&source) {
                let key = mirror::key(&source.metadata);
                reconcile_source(&source, &key)?;
            }
        }
        return Ok(Action::done());
    };
    if mirror::source_of(&cm).is_some() {
        return reconcile_mirror(&cm);
    }
    let key = mirror::key(&cm.metadata);
    if !mirror::is_active_source(&cm) {
        // Not (or no longer) a source: anything still mirroring it goes.
        let deleted = delete_mirrors_of(&key, &BTreeSet::new())?;
        if deleted > 0 && cm.metadata.deletion_timestamp.is_none() {
            let note = format!("no longer mirrored: deleted {deleted} mirror(s)");
            event(&cm, Event::normal("Unmirrored", note).action("Delete"));
        }
        return Ok(Action::done());
    }
    reconcile_source(&cm, &key)
}

/// The namespaces a source should be mirrored into, or `None` (after a warning Event) when
/// its selector is invalid: then nothing is changed, so a typo never deletes mirrors.
fn targets(source: &ConfigMap) -> Result<Option<BTreeSet<String>>> {
    let own = source.metadata.namespace.as_deref().unwrap_or_default();
    let mut selected = ListParams::default();
    if let Some(selector) = mirror::selector(source) {
        selected = selected.labels(selector);
    }
    let namespaces = match Api::<Namespace>::all().list(&selected) {
        Ok(n) => n,
        Err(Error::Invalid(m)) => {
            let note = format!(
                "the annotation {} is not a label selector: {m}",
                mirror::SELECTOR
            );
            event(source, Event::warning("InvalidSelector", note));
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(Some(
        namespaces
            .iter()
            .filter(|n| mirror::accepts_objects(n))
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| n != own)
            .collect(),
    ))
}

fn reconcile_source(source: &ConfigMap, key: &str) -> Result<Action> {
    let Some(targets) = targets(source)? else {
        return Ok(Action::done());
    };
    let name = source.metadata.name.as_deref().unwrap_or_default();
    let existing: Vec<ConfigMap> = Api::<ConfigMap>::all()
        .list(&ListParams::default().index(BY_SOURCE, key))?
        .into_iter()
        .filter(|m| mirror::source_of(m).is_some())
        .collect();
    let (mut created, mut updated) = (0, 0);
    let mut blocked = Vec::new();
    for ns in &targets {
        let mirrors = Api::<ConfigMap>::namespaced(ns);
        let want = mirror::mirror(source, ns);
        let current = match existing
            .iter()
            .find(|m| m.metadata.namespace.as_deref() == Some(ns.as_str()))
        {
            Some(m) => Some(m.clone()),
            None => mirrors.get(name)?,
        };
        match current {
            None => {
                mirrors.create(&want)?;
                created += 1;
            }
            Some(cur) if mirror::source_of(&cur).is_none() => blocked.push(ns.clone()),
            Some(cur) if mirror::source_of(&cur) != mirror::source_of(&want) => {
                // A mirror of another source with this name (namespace a/x and b/x both
                // mirrored): first come, first served.
                blocked.push(ns.clone());
            }
            Some(cur) if mirror::in_sync(&cur, &want) => {}
            Some(cur) => {
                let mut want = want;
                want.metadata.resource_version = cur.metadata.resource_version;
                mirrors.replace(name, &want)?;
                updated += 1;
            }
        }
    }
    let deleted = delete_mirrors_of(key, &targets)?;
    if created + updated + deleted > 0 {
        let note = format!(
            "mirrored into {} namespace(s): {created} created, {updated} updated, {deleted} deleted",
            targets.len() - blocked.len()
        );
        event(source, Event::normal("Mirrored", note).action("Mirror"));
    }
    if !blocked.is_empty() {
        let note = format!(
            "not mirrored into {}: a ConfigMap named {name} exists there and is not its mirror",
            blocked.join(", ")
        );
        event(source, Event::warning("MirrorBlocked", note));
    }
    Ok(Action::done())
}

/// A mirror changed (or was listed at start): delete it if its source is gone, unlabelled
/// or no longer selects this namespace; put it back in line if it was edited.
fn reconcile_mirror(m: &ConfigMap) -> Result<Action> {
    let Some((sns, sname)) = mirror::source_of(m) else {
        return Ok(Action::done());
    };
    let ns = m.metadata.namespace.as_deref().unwrap_or_default();
    let name = m.metadata.name.as_deref().unwrap_or_default();
    let source = Api::<ConfigMap>::namespaced(sns)
        .get(sname)?
        .filter(mirror::is_active_source);
    let Some(source) = source else {
        log::info(format!(
            "deleting {ns}/{name}: its source {sns}/{sname} is gone or unlabelled"
        ));
        return delete_one(ns, name).map(|_| Action::done());
    };
    let Some(targets) = targets(&source)? else {
        return Ok(Action::done());
    };
    if !targets.contains(ns) {
        return delete_one(ns, name).map(|_| Action::done());
    }
    let mut want = mirror::mirror(&source, ns);
    if !mirror::in_sync(m, &want) {
        want.metadata.resource_version = m.metadata.resource_version.clone();
        Api::<ConfigMap>::namespaced(ns).replace(name, &want)?;
    }
    Ok(Action::done())
}

/// Deletes the mirrors of `key` outside `keep`; returns how many.
fn delete_mirrors_of(key: &str, keep: &BTreeSet<String>) -> Result<usize> {
    let mut deleted = 0;
    for m in Api::<ConfigMap>::all().list(&ListParams::default().index(BY_SOURCE, key))? {
        if mirror::source_of(&m).is_none() {
            continue;
        }
        let ns = m.metadata.namespace.as_deref().unwrap_or_default();
        if keep.contains(ns) {
            continue;
        }
        if delete_one(ns, m.metadata.name.as_deref().unwrap_or_default())? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

fn delete_one(ns: &str, name: &str) -> Result<bool> {
    match Api::<ConfigMap>::namespaced(ns).delete(name, &DeleteParams::default()) {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records an Event; a failure to record one is logged, never fails the reconcile.
fn event(cm: &ConfigMap, e: Event) {
    if let Err(err) = kubewasm_sdk::event(cm, &e) {
        log::warn(format!("failed to record event {}: {err}", e.reason));
    }
}

#[cfg(test)]
mod tests {
    //! Reconciles against the SDK's fake host, which serves the `by-source` index the
    //! manifest declares and the Namespace label selectors. It has no queue: a change to a
    //! source or a namespace is followed here by the reconcile the host would run.

    use super::*;
    use crate::mirror::{ENABLED, MANAGED_BY, MANAGER, SELECTOR};
    use kubewasm_sdk::testing::{Call, FakeHost};
    use serde_json::json;

    fn seed_namespace(host: &FakeHost, name: &str, mirrored: bool) {
        let labels = if mirrored {
            json!({"mirror": "yes"})
        } else {
            json!({})
        };
        host.seed_json::<Namespace>(json!({"metadata": {"name": name, "labels": labels}}));
    }

    /// Namespaces `team-a` (the source's), `team-b` and `team-c` (selected) and `other`.
    fn host_with_source(data: &str) -> FakeHost {
        let host = FakeHost::for_plugin::<Mirror>();
        seed_namespace(&host, "team-a", true);
        seed_namespace(&host, "team-b", true);
        seed_namespace(&host, "team-c", true);
        seed_namespace(&host, "other", false);
        seed_source(&host, data, true);
        host
    }

    fn seed_source(host: &FakeHost, data: &str, enabled: bool) {
        let labels = if enabled {
            json!({ENABLED: "true", "app": "web"})
        } else {
            json!({"app": "web"})
        };
        host.seed_json::<ConfigMap>(json!({
            "metadata": {"namespace": "team-a", "name": "settings", "labels": labels,
                         "annotations": {SELECTOR: "mirror=yes"}},
            "data": {"key": data}
        }));
    }

    /// `(namespace, data.key)` of every ConfigMap named `settings` but the source.
    fn mirrors(host: &FakeHost) -> Vec<(String, String)> {
        host.objects::<ConfigMap>()
            .into_iter()
            .filter(|c| c.metadata.namespace.as_deref() != Some("team-a"))
            .map(|c| {
                (
                    c.metadata.namespace.unwrap_or_default(),
                    c.data.unwrap_or_default()["key"].clone(),
                )
            })
            .collect()
    }

    fn pair(ns: &str, data: &str) -> (String, String) {
        (ns.to_owned(), data.to_owned())
    }

    #[test]
    fn a_labelled_source_is_mirrored_into_every_matching_namespace_but_its_own() {
        let host = host_with_source("v1");
        assert_eq!(
            host.reconcile::<Mirror>("team-a", "settings"),
            Ok(Action::done())
        );
        assert_eq!(mirrors(&host), [pair("team-b", "v1"), pair("team-c", "v1")]);
        let m: ConfigMap = host.object("team-b", "settings").unwrap();
        let labels = m.metadata.labels.unwrap();
        assert_eq!(labels[MANAGED_BY], MANAGER);
        assert_eq!(labels["app"], "web");
        assert!(!labels.contains_key(ENABLED), "a mirror is never a source");
        assert_eq!(m.metadata.annotations.unwrap()[SOURCE], "team-a/settings");
        assert_eq!(host.events()[0].event.reason, "Mirrored");

        host.clear_records();
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert!(host.writes().is_empty(), "{:?}", host.writes());
    }

    #[test]
    fn a_source_change_updates_every_mirror() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        seed_source(&host, "v2", true);
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert_eq!(mirrors(&host), [pair("team-b", "v2"), pair("team-c", "v2")]);
    }

    // Mirrors go two ways: the source's reconcile deletes them through the `by-source`
    // index (above), and a mirror reconciled after its source went, or after its namespace
    // stopped matching, deletes itself (below; the path a restart takes).

    #[test]
    fn after_the_source_is_deleted_each_mirror_deletes_itself() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        Api::<ConfigMap>::namespaced("team-a")
            .delete("settings", &DeleteParams::default())
            .unwrap();
        assert_eq!(
            host.reconcile::<Mirror>("team-a", "settings"),
            Ok(Action::done())
        );
        for ns in ["team-b", "team-c"] {
            assert_eq!(host.reconcile::<Mirror>(ns, "settings"), Ok(Action::done()));
        }
        assert!(host.objects::<ConfigMap>().is_empty());
    }

    #[test]
    fn reconciling_a_deleted_or_unlabelled_source_removes_its_mirrors_through_the_index() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert_eq!(mirrors(&host), [pair("team-b", "v1"), pair("team-c", "v1")]);

        seed_source(&host, "v1", false);
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert!(
            mirrors(&host).is_empty(),
            "unlabelling the source removes its mirrors"
        );

        seed_source(&host, "v1", true);
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert_eq!(mirrors(&host).len(), 2);
        Api::<ConfigMap>::namespaced("team-a")
            .delete("settings", &DeleteParams::default())
            .unwrap();
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert!(
            host.objects::<ConfigMap>().is_empty(),
            "deleting the source removes its mirrors"
        );
    }

    #[test]
    fn a_mirror_goes_when_its_namespace_stops_matching_or_the_source_is_unlabelled() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();

        seed_namespace(&host, "team-c", false);
        host.reconcile::<Mirror>("team-c", "settings").unwrap();
        assert_eq!(mirrors(&host), [pair("team-b", "v1")]);

        seed_source(&host, "v1", false);
        host.reconcile::<Mirror>("team-b", "settings").unwrap();
        assert!(mirrors(&host).is_empty());
        assert!(
            host.object::<ConfigMap>("team-a", "settings").is_some(),
            "the source itself stays"
        );
    }

    #[test]
    fn an_edited_mirror_is_put_back_in_line_with_its_source() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        let mut m: ConfigMap = host.object("team-b", "settings").unwrap();
        m.data = Some([("key".to_owned(), "edited".to_owned())].into());
        host.seed(&m);
        assert_eq!(
            host.reconcile::<Mirror>("team-b", "settings"),
            Ok(Action::done())
        );
        assert_eq!(mirrors(&host), [pair("team-b", "v1"), pair("team-c", "v1")]);
    }

    #[test]
    fn a_configmap_that_is_not_a_mirror_is_never_overwritten() {
        let host = host_with_source("v1");
        host.seed_json::<ConfigMap>(json!({
            "metadata": {"namespace": "team-b", "name": "settings"},
            "data": {"key": "theirs"}
        }));
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        assert_eq!(
            mirrors(&host),
            [pair("team-b", "theirs"), pair("team-c", "v1")]
        );
        assert!(
            host.events()
                .iter()
                .any(|e| e.event.reason == "MirrorBlocked" && e.event.note.contains("team-b"))
        );
    }

    #[test]
    fn a_conflict_on_a_mirror_update_requeues_and_the_retry_converges() {
        let host = host_with_source("v1");
        host.reconcile::<Mirror>("team-a", "settings").unwrap();
        seed_source(&host, "v2", true);

        host.fail_next(
            Call::Replace,
            Error::Conflict("stale resourceVersion".into()),
        );
        assert_eq!(
            host.reconcile::<Mirror>("team-a", "settings"),
            Ok(Action::requeue(RETRY_SOON))
        );
        let source: ConfigMap = host.object("team-a", "settings").unwrap();
        assert_eq!(source.data.unwrap()["key"], "v2", "the source is untouched");
        assert!(
            mirrors(&host).contains(&pair("team-c", "v1")),
            "stopped at the conflict"
        );

        assert_eq!(
            host.reconcile::<Mirror>("team-a", "settings"),
            Ok(Action::done())
        );
        assert_eq!(mirrors(&host), [pair("team-b", "v2"), pair("team-c", "v2")]);
    }
}
