"""Test plugin: a Python plugin with ``reuse_instances`` on that counts its reconciles in a
global (``host/tests/all/kept_instances.rs``), so tests see the interpreter kept between
reconciles, and a fresh one after an exception escapes. Also the no-op reconcile the runtime
bench times with instances kept.

Every reconcile adds one to the count and prints ``reconcile <count> of <name>`` to stderr;
then, by the request's name:

- ``raise``: a ``ValueError`` escapes ``reconcile``: the instance traps.
- anything else: ``requeue-after`` of ``<count>`` nanoseconds, which is how tests read it.
"""

import sys

from wit_world import exports
from wit_world.exports import reconciler as r
from wit_world.imports import types

CONFIG_MAP = types.Kind(group="", version="v1", kind="ConfigMap")

count = 0
"""Reconciles this instance has run."""


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
            reuse_instances=True,
        )

    def reconcile(self, request: r.Request) -> r.Action:
        global count
        count += 1
        print(f"reconcile {count} of {request.name}", file=sys.stderr)
        if request.name == "raise":
            raise ValueError(f"raised on purpose at reconcile {count}")
        return r.Action_RequeueAfter(count)
