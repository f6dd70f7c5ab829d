"""Handler registration: every kind gets its handlers from the settings it is started with,
and importing the package registers nothing by itself."""

from __future__ import annotations

import kopf

from llmfleet import handlers
from llmfleet.settings import Settings

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
