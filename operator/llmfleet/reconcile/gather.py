"""Gather: every read a reconcile makes, through cache-backed views.

Children come from the watch caches of each cluster, member clusters and their nodes from
the federation's short-lived caches, LLMDeployments that endpoints name from the operator's
own watch of them. The reads that no watch serves are all here, each cached for a while:

- a Secret referenced by name (`SECRET_SECONDS`; a missing one is asked again sooner),
- a managed endpoint's health: a background prober's last answer (llmfleet.reconcile.prober),
- the pods of a training Job that failed or waits, and of a drift check that just finished
  (read once per Job and state: what they said is kept in status).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet.api.common import Gpu, Placement, SecretKeyRef
from llmfleet.kube.cluster import ClusterApi
from llmfleet.placement.clusters import MemberCluster
from llmfleet.placement.select import Decision, candidates, decide
from llmfleet.reconcile.engine import Fleet, SpecError
from llmfleet.reconcile.prober import Prober
from llmfleet.render.common import Owner, child_metadata
from llmfleet.settings import Settings

SECRET_SECONDS = 60.0
MISSING_SECRET_SECONDS = 5.0


@dataclass
class _Entry:
    value: dict[str, Any] | None
    expires: float


class Reads:
    """Reads by name that no watch serves, cached; and the operator's own view of the
    LLMDeployments it watches (a resource missing from it is read from the API server)."""

    def __init__(self, hub: ClusterApi, prober: Prober | None = None) -> None:
        self.hub = hub
        self.prober = prober or Prober(enabled=False)
        self._secrets: dict[tuple[str, str], _Entry] = {}
        self._resources: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            entry = self._secrets.get((namespace, name))
            if entry is not None and entry.expires > now:
                return entry.value
        value = self.hub.get("Secret", namespace, name)
        ttl = SECRET_SECONDS if value is not None else MISSING_SECRET_SECONDS
        with self._lock:
            self._secrets[(namespace, name)] = _Entry(value, now + ttl)
        return value

    def secret_created(self, obj: Mapping[str, Any]) -> None:
        """A Secret the operator just created: known to exist without asking."""
        meta = obj["metadata"]
        with self._lock:
            self._secrets.pop((meta["namespace"], meta["name"]), None)

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            known = self._resources.get((kind, namespace, name))
        if known is not None:
            return known
        return self.hub.get(kind, namespace, name)

    def seen(self, kind: str, body: Mapping[str, Any]) -> None:
        """A watch event of a resource the operator reconciles: its latest body."""
        meta = body["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        with self._lock:
            self._resources[key] = {
                "metadata": dict(meta),
                "spec": dict(body.get("spec") or {}),
                "status": dict(body.get("status") or {}),
            }

    def gone(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._resources.pop((kind, namespace, name), None)


@dataclass
class Context:
    """What a reconcile runs with: the fleet, the settings and the cached reads."""

    fleet: Fleet
    settings: Settings
    reads: Reads


# --- shared gathering -----------------------------------------------------------------------


def check_secrets(reads: Reads, namespace: str, refs: Iterable[SecretKeyRef | None]) -> None:
    """Every referenced Secret exists with its key, or the spec names what to create."""
    missing = []
    for ref in refs:
        if ref is None:
            continue
        secret = reads.secret(namespace, ref.name)
        if secret is None or ref.key not in (secret.get("data") or {}):
            missing.append(f"{ref.name} (key {ref.key})")
    if missing:
        raise SpecError(
            "SecretNotFound",
            f"Secret {', '.join(dict.fromkeys(missing))} does not exist in namespace {namespace}: "
            "create it, or fix the reference in the spec",
        )


def mirrored_secrets(
    reads: Reads, owner: Owner, refs: Iterable[SecretKeyRef | None]
) -> list[dict[str, Any]]:
    """Secrets that pods in a member cluster read, kept equal to the hub's keys they use."""
    by_name: dict[str, dict[str, str]] = {}
    for ref in refs:
        if ref is None:
            continue
        source = reads.secret(owner.namespace, ref.name) or {}
        by_name.setdefault(ref.name, {})[ref.key] = (source.get("data") or {}).get(ref.key, "")
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": child_metadata(owner, name, in_owner_cluster=False),
            "type": "Opaque",
            "data": data,
        }
        for name, data in sorted(by_name.items())
    ]


@dataclass(frozen=True)
class Where:
    """A placement decision with the members it was made among."""

    decision: Decision
    members: Sequence[MemberCluster] = field(default_factory=tuple)

    @property
    def cluster(self) -> MemberCluster | None:
        return self.decision.cluster

    @property
    def unreachable(self) -> bool:
        return self.decision.reason == "ClusterUnreachable"


def place(fleet: Fleet, placement: Placement, gpu: Gpu, current: str | None = None) -> Where:
    """Where a workload goes: its candidate clusters' inventories, then the pure decision."""
    members, _ = fleet.members()
    inventories = {m.name: fleet.inventory(m) for m in candidates(placement, members)}
    return Where(decide(placement, gpu, members, inventories, current), tuple(members))


def member_named(fleet: Fleet, name: str | None) -> MemberCluster | None:
    return next((m for m in fleet.members()[0] if m.name == name), None)


def reachable(fleet: Fleet, member: MemberCluster) -> bool:
    return member.kubeconfig is None or fleet.inventory(member).nodes is not None
