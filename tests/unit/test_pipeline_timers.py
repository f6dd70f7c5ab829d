"""Which resync timer runs: the quick one while something moves, the slow one otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.handlers.common import coming_up
from llmfleet.handlers.mlpipeline import in_motion


def stages(training: str, inference: str = "Pending", endpoint: str = "Pending") -> dict[str, Any]:
    return {
        "stages": [
            {"name": "training", "phase": training},
            {"name": "inference", "phase": inference},
            {"name": "endpoint", "phase": endpoint},
        ]
    }


@pytest.mark.parametrize(
    ("name", "status", "moving"),
    [
        ("new, no status yet", {}, True),
        ("training pod waiting for a node", stages("Pending"), True),
        ("training", stages("Running"), True),
        ("trained, inference coming up", stages("Succeeded", "Pending"), True),
        ("serving", stages("Succeeded", "Running", "Running"), False),
        ("retraining while serving", stages("Running", "Running", "Running"), True),
        ("first run failed", stages("Failed"), False),
        ("failed run, the previous one serves", stages("Failed", "Running", "Running"), False),
        ("no GPUs for training", stages("Unschedulable"), False),
        ("training cluster unreachable", stages("Unknown", "Running", "Running"), False),
    ],
)  # fmt: skip
def test_timer_choice(name: str, status: dict[str, Any], moving: bool) -> None:
    assert in_motion(status) is moving, name


def ready(status: str, reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}


@pytest.mark.parametrize(
    ("status", "moving"),
    [
        ({}, True),
        (ready("False", "ReplicasLoading"), True),
        (ready("False", "SitesStarting"), True),
        (ready("False", "NoBackendReady"), True),
        (ready("False", "CrossClusterPending"), True),
        (ready("True", "Ready"), False),
        (ready("False", "InsufficientGPU"), False),
        (ready("False", "Forbidden"), False),
        (ready("Unknown", "ClusterUnreachable"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else str(v.get("conditions", [{}])[0].get("reason")),
)
def test_models_and_endpoints_coming_up(status: dict[str, Any], moving: bool) -> None:
    assert coming_up(status) is moving
