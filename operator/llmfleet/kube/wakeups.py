"""Owners whose children changed status, so their status follows at once, not at the next
resync: a model server becoming ready, a training Job finishing, an owned resource reporting.

Watch threads report owner labels; the operator's event loop takes them in batches.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from llmfleet.names import owner_label


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, tuple[str, str, str]] = {}
        self._pending: set[str] = set()
        # Owners waiting for GPUs: woken when a cluster's nodes or GPU pods change.
        self._waiting: set[str] = set()

    def register(self, kind: str, namespace: str, name: str) -> None:
        """Remembers which resource its children's owner label stands for (the labels of long
        names are hashed, so they cannot be read back)."""
        with self._lock:
            self._owners[owner_label(kind, namespace, name)] = (kind, namespace, name)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        label = owner_label(kind, namespace, name)
        with self._lock:
            self._owners.pop(label, None)
            self._pending.discard(label)
            self._waiting.discard(label)

    def wait_for_room(self, kind: str, namespace: str, name: str, waiting: bool) -> None:
        label = owner_label(kind, namespace, name)
        with self._lock:
            (self._waiting.add if waiting else self._waiting.discard)(label)

    def room_changed(self) -> None:
        """Nodes or GPU pods changed somewhere: what waits for GPUs looks again."""
        with self._lock:
            self._pending |= self._waiting

    def rules_changed(self, namespace: str) -> None:
        """The rules of a namespace changed (its labels), or of every namespace ("": a
        FleetPolicy): what they rule looks again."""
        with self._lock:
            self._pending |= {
                label
                for label, (_, owner_namespace, _) in self._owners.items()
                if not namespace or owner_namespace == namespace
            }

    def notify(self, label: str) -> None:
        with self._lock:
            if label in self._owners:
                self._pending.add(label)

    def notify_resource(self, kind: str, namespace: str, name: str) -> None:
        self.notify(owner_label(kind, namespace, name))

    def take(self) -> list[tuple[str, str, str]]:
        """The resources to look at again, each once however often it was notified."""
        with self._lock:
            owners = [self._owners[label] for label in self._pending]
            self._pending.clear()
        return sorted(owners)


def status_changed(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether a watch event changed what the owner reports on: the child's status (a spec
    change the operator applied shows up once the child's controller reports on it)."""
    return (before or {}).get("status") != after.get("status")
