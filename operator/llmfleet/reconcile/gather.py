"""Gather: every read a reconcile makes, through cache-backed views, and the gathering the
kinds share (Secrets, mirroring, placement).

Children come from the watch caches of each cluster, member clusters and their nodes from
the federation's short-lived caches, everything else through llmfleet.reconcile.reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet.api.common import Gpu, Placement, SecretKeyRef
from llmfleet.kube.rest import KubeError
from llmfleet.placement.clusters import MemberCluster
from llmfleet.placement.select import Decision, candidates, decide
from llmfleet.reconcile.engine import Fleet, SpecError
from llmfleet.reconcile.reads import Reads, as_stored
from llmfleet.render.common import Owner, child_metadata

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
    reads: Reads,
    owner: Owner,
    refs: Iterable[SecretKeyRef | None],
    creating: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Secrets that pods in a member cluster read, kept equal to the hub's keys they use;
    `creating` is a Secret this pass creates in the hub (mirrored with the value it will
    have, not as missing)."""
    by_name: dict[str, dict[str, str]] = {}
    for ref in refs:
        if ref is None:
            continue
        source = reads.secret(owner.namespace, ref.name) or {}
        if creating is not None and creating["metadata"]["name"] == ref.name:
            source = as_stored(creating)
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


def member_list(
    fleet: Fleet, member: MemberCluster, kind: str, namespace: str, selector: str
) -> list[dict[str, Any]] | None:
    """A member's objects (from its watch, or its API server while the watch is not synced);
    None when the cluster does not answer, so a silent member is a fact, never an error."""
    try:
        return fleet.client(member).list(kind, namespace, selector)
    except KubeError as error:
        if not error.transient:
            raise
        return None


def reachable(fleet: Fleet, member: MemberCluster) -> bool:
    return member.kubeconfig is None or fleet.inventory(member).nodes is not None
