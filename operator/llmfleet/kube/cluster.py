"""One member cluster as reconciles see it: reads of labelled children from its watches
(listed from the API server while a watch is not synced), everything else from the client,
and writes that keep the watches' view current."""

from __future__ import annotations

from typing import Any, Protocol

from llmfleet.kube.cache import ChildCache
from llmfleet.kube.rest import KubeClient


class ClusterApi(Protocol):
    """What reconciles need of a cluster; a fake in memory stands in for it in unit tests."""

    @property
    def cluster(self) -> str: ...

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, kind: str, namespace: str | None, name: str) -> bool: ...


class Cluster:
    """A client and the watch cache of its children, neither knowing the other."""

    def __init__(self, client: KubeClient, children: ChildCache | None = None) -> None:
        self.client = client
        self.children = children

    @property
    def cluster(self) -> str:
        return self.client.cluster

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.client.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        if self.children is not None and namespace and label_selector:
            cached = self.children.list(kind, namespace, label_selector)
            if cached is not None:
                return cached
        return self.client.list(kind, namespace, label_selector)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        live = self.client.apply(obj)
        if self.children is not None:
            self.children.stored(obj["kind"], live)
        return live

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        existed = self.client.delete(kind, namespace, name)
        if self.children is not None and namespace:
            self.children.forgotten(kind, namespace, name)
        return existed

    def stop(self) -> None:
        if self.children is not None:
            self.children.stop()
