"""An in-memory fleet for reconciling without a cluster: API servers that store what is
applied, count every request, answer label-selector lists, and can fall silent or refuse."""

from __future__ import annotations

import base64
import copy
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmfleet.api.fleetpolicy import FleetPolicySpec
from llmfleet.kube.rest import KubeError
from llmfleet.placement.capacity import PodUse
from llmfleet.placement.clusters import MemberCluster, in_cluster_member
from llmfleet.placement.policy import NamedPolicy, Residency, policies_for
from llmfleet.placement.select import ClusterInventory, NodeInfo
from llmfleet.reconcile import engine
from llmfleet.reconcile.engine import Kind, Outcome
from llmfleet.reconcile.prober import Prober
from llmfleet.reconcile.reads import Context, Reads
from llmfleet.settings import Settings

_versions = itertools.count(1)
WRITES = ("apply", "delete")


def _matches(obj: Mapping[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    have = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if have.get(key) != value:
            return False
    return True


class FakeCluster:
    """One API server: objects by (kind, namespace, name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.silent = False
        # kind -> (HTTP status, message) the server answers every apply of that kind with
        self.refuse: dict[str, tuple[int, str]] = {}

    @property
    def cluster(self) -> str:
        return self.name

    def writes(self) -> int:
        return sum(self.requests[verb] for verb in WRITES)

    def _answer(self, verb: str) -> None:
        self.requests[verb] += 1
        if self.silent:
            raise KubeError(0, "connection refused", self.name)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._answer("get")
        found = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self._answer("list")
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and (namespace is None or ns == namespace)
            and _matches(obj, label_selector)
        ]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._answer("apply")
        if obj["kind"] in self.refuse:
            status, message = self.refuse[obj["kind"]]
            raise KubeError(status, message, self.name)
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        stored = copy.deepcopy(obj)
        if "stringData" in stored:  # stored base64-encoded, as the API server does
            plain = stored.pop("stringData")
            stored["data"] = {
                **stored.get("data", {}),
                **{k: base64.b64encode(v.encode()).decode() for k, v in plain.items()},
            }
        before = self.objects.get(key, {})
        stored["metadata"]["resourceVersion"] = str(next(_versions))
        stored["metadata"]["generation"] = int(before.get("metadata", {}).get("generation", 0)) + 1
        if "status" in before:
            stored["status"] = before["status"]
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        self._answer("delete")
        return self.objects.pop((kind, namespace or "", name), None) is not None

    # --- test helpers (not requests) --------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = copy.deepcopy(obj)

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.objects[(kind, namespace, name)]["status"] = copy.deepcopy(status)

    def names(self, kind: str | None = None) -> set[str]:
        return {f"{k}/{n}" for (k, _, n) in self.objects if kind is None or k == kind}


def gpu_node(name: str, location: str, product: str, gpus: int) -> NodeInfo:
    return NodeInfo(name, location, product, {"nvidia.com/gpu": str(gpus), "cpu": "64"})


def cpu_node(name: str, location: str) -> NodeInfo:
    return NodeInfo(name, location, None, {"cpu": "64"})


@dataclass
class FakeFleet:
    """The hub (cloud, the operator's own cluster) and an onprem member, like the local fleet."""

    hub: FakeCluster = field(default_factory=lambda: FakeCluster("in-cluster"))
    onprem: FakeCluster = field(default_factory=lambda: FakeCluster("onprem"))
    # A second on-prem member with another GPU product, for spreading and failover.
    onprem2: FakeCluster | None = None
    nodes: dict[str, tuple[NodeInfo, ...]] = field(
        default_factory=lambda: {
            "in-cluster": (
                gpu_node("cloud-gpu-0", "cloud", "NVIDIA-H100-80GB-HBM3", 8),
                cpu_node("cloud-cpu-0", "cloud"),
            ),
            "onprem": (
                gpu_node("onprem-gpu-0", "onprem", "NVIDIA-L40S", 4),
                cpu_node("onprem-cpu-0", "onprem"),
            ),
            "onprem2": (
                gpu_node("onprem2-gpu-0", "onprem", "NVIDIA-A100-SXM4-80GB", 2),
                gpu_node("onprem2-gpu-1", "onprem", "NVIDIA-A100-SXM4-80GB", 2),
                cpu_node("onprem2-cpu-0", "onprem"),
            ),
        }
    )
    pods: dict[str, list[PodUse]] = field(default_factory=dict)

    # Inventories cached from before a cluster fell silent: it looks reachable until asked.
    stale_inventory: bool = False

    def members(self) -> tuple[list[MemberCluster], list[str]]:
        members = [
            in_cluster_member("cloud", egress_cidrs=("127.0.0.10/32",)),
            MemberCluster(
                name="onprem",
                location="onprem",
                labels={"region": "dc-frankfurt"},
                kubeconfig={"clusters": []},
                source="llmfleet-system/onprem",
                egress_cidrs=("127.0.0.20/32",),
            ),
        ]
        if self.onprem2 is not None:
            members.append(
                MemberCluster(
                    name="onprem2",
                    location="onprem",
                    labels={"region": "dc-munich"},
                    kubeconfig={"clusters": []},
                    source="llmfleet-system/onprem2",
                    egress_cidrs=("127.0.0.30/32",),
                )
            )
        return members, []

    def cluster(self, name: str) -> FakeCluster:
        if name == "onprem2" and self.onprem2 is not None:
            return self.onprem2
        return self.hub if name == "in-cluster" else self.onprem

    def client(self, member: MemberCluster) -> FakeCluster:
        return self.cluster(member.name)

    def inventory(self, member: MemberCluster) -> ClusterInventory:
        cluster = self.cluster(member.name)
        if cluster.silent and not self.stale_inventory:
            return ClusterInventory(member, None, "connection refused")
        return ClusterInventory(
            member, self.nodes[member.name], pods=tuple(self.pods.get(member.name, ()))
        )

    def clusters(self) -> tuple[FakeCluster, ...]:
        return (self.hub, self.onprem, *((self.onprem2,) if self.onprem2 else ()))

    def writes(self) -> int:
        return sum(c.writes() for c in self.clusters())

    def gets(self) -> int:
        return sum(c.requests["get"] for c in self.clusters())

    def reset_counts(self) -> None:
        for c in self.clusters():
            c.requests.clear()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a status merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class FakePolicies:
    """FleetPolicies and namespace labels, as the operator's policy watch holds them."""

    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def residency(self, namespace: str) -> Residency:
        named = [
            NamedPolicy(name, FleetPolicySpec.model_validate(spec))
            for name, spec in self.policies.items()
        ]
        return policies_for(self.namespace_labels.get(namespace, {}), named, namespace)


@dataclass
class Harness:
    """Runs the engine over resources stored in the fake hub, writing their status back."""

    fleet: FakeFleet = field(default_factory=FakeFleet)
    settings: Settings = field(default_factory=lambda: Settings(probe_providers=False))
    status_writes: int = 0

    policies: FakePolicies = field(default_factory=FakePolicies)

    def __post_init__(self) -> None:
        self.reads = Reads(self.fleet.hub, Prober(enabled=False), self.policies)
        # Finalizers put on: (name, the member clusters' writes until then).
        self.holds: list[tuple[str, int]] = []
        self.context = Context(
            fleet=self.fleet, settings=self.settings, reads=self.reads, hold=self._hold
        )

    def _hold(self, kind: str, body: Mapping[str, Any]) -> None:
        member_writes = self.fleet.writes() - self.fleet.hub.writes()
        self.holds.append((body["metadata"]["name"], member_writes))

    def create(self, kind: str, name: str, spec: dict[str, Any], namespace: str = "team") -> None:
        self.fleet.hub.put(
            {
                "apiVersion": "llmfleet.io/v1alpha1",
                "kind": kind,
                "metadata": {
                    "name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1,
                    "resourceVersion": str(next(_versions)),
                },
                "spec": spec,
            }
        )  # fmt: skip

    def update(self, kind: str, name: str, spec: dict[str, Any], namespace: str = "team") -> None:
        obj = self.fleet.hub.objects[(kind, namespace, name)]
        obj["spec"] = copy.deepcopy(spec)
        obj["metadata"]["generation"] += 1

    def body(self, kind: str, name: str, namespace: str = "team") -> dict[str, Any]:
        return copy.deepcopy(self.fleet.hub.objects[(kind, namespace, name)])

    def status(self, kind: str, name: str, namespace: str = "team") -> dict[str, Any]:
        return dict(self.body(kind, name, namespace).get("status") or {})

    def reconcile(self, kind: Kind[Any], name: str, namespace: str = "team") -> Outcome:
        body = self.body(kind.name, name, namespace)
        outcome = engine.reconcile(kind, body, self.context)
        if outcome.status is not None:
            self.status_writes += 1
            stored = self.fleet.hub.objects[(kind.name, namespace, name)]
            stored["status"] = merge_patch(stored.get("status") or {}, outcome.status)
        if kind.name == "LLMDeployment":
            self.reads.seen(kind.name, self.body(kind.name, name, namespace))
        return outcome

    def secret(self, name: str, key: str, namespace: str = "team") -> None:
        self.fleet.hub.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {key: "c2VjcmV0"},
            }
        )


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    return next((dict(c) for c in status.get("conditions") or [] if c["type"] == type_), {})
