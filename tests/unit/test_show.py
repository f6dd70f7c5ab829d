"""The federation table of `make demo`."""

from __future__ import annotations

from types import SimpleNamespace as Obj

from llmfleet.placement.clusters import MemberCluster, in_cluster_member
from localfleet.show import (
    TABLE_HEADERS,
    NodeRow,
    fleet_table,
    gpu_requests_by_node,
    node_rows,
    render_table,
)


def pod(node: str | None, phase: str, *gpu_requests: int) -> Obj:
    containers = [
        Obj(resources=Obj(requests={"nvidia.com/gpu": str(n)} if n else None)) for n in gpu_requests
    ]
    return Obj(spec=Obj(node_name=node, containers=containers), status=Obj(phase=phase))


def node(name: str, location: str, product: str | None, gpus: int) -> Obj:
    node_labels = {"llmfleet.io/location": location}
    if product:
        node_labels["nvidia.com/gpu.product"] = product
    resources = {"cpu": "8"} | ({"nvidia.com/gpu": str(gpus)} if gpus else {})
    return Obj(
        metadata=Obj(name=name, labels=node_labels),
        status=Obj(capacity=resources, allocatable=resources),
    )


def test_gpu_requests_count_only_scheduled_unfinished_pods() -> None:
    pods = [
        pod("n1", "Running", 2, 1),
        pod("n1", "Pending", 1),
        pod("n2", "Succeeded", 4),
        pod(None, "Pending", 8),
        pod("n2", "Running", 0),
    ]
    assert gpu_requests_by_node(pods) == {"n1": 4, "n2": 0}


def test_node_rows_name_the_cluster_and_sort_by_node() -> None:
    member = MemberCluster(name="hci-1", location="onprem", kubeconfig={"clusters": []})
    rows = node_rows(
        member, [node("b", "onprem", "NVIDIA-L40S", 4), node("a", "onprem", None, 0)], {"b": 3}
    )
    assert rows == [
        NodeRow("hci-1", "onprem", "a", "onprem", "-", 0, 0, 0),
        NodeRow("hci-1", "onprem", "b", "onprem", "NVIDIA-L40S", 4, 4, 3),
    ]
    hub_rows = node_rows(in_cluster_member("cloud"), [node("c", "cloud", None, 0)], {})
    assert hub_rows[0].cluster == "llmfleet-cloud (hub)"


def test_table_columns_line_up() -> None:
    table = render_table(("A", "LONGER"), [("x", 1), ("wide-cell", 22)])
    assert table.splitlines() == ["A          LONGER", "x          1", "wide-cell  22"]


def test_fleet_table_has_a_header_and_one_line_per_node() -> None:
    rows = [NodeRow("c", "cloud", "n", "cloud", "NVIDIA-H100-80GB-HBM3", 8, 8, 2)]
    lines = fleet_table(rows).splitlines()
    assert tuple(lines[0].split()) == TABLE_HEADERS
    assert lines[1].split() == ["c", "cloud", "n", "cloud", "NVIDIA-H100-80GB-HBM3", "8", "8", "2"]
