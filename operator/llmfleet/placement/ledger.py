"""Replicas the operator has placed but whose pods it may not see yet.

Reconciles of different resources run at once; each decides against the room its peers'
decisions left, so a burst never over-commits a cluster whatever the order. An owner's
assumptions are replaced at each of its decisions, confirmed by its pods appearing (room
counts only replicas without a visible pod) and expire when no decision renews them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from llmfleet.placement.capacity import Assumption

EXPIRE_SECONDS = 120.0


class Ledger:
    def __init__(
        self, expire_seconds: float = EXPIRE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.expire_seconds = expire_seconds
        self.clock = clock
        self._lock = threading.RLock()
        # cluster -> owner -> (assumption, expiry); owner -> its clusters
        self._by_cluster: dict[str, dict[str, tuple[Assumption, float]]] = {}
        self._clusters_of: dict[str, set[str]] = {}

    @contextmanager
    def deciding(self) -> Iterator[Ledger]:
        """Held while one owner reads the room and records its decision."""
        with self._lock:
            yield self

    def assumed(self, cluster: str) -> list[Assumption]:
        now = self.clock()
        with self._lock:
            held = self._by_cluster.get(cluster, {})
            expired = [owner for owner, (_, expiry) in held.items() if expiry <= now]
            for owner in expired:
                self._drop(owner, cluster)
            return [assumption for assumption, _ in held.values()]

    def assume(self, owner: str, by_cluster: Mapping[str, Assumption]) -> None:
        expiry = self.clock() + self.expire_seconds
        with self._lock:
            for cluster in self._clusters_of.get(owner, set()) - set(by_cluster):
                self._drop(owner, cluster)
            for cluster, assumption in by_cluster.items():
                self._by_cluster.setdefault(cluster, {})[owner] = (assumption, expiry)
                self._clusters_of.setdefault(owner, set()).add(cluster)

    def forget(self, owner: str) -> None:
        with self._lock:
            for cluster in list(self._clusters_of.get(owner, ())):
                self._drop(owner, cluster)

    def _drop(self, owner: str, cluster: str) -> None:
        held = self._by_cluster.get(cluster, {})
        held.pop(owner, None)
        if not held:
            self._by_cluster.pop(cluster, None)
        clusters = self._clusters_of.get(owner)
        if clusters is not None:
            clusters.discard(cluster)
            if not clusters:
                del self._clusters_of[owner]

    def __len__(self) -> int:
        now = self.clock()
        with self._lock:
            return sum(
                1
                for held in self._by_cluster.values()
                for _, expiry in held.values()
                if expiry > now
            )
