"""Which label selectors the watch-fed view can answer, and what its store answers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from llmfleet import labels
from llmfleet.kube.cache import KindWatch, parse_selector
from llmfleet.kube.rest import KubeClient


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
