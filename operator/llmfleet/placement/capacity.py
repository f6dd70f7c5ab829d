"""Free GPUs: what schedulable nodes offer, minus what pods hold or wait for, minus what the
operator has decided but cannot see yet.

Pure: nodes, pods and assumptions come in, the room for one replica shape comes out. A
replica needs all its GPUs on one node, so room is counted in whole replicas per node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet.api.common import Toleration

# Replicas of a CPU-only shape that "fit" a cluster with an eligible node: not counted.
UNBOUNDED = 1_000_000
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeInfo:
    name: str
    location: str | None
    gpu_product: str | None
    allocatable: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    ready: bool = True
    taints: tuple[Taint, ...] = ()

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeInfo:
        meta = node.get("metadata") or {}
        node_labels = dict(meta.get("labels") or {})
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        ready = next(
            (c.get("status") == "True" for c in status.get("conditions") or []
             if c.get("type") == "Ready"),
            True,  # a node that reports no conditions yet is taken at its word
        )  # fmt: skip
        return cls(
            name=meta["name"],
            location=node_labels.get(labels.LOCATION),
            gpu_product=node_labels.get(labels.GPU_PRODUCT),
            allocatable=dict(status.get("allocatable") or {}),
            labels=node_labels,
            unschedulable=bool(spec.get("unschedulable")),
            ready=ready,
            taints=tuple(
                Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
                for t in spec.get("taints") or []
            ),
        )

    def gpus(self, resource: str) -> int:
        return _count(self.allocatable.get(resource, "0"))


@dataclass(frozen=True)
class PodUse:
    """A non-terminated pod's extended-resource requests (GPUs), the node it is bound to
    ("" while it waits for one), the products its node affinity accepts, and its owner."""

    name: str
    node: str
    requests: Mapping[str, int]
    owner: str = ""
    products: tuple[str, ...] = ()

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> PodUse | None:
        """None for pods that hold no extended resources or have finished."""
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        requests: dict[str, int] = {}
        for container in spec.get("containers") or []:
            for resource, amount in (
                (container.get("resources") or {}).get("requests") or {}
            ).items():
                if "/" in resource:  # extended resources: nvidia.com/gpu, amd.com/gpu, ...
                    requests[resource] = requests.get(resource, 0) + _count(amount)
        requests = {k: v for k, v in requests.items() if v > 0}
        if not requests:
            return None
        return cls(
            name=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
            node=str(spec.get("nodeName") or ""),
            requests=requests,
            owner=str((meta.get("labels") or {}).get(labels.OWNER, "")),
            products=_affinity_products(spec),
        )


@dataclass(frozen=True)
class Shape:
    """What one replica needs: `count` of `resource` on one node of `location`, of one of
    `products` (any when empty), matching `node_selector`, tolerating the node's taints."""

    location: str
    count: int
    resource: str = labels.GPU_RESOURCE
    products: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    def need(self) -> str:
        text = f"{self.count} x {self.resource}"
        return text + (f" ({' or '.join(self.products)})" if self.products else "")


@dataclass(frozen=True)
class Assumption:
    """Replicas decided for `owner` in a cluster whose pods may not be visible yet."""

    owner: str
    replicas: int
    count: int
    resource: str
    products: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductRoom:
    product: str
    free: int
    total: int


@dataclass(frozen=True)
class Room:
    """A cluster's room for one shape, not counting the asking owner's own waiting pods."""

    fits: int  # replicas that fit now
    products: tuple[ProductRoom, ...] = ()  # eligible nodes' GPUs by product: free / total
    refused: tuple[str, ...] = ()  # why other nodes of the location offer nothing

    @property
    def free(self) -> int:
        return sum(p.free for p in self.products)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.products)

    def describe(self) -> str:
        offers = ", ".join(f"{p.free}/{p.total} {p.product} free" for p in self.products)
        text = offers or "no eligible GPU node"
        if self.refused:
            text += " (" + "; ".join(self.refused) + ")"
        return text


def refusal(node: NodeInfo, shape: Shape) -> str | None:
    """Why a node offers nothing to the shape, or None when it is eligible."""
    if node.location != shape.location:
        return "location"
    if node.unschedulable:
        return "cordoned"
    if not node.ready:
        return "NotReady"
    tolerations = _tolerations(shape)
    for taint in node.taints:
        if taint.effect in BLOCKING_EFFECTS and not any(_tolerates(t, taint) for t in tolerations):
            return f"taint {taint.key}={taint.value}:{taint.effect}"
    if any(node.labels.get(k) != v for k, v in shape.node_selector.items()):
        return "nodeSelector"
    if shape.count == 0:
        return None
    if node.gpus(shape.resource) <= 0:
        return f"no {shape.resource}"
    if shape.products and node.gpu_product not in shape.products:
        return f"product {node.gpu_product or 'unlabelled'}"
    return None


def room(
    nodes: Sequence[NodeInfo],
    pods: Iterable[PodUse],
    shape: Shape,
    *,
    owner: str = "",
    assumed: Iterable[Assumption] = (),
    own_pods_free: bool = False,
) -> Room:
    """Replicas of `shape` that fit: allocatable GPUs of eligible nodes, minus bound pods'
    requests, minus pods waiting for a node and assumed replicas of others (both placed where
    the scheduler would put them: the node with most free room that fits them). With
    `own_pods_free`, the owner's own pods count as room: where it has no placement it knows
    of, they are its own Deployment's, which a placement there takes over."""
    if own_pods_free and owner:
        pods = [p for p in pods if p.owner != owner]
    free = _free(nodes, list(pods), shape, owner, assumed)
    eligible: list[NodeInfo] = []
    refused: dict[str, list[str]] = {}
    for node in nodes:
        why = refusal(node, shape)
        if why is None:
            eligible.append(node)
        elif why not in ("location", f"no {shape.resource}"):
            refused.setdefault(why, []).append(node.name)  # nodes that could, but may not
    if shape.count == 0:
        return Room(fits=UNBOUNDED if eligible else 0, refused=_refused(refused))
    totals: dict[str, list[int]] = {}
    fits = 0
    for node in eligible:
        left = max(0, free[node.name])
        fits += left // shape.count
        product = totals.setdefault(node.gpu_product or "unlabelled", [0, 0])
        product[0] += left
        product[1] += node.gpus(shape.resource)
    products = tuple(ProductRoom(p, f, t) for p, (f, t) in sorted(totals.items()))
    return Room(fits=fits, products=products, refused=_refused(refused))


def _free(
    nodes: Sequence[NodeInfo],
    pods: Sequence[PodUse],
    shape: Shape,
    owner: str,
    assumed: Iterable[Assumption],
) -> dict[str, int]:
    """Free units of the shape's resource per node, after every other claim on them."""
    free = {n.name: n.gpus(shape.resource) if shape.count else 0 for n in nodes}
    by_name = {n.name: n for n in nodes}
    waiting: list[tuple[int, tuple[str, ...]]] = []
    visible: dict[str, int] = {}
    for pod in pods:
        if pod.owner:
            visible[pod.owner] = visible.get(pod.owner, 0) + 1
        amount = pod.requests.get(shape.resource, 0)
        if amount and pod.node in free:
            free[pod.node] -= amount
        elif amount and not pod.node and (pod.owner != owner or not owner):
            waiting.append((amount, pod.products))
    for assumption in assumed:
        if assumption.owner == owner or assumption.resource != shape.resource:
            continue
        outstanding = max(0, assumption.replicas - visible.get(assumption.owner, 0))
        waiting += [(assumption.count, assumption.products)] * outstanding
    for amount, products in sorted(waiting, key=lambda w: -w[0]):
        _bind(free, by_name, amount, products, shape.location)
    return free


def _bind(
    free: dict[str, int],
    nodes: Mapping[str, NodeInfo],
    amount: int,
    products: tuple[str, ...],
    location: str,
) -> None:
    """Takes a waiting request from the node the scheduler would likely pick (most free room,
    accepted product, schedulable); a request no node can hold takes nothing."""
    fitting = [
        name
        for name, left in free.items()
        if left >= amount
        and not nodes[name].unschedulable
        and nodes[name].ready
        and (not products or nodes[name].gpu_product in products)
    ]
    if not fitting:
        return
    # Prefer the nodes of the asking shape's location only when ties: demand is demand.
    best = max(fitting, key=lambda name: (free[name], nodes[name].location == location))
    free[best] -= amount


def _refused(refused: Mapping[str, list[str]]) -> tuple[str, ...]:
    return tuple(f"{why}: {', '.join(sorted(names))}" for why, names in sorted(refused.items()))


def _tolerations(shape: Shape) -> list[Toleration]:
    tolerations = list(shape.tolerations)
    if shape.count:  # the pods the operator renders tolerate the GPU taint (render.scheduling)
        tolerations.append(
            Toleration(key=labels.GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")
        )
    return tolerations


def _tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if not toleration.key:
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    return toleration.operator == "Exists" or (toleration.value or "") == taint.value


def _affinity_products(spec: Mapping[str, Any]) -> tuple[str, ...]:
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == labels.GPU_PRODUCT and expression.get("operator") == "In":
                return tuple(expression.get("values") or ())
    product = (spec.get("nodeSelector") or {}).get(labels.GPU_PRODUCT)
    return (product,) if product else ()


def _count(amount: Any) -> int:
    try:
        return int(str(amount))
    except ValueError:
        return 0
