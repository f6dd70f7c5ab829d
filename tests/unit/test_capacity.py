"""Free GPUs: allocatable minus pods, cordoned/NotReady/tainted nodes, waiting pods and
assumed replicas."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.api.common import Toleration
from llmfleet.placement.capacity import Assumption, NodeInfo, PodUse, Shape, Taint, room
from llmfleet.placement.ledger import Ledger

L40S = "NVIDIA-L40S"
GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")


def node(name: str, gpus: int = 4, product: str = L40S, **extra: Any) -> NodeInfo:
    return NodeInfo(
        name,
        extra.pop("location", "onprem"),
        product,
        {"nvidia.com/gpu": str(gpus)},
        labels=extra.pop("labels", {}),
        taints=extra.pop("taints", (GPU_TAINT,)),
        **extra,
    )


def pod(
    name: str, gpus: int, on: str = "", owner: str = "", products: tuple[str, ...] = ()
) -> PodUse:
    return PodUse(name, on, {"nvidia.com/gpu": gpus}, owner, products)


SHAPE = Shape(location="onprem", count=4)


@pytest.mark.parametrize(
    ("nodes", "pods", "shape", "fits", "free", "refused"),
    [
        ([node("a"), node("b")], [], SHAPE, 2, 8, ""),
        ([node("a"), node("b")], [pod("p", 4, on="a")], SHAPE, 1, 4, ""),
        # A replica needs all its GPUs on one node: 2 + 2 free is no room for 4.
        ([node("a"), node("b")], [pod("p", 2, on="a"), pod("q", 2, on="b")], SHAPE, 0, 4, ""),
        # A waiting pod is demand: it takes the node the scheduler would give it.
        ([node("a"), node("b")], [pod("p", 4)], SHAPE, 1, 4, ""),
        # ...unless it is the asking owner's own (it would otherwise wait for itself).
        ([node("a")], [pod("p", 4, owner="me")], SHAPE, 1, 4, ""),
        ([node("a", unschedulable=True), node("b")], [], SHAPE, 1, 4, "cordoned: a"),
        ([node("a", ready=False), node("b")], [], SHAPE, 1, 4, "NotReady: a"),
        (
            [node("a", taints=(GPU_TAINT, Taint("dedicated", "ml", "NoSchedule"))), node("b")],
            [],
            SHAPE,
            1,
            4,
            "taint dedicated=ml:NoSchedule: a",
        ),
        (  # a PreferNoSchedule taint does not keep pods away
            [node("a", taints=(Taint("soft", "x", "PreferNoSchedule"),))],
            [],
            SHAPE,
            1,
            4,
            "",
        ),
        (  # tolerated by the spec's tolerations
            [node("a", taints=(Taint("dedicated", "ml", "NoExecute"),))],
            [],
            Shape("onprem", 4, tolerations=(Toleration(key="dedicated", operator="Exists"),)),
            1,
            4,
            "",
        ),
        (
            [node("a", product="NVIDIA-A100")],
            [],
            Shape("onprem", 4, products=(L40S,)),
            0,
            0,
            "product NVIDIA-A100: a",
        ),
        ([node("a", location="cloud")], [], SHAPE, 0, 0, ""),
        (
            [node("a", labels={"zone": "1"}), node("b")],
            [],
            Shape("onprem", 4, node_selector={"zone": "1"}),
            1,
            4,
            "nodeSelector: b",
        ),
        # CPU-only: any schedulable node of the location will do.
        ([node("a", gpus=0, product="", taints=())], [], Shape("onprem", 0), 1_000_000, 0, ""),
        (
            [node("a", gpus=0, product="", taints=(), unschedulable=True)],
            [],
            Shape("onprem", 0),
            0,
            0,
            "cordoned: a",
        ),
        # CPU pods do not tolerate the GPU taint: GPU nodes offer them nothing.
        ([node("a")], [], Shape("onprem", 0), 0, 0, "taint nvidia.com/gpu=present:NoSchedule: a"),
    ],
)
def test_room(
    nodes: list[NodeInfo], pods: list[PodUse], shape: Shape, fits: int, free: int, refused: str
) -> None:
    found = room(nodes, pods, shape, owner="me")
    assert (found.fits, found.free) == (fits, free)
    assert "; ".join(found.refused) == refused


def test_assumed_replicas_count_until_their_pods_are_seen() -> None:
    nodes = [node("a"), node("b")]
    assumed = [Assumption("other", 2, 4, "nvidia.com/gpu")]
    assert room(nodes, [], SHAPE, owner="me", assumed=assumed).fits == 0
    # One pod of the other owner bound: one assumed replica left outstanding, one node used.
    seen = [pod("o1", 4, on="a", owner="other")]
    assert room(nodes, seen, SHAPE, owner="me", assumed=assumed).fits == 0
    both = [*seen, pod("o2", 4, on="b", owner="other")]
    assert room(nodes, both, SHAPE, owner="me", assumed=assumed).fits == 0
    assert room([*nodes, node("c")], both, SHAPE, owner="me", assumed=assumed).fits == 1
    # An owner's own assumption never takes its own room.
    assert room(nodes, [], SHAPE, owner="other", assumed=assumed).fits == 2


def test_pod_use_reads_requests_binding_and_products() -> None:
    spec = {
        "nodeName": "a",
        "containers": [{"resources": {"requests": {"nvidia.com/gpu": "2", "cpu": "4"}}}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "nvidia.com/gpu.product",
                                    "operator": "In",
                                    "values": [L40S],
                                }
                            ]
                        }
                    ]
                }
            }
        },
    }
    meta = {"namespace": "t", "name": "p", "labels": {"llmfleet.io/owner": "o"}}
    use = PodUse.from_pod({"metadata": meta, "spec": spec, "status": {"phase": "Running"}})
    assert use == PodUse("t/p", "a", {"nvidia.com/gpu": 2}, "o", (L40S,))
    done = {"metadata": meta, "spec": spec, "status": {"phase": "Succeeded"}}
    assert PodUse.from_pod(done) is None
    cpu = {"metadata": meta, "spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}
    assert PodUse.from_pod(cpu) is None


def test_node_info_reads_cordon_readiness_and_taints() -> None:
    info = NodeInfo.from_node(
        {
            "metadata": {"name": "n", "labels": {"llmfleet.io/location": "onprem"}},
            "spec": {"unschedulable": True, "taints": [{"key": "k", "effect": "NoExecute"}]},
            "status": {
                "allocatable": {"nvidia.com/gpu": "2"},
                "conditions": [{"type": "Ready", "status": "False"}],
            },
        }
    )
    assert (info.unschedulable, info.ready, info.taints) == (
        True,
        False,
        (Taint("k", "", "NoExecute"),),
    )
    assert info.gpus("nvidia.com/gpu") == 2


def test_ledger_replaces_expires_and_forgets() -> None:
    clock = [0.0]
    ledger = Ledger(expire_seconds=10, clock=lambda: clock[0])
    ledger.assume("a", {"c1": Assumption("a", 1, 4, "nvidia.com/gpu")})
    ledger.assume("a", {"c2": Assumption("a", 2, 4, "nvidia.com/gpu")})
    assert (ledger.assumed("c1"), len(ledger.assumed("c2"))) == ([], 1)
    clock[0] = 11
    assert ledger.assumed("c2") == []
    ledger.assume("b", {"c1": Assumption("b", 1, 4, "nvidia.com/gpu")})
    ledger.forget("b")
    assert len(ledger) == 0
