"""Example kubewasm plugin in Python: copies labels onto ConfigMaps from another object.

A ConfigMap labelled ``labeler.kubewasm.dev/enabled=true`` gets the labels named in its
``labeler.kubewasm.dev/labels`` annotation (comma-separated keys, default ``team``) copied
from a source object: its Namespace, or the object named ``Kind/name`` (same namespace) in
its ``labeler.kubewasm.dev/from`` annotation. Each change is a merge patch plus a Normal
Event; a source that is missing, unknown or not readable gets a Warning Event instead.

Sources may be a Namespace, Service or ServiceAccount. Not ConfigMaps: the host's cache of
the reconciled kind holds only the ConfigMaps matching the manifest's label selector, so other
ConfigMaps would read as missing. Secrets are refused on purpose: the manifest does not grant
reading them, so the host answers ``forbidden``, which this plugin catches and reports.
Labels are added and updated, never removed.

Built with componentize-py against ``wit/`` (world ``plugin``): ``cargo xtask plugins``.
"""

import json
import traceback
from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import reconciler as r
from wit_world.imports import cache, client, events, log, types

ENABLED = "labeler.kubewasm.dev/enabled"
"""Label selecting the ConfigMaps this plugin reconciles."""
FROM = "labeler.kubewasm.dev/from"
"""Annotation naming the source object as ``Kind/name``; default: the ConfigMap's Namespace."""
LABELS = "labeler.kubewasm.dev/labels"
"""Annotation listing the label keys to copy, comma-separated; default ``team``."""
COPIED_FROM = "labeler.kubewasm.dev/copied-from"
"""Annotation the plugin writes: the source the labels were last copied from."""
DEFAULT_LABELS = ("team",)
MISSING_SOURCE_RETRY = 60 * 1_000_000_000
"""How long until a missing source is looked for again, in nanoseconds (WIT ``duration``)."""


def _kind(kind: str) -> types.Kind:
    return types.Kind(group="", version="v1", kind=kind)


CONFIG_MAP = _kind("ConfigMap")
NAMESPACE = _kind("Namespace")
SERVICE = _kind("Service")
SERVICE_ACCOUNT = _kind("ServiceAccount")
SECRET = _kind("Secret")

CLUSTER_SCOPED = {NAMESPACE.kind}
"""Source kinds without a namespace (the host resolves scopes; the plugin must still pass none)."""

SOURCE_KINDS = {k.kind: k for k in (NAMESPACE, SERVICE, SERVICE_ACCOUNT, SECRET)}
"""Kinds a ``from`` annotation may name. Secret is listed but not granted (see above)."""


class Reconciler(exports.Reconciler):
    """The exported ``reconciler`` interface."""

    def get_manifest(self) -> r.Manifest:
        return r.Manifest(
            reconciles=r.Reconciles(kind=CONFIG_MAP, namespace=None, label_selector=f"{ENABLED}=true"),
            owns=[],
            # A Namespace's labels changed: reconcile the ConfigMaps in it (found by index).
            watches=[
                r.Watch(
                    kind=NAMESPACE,
                    label_selector=None,
                    mapping=r.WatchMapping_IndexLookup(
                        r.IndexLookup(index="by-namespace", field="metadata.name")
                    ),
                )
            ],
            indexes=[r.Index(name="by-namespace", kind=CONFIG_MAP, field="metadata.namespace")],
            permissions=[
                r.Permission(kind=CONFIG_MAP, verbs=[r.Verb.PATCH]),
                r.Permission(kind=SERVICE, verbs=[r.Verb.GET]),
                r.Permission(kind=SERVICE_ACCOUNT, verbs=[r.Verb.GET]),
            ],
            concurrency=2,
            custom_resources=[],
            # Keep the interpreter between reconciles (~0.9 ms saved on each): this plugin
            # keeps nothing in globals that depends on the key, so starting clean buys nothing.
            reuse_instances=True,
        )

    def reconcile(self, request: r.Request) -> r.Action:
        try:
            return _reconcile(request.namespace, request.name)
        except Err:
            raise  # a host error (or our own): the host retries with backoff
        except Exception as e:  # a bug or an object of an unexpected shape
            log.log(log.Level.ERROR, traceback.format_exc())
            frame = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
            raise Err(types.Error_Other(f"{type(e).__name__}: {e} (at {where})"))


def _reconcile(namespace: Optional[str], name: str) -> r.Action:
    raw = cache.get(CONFIG_MAP, namespace, name, None)
    if raw is None:
        return r.Action_Done()  # deleted since the event: nothing to label
    cm = json.loads(raw)
    meta = cm.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}

    keys = [k.strip() for k in annotations.get(LABELS, ",".join(DEFAULT_LABELS)).split(",") if k.strip()]
    source_ref = annotations.get(FROM, f"Namespace/{namespace}")
    kind_name, _, source_name = source_ref.partition("/")
    source_kind = SOURCE_KINDS.get(kind_name)
    if source_kind is None or not source_name:
        known = ", ".join(sorted(SOURCE_KINDS))
        _warn(namespace, name, "InvalidSource", f"{FROM}={source_ref!r} is not Kind/name with Kind one of {known}")
        return r.Action_Done()  # nothing to do until the annotation changes

    try:
        source_namespace = None if source_kind.kind in CLUSTER_SCOPED else namespace
        source_raw = cache.get(source_kind, source_namespace, source_name, None)
    except Err as e:
        if isinstance(e.value, types.Error_Forbidden):
            # Retrying cannot help: the manifest would have to change.
            _warn(namespace, name, "SourceForbidden", f"cannot read {source_ref}: {e.value.value}")
            return r.Action_Done()
        raise
    if source_raw is None:
        _warn(namespace, name, "SourceMissing", f"{source_ref} does not exist")
        return r.Action_RequeueAfter(MISSING_SOURCE_RETRY)

    source_labels = (json.loads(source_raw).get("metadata") or {}).get("labels") or {}
    changes = {k: source_labels[k] for k in keys if k in source_labels and labels.get(k) != source_labels[k]}
    if not changes and annotations.get(COPIED_FROM) == source_ref:
        return r.Action_Done()  # already in line: reconciles must be idempotent

    patch = {"metadata": {"labels": changes, "annotations": {COPIED_FROM: source_ref}}}
    client.patch(CONFIG_MAP, namespace, name, client.PatchBody_Merge(json.dumps(patch).encode()), None)
    copied = ", ".join(f"{k}={v}" for k, v in sorted(changes.items())) or "no labels"
    note = f"copied {copied} from {source_ref}"
    _event(namespace, name, events.EventType.NORMAL, "Labeled", note, "Patch")
    log.log(log.Level.INFO, f"{namespace}/{name}: {note}")
    return r.Action_Done()


def _warn(namespace: Optional[str], name: str, reason: str, note: str) -> None:
    log.log(log.Level.WARN, f"{namespace}/{name}: {note}")
    _event(namespace, name, events.EventType.WARNING, reason, note, "")


def _event(namespace: Optional[str], name: str, kind: events.EventType, reason: str, note: str, action: str) -> None:
    regarding = types.ObjectRef(kind=CONFIG_MAP, namespace=namespace, name=name)
    events.record_event(
        events.Event(regarding=regarding, related=None, event_type=kind, reason=reason, note=note, action=action)
    )
