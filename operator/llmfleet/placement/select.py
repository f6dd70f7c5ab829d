"""Which one cluster a single-site workload goes to (a gateway, a training run): location,
cluster selector, then free GPUs. Models divide replicas over clusters in
llmfleet.placement.fleet.

Pure: the inventories come in, a decision comes out. An onprem workload is only ever placed
on a cluster whose location is onprem or mixed, and its pods are always pinned to nodes
labelled with its location, so it never lands on a cloud node in either topology.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmfleet import labels
from llmfleet.api.common import Gpu, LabelSelector, Placement
from llmfleet.placement.capacity import Assumption, NodeInfo, PodUse, Room, Shape, room
from llmfleet.placement.clusters import MemberCluster

__all__ = ["ClusterInventory", "Decision", "NodeInfo", "candidates", "decide", "selector_matches"]


@dataclass(frozen=True)
class ClusterInventory:
    member: MemberCluster
    nodes: tuple[NodeInfo, ...] | None  # None: the cluster could not be reached
    error: str = ""
    pods: tuple[PodUse, ...] = ()  # non-terminated pods holding GPUs

    def room(
        self,
        shape: Shape,
        owner: str = "",
        assumed: Sequence[Assumption] = (),
        own_pods_free: bool = False,
    ) -> Room:
        return room(
            self.nodes or (), self.pods, shape, owner=owner, assumed=assumed,
            own_pods_free=own_pods_free,
        )  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """Where to place, or why not: `reason` is a condition reason when `cluster` is None."""

    cluster: MemberCluster | None
    reason: str
    message: str


def selector_matches(selector: LabelSelector | None, cluster_labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in (selector.match_labels or {}).items():
        if cluster_labels.get(key) != value:
            return False
    for expression in selector.match_expressions or []:
        present = expression.key in cluster_labels
        found = cluster_labels.get(expression.key)
        ok = {
            "In": present and found in expression.values,
            "NotIn": not present or found not in expression.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[expression.operator]
        if not ok:
            return False
    return True


def candidates(placement: Placement, members: Sequence[MemberCluster]) -> list[MemberCluster]:
    return [
        m
        for m in members
        if m.location in (placement.location, labels.MIXED)
        and selector_matches(placement.cluster_selector, m.labels)
    ]


def shape_of(placement: Placement, gpu: Gpu, location: str | None = None) -> Shape:
    """One replica's needs, as the operator renders its pods (llmfleet.render.scheduling)."""
    return Shape(
        location=location or placement.location,
        count=gpu.count,
        resource=gpu.resource_name,
        products=tuple(gpu.product or ()),
        node_selector=dict(placement.node_selector or {}),
        tolerations=tuple(placement.tolerations or ()),
    )


def decide(
    placement: Placement,
    gpu: Gpu,
    members: Sequence[MemberCluster],
    inventories: Mapping[str, ClusterInventory],
    current: str | None = None,
    *,
    owner: str = "",
    assumed: Mapping[str, Sequence[Assumption]] | None = None,
) -> Decision:
    """Picks the cluster for one replica; keeps the current one while it is still valid."""
    pool = candidates(placement, members)
    if not pool:
        wanted = f"location {placement.location}"
        if placement.cluster_selector is not None:
            wanted += " matching spec.placement.clusterSelector"
        return Decision(
            None,
            "NoCluster",
            f"no member cluster has {wanted}; register one with a Secret labelled "
            f"{labels.CLUSTER}=true and {labels.LOCATION}={placement.location}",
        )
    shape = shape_of(placement, gpu)
    unreachable = tuple(m.name for m in pool if inventories[m.name].nodes is None)
    fitting: list[tuple[MemberCluster, Room]] = []
    rooms: dict[str, Room] = {}
    for member in pool:
        inventory = inventories[member.name]
        if inventory.nodes is None:
            if member.name == current:  # never re-place because a cluster did not answer
                return Decision(member, "ClusterUnreachable", inventory.error)
            continue
        if member.name == current:  # what runs stays where it is
            return Decision(member, "Placed", f"placed on {member.name}")
        found = inventory.room(shape, owner, (assumed or {}).get(member.name, ()))
        rooms[member.name] = found
        if found.fits > 0:
            fitting.append((member, found))
    if fitting:
        best = max(fitting, key=lambda pair: (pair[1].free, pair[1].fits))[0]  # first on a tie
        return Decision(best, "Placed", f"placed on {best.name}")
    if unreachable and len(unreachable) == len(pool):
        return Decision(
            None,
            "ClusterUnreachable",
            "every candidate cluster is unreachable: " + ", ".join(unreachable),
        )
    if gpu.count == 0:
        return Decision(
            None,
            "NoNodes",
            f"no schedulable node labelled {labels.LOCATION}={placement.location} in the "
            "candidate clusters: "
            + "; ".join(f"{name}: {r.describe()}" for name, r in rooms.items()),
        )
    offers = "; ".join(
        f"{m.name}: " + (rooms[m.name].describe() if m.name in rooms else "unreachable")
        for m in pool
    )
    return Decision(
        None,
        "InsufficientGPU",
        f"no {placement.location} node can fit one replica, which needs {shape.need()} free. "
        f"Candidate clusters: {offers}",
    )
