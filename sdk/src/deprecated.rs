//! The free functions of the 0.1 SDK, kept for one release as wrappers over [`Api`]: a plugin
//! written for them still compiles (with a deprecation warning). Their namespace `""` meant
//! "cluster-scoped" for one object and "every namespace" for a list; an [`Api`] knows its
//! scope instead.
#![allow(deprecated)]

use crate::api::{Api, Patch};
use crate::data::{DeleteParams, Event, ListParams};
use crate::error::{Error, Result};
use crate::object::Object;

fn labels(selector: &str) -> ListParams {
    if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    }
}

fn by_index(index: &str, value: &str) -> ListParams {
    ListParams::default().index(index, value)
}

fn name_of<T: Object>(obj: &T) -> Result<(&str, &str)> {
    let meta = obj.meta();
    let name = meta
        .name
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", T::KIND)))?;
    Ok((meta.namespace.as_deref().unwrap_or(""), name))
}

fn projected<T: Object>(bytes: Option<Vec<u8>>) -> Result<Option<T>> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(|e| Error::Decode(format!("{}: {e}", T::KIND))))
        .transpose()
}

/// Reads one object from the cache; `Ok(None)` when it is not there.
///
/// # Errors
/// As [`Api::get`].
#[deprecated(
    note = "use Api::<K>::namespaced(ns).get(name) (or Api::<K>::all() for a cluster-scoped kind)"
)]
pub fn get<T: Object>(namespace: &str, name: &str) -> Result<Option<T>> {
    Api::<T>::scoped(namespace).get(name)
}

/// Like [`get`] but undecoded.
///
/// # Errors
/// As [`Api::get_raw`].
#[deprecated(note = "use Api::<K>::namespaced(ns).get_raw(name)")]
pub fn get_raw<T: Object>(namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
    Api::<T>::scoped(namespace).get_raw(name)
}

/// Lists objects of `T`; `namespace` `""` = every namespace, `selector` `""` = everything.
///
/// # Errors
/// As [`Api::list`].
#[deprecated(
    note = "use Api::<K>::namespaced(ns).list(&ListParams::default().labels(selector)) or Api::<K>::all()"
)]
pub fn list<T: Object>(namespace: &str, selector: &str) -> Result<Vec<T>> {
    Api::<T>::scoped(namespace).list(&labels(selector))
}

/// Like [`list`] but undecoded.
///
/// # Errors
/// As [`Api::list_raw`].
#[deprecated(
    note = "use Api::<K>::namespaced(ns).list_raw(&ListParams::default().labels(selector))"
)]
pub fn list_raw<T: Object>(namespace: &str, selector: &str) -> Result<Vec<u8>> {
    Api::<T>::scoped(namespace).list_raw(&labels(selector))
}

/// Lists objects of `T` whose declared index `index` has the value `value`.
///
/// # Errors
/// As [`Api::list`].
#[deprecated(note = "use Api::<K>::all().list(&ListParams::default().index(index, value))")]
pub fn list_by_index<T: Object>(index: &str, value: &str) -> Result<Vec<T>> {
    Api::<T>::all().list(&by_index(index, value))
}

/// Like [`list_by_index`] but undecoded.
///
/// # Errors
/// As [`Api::list_raw`].
#[deprecated(note = "use Api::<K>::all().list_raw(&ListParams::default().index(index, value))")]
pub fn list_by_index_raw<T: Object>(index: &str, value: &str) -> Result<Vec<u8>> {
    Api::<T>::all().list_raw(&by_index(index, value))
}

/// Reads one object with only `fields` set.
///
/// # Errors
/// As [`Api::get_fields`].
#[deprecated(note = "use Api::<K>::namespaced(ns).get_fields(name, fields)")]
pub fn get_fields<T: Object>(namespace: &str, name: &str, fields: &[&str]) -> Result<Option<T>> {
    projected(get_fields_raw::<T>(namespace, name, fields)?)
}

/// Like [`get_fields`] but undecoded.
///
/// # Errors
/// As [`Api::get_fields`], minus decoding.
#[deprecated(note = "use Api::<K>::namespaced(ns).get_fields_raw(name, fields)")]
pub fn get_fields_raw<T: Object>(
    namespace: &str,
    name: &str,
    fields: &[&str],
) -> Result<Option<Vec<u8>>> {
    Api::<T>::scoped(namespace).get_fields_raw(name, fields)
}

/// Like [`list`], each object holding only `fields`.
///
/// # Errors
/// As [`Api::list_fields`].
#[deprecated(
    note = "use Api::<K>::namespaced(ns).list_fields(&ListParams::default().labels(selector), fields)"
)]
pub fn list_fields<T: Object>(namespace: &str, selector: &str, fields: &[&str]) -> Result<Vec<T>> {
    Api::<T>::scoped(namespace).list_fields(&labels(selector), fields)
}

/// Like [`list_fields`] but undecoded.
///
/// # Errors
/// As [`Api::list_fields`], minus decoding.
#[deprecated(note = "use Api::<K>::namespaced(ns).list_fields_raw(&lp, fields)")]
pub fn list_fields_raw<T: Object>(
    namespace: &str,
    selector: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    Api::<T>::scoped(namespace).list_fields_raw(&labels(selector), fields)
}

/// Like [`list_by_index`], each object holding only `fields`.
///
/// # Errors
/// As [`Api::list_fields`].
#[deprecated(
    note = "use Api::<K>::all().list_fields(&ListParams::default().index(index, value), fields)"
)]
pub fn list_by_index_fields<T: Object>(
    index: &str,
    value: &str,
    fields: &[&str],
) -> Result<Vec<T>> {
    Api::<T>::all().list_fields(&by_index(index, value), fields)
}

/// Like [`list_by_index_fields`] but undecoded.
///
/// # Errors
/// As [`Api::list_fields`], minus decoding.
#[deprecated(
    note = "use Api::<K>::all().list_fields_raw(&ListParams::default().index(index, value), fields)"
)]
pub fn list_by_index_fields_raw<T: Object>(
    index: &str,
    value: &str,
    fields: &[&str],
) -> Result<Vec<u8>> {
    Api::<T>::all().list_fields_raw(&by_index(index, value), fields)
}

/// Creates `obj` in its `metadata.namespace`.
///
/// # Errors
/// As [`Api::create`].
#[deprecated(note = "use Api::<K>::namespaced(ns).create(&obj)")]
pub fn create<T: Object>(obj: &T) -> Result<T> {
    Api::<T>::all().create(obj)
}

/// Replaces `obj` (named by its metadata).
///
/// # Errors
/// As [`Api::replace`].
#[deprecated(note = "use Api::<K>::namespaced(ns).replace(name, &obj)")]
pub fn replace<T: Object>(obj: &T) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    Api::<T>::scoped(namespace).replace(name, obj)
}

/// Replaces the status subresource of `obj`.
///
/// # Errors
/// As [`Api::replace_status`].
#[deprecated(note = "use Api::<K>::namespaced(ns).replace_status(name, &obj)")]
pub fn replace_status<T: Object>(obj: &T) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    Api::<T>::scoped(namespace).replace_status(name, obj)
}

/// Patches an object of kind `T`.
///
/// # Errors
/// As [`Api::patch`].
#[deprecated(note = "use Api::<K>::namespaced(ns).patch(name, &patch)")]
pub fn patch<T: Object>(namespace: &str, name: &str, patch: &Patch) -> Result<T> {
    Api::<T>::scoped(namespace).patch(name, patch)
}

/// Patches the status subresource of an object of kind `T`.
///
/// # Errors
/// As [`Api::patch_status`].
#[deprecated(note = "use Api::<K>::namespaced(ns).patch_status(name, &patch)")]
pub fn patch_status<T: Object>(namespace: &str, name: &str, patch: &Patch) -> Result<T> {
    Api::<T>::scoped(namespace).patch_status(name, patch)
}

/// Server-side applies `obj`.
///
/// # Errors
/// As [`Api::patch`] with [`Patch::Apply`].
#[deprecated(note = "use Api::<K>::namespaced(ns).patch(name, &Patch::apply(&obj)?.force())")]
pub fn apply<T: Object>(obj: &T, force: bool) -> Result<T> {
    let (namespace, name) = name_of(obj)?;
    let mut p = Patch::apply(obj)?;
    if force {
        p = p.force();
    }
    Api::<T>::scoped(namespace).patch(name, &p)
}

/// Deletes an object of kind `T`.
///
/// # Errors
/// As [`Api::delete`].
#[deprecated(note = "use Api::<K>::namespaced(ns).delete(name, &DeleteParams::default())")]
pub fn delete<T: Object>(namespace: &str, name: &str) -> Result<()> {
    Api::<T>::scoped(namespace).delete(name, &DeleteParams::default())
}

/// Records `event` about the object of kind `T` named `namespace`/`name`.
///
/// # Errors
/// As [`Api::event`].
#[deprecated(
    note = "use Api::<K>::namespaced(ns).event(name, &event), or kubewasm_sdk::event(&obj, &event)"
)]
pub fn event_for<T: Object>(namespace: &str, name: &str, event: &Event) -> Result<()> {
    Api::<T>::scoped(namespace).event(name, event)
}
