//! How every write is committed, whichever handler it comes from (POST, PUT, PATCH, `/scale`): the create,
//! update and delete transactions with the rules kube-apiserver applies to each (server-filled metadata,
//! resourceVersion preconditions, status isolation, defaults, validation, generation, managedFields,
//! admission, finalizers), and what kube-controller-manager does after a delete (garbage collection,
//! emptying and removing namespaces), done before the write returns.

use std::sync::Arc;

use http::header;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::object::{
    generate_name, has_finalizers, is_deleting, meta_str, metadata_mut, new_uid, now_rfc3339,
    same_content, spec_changed, validate_generate_name, validate_name,
};
use crate::patch::{self, TypeInfo};
use crate::registry::{ResourceType, View};
use crate::request::Req;
use crate::state::AppState;
use crate::store::{Stored, WriteOp};
use crate::{admission, crd, defaults, events, normalize, validation};

/// Per-request write options.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error instead of pruned.
    pub strict: bool,
}

impl WriteOpts {
    /// From the request's query.
    pub fn from_request(r: &Req) -> WriteOpts {
        WriteOpts {
            dry_run: r.query.dry_run(),
            strict: r.query.get("fieldValidation") == Some("Strict"),
        }
    }
}

/// The field manager of a write: `fieldManager`, else the client's User-Agent program name.
pub fn field_manager(r: &Req) -> String {
    if let Some(m) = r.query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    r.headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split(['/', ' ']).next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// New objects need an existing namespace that is not being deleted.
fn namespace_accepts(state: &AppState, ty: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
    let Some(stored) = state.store.get("namespaces", "", ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    // Only parse the namespace when it may be terminating (creates are a hot path).
    let terminating = stored
        .json
        .windows(b"deletionTimestamp".len())
        .any(|w| w == b"deletionTimestamp")
        && is_deleting(&stored.value()?);
    if terminating {
        let mut e = ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                crate::error::qualified(&ty.group, &ty.resource)
            ),
        );
        e.details.name = Some(name.to_string());
        e.details.group = Some(ty.group.clone());
        e.details.kind = Some(ty.resource.clone());
        e.details.causes = vec![Cause {
            reason: "NamespaceTerminating".into(),
            message: format!("namespace {ns} is being terminated"),
            field: "metadata.namespace".into(),
        }];
        return Err(e);
    }
    Ok(())
}

/// Drops or resets `.status` on create for kinds with a status subresource, as kube-apiserver's
/// create strategies do.
fn reset_status_on_create(ty: &ResourceType, obj: &mut Value) {
    if !ty.has_status {
        return;
    }
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (ty.group.as_str(), ty.resource.as_str()) {
        ("", "namespaces") => {
            o.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "pods") => {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "nodes") => {}
        ("apiextensions.k8s.io", _) => {}
        _ => {
            o.remove("status");
        }
    }
}

/// Whether kube-apiserver keeps `metadata.generation` for this kind: workloads with a spec and status
/// (apps/v1, Pods), CRDs and custom resources. ConfigMaps, Secrets, Services, Namespaces, Events and
/// the like have none.
fn tracks_generation(ty: &ResourceType) -> bool {
    !ty.builtin
        || (matches!(
            ty.group.as_str(),
            "apps" | "apiextensions.k8s.io" | "batch" | "policy" | "autoscaling"
        ) && ty.resource != "controllerrevisions")
        || (ty.group == "networking.k8s.io"
            && matches!(ty.resource.as_str(), "ingresses" | "networkpolicies"))
        || (ty.group.is_empty() && ty.resource == "pods")
}

/// Creates an object (already type- and namespace-checked). `track` is the field manager to record, or
/// None when managedFields were already set (server-side apply).
pub fn create_object(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    mut obj: Value,
    track: Option<&str>,
    opts: WriteOpts,
) -> ApiResult<Arc<Stored>> {
    let meta = metadata_mut(&mut obj)?;
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &ty.group,
                &ty.kind,
                "",
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
        // As kube-apiserver: the name is generated first, so the error names it.
        name = generate_name(prefix);
        let label_only = ty.resource == "namespaces" && ty.group.is_empty();
        if let Some(cause) = validate_generate_name(prefix, label_only) {
            return Err(ApiError::invalid(&ty.group, &ty.kind, &name, vec![cause]));
        }
        meta.insert("name".into(), json!(name));
    }
    if let Some(cause) = validate_name(&name, ty.resource == "namespaces" && ty.group.is_empty()) {
        return Err(ApiError::invalid(&ty.group, &ty.kind, &name, vec![cause]));
    }
    if ty.namespaced {
        namespace_accepts(state, ty, ns, &name)?;
    }
    let meta = metadata_mut(&mut obj)?;
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    if tracks_generation(ty) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    defaults::apply(ty, &mut obj);
    validation::validate(ty, &obj, &name)?;
    normalize::normalize(ty, &mut obj);
    crd::prepare(ty, &mut obj, &name, opts.strict)?;
    if let Some(manager) = track {
        // With a status subresource, the main resource's writer never owns `.status` (the field
        // manager's reset fields), even when the create sent one.
        let status = if ty.has_status {
            obj.as_object_mut().and_then(|o| o.remove("status"))
        } else {
            None
        };
        record_update(ty, None, &mut obj, manager, None);
        if let (Some(status), Some(o)) = (status, obj.as_object_mut()) {
            o.insert("status".into(), status);
        }
    }
    // The create strategy's status, admission and allocation come after the field manager:
    // nobody owns what they add.
    reset_status_on_create(ty, &mut obj);
    defaults::prepare_for_create(ty, &mut obj);
    admission::create(state, ty, ns, &mut obj)?;
    if opts.dry_run {
        if state.store.get(&ty.storage_key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&ty.group, &ty.resource, &name));
        }
        metadata_mut(&mut obj)?.remove("resourceVersion");
        return Stored::from_value(&obj, 0).map(Arc::new);
    }
    // Taken before the write moves the object: most creates name no owner and cost nothing more.
    let owner_refs = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .cloned();
    let result = state
        .store
        .write(&ty.storage_key(), ns, &name, |current, rv| {
            if current.is_some() {
                return Err(ApiError::already_exists(&ty.group, &ty.resource, &name));
            }
            metadata_mut(&mut obj)?.insert("resourceVersion".into(), json!(rv.to_string()));
            Ok(WriteOp::Put(obj))
        })?;
    crd::after_write(state, ty, &result.object);
    if is_namespace(ty) {
        create_default_service_account(state, &name);
    }
    if let Some(refs) = owner_refs {
        collect_if_ownerless(state, ty, ns, &name, &refs);
    }
    Ok(result.object)
}

/// The garbage collector's look at a new dependent: when every owner it names is verifiably absent
/// (the owner's kind is served, and no object of that name has that uid), the dependent is deleted
/// in the background, as kube-controller-manager does a moment after such a create. An owner of a
/// kind nobody serves cannot be verified and keeps the dependent, as there.
fn collect_if_ownerless(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    refs: &[Value],
) {
    let registry = state.registry();
    let verifiably_absent = |r: &Value| {
        let kind_served = registry.all().any(|t| {
            Some(t.kind.as_str()) == r.get("kind").and_then(Value::as_str)
                && Some(t.api_version().as_str()) == r.get("apiVersion").and_then(Value::as_str)
        });
        kind_served && resolve_owner(state, ns, r).is_none()
    };
    if refs.iter().all(verifiably_absent)
        && let Err(e) = delete_object(
            state,
            ty,
            ns,
            name,
            &Value::Null,
            false,
            Propagation::Background,
        )
    {
        tracing::debug!(error = %e, namespace = ns, name, "collecting an ownerless dependent failed");
    }
}

/// What kube-controller-manager's ServiceAccount controller does for a new namespace: its `default`
/// ServiceAccount, which Pods run as unless they name another (done at once here, so a Pod created
/// right after its namespace is not refused).
fn create_default_service_account(state: &AppState, ns: &str) {
    let Some(ty) = state.registry().get("", "v1", "serviceaccounts") else {
        return;
    };
    let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "default", "namespace": ns}});
    match create_object(state, &ty, ns, obj, None, WriteOpts::default()) {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => {
            tracing::warn!(error = %e, namespace = ns, "failed to create the default ServiceAccount")
        }
    }
}

/// Records managedFields (operation "Update") for a create, PUT or non-apply PATCH, through
/// `subresource` (`Some("status")`) or the main resource (`None`).
fn record_update(
    ty: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
) {
    let av = ty.api_version();
    let info = TypeInfo {
        api_version: &av,
        kind: &ty.kind,
        builtin: ty.builtin,
        schema: ty.schema.as_ref(),
    };
    if ty.view == View::EventsV1 {
        // Stored as core/v1 Events: record the fields as the writer named them (note, regarding, ...),
        // matching the entry's apiVersion.
        let old_view = old.map(|o| events::to_view(ty, o).into_owned());
        let mut view = events::to_view(ty, new).into_owned();
        patch::track_update_subresource(&info, old_view.as_ref(), &mut view, manager, subresource);
        let tracked = view.pointer_mut("/metadata/managedFields").map(Value::take);
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match tracked {
                Some(mf) => meta.insert("managedFields".into(), mf),
                None => meta.remove("managedFields"),
            };
        }
        return;
    }
    patch::track_update_subresource(&info, old, new, manager, subresource);
}

/// How the managedFields of an update are recorded.
pub enum Track<'a> {
    /// PUT and non-apply PATCH: record an "Update" by `manager` once the server has reset what the
    /// write may not change (status or everything but status) and applied schema defaults, so the
    /// writer owns exactly what it changed, defaults included. `subresource` names the entry's
    /// subresource (`Some("status")`, `Some("scale")`), as kube-apiserver records it.
    Update {
        /// The field manager.
        manager: &'a str,
        /// The subresource written through, if any.
        subresource: Option<&'a str>,
    },
    /// Server-side apply: the apply already recorded managedFields.
    Done,
}

/// Runs an update transaction: `make` turns the current object into the candidate; the server then
/// applies preconditions, status isolation, immutable metadata, schema rules, generation and finalizers.
#[allow(clippy::too_many_arguments)]
pub fn update_object<F>(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    subresource: Option<&str>,
    track: Track<'_>,
    opts: WriteOpts,
    make: F,
) -> ApiResult<(Arc<Stored>, bool)>
where
    F: FnOnce(&Value) -> ApiResult<Value>,
{
    let result = state
        .store
        .write(&ty.storage_key(), ns, name, |current, rv| {
            let current =
                current.ok_or_else(|| ApiError::not_found(&ty.group, &ty.resource, name))?;
            let old = current.value()?;
            let mut candidate = make(&old)?;
            let want_rv = meta_str(&candidate, "resourceVersion");
            if !want_rv.is_empty() && want_rv != meta_str(&old, "resourceVersion") {
                return Err(ApiError::stale(&ty.group, &ty.resource, name));
            }
            let mut new = if subresource == Some("status") {
                let mut n = old.clone();
                match candidate.get_mut("status").map(Value::take) {
                    Some(s) if !s.is_null() => n["status"] = s,
                    _ => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                if let Some(mf) = candidate.pointer("/metadata/managedFields") {
                    metadata_mut(&mut n)?.insert("managedFields".into(), mf.clone());
                }
                n
            } else {
                if ty.has_status
                    && let Some(o) = candidate.as_object_mut()
                {
                    match old.get("status") {
                        Some(s) => {
                            o.insert("status".into(), s.clone());
                        }
                        None => {
                            o.remove("status");
                        }
                    }
                }
                candidate
            };
            new["apiVersion"] = json!(ty.storage_api_version());
            new["kind"] = json!(ty.kind);
            {
                let old_meta = old.get("metadata").and_then(Value::as_object);
                let meta = metadata_mut(&mut new)?;
                for k in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    match old_meta.and_then(|m| m.get(k)) {
                        Some(v) => meta.insert(k.into(), v.clone()),
                        None => meta.remove(k),
                    };
                }
            }
            defaults::apply(ty, &mut new);
            validation::validate(ty, &new, name)?;
            validation::validate_update(ty, &old, &new, name)?;
            normalize::normalize(ty, &mut new);
            crd::prepare(ty, &mut new, name, opts.strict)?;
            // Without a status subresource a custom resource's `.status` is an ordinary field:
            // changing it bumps the generation too.
            let changed = spec_changed(&old, &new)
                || (!ty.builtin && !ty.has_status && old.get("status") != new.get("status"));
            if tracks_generation(ty) && changed {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                metadata_mut(&mut new)?.insert("generation".into(), json!(g + 1));
            }
            if let Track::Update {
                manager,
                subresource,
            } = track
            {
                record_update(ty, Some(&old), &mut new, manager, subresource);
            }
            admission::update(ty, &old, &mut new);
            let removes = is_deleting(&new) && !has_finalizers(&new);
            if !removes && same_content(&old, &new) {
                return Ok(WriteOp::Noop);
            }
            // A dry run answers with the object as it would be stored, at the current
            // resourceVersion (nothing was written), as kube-apiserver does.
            let stamp = if opts.dry_run {
                meta_str(&old, "resourceVersion").to_string()
            } else {
                rv.to_string()
            };
            metadata_mut(&mut new)?.insert("resourceVersion".into(), json!(stamp));
            if removes {
                return Ok(WriteOp::Delete(new).dry(opts.dry_run));
            }
            Ok(WriteOp::Put(new).dry(opts.dry_run))
        })?;
    if result.deleted && result.changed {
        after_delete(state, ty, ns, name, &result.object, false);
    } else if result.changed {
        crd::after_write(state, ty, &result.object);
    }
    Ok((result.object, result.deleted))
}

/// How an owner's dependents are treated when it is deleted (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes at once; the garbage collector deletes its dependents afterwards.
    Background,
    /// The owner waits (finalizer `orphan`) until its dependents no longer name it.
    Orphan,
    /// The owner waits (finalizer `foregroundDeletion`) until its dependents are deleted.
    Foreground,
}

impl Propagation {
    /// The finalizer the owner carries while the garbage collector works.
    fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Background => None,
            Propagation::Orphan => Some("orphan"),
            Propagation::Foreground => Some("foregroundDeletion"),
        }
    }
}

/// Whether `ty` is the built-in Namespace kind.
fn is_namespace(ty: &ResourceType) -> bool {
    ty.builtin && ty.group.is_empty() && ty.resource == "namespaces"
}

/// Deletes one object: immediately, or by setting deletionTimestamp when finalizers remain (a
/// namespace's `spec.finalizers` and the garbage collector's `orphan`/`foregroundDeletion`
/// included). What kube-controller-manager then does (emptying a namespace, orphaning or
/// deleting dependents) is done before this returns; the answer is the object as the delete
/// left it, as kube-apiserver answers. Returns the object and whether it is gone.
///
/// # Errors
/// 404 if missing, 409 if a precondition fails.
pub fn delete_object(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    preconditions: &Value,
    dry_run: bool,
    policy: Propagation,
) -> ApiResult<(Arc<Stored>, bool)> {
    let result = state.store.write(&ty.storage_key(), ns, name, |current, rv| {
        let current = current.ok_or_else(|| ApiError::not_found(&ty.group, &ty.resource, name))?;
        let mut old = current.value()?;
        if let Some(uid) = preconditions.get("uid").and_then(Value::as_str)
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &ty.group,
                &ty.resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        if let Some(want) = preconditions.get("resourceVersion").and_then(Value::as_str)
            && want != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &ty.group,
                &ty.resource,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
        // A dry run stamps nothing: the answer keeps the current resourceVersion.
        let stamp = if dry_run {
            meta_str(&old, "resourceVersion").to_string()
        } else {
            rv.to_string()
        };
        let namespace_finalizers = is_namespace(ty)
            && old
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        if has_finalizers(&old) || namespace_finalizers || policy.finalizer().is_some() {
            if is_deleting(&old) {
                return Ok(WriteOp::Noop);
            }
            let meta = metadata_mut(&mut old)?;
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            if !is_namespace(ty) {
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            meta.insert("resourceVersion".into(), json!(stamp));
            if let Some(f) = policy.finalizer() {
                let list = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut()
                    && !list.iter().any(|x| x == f)
                {
                    list.push(json!(f));
                }
            }
            if is_namespace(ty) {
                old["status"] = json!({"phase": "Terminating"});
            }
            return Ok(WriteOp::Put(old).dry(dry_run));
        }
        metadata_mut(&mut old)?.insert("resourceVersion".into(), json!(stamp));
        Ok(WriteOp::Delete(old).dry(dry_run))
    })?;
    if result.deleted && result.changed {
        after_delete(
            state,
            ty,
            ns,
            name,
            &result.object,
            policy == Propagation::Orphan,
        );
    } else if result.changed && !dry_run {
        // What kube-controller-manager does next, done now.
        if is_namespace(ty) {
            delete_namespace_contents(state, name);
            finish_namespace(state, name);
        }
        if let Some(finalizer) = policy.finalizer() {
            if policy == Propagation::Orphan {
                release_dependents(state, &result.object.uid);
                remove_finalizer(state, ty, ns, name, finalizer);
            } else {
                // Foreground: the dependents go first; the owner keeps its finalizer until no
                // dependent that blocks it is left (then `release_foreground_owner` lets it go).
                delete_dependents_in_foreground(state, &result.object.uid);
                release_foreground_owner(state, ty, ns, name);
            }
        }
    }
    Ok((result.object, result.deleted))
}

/// The garbage collector lets go of a deleting object: its finalizer is removed (and the
/// object goes if it was the last one).
fn remove_finalizer(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    finalizer: &str,
) {
    let track = Track::Update {
        manager: "kube-controller-manager",
        subresource: None,
    };
    let removed = update_object(
        state,
        ty,
        ns,
        name,
        None,
        track,
        WriteOpts::default(),
        |old| {
            let mut new = old.clone();
            if let Some(Value::Array(list)) = metadata_mut(&mut new)?.get_mut("finalizers") {
                list.retain(|f| f != finalizer);
            }
            Ok(new)
        },
    );
    if let Err(e) = removed {
        tracing::debug!(error = %e, namespace = ns, name, "removing the {finalizer} finalizer failed");
    }
}

/// A terminating namespace whose content is gone is removed, as the namespace controller does
/// once it has emptied it (its `spec.finalizers` released).
fn finish_namespace(state: &AppState, ns: &str) {
    let registry = state.registry();
    let Some(ty) = registry.get("", "v1", "namespaces") else {
        return;
    };
    let terminating = state
        .store
        .get("namespaces", "", ns)
        .and_then(|s| s.value().ok())
        .is_some_and(|v| is_deleting(&v));
    if !terminating {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for t in registry.all() {
        if t.namespaced
            && seen.insert(t.storage_key())
            && !state.store.list(&t.storage_key(), Some(ns)).1.is_empty()
        {
            return;
        }
    }
    let result = state.store.write(&ty.storage_key(), "", ns, |current, rv| {
        let Some(current) = current else {
            return Ok(WriteOp::Noop);
        };
        let mut v = current.value()?;
        if has_finalizers(&v) {
            // Finalizers of someone else's: the namespace waits for them.
            if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("finalizers".into(), json!([]));
            }
            metadata_mut(&mut v)?.insert("resourceVersion".into(), json!(rv.to_string()));
            return Ok(WriteOp::Put(v));
        }
        metadata_mut(&mut v)?.insert("resourceVersion".into(), json!(rv.to_string()));
        Ok(WriteOp::Delete(v))
    });
    match result {
        Ok(r) if r.deleted && r.changed => after_delete(state, &ty, "", ns, &r.object, false),
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(error = %e, namespace = ns, "removing the emptied namespace failed")
        }
    }
}

/// What follows a delete that removed the object: a CRD's type goes, its dependents are orphaned or
/// collected, a namespace is emptied, and the last object of a terminating namespace lets it go.
fn after_delete(
    state: &AppState,
    ty: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    object: &Stored,
    orphan: bool,
) {
    crd::after_delete(state, ty, object);
    if orphan {
        release_dependents(state, &object.uid);
    } else {
        collect_garbage(state, &object.uid);
    }
    // An owner deleted in the foreground may have been waiting for this object.
    if let Ok(v) = object.value() {
        for owner in foreground_owners(state, ns, &v) {
            let (owner_ty, owner_ns, owner_name) = owner;
            release_foreground_owner(state, &owner_ty, &owner_ns, &owner_name);
        }
    }
    if is_namespace(ty) {
        delete_namespace_contents(state, name);
    } else if ty.namespaced && !ns.is_empty() {
        // The last object of a terminating namespace lets the namespace go.
        finish_namespace(state, ns);
    }
}

/// The garbage collector's orphaning: the deleted owner's uid is removed from its dependents'
/// ownerReferences (the dependents stay), as kube-controller-manager does.
fn release_dependents(state: &AppState, owner_uid: &str) {
    let dependents = state.store.dependents(owner_uid);
    if dependents.is_empty() {
        return;
    }
    let registry = state.registry();
    for (key, ns, name) in dependents {
        let Some(ty) = registry.all().find(|t| *t.storage_key() == *key) else {
            continue;
        };
        let ty = ty.clone();
        let track = Track::Update {
            manager: "kube-controller-manager",
            subresource: None,
        };
        let released = update_object(
            state,
            &ty,
            &ns,
            &name,
            None,
            track,
            WriteOpts::default(),
            |old| {
                let mut new = old.clone();
                let meta = metadata_mut(&mut new)?;
                if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                }
                Ok(new)
            },
        );
        if let Err(e) = released {
            tracing::debug!(error = %e, namespace = ns, name, "orphaning skipped a dependent");
        }
    }
}

/// The type and stored object an ownerReference names (owners live in the dependent's namespace,
/// or are cluster-scoped), if it still exists with that uid.
fn resolve_owner(
    state: &AppState,
    dependent_ns: &str,
    owner_ref: &Value,
) -> Option<(Arc<ResourceType>, String, Value)> {
    let api_version = owner_ref.get("apiVersion").and_then(Value::as_str)?;
    let kind = owner_ref.get("kind").and_then(Value::as_str)?;
    let name = owner_ref.get("name").and_then(Value::as_str)?;
    let uid = owner_ref.get("uid").and_then(Value::as_str)?;
    let registry = state.registry();
    let ty = registry
        .all()
        .find(|t| t.kind == kind && t.api_version() == api_version)?
        .clone();
    let ns = if ty.namespaced { dependent_ns } else { "" };
    let stored = state.store.get(&ty.storage_key(), ns, name)?;
    if &*stored.uid != uid {
        return None;
    }
    Some((ty, ns.to_string(), stored.value().ok()?))
}

/// Whether an object is being deleted in the foreground (it holds `foregroundDeletion`).
fn deleting_in_foreground(obj: &Value) -> bool {
    is_deleting(obj)
        && obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
}

/// The owners of `obj` that are being deleted in the foreground: (type, namespace, name).
fn foreground_owners(
    state: &AppState,
    ns: &str,
    obj: &Value,
) -> Vec<(Arc<ResourceType>, String, String)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| resolve_owner(state, ns, r))
        .filter(|(_, _, owner)| deleting_in_foreground(owner))
        .map(|(ty, ns, owner)| (ty, ns, meta_str(&owner, "name").to_string()))
        .collect()
}

/// The garbage collector's work for an owner deleted in the foreground: each dependent with no
/// other owner that stays is deleted (itself in the foreground when it has dependents of its own,
/// so the whole tree goes bottom-up); one that has such an owner is released from this one.
fn delete_dependents_in_foreground(state: &AppState, owner_uid: &str) {
    let registry = state.registry();
    for (key, ns, name) in state.store.dependents(owner_uid) {
        let Some(ty) = registry.all().find(|t| *t.storage_key() == *key).cloned() else {
            continue;
        };
        let Some(obj) = state
            .store
            .get(&key, &ns, &name)
            .and_then(|o| o.value().ok())
        else {
            continue;
        };
        let stays_owned = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
            .filter_map(|r| resolve_owner(state, &ns, r))
            .any(|(_, _, o)| !deleting_in_foreground(&o));
        if stays_owned {
            let track = Track::Update {
                manager: "kube-controller-manager",
                subresource: None,
            };
            let released = update_object(
                state,
                &ty,
                &ns,
                &name,
                None,
                track,
                WriteOpts::default(),
                |old| {
                    let mut new = old.clone();
                    if let Some(Value::Array(refs)) =
                        metadata_mut(&mut new)?.get_mut("ownerReferences")
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                    }
                    Ok(new)
                },
            );
            if let Err(e) = released {
                tracing::debug!(error = %e, namespace = ns, name, "releasing a dependent failed");
            }
            continue;
        }
        let policy = if state.store.dependents(meta_str(&obj, "uid")).is_empty() {
            Propagation::Background
        } else {
            Propagation::Foreground
        };
        if let Err(e) = delete_object(state, &ty, &ns, &name, &Value::Null, false, policy) {
            tracing::debug!(error = %e, namespace = ns, name, "garbage collection skipped a dependent");
        }
    }
}

/// Removes the `foregroundDeletion` finalizer of an owner deleted in the foreground once no
/// dependent with `blockOwnerDeletion: true` is left, as the garbage collector does.
fn release_foreground_owner(state: &AppState, ty: &Arc<ResourceType>, ns: &str, name: &str) {
    let Some(owner) = state.store.get(&ty.storage_key(), ns, name) else {
        return;
    };
    let owner_uid = owner.uid.to_string();
    let blocked = state
        .store
        .dependents(&owner_uid)
        .iter()
        .any(|(key, dns, dname)| {
            state
                .store
                .get(key, dns, dname)
                .and_then(|o| o.value().ok())
                .is_some_and(|d| {
                    d.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|r| {
                            r.get("uid").and_then(Value::as_str) == Some(owner_uid.as_str())
                                && r.get("blockOwnerDeletion").and_then(Value::as_bool)
                                    == Some(true)
                        })
                })
        });
    if !blocked {
        remove_finalizer(state, ty, ns, name, "foregroundDeletion");
    }
}

/// The garbage collector, run in the foreground of the delete: objects whose ownerReferences named the
/// deleted object and have no other owner left are deleted too (recursively, honouring their finalizers).
fn collect_garbage(state: &AppState, owner_uid: &str) {
    let dependents = state.store.orphaned_dependents(owner_uid);
    if dependents.is_empty() {
        return;
    }
    let registry = state.registry();
    for (key, ns, name) in dependents {
        let Some(ty) = registry.all().find(|t| *t.storage_key() == *key) else {
            continue;
        };
        let ty = ty.clone();
        if let Err(e) = delete_object(
            state,
            &ty,
            &ns,
            &name,
            &Value::Null,
            false,
            Propagation::Background,
        ) {
            tracing::debug!(error = %e, namespace = ns, name, "garbage collection skipped a dependent");
        }
    }
}

/// Deletes every namespaced object in `ns` (objects with finalizers get a deletionTimestamp and stay).
fn delete_namespace_contents(state: &AppState, ns: &str) {
    let registry = state.registry();
    let mut seen = std::collections::HashSet::new();
    for ty in registry.all() {
        if !ty.namespaced || !seen.insert(ty.storage_key()) {
            continue;
        }
        let (_, items) = state.store.list(&ty.storage_key(), Some(ns));
        for (_, name, _) in items {
            if let Err(e) = delete_object(
                state,
                ty,
                ns,
                &name,
                &Value::Null,
                false,
                Propagation::Background,
            ) {
                tracing::debug!(error = %e, namespace = ns, name, "namespace cleanup skipped an object");
            }
        }
    }
}

/// Creates what every cluster has: its namespaces (each with its `default` ServiceAccount) and the
/// `default/kubernetes` Service, whose port 443 leads to this server's `port`.
pub fn create_initial_objects(state: &AppState, port: u16) {
    let registry = state.registry();
    let Some(ty) = registry.get("", "v1", "namespaces") else {
        return;
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        if let Err(e) = create_object(state, &ty, "", obj, None, WriteOpts::default()) {
            tracing::error!(error = %e, namespace = ns, "failed to create initial namespace");
        }
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {
            "clusterIP": "10.0.0.1",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    });
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }],
    });
    for (resource, obj) in [("services", service), ("endpoints", endpoints)] {
        let Some(ty) = registry.get("", "v1", resource) else {
            continue;
        };
        if let Err(e) = create_object(state, &ty, "default", obj, None, WriteOpts::default()) {
            tracing::error!(error = %e, resource, "failed to create the kubernetes Service");
        }
    }
}
