"""Which label selectors the watch-fed view can answer, and what its store answers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from llmfleet import labels
from llmfleet.kube import cache
from llmfleet.kube.cache import KindWatch, parse_selector
from llmfleet.kube.rest import KubeClient, KubeError


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        ("a=b", {"a": "b"}),
        ("llmfleet.io/owner=x,llmfleet.io/stage=train", {"llmfleet.io/owner": "x", "llmfleet.io/stage": "train"}),
        ("a = b", {"a": "b"}),
        ("a==b", None),
        ("a!=b", None),
        ("a in (b,c)", None),
        ("a", None),
        ("!a", None),
    ],
)  # fmt: skip
def test_equality_selectors_only(selector: str, parsed: dict[str, str] | None) -> None:
    assert parse_selector(selector) == parsed


def deployment(name: str, version: str, ready: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name, "namespace": "team", "resourceVersion": version,
            "labels": {labels.OWNER: "llmd-team-m", labels.STAGE: "serve"},
            "managedFields": [{"manager": "llmfleet", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"replicas": 1},
        "status": {"readyReplicas": ready},
    }  # fmt: skip


def test_the_store_answers_copies_newest_first_without_managed_fields() -> None:
    store = KindWatch(cast(KubeClient, SimpleNamespace(cluster="in-cluster")), "Deployment")
    store._replace([deployment("m", "7", 0)])
    store._synced.set()
    store.store(deployment("m", "5", 1))  # older than what the watch has: ignored
    wanted = {labels.OWNER: "llmd-team-m"}
    (found,) = store.list("team", wanted) or []
    assert found["status"] == {"readyReplicas": 0}
    assert "managedFields" not in found["metadata"]  # only other writers' entries are kept
    found["status"]["readyReplicas"] = 99  # a reader's change stays its own
    assert (store.list("team", wanted) or [{}])[0]["status"] == {"readyReplicas": 0}
    assert store.list("team", {**wanted, labels.STAGE: "train"}) == []
    store._apply("MODIFIED", deployment("m", "8", 1))
    assert (store.list("team", wanted) or [{}])[0]["status"] == {"readyReplicas": 1}
    store._apply("DELETED", deployment("m", "9", 1))
    assert store.list("team", wanted) == []


class RefusingThenAllowing:
    """A cluster whose API server refuses the listing `refusals` times (a restarted server
    whose authorizer has not read the roles yet), then lists one Deployment; its watch
    stays open until the store stops."""

    cluster = "member"

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.lists = 0
        self.closed = threading.Event()

    def request(self, method: str, path: str, query: dict[str, str]) -> dict[str, Any]:
        self.lists += 1
        if self.lists <= self.refusals:
            raise KubeError(403, "deployments.apps is forbidden", self.cluster)
        return {"metadata": {"resourceVersion": "9"}, "items": [deployment("m", "9", 1)]}

    def stream(self, path: str, query: dict[str, str], read_timeout: float) -> Iterator[Any]:
        self.closed.wait(read_timeout)
        return iter(())


def test_a_refused_watch_asks_again_and_is_answered_from_the_store_once_allowed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cache, "FORBIDDEN_RETRY_SECONDS", (0.01,))
    api = RefusingThenAllowing(refusals=3)
    store = KindWatch(cast(KubeClient, api), "Deployment")
    with caplog.at_level(logging.INFO, logger=cache.__name__):
        store.start()
        try:
            assert store.wait_synced(5)
            assert api.lists == 4
            (found,) = store.list("team", {labels.OWNER: "llmd-team-m"}) or []
            assert found["status"] == {"readyReplicas": 1}
        finally:
            store.stop()
            api.closed.set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per refusal spell, not per attempt
    assert "reading them in place" in warnings[0]
    assert any(
        "watching Deployment in cluster member again" in r.getMessage() for r in caplog.records
    )
