"""Owners whose children changed status are handed over once, and only known owners."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.handlers.common import waits_for_room
from llmfleet.kube.wakeups import Wakeups, status_changed


def test_an_owner_notified_many_times_is_taken_once() -> None:
    wakeups = Wakeups()
    wakeups.register("LLMDeployment", "team-a", "m")
    wakeups.register("MLPipeline", "team-a", "p")
    for _ in range(3):
        wakeups.notify("LLMDeployment.team-a.m")
    wakeups.notify("MLPipeline.team-a.p")
    assert wakeups.take() == [
        ("LLMDeployment", "team-a", "m"),
        ("MLPipeline", "team-a", "p"),
    ]
    assert wakeups.take() == []


def test_unknown_and_forgotten_owners_are_not_taken() -> None:
    wakeups = Wakeups()
    wakeups.notify("LLMDeployment.team-a.unknown")
    wakeups.register("ChatEndpoint", "team-a", "c")
    wakeups.notify("ChatEndpoint.team-a.c")
    wakeups.forget("ChatEndpoint", "team-a", "c")
    wakeups.notify("ChatEndpoint.team-a.c")
    assert wakeups.take() == []


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (None, {"spec": {"replicas": 1}}, False),
        (None, {"status": {"replicas": 1}}, True),
        ({"status": {"readyReplicas": 0}}, {"status": {"readyReplicas": 1}}, True),
        ({"spec": {"replicas": 1}, "status": {"x": 1}}, {"spec": {"replicas": 2}, "status": {"x": 1}}, False),
        ({"status": {"succeeded": 1}}, {"status": {"succeeded": 1}}, False),
    ],
)  # fmt: skip
def test_status_changed(
    before: dict[str, Any] | None, after: dict[str, Any], changed: bool
) -> None:
    assert status_changed(before, after) is changed


def test_what_waits_for_gpus_is_woken_when_room_opens() -> None:
    wakeups = Wakeups()
    wakeups.register("LLMDeployment", "a", "waiting")
    wakeups.register("LLMDeployment", "a", "running")
    wakeups.wait_for_room("LLMDeployment", "a", "waiting", True)
    wakeups.room_changed()
    assert wakeups.take() == [("LLMDeployment", "a", "waiting")]
    wakeups.wait_for_room("LLMDeployment", "a", "waiting", False)
    wakeups.room_changed()
    assert wakeups.take() == []


def test_changed_rules_wake_their_namespace_or_everything() -> None:
    wakeups = Wakeups()
    wakeups.register("LLMDeployment", "a", "m")
    wakeups.register("ChatEndpoint", "b", "c")
    wakeups.rules_changed("a")
    assert wakeups.take() == [("LLMDeployment", "a", "m")]
    wakeups.rules_changed("")
    assert wakeups.take() == [("ChatEndpoint", "b", "c"), ("LLMDeployment", "a", "m")]


@pytest.mark.parametrize(
    ("reason", "waits"),
    [("InsufficientGPU", True), ("Queued", True), ("Overflowing", True), ("Ready", False)],
)
def test_waits_for_room(reason: str, waits: bool) -> None:
    status = {"conditions": [{"type": "Degraded", "status": "True", "reason": reason}]}
    assert waits_for_room(status) is waits
