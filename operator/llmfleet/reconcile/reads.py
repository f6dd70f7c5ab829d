"""The reads a reconcile makes that no watch serves, and the runtime context it runs with.

Children come from the watch caches of each cluster, member clusters and their nodes from
the federation's short-lived caches, LLMDeployments that endpoints name from the operator's
own watch of them. The reads that no watch serves are these, each cached for a while:

- a Secret referenced by name (`SECRET_SECONDS`; a missing one is asked again sooner),
- a managed endpoint's health: a background prober's last answer (llmfleet.reconcile.prober),
- the pods of a training Job that failed or waits, and of a drift check that just finished
  (read once per Job and state: what they said is kept in status).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmfleet.kube.cluster import ClusterApi
from llmfleet.placement.autoscale import Memory
from llmfleet.placement.ledger import Ledger
from llmfleet.placement.policy import Residency
from llmfleet.reconcile.load import LoadReader
from llmfleet.reconcile.prober import Prober
from llmfleet.settings import Settings

if TYPE_CHECKING:
    from llmfleet.reconcile.engine import Fleet

SECRET_SECONDS = 60.0
MISSING_SECRET_SECONDS = 5.0


def as_stored(secret: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret as the API server stores it: `stringData` becomes base64 `data`."""
    plain = secret.get("stringData") or {}
    encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in plain.items()}
    return {
        **{k: v for k, v in secret.items() if k != "stringData"},
        "data": {**(secret.get("data") or {}), **encoded},
    }


@dataclass
class _Entry:
    value: dict[str, Any] | None
    expires: float


class PolicySource(Protocol):
    def residency(self, namespace: str) -> Residency: ...


class Reads:
    """Reads by name that no watch serves, cached; the operator's own view of the
    LLMDeployments it watches (a resource missing from it is read from the API server); and
    the FleetPolicies that rule each namespace."""

    def __init__(
        self,
        hub: ClusterApi,
        prober: Prober | None = None,
        policies: PolicySource | None = None,
    ) -> None:
        self.hub = hub
        self.prober = prober or Prober(enabled=False)
        self.policies = policies
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

    def residency(self, namespace: str) -> Residency:
        """What the FleetPolicies allow the namespace's workloads."""
        if self.policies is None:
            return Residency(namespace=namespace)
        return self.policies.residency(namespace)

    def created(self, obj: Mapping[str, Any]) -> None:
        """An object the operator just created: a Secret is known without asking."""
        if obj.get("kind") != "Secret":
            return
        meta = obj["metadata"]
        with self._lock:
            self._secrets[(meta["namespace"], meta["name"])] = _Entry(
                as_stored(obj), time.monotonic() + SECRET_SECONDS
            )

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            known = self._resources.get((kind, namespace, name))
        if known is not None:
            return known
        return self.hub.get(kind, namespace, name)

    def newest(self, kind: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """`body`, or the operator's own later view of the resource (a status it wrote since
        `body` was read), so a pass never starts from a status older than the last one."""
        meta = body["metadata"]
        with self._lock:
            kept = self._resources.get((kind, meta["namespace"], meta["name"]))
        if kept is None:
            return body
        return kept if _version(kept) > _version(body) else body

    def known(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the operator's watch still has the resource (not deleted)."""
        with self._lock:
            return (kind, namespace, name) in self._resources

    def seen(self, kind: str, body: Mapping[str, Any]) -> None:
        """A watch event of a resource the operator reconciles: its latest body (without
        managedFields, most of an object's size and never read). Each event brings a new
        body, so its parts are kept as they are, not copied."""
        meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        kept = {
            "apiVersion": body.get("apiVersion", ""),
            "kind": body.get("kind", kind),
            "metadata": meta,
            "spec": dict(body.get("spec") or {}),
            "status": dict(body.get("status") or {}),
        }
        with self._lock:
            self._resources[(kind, meta["namespace"], meta["name"])] = kept

    def all_known(self) -> list[tuple[str, str, str]]:
        """Every resource the operator's watches have: (kind, namespace, name)."""
        with self._lock:
            return sorted(self._resources)

    def gone(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._resources.pop((kind, namespace, name), None)


def _version(body: Mapping[str, Any]) -> int:
    """resourceVersion as a number (etcd's revision; 0 when it is not one)."""
    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else 0


@dataclass
class Context:
    """What a reconcile runs with: the fleet, the settings, the cached reads, and the ledger
    of placements decided but not yet visible."""

    fleet: Fleet
    settings: Settings
    reads: Reads
    ledger: Ledger = field(default_factory=Ledger)
    load: LoadReader | None = None
    # The autoscaling timers of each model between passes, by owner label.
    scaling: dict[str, Memory] = field(default_factory=dict)
    # Puts the finalizer on a resource (kind, body) before its first child in a member
    # cluster is written; None where nothing outlives the resource (unit tests' fakes).
    hold: Callable[[str, Mapping[str, Any]], None] | None = None
