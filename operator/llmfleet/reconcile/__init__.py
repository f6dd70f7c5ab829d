"""One level-based, idempotent reconcile per kind: desired state computed, then applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
