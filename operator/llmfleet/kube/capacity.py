"""A cluster's nodes and GPU pods, kept current by watches, as placement reads them.

Only what capacity needs is kept (llmfleet.placement.capacity's NodeInfo and PodUse), so
watching every pod of a cluster costs a few hundred bytes per GPU pod and nothing per other
pod. While a watch is not synced the caller lists from the API server instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from llmfleet.kube.cache import WatchLoop
from llmfleet.kube.rest import KubeClient
from llmfleet.placement.capacity import NodeInfo, PodUse

T = TypeVar("T")

RUNNING_PODS = {"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}


class SummaryWatch(WatchLoop, Generic[T]):
    """Every object of a kind, reduced to a summary (None: not kept)."""

    def __init__(
        self,
        client: KubeClient,
        kind: str,
        summarize: Callable[[Mapping[str, Any]], T | None],
        query: Mapping[str, str] | None = None,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        """`on_change` is told the key of an object whose summary changed, and whether it
        is gone."""
        super().__init__(client, kind, query or {})
        self.summarize = summarize
        self.on_change = on_change
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def values(self) -> list[T] | None:
        if not self._synced.is_set():
            return None
        with self._lock:
            return list(self._items.values())

    def get(self, name: str, namespace: str = "") -> T | None:
        """One object's summary (None: not kept, or the watch is not synced)."""
        with self._lock:
            return self._items.get(f"{namespace}/{name}")

    def _replace(self, items: Iterable[dict[str, Any]]) -> None:
        kept = {}
        for item in items:
            summary = self.summarize(item)
            if summary is not None:
                kept[_key(item)] = summary
        with self._lock:
            self._items = kept

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        summary = None if event == "DELETED" else self.summarize(obj)
        with self._lock:
            before = self._items.pop(key, None)
            if summary is not None:
                self._items[key] = summary
        if before != summary and self.on_change is not None:
            self.on_change(key, summary is None)


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class CapacityWatch:
    """Nodes and GPU pods of one cluster; `on_change` is told when either changed."""

    def __init__(self, client: KubeClient, on_change: Callable[[], None] | None = None) -> None:
        def changed(_: str, __: bool) -> None:
            if on_change is not None:
                on_change()

        self.nodes: SummaryWatch[NodeInfo] = SummaryWatch(
            client, "Node", NodeInfo.from_node, on_change=changed
        )
        self.pods: SummaryWatch[PodUse] = SummaryWatch(
            client, "Pod", PodUse.from_pod, RUNNING_PODS, on_change=changed
        )

    def start(self) -> CapacityWatch:
        self.nodes.start()
        self.pods.start()
        return self

    def stop(self) -> None:
        self.nodes.stop()
        self.pods.stop()

    def wait_synced(self, timeout: float) -> bool:
        return self.nodes.wait_synced(timeout) and self.pods.wait_synced(timeout)
