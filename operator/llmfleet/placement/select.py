"""Which cluster a workload goes to: location, cluster selector, then GPU capacity.

Pure: the inventories come in, a decision comes out. An onprem workload is only ever placed
on a cluster whose location is onprem or mixed, and its pods are always pinned to nodes
labelled with its location, so it never lands on a cloud node in either topology.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmfleet import labels
from llmfleet.api.common import Gpu, LabelSelector, Placement
from llmfleet.placement.clusters import MemberCluster


@dataclass(frozen=True)
class NodeInfo:
    name: str
    location: str | None
    gpu_product: str | None
    allocatable: Mapping[str, str]

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeInfo:
        node_labels = node.get("metadata", {}).get("labels") or {}
        return cls(
            name=node["metadata"]["name"],
            location=node_labels.get(labels.LOCATION),
            gpu_product=node_labels.get(labels.GPU_PRODUCT),
            allocatable=dict((node.get("status") or {}).get("allocatable") or {}),
        )

    def gpus(self, resource: str) -> int:
        try:
            return int(self.allocatable.get(resource, "0"))
        except ValueError:
            return 0


@dataclass(frozen=True)
class ClusterInventory:
    member: MemberCluster
    nodes: tuple[NodeInfo, ...] | None  # None: the cluster could not be reached
    error: str = ""


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


def node_fits(node: NodeInfo, location: str, gpu: Gpu) -> bool:
    if node.location != location:
        return False
    if gpu.count == 0:
        return True
    if gpu.product and node.gpu_product not in gpu.product:
        return False
    return node.gpus(gpu.resource_name) >= gpu.count


def describe(inventory: ClusterInventory, location: str, gpu: Gpu) -> str:
    """What a cluster offers, for a person deciding what to change."""
    if inventory.nodes is None:
        return f"{inventory.member.name}: unreachable ({inventory.error})"
    offers = sorted(
        f"{n.gpus(gpu.resource_name)} x {n.gpu_product or 'no GPU product label'} on {n.name}"
        for n in inventory.nodes
        if n.location == location and n.gpus(gpu.resource_name) > 0
    )
    return f"{inventory.member.name}: " + (", ".join(offers) or f"no {location} GPU nodes")


def decide(
    placement: Placement,
    gpu: Gpu,
    members: Sequence[MemberCluster],
    inventories: Mapping[str, ClusterInventory],
    current: str | None = None,
) -> Decision:
    """Picks the cluster for one replica set; keeps the current one while it is still valid."""
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
    unreachable = tuple(m.name for m in pool if inventories[m.name].nodes is None)
    fitting = []
    for member in pool:
        inventory = inventories[member.name]
        if inventory.nodes is None:
            if member.name == current:  # never re-place because a cluster did not answer
                return Decision(member, "ClusterUnreachable", inventory.error)
            continue
        fit_nodes = [n for n in inventory.nodes if node_fits(n, placement.location, gpu)]
        if fit_nodes:
            fitting.append((member, sum(n.gpus(gpu.resource_name) for n in fit_nodes)))
    if fitting:
        for member, _ in fitting:
            if member.name == current:
                return Decision(member, "Placed", f"placed on {member.name}")
        best = max(fitting, key=lambda pair: pair[1])[0]  # most room; first listed on a tie
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
            f"no node labelled {labels.LOCATION}={placement.location} in the candidate clusters: "
            + ", ".join(m.name for m in pool),
        )
    need = f"{gpu.count} x {gpu.resource_name}"
    if gpu.product:
        need += f" ({' or '.join(gpu.product)})"
    offers = "; ".join(describe(inventories[m.name], placement.location, gpu) for m in pool)
    return Decision(
        None,
        "InsufficientGPU",
        f"no {placement.location} node can fit one replica, which needs {need}. "
        f"Candidate clusters have: {offers}",
    )
