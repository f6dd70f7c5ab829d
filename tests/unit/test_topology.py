"""The local fleet's shape: simulated nodes look like real GPU nodes, and sovereignty holds."""

from __future__ import annotations

import ipaddress
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmfleet import labels
from localfleet import kwok, topology
from localfleet.kind import kind_config, pool_assignment
from localfleet.kwok import kwokctl_configuration


def nodes_of(cluster: topology.ClusterSpec) -> list[dict[str, Any]]:
    return topology.fleet_nodes(cluster)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("cluster", "product", "gpus_per_node", "min_gpu_nodes"),
    [
        (topology.CLOUD, "NVIDIA-H100-80GB-HBM3", 8, 2),
        (topology.ONPREM, "NVIDIA-L40S", 4, 2),
        (topology.ONPREM2, "NVIDIA-A100-SXM4-80GB", 2, 2),
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


def test_two_onprem_members_with_their_own_gpus_regions_and_egress_ranges() -> None:
    members = [c for c in topology.FLEET if c.location == "onprem"]
    assert [c.name for c in members] == ["llmfleet-onprem", "llmfleet-onprem-2"]
    assert tuple(members) == topology.MEMBERS
    products = [{p.gpu.product for p in c.pools if p.gpu} for c in members]
    assert products[0].isdisjoint(products[1])
    assert len({c.region for c in topology.FLEET}) == len(topology.FLEET)
    assert len({c.short_name for c in topology.FLEET}) == len(topology.FLEET)
    for a, b in combinations(topology.FLEET, 2):
        assert not ipaddress.ip_network(a.egress_cidr).overlaps(ipaddress.ip_network(b.egress_cidr))
    # An unpinned onprem workload still goes to the first member: it has the most GPUs.
    assert topology.ONPREM.gpu_total > topology.ONPREM2.gpu_total


@pytest.mark.parametrize("member", topology.MEMBERS, ids=lambda c: c.short_name)
def test_a_cluster_selector_on_the_region_matches_exactly_one_member(
    member: topology.ClusterSpec,
) -> None:
    wanted = topology.cluster_selector(member)["matchLabels"]
    matching = [
        c.name
        for c in topology.MEMBERS
        if wanted.items() <= topology.member_secret(c, "")["metadata"]["labels"].items()  # type: ignore[index]
    ]
    assert matching == [member.name]


def test_member_secret_uses_the_registration_labels() -> None:
    secret: dict[str, Any] = topology.member_secret(topology.ONPREM, "apiVersion: v1\n")  # type: ignore[assignment]
    assert secret["metadata"]["namespace"] == topology.SYSTEM_NAMESPACE
    assert secret["metadata"]["labels"][labels.CLUSTER] == "true"
    assert secret["metadata"]["labels"][labels.LOCATION] == "onprem"
    assert secret["stringData"] == {"name": "llmfleet-onprem", "kubeconfig": "apiVersion: v1\n"}
    assert secret["metadata"]["labels"]["region"] == "dc-frankfurt"
    assert secret["metadata"]["annotations"] == {"llmfleet.io/egress-cidrs": "10.240.0.0/16"}


def test_kwokctl_gets_the_ports_chosen_for_the_cluster(tmp_path: Path) -> None:
    ports = dict(zip(kwok.PORT_OPTIONS, range(32700, 32706), strict=True))
    options: dict[str, Any] = kwokctl_configuration(tmp_path, "1.33.13", ports)["options"]  # type: ignore[assignment]
    assert {k: options[k] for k in kwok.PORT_OPTIONS} == ports
    assert not set(kwok.PORT_OPTIONS) & set(kwokctl_configuration(tmp_path, "1.33.13")["options"])  # type: ignore[arg-type]


def test_ports_skip_what_stopped_clusters_recorded_and_what_is_in_use(tmp_path: Path) -> None:
    stopped = tmp_path / "stopped-cluster"
    stopped.mkdir()
    (stopped / "kwok.yaml").write_text(
        yaml.safe_dump_all([
            {"kind": "KwokctlConfiguration", "components": [
                {"name": "etcd", "ports": [{"name": "peer-http", "port": 32766}, {"name": "http", "port": 32765}]},
                {"name": "kube-apiserver", "ports": [{"name": "https", "port": 32764}]},
            ]},
            {"kind": "Stage", "spec": {}},
        ])
    )  # fmt: skip
    assert kwok.recorded_ports(tmp_path) == {32764, 32765, 32766}
    in_use = {32763, 32760}
    allocator = kwok.PortAllocator(tmp_path, is_free=lambda port: port not in in_use)
    # Three clusters created side by side: each gets its own ports, none recorded or in use.
    handed_out = [allocator.ports() for _ in range(3)]
    every_port = [port for ports in handed_out for port in ports.values()]
    assert len(every_port) == len(set(every_port)) == 3 * len(kwok.PORT_OPTIONS)
    assert not set(every_port) & (kwok.recorded_ports(tmp_path) | in_use)
    assert handed_out[0] == dict(
        zip(kwok.PORT_OPTIONS, [32767, 32762, 32761, 32759, 32758, 32757], strict=True)
    )
    with pytest.raises(RuntimeError, match="free ports"):
        kwok.pick_ports(1, [], is_free=lambda port: False)


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
