"""One level-based, idempotent reconcile per kind: desired state computed, then applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmfleet import status as conditions
from llmfleet.kube.rest import KubeError


@dataclass
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What a reconcile decided: the status to write (None: unchanged) and Events to post."""

    status: dict[str, Any] | None
    events: list[Event] = field(default_factory=list)


def forbidden(body: Mapping[str, Any], error: KubeError) -> Outcome:
    """The outcome of a reconcile the operator's credentials do not allow: Ready=False and
    Degraded=True with what was refused and how to grant it; the rest of the status stays."""
    old = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 0))
    message = (
        f"the operator may not do this in cluster {error.cluster}: {error.message}. Grant its "
        "ServiceAccount the right (for Secrets in a workload namespace, bind the chart's "
        "ClusterRole <release>-tenant-secrets there; see the chart's NOTES)"
    )
    previous = old.get("conditions") or []
    kept = [c for c in previous if c.get("type") not in ("Ready", "Degraded")]
    new = {
        **old,
        "observedGeneration": generation,  # this spec was looked at; the refusal is the answer
        "conditions": [
            *conditions.conditions_of(
                [("Ready", False, "Forbidden", message)], generation=generation, previous=previous
            ),
            *kept,
            *conditions.conditions_of(
                [("Degraded", True, "Forbidden", message)], generation=generation, previous=previous
            ),
        ],
    }
    if new == old:
        return Outcome(status=None)
    return Outcome(status=new, events=[Event("Warning", "Forbidden", message)])
