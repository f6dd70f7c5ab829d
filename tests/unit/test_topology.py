"""The local fleet's shape: simulated nodes look like real GPU nodes, and sovereignty holds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from llmfleet import labels
from localfleet import topology
from localfleet.kind import kind_config, pool_assignment
from localfleet.kwok import kwokctl_configuration


def nodes_of(cluster: topology.ClusterSpec) -> list[dict[str, Any]]:
    return topology.fleet_nodes(cluster)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("cluster", "product", "gpus_per_node", "min_gpu_nodes"),
    [
        (topology.CLOUD, "NVIDIA-H100-80GB-HBM3", 8, 2),
        (topology.ONPREM, "NVIDIA-L40S", 4, 2),
    ],
)
def test_gpu_pool_matches_the_fleet_design(
    cluster: topology.ClusterSpec, product: str, gpus_per_node: int, min_gpu_nodes: int
) -> None:
    gpu_nodes = [n for n in nodes_of(cluster) if labels.GPU_RESOURCE in n["status"]["capacity"]]
    assert len(gpu_nodes) >= min_gpu_nodes
    for node in gpu_nodes:
        node_labels = node["metadata"]["labels"]
        assert node_labels[labels.GPU_PRODUCT] == product
        assert node_labels[labels.GPU_COUNT] == str(gpus_per_node)
        assert node_labels[labels.GPU_PRESENT] == "true"
        assert int(node_labels[labels.GPU_MEMORY]) > 0
        assert node["status"]["capacity"][labels.GPU_RESOURCE] == str(gpus_per_node)
        assert node["status"]["allocatable"] == node["status"]["capacity"]
        assert node["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        ]


@pytest.mark.parametrize("cluster", topology.FLEET, ids=lambda c: c.name)
def test_every_node_is_in_its_cluster_location_and_cpu_nodes_are_untainted(
    cluster: topology.ClusterSpec,
) -> None:
    nodes = nodes_of(cluster)
    cpu_nodes = [n for n in nodes if labels.GPU_RESOURCE not in n["status"]["capacity"]]
    assert cpu_nodes, "each cluster needs a CPU node for gateways and system pods"
    for node in cpu_nodes:
        assert node["spec"]["taints"] == []
        assert labels.GPU_PRODUCT not in node["metadata"]["labels"]
    for node in nodes:
        assert node["metadata"]["labels"][labels.LOCATION] == cluster.location
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_node_names_are_unique_across_the_fleet() -> None:
    names = [n["metadata"]["name"] for c in topology.FLEET for n in nodes_of(c)]
    assert len(names) == len(set(names))


def test_the_hub_is_cloud_and_every_other_cluster_is_a_member() -> None:
    hubs = [c for c in topology.FLEET if c.is_hub]
    assert hubs == [topology.HUB]
    assert topology.HUB.location == "cloud"
    assert {c.location for c in topology.FLEET if not c.is_hub} == {"onprem"}


def test_member_secret_uses_the_registration_labels() -> None:
    secret: dict[str, Any] = topology.member_secret(topology.ONPREM, "apiVersion: v1\n")  # type: ignore[assignment]
    assert secret["metadata"]["namespace"] == topology.SYSTEM_NAMESPACE
    assert secret["metadata"]["labels"][labels.CLUSTER] == "true"
    assert secret["metadata"]["labels"][labels.LOCATION] == "onprem"
    assert secret["stringData"] == {"name": "llmfleet-onprem", "kubeconfig": "apiVersion: v1\n"}


def test_kwokctl_uses_only_local_binaries_on_loopback(tmp_path: Any) -> None:
    options: dict[str, Any] = kwokctl_configuration(tmp_path, "1.33.13")["options"]  # type: ignore[assignment]
    assert options["bindAddress"] == "127.0.0.1"
    assert options["runtime"] == "binary"
    binaries = {k: v for k, v in options.items() if k.endswith("Binary")}
    assert set(binaries) == {
        "etcdBinary", "kubeApiserverBinary", "kubeControllerManagerBinary",
        "kubeSchedulerBinary", "kwokControllerBinary",
    }  # fmt: skip
    assert all(str(v).startswith(str(tmp_path)) for v in binaries.values())


@pytest.mark.parametrize("cluster", topology.FLEET, ids=lambda c: c.name)
def test_kind_gets_one_worker_per_fleet_node_and_fills_gpu_pools(
    cluster: topology.ClusterSpec,
) -> None:
    config = kind_config(cluster)
    workers = [n for n in config["nodes"] if n["role"] == "worker"]
    assert len(workers) == len(nodes_of(cluster))
    assert "&id" not in yaml.safe_dump(config)  # no YAML aliases for kind to trip on

    names = [f"{cluster.name}-worker{i}" for i in ("", "2", "3")]
    assigned = pool_assignment(cluster, names)
    assert [pool.name for _, pool in assigned] == [
        pool.name for pool in cluster.pools for _ in range(pool.count)
    ]
    with pytest.raises(RuntimeError, match="make kind-down"):
        pool_assignment(cluster, names[:1])
