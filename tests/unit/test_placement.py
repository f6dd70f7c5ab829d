"""Cluster choice: location, selectors, GPU capacity, stickiness and unreachable clusters."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.api.common import Gpu, Placement
from llmfleet.placement.clusters import MemberCluster
from llmfleet.placement.select import ClusterInventory, NodeInfo, decide, selector_matches

HUB = MemberCluster("in-cluster", "cloud")
HCI = MemberCluster("hci-1", "onprem", {"region": "eu"}, kubeconfig={"clusters": [{}]})
HCI_US = MemberCluster("hci-2", "onprem", {"region": "us"}, kubeconfig={"clusters": [{}]})
MIXED = MemberCluster("mixed", "mixed", {}, kubeconfig={"clusters": [{}]})


def node(name: str, location: str, product: str | None = None, gpus: int = 0) -> NodeInfo:
    allocatable = {"cpu": "8"} | ({"nvidia.com/gpu": str(gpus)} if gpus else {})
    return NodeInfo(name, location, product, allocatable)


INVENTORIES = {
    "in-cluster": ClusterInventory(HUB, (node("h100-0", "cloud", "NVIDIA-H100-80GB-HBM3", 8),)),
    "hci-1": ClusterInventory(HCI, (node("l40s-0", "onprem", "NVIDIA-L40S", 4),)),
    "hci-2": ClusterInventory(HCI_US, (node("l40s-9", "onprem", "NVIDIA-L40S", 2),)),
    "mixed": ClusterInventory(
        MIXED, (node("m-cloud", "cloud", "NVIDIA-A10", 1), node("m-hci", "onprem", "NVIDIA-L4", 1))
    ),
}
MEMBERS = [HUB, HCI, HCI_US, MIXED]


def placement(location: str, **extra: Any) -> Placement:
    return Placement.model_validate({"location": location, **extra})


@pytest.mark.parametrize(
    ("location", "gpu", "extra", "cluster", "reason"),
    [
        ("cloud", Gpu(count=8), {}, "in-cluster", "Placed"),
        ("onprem", Gpu(count=2), {}, "hci-1", "Placed"),  # most room wins
        ("onprem", Gpu(count=2), {"clusterSelector": {"matchLabels": {"region": "us"}}}, "hci-2", "Placed"),
        ("onprem", Gpu(count=1, product=["NVIDIA-L4"]), {}, "mixed", "Placed"),
        ("cloud", Gpu(count=1, product=["NVIDIA-A10"]), {}, "mixed", "Placed"),
        ("onprem", Gpu(count=5), {}, None, "InsufficientGPU"),
        ("onprem", Gpu(count=1, product=["NVIDIA-H100-80GB-HBM3"]), {}, None, "InsufficientGPU"),
        ("edge", Gpu(count=0), {}, None, "NoNodes"),  # only the mixed cluster could hold edge nodes
        ("edge", Gpu(count=0), {"clusterSelector": {"matchLabels": {"region": "eu"}}}, None, "NoCluster"),
        ("onprem", Gpu(count=1), {"clusterSelector": {"matchLabels": {"region": "apac"}}}, None, "NoCluster"),
    ],
    ids=["cloud-fits", "most-room", "selector", "mixed-onprem", "mixed-cloud", "too-many-gpus",
         "wrong-product", "no-edge-nodes", "no-edge-cluster", "selector-matches-none"],
)  # fmt: skip
def test_decide(
    location: str, gpu: Gpu, extra: dict[str, Any], cluster: str | None, reason: str
) -> None:
    decision = decide(placement(location, **extra), gpu, MEMBERS, INVENTORIES)
    assert (decision.cluster.name if decision.cluster else None, decision.reason) == (
        cluster,
        reason,
    )


def test_an_onprem_workload_never_goes_to_a_cloud_cluster_even_with_room() -> None:
    only_cloud = {"in-cluster": INVENTORIES["in-cluster"]}
    decision = decide(placement("onprem"), Gpu(count=1), [HUB], only_cloud)
    assert decision.cluster is None
    assert decision.reason == "NoCluster"


def test_insufficient_gpu_lists_what_the_candidates_have() -> None:
    decision = decide(placement("onprem"), Gpu(count=5), MEMBERS, INVENTORIES)
    assert "needs 5 x nvidia.com/gpu" in decision.message
    assert "hci-1: 4/4 NVIDIA-L40S free" in decision.message
    assert "mixed: 1/1 NVIDIA-L4 free" in decision.message
    assert "h100" not in decision.message  # cloud capacity is not an option for onprem


def test_the_current_cluster_is_kept_while_it_still_fits() -> None:
    decision = decide(placement("onprem"), Gpu(count=1), MEMBERS, INVENTORIES, current="hci-2")
    assert decision.cluster == HCI_US


def test_an_unreachable_current_cluster_is_kept_not_replaced() -> None:
    down = dict(INVENTORIES) | {"hci-2": ClusterInventory(HCI_US, None, "connection refused")}
    decision = decide(placement("onprem"), Gpu(count=1), MEMBERS, down, current="hci-2")
    assert (decision.cluster, decision.reason) == (HCI_US, "ClusterUnreachable")


def test_when_every_candidate_is_unreachable_nothing_is_placed() -> None:
    down = {
        name: ClusterInventory(inv.member, None, "timeout") for name, inv in INVENTORIES.items()
    }
    decision = decide(placement("onprem"), Gpu(count=1), MEMBERS, down)
    assert decision.cluster is None
    assert decision.reason == "ClusterUnreachable"


@pytest.mark.parametrize(
    ("selector", "cluster_labels", "expected"),
    [
        (None, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
)  # fmt: skip
def test_selector_matches(
    selector: dict[str, Any] | None, cluster_labels: dict[str, str], expected: bool
) -> None:
    parsed = placement("cloud", clusterSelector=selector).cluster_selector if selector else None
    assert selector_matches(parsed, cluster_labels) is expected
