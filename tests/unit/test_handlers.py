"""Handler registration: every kind gets its handlers from the settings it is started with,
and importing the package registers nothing by itself."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import kopf

from llmfleet import handlers
from llmfleet.handlers import common
from llmfleet.handlers.chatendpoint import ENDPOINTS_BY_MODEL
from llmfleet.reconcile.reads import Reads
from llmfleet.settings import Settings
from tests.unit.fakeapi import FakeCluster

PLURALS = {"llmdeployments", "chatendpoints", "mlpipelines"}


def registered() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, Settings(resync_seconds=7))
    return registry


def test_every_kind_resyncs_at_the_configured_interval() -> None:
    timers = registered()._spawning.get_all_handlers()
    assert {t.selector.any_name for t in timers if t.id == "resync"} == PLURALS
    assert {t.interval for t in timers if t.id == "resync"} == {7}


def test_every_kind_reconciles_and_cleans_up() -> None:
    changing = registered()._changing.get_all_handlers()
    for handler_id in ("reconcile", "cleanup"):
        assert {h.selector.any_name for h in changing if h.id == handler_id} == PLURALS


def test_kopf_logs_in_through_the_client_library() -> None:
    activities = {a.activity.value for a in registered()._activities.get_all_handlers()}
    assert {"authentication", "startup", "cleanup", "probe"} <= activities


def test_importing_the_handlers_registers_nothing_in_kopfs_default_registry() -> None:
    default = kopf.get_default_registry()
    assert not default._spawning.get_all_handlers()
    assert not default._changing.get_all_handlers()


def test_the_endpoint_index_is_found_by_the_name_its_readers_use() -> None:
    indexes = {h.id for h in registered()._indexing.get_all_handlers()}
    assert indexes == {ENDPOINTS_BY_MODEL}


def test_a_resource_whose_deletion_was_seen_is_not_reconciled() -> None:
    """kopf may fire a timer of an object already gone; nothing is read or written then."""
    hub = FakeCluster("in-cluster")
    memo = kopf.Memo({common.RUNTIME_KEY: SimpleNamespace(reads=Reads(hub))})
    body = kopf.Body({"metadata": {"namespace": "team", "name": "gone"}, "spec": {}})
    patch = kopf.Patch()
    asyncio.run(common.reconcile("LLMDeployment", body, patch, memo))
    assert not patch
    assert not hub.requests


def test_a_pass_starts_from_the_newest_view_of_the_resource() -> None:
    # kopf may hand over a body older than the status a wake-up pass has written since.
    reads = Reads(FakeCluster("in-cluster"))

    def body(version: str, ready: str) -> dict[str, object]:
        meta = {"namespace": "team", "name": "m", "resourceVersion": version}
        return {"metadata": meta, "spec": {}, "status": {"ready": ready}}

    reads.seen("LLMDeployment", body("12", "written by the last pass"))
    older, newer = body("9", "stale"), body("15", "newest")
    assert reads.newest("LLMDeployment", older)["status"] == {"ready": "written by the last pass"}
    assert reads.newest("LLMDeployment", newer) is newer
    assert reads.newest("ChatEndpoint", older) is older  # nothing kept of it
