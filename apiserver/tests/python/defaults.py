"""The defaults a cluster fills in, as the official Kubernetes Python client sees them.

Usage: python defaults.py KUBECONFIG

Creates built-in objects with the fewest fields an operator writes and checks the fields kube-apiserver
defaults, so desired-vs-actual logic written against a real cluster behaves the same in the dev cluster.
On the first mismatch prints "FAILED at step <name>: <why>" and exits 1; prints "OK" otherwise.
"""

import sys
import traceback

from kubernetes import client, config

NS = "py-defaults"
STEP = "start"


def step(name):
    global STEP
    STEP = name
    print(f"step: {name}", flush=True)


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def container(name="c", image="busybox:1.36"):
    return client.V1Container(name=name, image=image)


def template(labels):
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[container()]),
    )


def check_pod_template(spec, what):
    eq(spec.restart_policy, "Always", f"{what} restartPolicy")
    eq(spec.dns_policy, "ClusterFirst", f"{what} dnsPolicy")
    eq(spec.scheduler_name, "default-scheduler", f"{what} schedulerName")
    eq(spec.termination_grace_period_seconds, 30, f"{what} terminationGracePeriodSeconds")
    c = spec.containers[0]
    eq(c.image_pull_policy, "IfNotPresent", f"{what} imagePullPolicy")
    eq(c.termination_message_path, "/dev/termination-log", f"{what} terminationMessagePath")
    eq(c.termination_message_policy, "File", f"{what} terminationMessagePolicy")


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    batch = client.BatchV1Api()
    coord = client.CoordinationV1Api()

    step("namespace")
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    eq(ns.status.phase, "Active", "namespace phase")
    eq(ns.spec.finalizers, ["kubernetes"], "namespace finalizers")
    eq(ns.metadata.labels.get("kubernetes.io/metadata.name"), NS, "namespace name label")
    sa = core.read_namespaced_service_account("default", NS)
    eq(sa.metadata.name, "default", "the namespace's default ServiceAccount")

    step("the kubernetes service")
    svc = core.read_namespaced_service("kubernetes", "default")
    eq(svc.spec.cluster_ip, "10.0.0.1", "kubernetes Service clusterIP")
    eq(svc.spec.ports[0].port, 443, "kubernetes Service port")

    step("service")
    svc = core.create_namespaced_service(
        NS,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    eq(svc.spec.type, "ClusterIP", "service type")
    eq(svc.spec.session_affinity, "None", "service sessionAffinity")
    eq(svc.spec.ip_families, ["IPv4"], "service ipFamilies")
    eq(svc.spec.ip_family_policy, "SingleStack", "service ipFamilyPolicy")
    eq(svc.spec.internal_traffic_policy, "Cluster", "service internalTrafficPolicy")
    eq(svc.spec.ports[0].protocol, "TCP", "service port protocol")
    eq(svc.spec.ports[0].target_port, 80, "service targetPort")
    if not svc.spec.cluster_ip or not svc.spec.cluster_ip.startswith("10.0.0."):
        raise AssertionError(f"service clusterIP not allocated: {svc.spec.cluster_ip!r}")

    step("deployment")
    d = apps.create_namespaced_deployment(
        NS,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                selector=client.V1LabelSelector(match_labels={"app": "web"}),
                template=template({"app": "web"}),
            ),
        ),
    )
    eq(d.spec.replicas, 1, "deployment replicas")
    eq(d.spec.strategy.type, "RollingUpdate", "deployment strategy")
    eq(d.spec.strategy.rolling_update.max_surge, "25%", "deployment maxSurge")
    eq(d.spec.revision_history_limit, 10, "deployment revisionHistoryLimit")
    eq(d.spec.progress_deadline_seconds, 600, "deployment progressDeadlineSeconds")
    eq(d.metadata.generation, 1, "deployment generation")
    check_pod_template(d.spec.template.spec, "deployment template")

    step("statefulset")
    s = apps.create_namespaced_stateful_set(
        NS,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1StatefulSetSpec(
                service_name="db",
                selector=client.V1LabelSelector(match_labels={"app": "db"}),
                template=template({"app": "db"}),
            ),
        ),
    )
    eq(s.spec.pod_management_policy, "OrderedReady", "statefulset podManagementPolicy")
    eq(s.spec.update_strategy.type, "RollingUpdate", "statefulset updateStrategy")
    eq(s.spec.update_strategy.rolling_update.partition, 0, "statefulset partition")
    eq(s.spec.persistent_volume_claim_retention_policy.when_deleted, "Retain", "statefulset pvc retention")
    eq(s.status.replicas, 0, "statefulset status.replicas at create")
    check_pod_template(s.spec.template.spec, "statefulset template")

    step("daemonset")
    ds = apps.create_namespaced_daemon_set(
        NS,
        client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name="agent"),
            spec=client.V1DaemonSetSpec(
                selector=client.V1LabelSelector(match_labels={"app": "agent"}),
                template=template({"app": "agent"}),
            ),
        ),
    )
    eq(ds.spec.update_strategy.type, "RollingUpdate", "daemonset updateStrategy")
    eq(ds.spec.update_strategy.rolling_update.max_unavailable, 1, "daemonset maxUnavailable")
    eq(ds.spec.revision_history_limit, 10, "daemonset revisionHistoryLimit")
    eq(ds.status.desired_number_scheduled, 0, "daemonset status at create")
    check_pod_template(ds.spec.template.spec, "daemonset template")

    step("job")
    job_template = template(None)
    job_template.spec.restart_policy = "Never"
    j = batch.create_namespaced_job(
        NS,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(template=job_template, suspend=True),
        ),
    )
    eq(j.spec.backoff_limit, 6, "job backoffLimit")
    eq(j.spec.completions, 1, "job completions")
    eq(j.spec.parallelism, 1, "job parallelism")
    eq(j.spec.completion_mode, "NonIndexed", "job completionMode")
    eq(j.spec.manual_selector, False, "job manualSelector")
    eq(
        j.spec.selector.match_labels,
        {"batch.kubernetes.io/controller-uid": j.metadata.uid},
        "job selector",
    )
    eq(j.spec.template.metadata.labels.get("job-name"), "once", "job template job-name label")
    eq(j.metadata.labels.get("batch.kubernetes.io/job-name"), "once", "job labels")

    step("cronjob")
    cj = batch.create_namespaced_cron_job(
        NS,
        client.V1CronJob(
            metadata=client.V1ObjectMeta(name="nightly"),
            spec=client.V1CronJobSpec(
                schedule="0 3 * * *",
                job_template=client.V1JobTemplateSpec(spec=client.V1JobSpec(template=job_template)),
            ),
        ),
    )
    eq(cj.spec.concurrency_policy, "Allow", "cronjob concurrencyPolicy")
    eq(cj.spec.suspend, False, "cronjob suspend")
    eq(cj.spec.successful_jobs_history_limit, 3, "cronjob successfulJobsHistoryLimit")
    eq(cj.spec.failed_jobs_history_limit, 1, "cronjob failedJobsHistoryLimit")

    step("pod")
    p = core.create_namespaced_pod(
        NS,
        client.V1Pod(metadata=client.V1ObjectMeta(name="hello"), spec=client.V1PodSpec(containers=[container()])),
    )
    check_pod_template(p.spec, "pod")
    eq(p.spec.service_account_name, "default", "pod serviceAccountName")
    eq(p.spec.priority, 0, "pod priority")
    eq(p.spec.enable_service_links, True, "pod enableServiceLinks")
    eq(p.status.phase, "Pending", "pod phase")
    eq(p.status.qos_class, "BestEffort", "pod qosClass")
    tolerations = sorted(t.key for t in p.spec.tolerations)
    eq(
        tolerations,
        ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"],
        "pod default tolerations",
    )

    step("configmap and secret")
    cm = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "b"})
    )
    eq(cm.data, {"a": "b"}, "configmap data")
    sec = core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"user": "admin"})
    )
    eq(sec.type, "Opaque", "secret type")
    eq(sec.data, {"user": "YWRtaW4="}, "secret data from stringData")

    step("lease and event")
    lease = coord.create_namespaced_lease(
        NS,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="leader"),
            spec=client.V1LeaseSpec(holder_identity="me", lease_duration_seconds=15),
        ),
    )
    eq(lease.spec.holder_identity, "me", "lease holder")
    ev = core.create_namespaced_event(
        NS,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="synced"),
            involved_object=client.V1ObjectReference(kind="ConfigMap", name="settings", namespace=NS),
            reason="Synced",
            message="all good",
            type="Normal",
        ),
    )
    eq(ev.reporting_component, "", "event reportingComponent")
    eq(ev.involved_object.name, "settings", "event involvedObject")

    print("OK", flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # noqa: BLE001 - every failure is reported with its step
        traceback.print_exc()
        print(f"FAILED at step {STEP}: {e}", flush=True)
        sys.exit(1)
