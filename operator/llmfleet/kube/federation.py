"""The member clusters the operator can place on: itself plus every registered Secret.

Secrets and node inventories are cached for a few seconds, so a burst of reconciles does
not list them once per resource.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import config

from llmfleet import labels, metrics
from llmfleet.kube.cache import MEMBER_WATCHED_KINDS, ChildCache
from llmfleet.kube.capacity import RUNNING_PODS, CapacityWatch
from llmfleet.kube.cluster import Cluster
from llmfleet.kube.rest import KubeClient, KubeError
from llmfleet.kube.wakeups import Wakeups
from llmfleet.placement.capacity import NodeInfo, PodUse
from llmfleet.placement.clusters import (
    MemberCluster,
    MemberSecretError,
    in_cluster_member,
    member_from_secret,
)
from llmfleet.placement.select import ClusterInventory
from llmfleet.settings import Settings

MEMBER_SELECTORS = (f"{labels.CLUSTER}=true", f"{labels.ARGOCD_SECRET_TYPE}=cluster")


@dataclass
class _Cached:
    value: Any
    expires: float


@dataclass
class Federation:
    hub: Cluster
    location: str
    members_namespace: str
    secret_ttl: float = 10.0
    inventory_ttl: float = 30.0
    egress_cidrs: tuple[str, ...] = ()
    # Registration Secrets by name: read with `get` only (RBAC by resourceNames), never listed.
    member_secrets: tuple[str, ...] = ()
    # Where member watches report children whose status changed.
    wakeups: Wakeups | None = None
    # Told when a cluster's nodes or GPU pods changed (room may have opened).
    on_capacity_change: Callable[[], None] | None = None
    # False: members' children and capacity are read in place (one-shot tools).
    watch: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: dict[str, tuple[str, Cluster]] = field(default_factory=dict)
    _members: _Cached | None = None
    _inventories: dict[str, _Cached] = field(default_factory=dict)
    _capacity: dict[str, CapacityWatch] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, hub: Cluster, **extra: Any) -> Federation:
        """The fleet the settings describe around `hub` (the operator's and the CLI's)."""
        return cls(
            hub=hub,
            location=settings.cluster_location,
            members_namespace=settings.members_namespace,
            egress_cidrs=settings.egress_cidrs,
            member_secrets=settings.member_secrets,
            **extra,
        )

    def members(self) -> tuple[list[MemberCluster], list[str]]:
        """Every usable member (the hub first) and the problems of unusable registrations."""
        with self._lock:
            if self._members and self._members.expires > time.monotonic():
                return self._members.value  # type: ignore[no-any-return]
        members = [in_cluster_member(self.location, egress_cidrs=self.egress_cidrs)]
        problems: list[str] = []
        seen: set[str] = set()
        for secret in self._registrations(problems):
            uid = secret["metadata"].get("uid", "")
            if uid in seen:
                continue
            seen.add(uid)
            try:
                member = member_from_secret(secret)
            except MemberSecretError as error:
                problems.append(str(error))
                continue
            members.append(member)
            self._remember_client(member, secret["metadata"].get("resourceVersion", ""))
        value = (members, problems)
        with self._lock:
            self._members = _Cached(value, time.monotonic() + self.secret_ttl)
        self._forget_others({member.name for member in members})
        return value

    def _forget_others(self, registered: set[str]) -> None:
        """A member whose registration is gone: its watches end and its series go."""
        with self._lock:
            gone = [name for name in self._clients if name not in registered]
            clients = [self._clients.pop(name)[1] for name in gone]
            watches = [self._capacity.pop(name) for name in gone if name in self._capacity]
            for name in gone:
                self._inventories.pop(name, None)
        for kube in clients:
            kube.stop()
        for watch in watches:
            watch.stop()
        for name in gone:
            metrics.forget_cluster(name)

    def _registrations(self, problems: list[str]) -> list[dict[str, Any]]:
        if not self.member_secrets:
            return [
                secret
                for selector in MEMBER_SELECTORS
                for secret in self.hub.list("Secret", self.members_namespace, selector)
            ]
        found = []
        for name in self.member_secrets:
            secret = self.hub.get("Secret", self.members_namespace, name)
            if secret is None:
                problems.append(f"member Secret {self.members_namespace}/{name} does not exist")
            else:
                found.append(secret)
        return found

    def client(self, member: MemberCluster) -> Cluster:
        if member.kubeconfig is None:
            return self.hub
        with self._lock:
            return self._clients[member.name][1]

    def _remember_client(self, member: MemberCluster, version: str) -> None:
        with self._lock:
            known = self._clients.get(member.name)
            if known and known[0] == version:
                return
        api = config.new_client_from_config_dict(dict(member.kubeconfig or {}))  # type: ignore[no-untyped-call]
        client = KubeClient(api, member.name, timeout=10)
        watches = ChildCache(client, MEMBER_WATCHED_KINDS, wakeups=self.wakeups)
        kube = Cluster(client, watches.start() if self.watch else None)
        with self._lock:
            replaced = self._clients.get(member.name)
            self._clients[member.name] = (version, kube)
        if replaced:
            replaced[1].stop()  # new credentials or address: its watches end
            stale = self._capacity.pop(member.name, None)
            if stale is not None:
                stale.stop()

    def stop_watches(self) -> None:
        with self._lock:
            clients = [self.hub, *(kube for _, kube in self._clients.values())]
        for kube in clients:
            kube.stop()
        with self._lock:
            capacity = list(self._capacity.values())
            self._capacity.clear()
        for watch in capacity:
            watch.stop()

    def inventory(self, member: MemberCluster) -> ClusterInventory:
        """Nodes and GPU pods from the cluster's watches; listed while they are not synced.
        A cluster that does not answer has no inventory (nodes None)."""
        watch = self._capacity_watch(member) if self.watch else None
        nodes = watch.nodes.values() if watch else None
        pods = watch.pods.values() if watch else None
        if nodes is not None and pods is not None:
            metrics.CLUSTER_REACHABLE.labels(member.name, member.location).set(1)
            return ClusterInventory(member=member, nodes=tuple(nodes), pods=tuple(pods))
        with self._lock:
            cached = self._inventories.get(member.name)
            if cached and cached.expires > time.monotonic():
                return cached.value  # type: ignore[no-any-return]
        try:
            client = self.client(member)
            listed_nodes = tuple(NodeInfo.from_node(node) for node in client.list("Node"))
            listed_pods = client.client.request("GET", "/api/v1/pods", query=RUNNING_PODS)
            uses = (PodUse.from_pod(pod) for pod in listed_pods.get("items", []))
            inventory = ClusterInventory(
                member=member, nodes=listed_nodes, pods=tuple(u for u in uses if u is not None)
            )
            metrics.CLUSTER_REACHABLE.labels(member.name, member.location).set(1)
        except KubeError as error:
            inventory = ClusterInventory(member=member, nodes=None, error=error.message)
            metrics.CLUSTER_REACHABLE.labels(member.name, member.location).set(0)
        with self._lock:
            # Unreachable clusters are asked again soon; a listed inventory serves a burst.
            ttl = 2.0 if inventory.nodes is None else min(self.inventory_ttl, 5.0)
            self._inventories[member.name] = _Cached(inventory, time.monotonic() + ttl)
        return inventory

    def gpu_rows(self) -> list[metrics.GpuRow]:
        """Free and allocatable GPUs per cluster and product, from synced watches only (a
        scrape never waits on a cluster)."""
        with self._lock:
            watches = list(self._capacity.items())
            members = {m.name: m for m in (self._members.value[0] if self._members else [])}
        rows = []
        for name, watch in watches:
            nodes, pods = watch.nodes.values(), watch.pods.values()
            if nodes is None or pods is None or name not in members:
                continue
            rows += gpu_rows(members[name], nodes, pods)
        return rows

    def _capacity_watch(self, member: MemberCluster) -> CapacityWatch:
        with self._lock:
            watch = self._capacity.get(member.name)
        if watch is not None:
            return watch
        client = self.client(member).client
        created = CapacityWatch(client, on_change=self.on_capacity_change)
        with self._lock:
            watch = self._capacity.setdefault(member.name, created)
        if watch is created:
            watch.start()
        return watch


def gpu_rows(
    member: MemberCluster, nodes: list[NodeInfo], pods: list[PodUse]
) -> list[metrics.GpuRow]:
    used: dict[str, int] = {}
    for pod in pods:
        if pod.node:
            used[pod.node] = used.get(pod.node, 0) + pod.requests.get(labels.GPU_RESOURCE, 0)
    by_product: dict[tuple[str, str], list[int]] = {}
    for node in nodes:
        total = node.gpus(labels.GPU_RESOURCE)
        if not total:
            continue
        key = (node.location or member.location, node.gpu_product or "unlabelled")
        row = by_product.setdefault(key, [0, 0])
        if not node.unschedulable and node.ready:
            row[0] += max(0, total - used.get(node.name, 0))
        row[1] += total
    return [
        (member.name, location, product, free, total)
        for (location, product), (free, total) in sorted(by_product.items())
    ]
