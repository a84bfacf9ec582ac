"""Test plugin: faults of a Python plugin, chosen by the request's name, that the host must
contain (``host/tests/python_plugin.rs``).

- ``raise``: a ``ValueError`` escapes ``reconcile`` (not an ``Err``): the instance traps.
- ``spin``: loops forever: the epoch deadline stops it.
- ``allocate``: keeps allocating 1 MiB blocks: the memory cap refuses a growth, Python raises
  ``MemoryError``, which escapes.
- ``err``: returns a typed error the normal way (``raise Err(...)``).
- ``count``: adds one to a global count and returns ``requeue-after`` of that many
  nanoseconds: always 1, since this plugin does not set ``reuse_instances`` and so every
  reconcile starts from a fresh instance (``host/tests/all/kept_instances.rs``).
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import reconciler as r
from wit_world.imports import types

CONFIG_MAP = types.Kind(group="", version="v1", kind="ConfigMap")

count = 0


class Reconciler(exports.Reconciler):
    def get_manifest(self) -> r.Manifest:
        return r.Manifest(
            reconciles=r.Reconciles(kind=CONFIG_MAP, namespace=None, label_selector=None),
            owns=[],
            watches=[],
            indexes=[],
            permissions=[],
            concurrency=1,
            custom_resources=[],
            reuse_instances=False,
        )

    def reconcile(self, request: r.Request) -> r.Action:
        if request.name == "raise":
            print("about to raise")
            raise ValueError(f"cannot reconcile {request.namespace}/{request.name}")
        if request.name == "spin":
            n = 0
            while True:
                n += 1
        if request.name == "allocate":
            blocks = []
            while True:
                blocks.append(bytearray(1 << 20))
        if request.name == "err":
            raise Err(types.Error_Conflict("stale resourceVersion"))
        if request.name == "count":
            global count
            count += 1
            return r.Action_RequeueAfter(count)
        return r.Action_Done()
