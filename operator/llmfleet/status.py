"""Conditions with stable transition times: a condition's time moves only when its status does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    status: bool | None,
    *,
    reason: str,
    message: str,
    generation: int,
    previous: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    value = "Unknown" if status is None else ("True" if status else "False")
    old = find(previous, type_)
    unchanged = old.get("status") == value and old.get("lastTransitionTime")
    return {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:4096],
        "lastTransitionTime": old["lastTransitionTime"] if unchanged else now(),
        "observedGeneration": generation,
    }


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any]:
    return next((c for c in conditions if c.get("type") == type_), {})


def conditions_of(
    items: Sequence[tuple[str, bool | None, str, str]],
    *,
    generation: int,
    previous: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Conditions from (type, status, reason, message), keeping unchanged transition times."""
    return [
        condition(
            type_, value, reason=reason, message=message, generation=generation, previous=previous
        )
        for type_, value, reason, message in items
    ]
