"""The local clusters are real: versioned API servers, a real scheduler placing GPU pods on
simulated GPU nodes, garbage collection, and a member registration that reaches the member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from llmfleet import labels
from llmfleet.placement.clusters import member_from_secret
from localfleet import components, kwok, topology
from localfleet import fleet as localfleet
from tests.integration.conftest import Fleet
from tests.integration.polling import wait_until

SPECS = {c.short_name: c for c in topology.FLEET}


def gpu_deployment(name: str, gpus: int, location: str, replicas: int = 1) -> dict[str, Any]:
    pod_labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": {labels.LOCATION: location},
                    "tolerations": [
                        {"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {
                                "requests": {labels.GPU_RESOURCE: str(gpus)},
                                "limits": {labels.GPU_RESOURCE: str(gpus)},
                            },
                        }
                    ],
                },
            },
        },
    }


def pods_of(api: client.ApiClient, namespace: str, app: str) -> list[Any]:
    return list(
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    )


@pytest.mark.parametrize("cluster", SPECS)
def test_api_server_reports_the_pinned_kubernetes_version(fleet: Fleet, cluster: str) -> None:
    pinned = localfleet.pinned_versions()["K8S_VERSION"]
    version = client.VersionApi(fleet.clients()[cluster]).get_code()
    assert version.git_version == pinned
    assert (version.major, version.minor) == ("1", pinned.split(".")[1])


@pytest.mark.parametrize("cluster", SPECS)
def test_nodes_carry_location_and_gpu_discovery_labels(fleet: Fleet, cluster: str) -> None:
    spec = SPECS[cluster]
    nodes = client.CoreV1Api(fleet.clients()[cluster]).list_node().items
    assert nodes, f"{cluster} has no nodes"
    for node in nodes:
        assert node.metadata.labels.get(labels.LOCATION) == spec.location, node.metadata.name

    gpu_nodes = [n for n in nodes if labels.GPU_RESOURCE in (n.status.allocatable or {})]
    cpu_nodes = [n for n in nodes if labels.GPU_RESOURCE not in (n.status.allocatable or {})]
    gpu_pool = next(p for p in spec.pools if p.gpu is not None)
    assert gpu_pool.gpu is not None
    assert len(gpu_nodes) >= 2
    assert len(cpu_nodes) >= 1
    for node in gpu_nodes:
        node_labels = node.metadata.labels
        assert node.status.capacity[labels.GPU_RESOURCE] == str(gpu_pool.gpus_per_node)
        assert node.status.allocatable[labels.GPU_RESOURCE] == str(gpu_pool.gpus_per_node)
        assert node_labels[labels.GPU_PRODUCT] == gpu_pool.gpu.product
        assert node_labels[labels.GPU_COUNT] == str(gpu_pool.gpus_per_node)
        assert node_labels[labels.GPU_MEMORY] == str(gpu_pool.gpu.memory_mib)
        assert node_labels[labels.GPU_PRESENT] == "true"
        taints = [(t.key, t.value, t.effect) for t in node.spec.taints or []]
        assert (labels.GPU_TAINT_KEY, labels.GPU_TAINT_VALUE, "NoSchedule") in taints
    for node in cpu_nodes:
        assert labels.GPU_PRODUCT not in node.metadata.labels
        assert not node.spec.taints


@pytest.mark.parametrize("cluster", [c.short_name for c in topology.MEMBERS])
def test_scheduler_places_gpu_pod_on_an_onprem_gpu_node(
    fleet: Fleet, namespace: str, cluster: str
) -> None:
    api = fleet.clients()[cluster]
    gpu_pool = next(p for p in SPECS[cluster].pools if p.gpu is not None)
    assert gpu_pool.gpu is not None
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, gpu_deployment("llm", gpus=2, location="onprem")
    )

    def running_pod() -> Any:
        pods = pods_of(api, namespace, "llm")
        return next((p for p in pods if p.status.phase == "Running"), None)

    pod = wait_until(running_pod, what="the GPU pod to run", timeout=90)
    node = client.CoreV1Api(api).read_node(pod.spec.node_name)
    assert node.metadata.labels[labels.LOCATION] == "onprem"
    assert node.metadata.labels[labels.GPU_PRODUCT] == gpu_pool.gpu.product
    scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert scheduled.status == "True"


def test_pod_asking_more_gpus_than_any_node_stays_pending(fleet: Fleet, namespace: str) -> None:
    api = fleet.cloud
    most_gpus = max(p.gpus_per_node for p in topology.CLOUD.pools)
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, gpu_deployment("too-big", gpus=most_gpus + 1, location="cloud")
    )

    def unschedulable() -> Any:
        for pod in pods_of(api, namespace, "too-big"):
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
                    return pod, condition
        return None

    pod, condition = wait_until(unschedulable, what="the scheduler to give up on the pod")
    assert condition.status == "False"
    assert f"Insufficient {labels.GPU_RESOURCE}" in condition.message
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name


def test_deleting_a_deployment_garbage_collects_its_pods(fleet: Fleet, namespace: str) -> None:
    api = fleet.cloud
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        namespace, gpu_deployment("gc", gpus=1, location="cloud", replicas=2)
    )
    wait_until(
        lambda: len([p for p in pods_of(api, namespace, "gc") if p.status.phase == "Running"]) == 2,
        what="two running pods",
        timeout=90,
    )
    apps.delete_namespaced_deployment(
        "gc", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    wait_until(
        lambda: (
            not apps.list_namespaced_replica_set(namespace).items
            and not pods_of(api, namespace, "gc")
        ),
        what="the ReplicaSet and pods to be garbage-collected",
        timeout=90,
    )


@pytest.mark.parametrize("member", topology.MEMBERS, ids=lambda c: c.short_name)
def test_member_secret_in_the_hub_reaches_its_cluster(
    fleet: Fleet, member: topology.ClusterSpec
) -> None:
    core = client.CoreV1Api(fleet.cloud)
    selector = topology.cluster_selector(member)["matchLabels"]
    secrets = core.list_namespaced_secret(
        topology.SYSTEM_NAMESPACE,
        label_selector=",".join(
            [f"{labels.CLUSTER}=true", f"{labels.LOCATION}={member.location}"]
            + [f"{key}={value}" for key, value in selector.items()]
        ),
    ).items
    assert len(secrets) == 1, "the region label names exactly one member"
    registered = member_from_secret(fleet.cloud.sanitize_for_serialization(secrets[0]))
    assert (registered.name, registered.location) == (member.name, member.location)
    assert registered.egress_cidrs == (member.egress_cidr,)
    assert registered.kubeconfig is not None

    with config.new_client_from_config_dict(dict(registered.kubeconfig)) as member_api:
        reached = {n.metadata.name for n in client.CoreV1Api(member_api).list_node().items}
    expected = {n["metadata"]["name"] for n in topology.fleet_nodes(member)}  # type: ignore[index]
    assert expected <= reached


def test_cluster_up_registers_every_member_of_the_fleet_once(fleet: Fleet) -> None:
    core = client.CoreV1Api(fleet.cloud)
    selector = f"{labels.CLUSTER}=true,{labels.MANAGED_BY}=localfleet"
    secrets = core.list_namespaced_secret(topology.SYSTEM_NAMESPACE, label_selector=selector).items
    names = sorted(
        member_from_secret(fleet.cloud.sanitize_for_serialization(s)).name for s in secrets
    )
    assert names == sorted(c.name for c in topology.MEMBERS)


def _apiserver_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if argv0.endswith(b"/kube-apiserver"):
            pids.add(int(proc.name))
    return pids


def test_cluster_up_again_starts_nothing_new(fleet: Fleet) -> None:
    if localfleet.external_kubeconfigs():
        pytest.skip("checks the local kwok fleet; clusters were given by LLMFLEET_*_KUBECONFIG")
    before = _apiserver_pids()
    node_uids_before = {n.metadata.uid for n in client.CoreV1Api(fleet.cloud).list_node().items}
    localfleet.up()
    assert _apiserver_pids() == before
    assert {
        n.metadata.uid for n in client.CoreV1Api(fleet.cloud).list_node().items
    } == node_uids_before


def test_cluster_up_restarts_a_cluster_whose_component_exited(fleet: Fleet) -> None:
    """kwokctl does not supervise its processes: a scheduler that exited (for example on a lost
    leader lease) is started again by `make cluster-up`, and the cluster keeps its state."""
    if localfleet.external_kubeconfigs():
        pytest.skip("checks the local kwok fleet; clusters were given by LLMFLEET_*_KUBECONFIG")
    node_uids_before = {n.metadata.uid for n in client.CoreV1Api(fleet.onprem).list_node().items}
    components.stop(topology.ONPREM, "kube-scheduler")
    assert components.running_by_component(topology.ONPREM)["kube-scheduler"] is False
    localfleet.up()
    for cluster in topology.FLEET:
        assert all(components.running_by_component(cluster).values()), cluster.name
    nodes = wait_until(
        lambda: client.CoreV1Api(fleet.onprem).list_node().items,
        what="the restarted onprem API server",
    )
    assert {n.metadata.uid for n in nodes} == node_uids_before


def test_a_restarted_cluster_runs_pods_at_once(fleet: Fleet, namespace: str) -> None:
    """`kwok.start` returns once the new controller manager and scheduler lead (their
    predecessors' leases expire 15 s after the stop): a pod asked for right after runs in
    seconds, so what follows a failure test meets a working cluster."""
    if localfleet.external_kubeconfigs():
        pytest.skip("checks the local kwok fleet; clusters were given by LLMFLEET_*_KUBECONFIG")
    kwok.stop(topology.ONPREM)
    assert not any(components.running_by_component(topology.ONPREM).values())
    kwok.start(topology.ONPREM)
    client.AppsV1Api(fleet.onprem).create_namespaced_deployment(
        namespace, gpu_deployment("after-restart", gpus=1, location="onprem")
    )

    def running_pod() -> Any:
        pods = pods_of(fleet.onprem, namespace, "after-restart")
        return next((p for p in pods if p.status.phase == "Running"), None)

    wait_until(running_pod, what="the pod asked for right after the restart to run", timeout=10)
