"""The official Kubernetes Python client against the embedded API server, unchanged.

Usage: python official_client.py KUBECONFIG

Runs one scenario step by step; on the first mismatch or error it prints
"FAILED at step <name>: <why>" (with the traceback) and exits 1. Prints "OK" and exits 0 otherwise.
"""

import os
import sys
import traceback

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

NS = "py-client"
STEP = "start"


def step(name):
    global STEP
    STEP = name
    print(f"step: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_api_error(status, call, *args, **kwargs):
    """Runs call and returns the ApiException it must raise with this HTTP status."""
    try:
        call(*args, **kwargs)
    except ApiException as e:
        check(e.status == status, f"expected HTTP {status}, got {e.status}: {e.body}")
        return e
    raise AssertionError(f"expected HTTP {status}, but the call succeeded")


def deployment():
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "busybox:1"},
                    ]
                },
            },
        },
    }


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "color": {"type": "string"},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def built_in_kinds(core, apps):
    step("create namespace")
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    check(created.metadata.uid, "the namespace has no uid")

    step("create configmaps")
    cm = core.create_namespaced_config_map(
        NS,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="settings", labels={"app": "py"}),
            data={"color": "blue"},
        ),
    )
    check(cm.metadata.resource_version, "no resourceVersion on the created ConfigMap")
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "other", "labels": {"app": "else"}}, "data": {"x": "1"}}
    )
    expect_api_error(
        409,
        core.create_namespaced_config_map,
        NS,
        {"metadata": {"name": "settings"}},
    )

    step("read configmap")
    got = core.read_namespaced_config_map("settings", NS)
    check(got.data == {"color": "blue"}, f"data: {got.data}")
    check(got.metadata.labels == {"app": "py"}, f"labels: {got.metadata.labels}")

    step("list with a label selector")
    listed = core.list_namespaced_config_map(NS, label_selector="app=py")
    names = [i.metadata.name for i in listed.items]
    check(names == ["settings"], f"names: {names}")
    check(listed.metadata.resource_version, "the list has no resourceVersion")

    step("create deployment")
    dep = apps.create_namespaced_deployment(NS, deployment())
    check(dep.metadata.generation == 1, f"generation: {dep.metadata.generation}")

    step("strategic merge patch with a dict")
    patched = apps.patch_namespaced_deployment(
        "web",
        NS,
        {
            "metadata": {"labels": {"tier": "front"}},
            "spec": {
                "replicas": 3,
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "sidecar", "image": "busybox:2"},
                            {"name": "main", "env": [{"name": "B", "value": "2"}]},
                        ]
                    }
                },
            },
        },
    )
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    check(sorted(containers) == ["main", "sidecar"], f"containers: {sorted(containers)}")
    check(containers["main"].image == "nginx:1", f"main image: {containers['main'].image}")
    check(containers["sidecar"].image == "busybox:2", f"sidecar image: {containers['sidecar'].image}")
    env = {e.name: e.value for e in containers["main"].env}
    check(env == {"A": "1", "B": "2"}, f"env merged by name: {env}")
    check(patched.spec.replicas == 3, f"replicas: {patched.spec.replicas}")
    check(patched.metadata.labels == {"app": "web", "tier": "front"}, f"labels: {patched.metadata.labels}")
    check(patched.metadata.generation == 2, f"generation: {patched.metadata.generation}")

    step("patch deployment status")
    status = apps.patch_namespaced_deployment_status(
        "web", NS, {"status": {"replicas": 3, "readyReplicas": 2}, "spec": {"replicas": 9}}
    )
    check(status.status.ready_replicas == 2, f"status: {status.status}")
    check(status.spec.replicas == 3, f"a status patch changed the spec: {status.spec.replicas}")
    again = apps.read_namespaced_deployment_status("web", NS)
    check(again.status.replicas == 3, f"stored status: {again.status}")

    step("watch with a timeout")
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, {"metadata": {"name": "watched"}})
    w = watch.Watch()
    seen = None
    for event in w.stream(
        core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=30
    ):
        seen = (event["type"], event["object"].metadata.name)
        w.stop()
    check(seen == ("ADDED", "watched"), f"first event: {seen}")

    step("409 on a stale replace")
    stale = core.read_namespaced_config_map("settings", NS)
    core.patch_namespaced_config_map("settings", NS, {"data": {"color": "red"}})
    stale.data = {"color": "green"}
    err = expect_api_error(409, core.replace_namespaced_config_map, "settings", NS, stale)
    check("the object has been modified" in err.body, f"body: {err.body}")
    fresh = core.read_namespaced_config_map("settings", NS)
    fresh.data["size"] = "L"
    replaced = core.replace_namespaced_config_map("settings", NS, fresh)
    check(replaced.data == {"color": "red", "size": "L"}, f"data: {replaced.data}")

    step("delete")
    core.delete_namespaced_config_map("settings", NS)
    expect_api_error(404, core.read_namespaced_config_map, "settings", NS)
    apps.delete_namespaced_deployment("web", NS, propagation_policy="Foreground")
    expect_api_error(404, apps.read_namespaced_deployment, "web", NS)


def custom_resources(ext, custom):
    step("create CRD")
    crd = ext.create_custom_resource_definition(CRD)
    check(crd.metadata.name == "gizmos.example.com", f"name: {crd.metadata.name}")
    established = [
        c for c in (crd.status.conditions or []) if c.type == "Established" and c.status == "True"
    ]
    check(established, f"the CRD is not established: {crd.status}")

    step("create custom object")
    args = ("example.com", "v1", NS, "gizmos")
    obj = custom.create_namespaced_custom_object(
        *args,
        {
            "apiVersion": "example.com/v1",
            "kind": "Gizmo",
            "metadata": {"name": "g1"},
            "spec": {"size": 1, "color": "blue"},
        },
    )
    check(obj["spec"] == {"size": 1, "color": "blue"}, f"spec: {obj['spec']}")
    expect_api_error(
        422,
        custom.create_namespaced_custom_object,
        *args,
        {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g2"}, "spec": {"size": 0}},
    )

    step("merge patch custom object")
    patched = custom.patch_namespaced_custom_object(*args, "g1", {"spec": {"size": 5, "color": None}})
    check(patched["spec"] == {"size": 5}, f"spec: {patched['spec']}")

    step("get custom object")
    got = custom.get_namespaced_custom_object(*args, "g1")
    check(got["spec"] == {"size": 5}, f"spec: {got['spec']}")
    listed = custom.list_namespaced_custom_object(*args)
    check([i["metadata"]["name"] for i in listed["items"]] == ["g1"], f"list: {listed['items']}")

    step("delete custom object")
    custom.delete_namespaced_custom_object(*args, "g1")
    expect_api_error(404, custom.get_namespaced_custom_object, *args, "g1")
    ext.delete_custom_resource_definition("gizmos.example.com")
    expect_api_error(404, custom.list_namespaced_custom_object, *args)


def dynamic_client(kubeconfig):
    step("dynamic client discovery")
    # The discovery cache goes next to the kubeconfig (a temporary directory), not into /tmp.
    cache = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), "discovery.json")
    dyn = dynamic.DynamicClient(client.ApiClient(), cache_file=cache)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    check(cms.namespaced, "ConfigMaps are not namespaced in discovery")

    step("dynamic client server-side apply")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}}
    applied = cms.server_side_apply(body=body, namespace=NS, field_manager="py-apply")
    check(applied.data.a == "1", f"data: {applied.data}")
    managers = [(m.manager, m.operation) for m in applied.metadata.managedFields]
    check(("py-apply", "Apply") in managers, f"managedFields: {managers}")
    body["data"] = {"a": "2"}
    err = expect_api_error(409, cms.server_side_apply, body=body, namespace=NS, field_manager="other")
    check("conflict" in err.body, f"body: {err.body}")
    forced = cms.server_side_apply(
        body=body, namespace=NS, field_manager="other", force_conflicts=True
    )
    check(forced.data.a == "2", f"data: {forced.data}")


def main():
    if len(sys.argv) != 2:
        print("usage: official_client.py KUBECONFIG", file=sys.stderr)
        return 2
    try:
        step("load kubeconfig")
        config.load_kube_config(config_file=sys.argv[1])
        core = client.CoreV1Api()
        apps = client.AppsV1Api()
        built_in_kinds(core, apps)
        custom_resources(client.ApiextensionsV1Api(), client.CustomObjectsApi())
        dynamic_client(sys.argv[1])
        step("delete namespace")
        core.delete_namespace(NS)
        expect_api_error(404, core.read_namespace, NS)
    except Exception as e:  # noqa: BLE001 - report any failure with its step
        traceback.print_exc()
        print(f"FAILED at step {STEP}: {e!r}", file=sys.stderr, flush=True)
        return 1
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
