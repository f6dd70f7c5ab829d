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
        # owner -> cluster -> (assumption, expiry)
        self._by_owner: dict[str, dict[str, tuple[Assumption, float]]] = {}

    @contextmanager
    def deciding(self) -> Iterator[Ledger]:
        """Held while one owner reads the room and records its decision."""
        with self._lock:
            yield self

    def assumed(self, cluster: str) -> list[Assumption]:
        now = self.clock()
        with self._lock:
            return [
                assumption
                for clusters in self._by_owner.values()
                for name, (assumption, expiry) in clusters.items()
                if name == cluster and expiry > now
            ]

    def assume(self, owner: str, by_cluster: Mapping[str, Assumption]) -> None:
        now = self.clock()
        expiry = now + self.expire_seconds
        with self._lock:
            for stale in [
                o for o, c in self._by_owner.items() if max(e for _, e in c.values()) <= now
            ]:
                del self._by_owner[stale]
            if by_cluster:
                self._by_owner[owner] = {c: (a, expiry) for c, a in by_cluster.items()}
            else:
                self._by_owner.pop(owner, None)

    def forget(self, owner: str) -> None:
        with self._lock:
            self._by_owner.pop(owner, None)

    def __len__(self) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for c in self._by_owner.values() for _, e in c.values() if e > now)
