"""Handler registration and the decisions the watch makes: every kind gets its handlers from
the settings it is started with, kopf keeps no state on the resources, and a watch event asks
for a pass only when something the operator acts on changed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from llmfleet import handlers
from llmfleet.handlers import common
from llmfleet.handlers.chatendpoint import ENDPOINTS_BY_MODEL
from llmfleet.kube import finalizers
from llmfleet.kube.rest import KubeError
from llmfleet.reconcile.reads import Reads
from llmfleet.settings import Settings
from tests.unit.fakeapi import FakeCluster

PLURALS = {"llmdeployments", "chatendpoints", "mlpipelines"}


def registered() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, Settings(resync_seconds=7))
    return registry


def test_every_kind_is_reconciled_from_its_watch() -> None:
    watching = registered()._watching.get_all_handlers()
    assert {h.selector.any_name for h in watching if h.id == "reconcile"} == PLURALS


def test_kopf_keeps_no_state_on_the_resources() -> None:
    """No change-detection handlers (their diff-base annotation), no timers or deletion
    handlers (kopf's finalizer): a new resource costs its children and its status only."""
    registry = registered()
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()


def test_kopf_logs_in_through_the_client_library() -> None:
    activities = {a.activity.value for a in registered()._activities.get_all_handlers()}
    assert {"authentication", "startup", "cleanup", "probe"} <= activities


def test_importing_the_handlers_registers_nothing_in_kopfs_default_registry() -> None:
    default = kopf.get_default_registry()
    assert not default._watching.get_all_handlers()
    assert not default._changing.get_all_handlers()


def test_the_endpoint_index_is_found_by_the_name_its_readers_use() -> None:
    indexes = {h.id for h in registered()._indexing.get_all_handlers()}
    assert indexes == {ENDPOINTS_BY_MODEL}


def body(generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": "m", "generation": generation, **meta},
        "spec": {},
    }


@pytest.mark.parametrize(
    ("handled", "seen", "due"),
    [
        (None, body(), True),  # new to this process: created, or first seen after a start
        (1, body(), False),  # its own status write, a label: nothing the operator acts on
        (1, body(2), True),  # the spec changed
        (1, body(deletionTimestamp="now", finalizers=[finalizers.FINALIZER]), True),
        (1, body(deletionTimestamp="now", finalizers=["other.io/keep"]), False),
        (None, body(deletionTimestamp="now"), False),  # garbage collection removes the rest
    ],
)
def test_a_watch_event_asks_for_a_pass_only_when_something_changed(
    handled: int | None, seen: dict[str, Any], due: bool
) -> None:
    runtime = common.Runtime.__new__(common.Runtime)
    runtime.handled = {} if handled is None else {("LLMDeployment", "team", "m"): handled}
    assert runtime.due("LLMDeployment", seen) is due


def test_a_resource_whose_deletion_was_seen_is_not_reconciled() -> None:
    """A wake-up or retry may come for a resource already gone; nothing is written then."""
    hub = FakeCluster("in-cluster")
    runtime = SimpleNamespace(reads=Reads(hub))
    asyncio.run(common.reconcile("LLMDeployment", body(), runtime))  # type: ignore[arg-type]
    assert not hub.requests


class Recorder:
    """A hub client that answers merge patches like the API server, conflicts first."""

    def __init__(self, conflicts: int, stored: dict[str, Any]) -> None:
        self.conflicts = conflicts
        self.stored = stored
        self.requests: list[tuple[str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append((method, kwargs.get("body")))
        if method == "GET":
            return self.stored
        if self.conflicts:
            self.conflicts -= 1
            self.stored["metadata"]["resourceVersion"] += "1"
            raise KubeError(409, "the object has been modified", "in-cluster")
        self.stored["metadata"]["finalizers"] = kwargs["body"]["metadata"]["finalizers"]
        return self.stored


def test_the_finalizer_keeps_other_writers_finalizers_and_reads_again_on_a_conflict() -> None:
    stored = body(resourceVersion="5", finalizers=["other.io/keep"])
    hub = Recorder(conflicts=1, stored=stored)
    written = finalizers.add(hub, "LLMDeployment", body(resourceVersion="5"))  # type: ignore[arg-type]
    assert written is not None
    assert written["metadata"]["finalizers"] == ["other.io/keep", finalizers.FINALIZER]
    # Each write names the resourceVersion it was decided on.
    patches = [b for method, b in hub.requests if method == "PATCH"]
    assert [p["metadata"]["resourceVersion"] for p in patches] == ["5", "51"]
    assert finalizers.add(hub, "LLMDeployment", stored) is None  # type: ignore[arg-type]
    finalizers.remove(hub, "LLMDeployment", stored)  # type: ignore[arg-type]
    assert stored["metadata"]["finalizers"] == ["other.io/keep"]


def test_a_finalizer_write_that_keeps_conflicting_fails() -> None:
    hub = Recorder(conflicts=5, stored=body(resourceVersion="5"))
    with pytest.raises(KubeError):
        finalizers.add(hub, "LLMDeployment", body(resourceVersion="5"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("count", "starts"),
    [
        (0, []),
        (1, [0.0]),  # a small fleet is looked at once per interval, not later
        (8, [0.0]),
        (9, [0.0, 12.0]),
        (24, [0.0, 8.0, 16.0]),
    ],
)
def test_a_resync_round_spreads_its_batches_over_most_of_the_interval(
    count: int, starts: list[float]
) -> None:
    assert common.batch_starts(count, batch=8, interval=30) == pytest.approx(starts)
