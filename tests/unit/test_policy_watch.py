"""The namespaces as the policy watch keeps them: labels for residency, and whether each is
being deleted (its workloads are then left alone: they go with it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from llmfleet.kube.policies import PolicyWatch


def namespace(name: str, deleting: bool = False, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T08:00:00Z"
    return {"metadata": meta}


def test_a_namespace_being_deleted_is_known_as_such_and_wakes_its_workloads() -> None:
    changed: list[str] = []
    hub = SimpleNamespace(cluster="in-cluster")  # no request is made
    watch = PolicyWatch(client=hub, on_change=changed.append)  # type: ignore[arg-type]
    assert not watch.terminating("team")  # not synced: the reconcile runs and finds out
    watch.namespaces._replace([namespace("team", **{"data-class": "restricted"})])
    watch.namespaces._set_synced(True)
    assert not watch.terminating("team")
    watch.namespaces._apply("MODIFIED", namespace("team", deleting=True))
    assert watch.terminating("team")
    assert changed == ["team"]
    watch.namespaces._apply("DELETED", namespace("team", deleting=True))
    assert not watch.terminating("team")
    assert changed == ["team"]  # a deleted namespace's workloads are gone: nothing to wake
