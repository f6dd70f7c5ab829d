"""Fields of a child that another writer took from the operator.

Another field manager that changes a field the operator applies (`kubectl scale`, `kubectl
edit`, a script's update) becomes its owner, and the operator's applied-hash annotation stays
as it was. Those writers' entries in `metadata.managedFields` name the fields they set; a
field the operator also sets, now holding another value, is drift to apply over (forced, so
there is no conflict to retry). Fields only others set are theirs and stay as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from llmfleet.kube.rest import FIELD_MANAGER

_MISSING = object()


def foreign_entries(live: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Other writers' field sets, status writers (controllers reporting) left out."""
    return [
        entry
        for entry in live.get("metadata", {}).get("managedFields") or []
        if entry.get("manager") != FIELD_MANAGER and entry.get("subresource") != "status"
    ]


def taken_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Paths the operator sets that another writer set to a different value."""
    taken = []
    for entry in foreign_entries(live):
        for path, wanted, current in _walk(entry.get("fieldsV1") or {}, desired, live, ""):
            if wanted is not _MISSING and not _covers(wanted, current):
                taken.append(path)
    return taken


def _walk(
    fields: Mapping[str, Any], desired: Any, live: Any, path: str
) -> Iterator[tuple[str, Any, Any]]:
    """The leaves of a fieldsV1 tree, with the desired and live values found there."""
    for key, sub in fields.items():
        if key == ".":
            continue
        want, have, step = _step(key, desired, live)
        if want is _MISSING:
            continue  # a field the operator does not set
        here = f"{path}.{step}" if path else step
        if sub:
            yield from _walk(sub, want, have, here)
        else:
            yield here, want, have


def _step(key: str, desired: Any, live: Any) -> tuple[Any, Any, str]:
    kind, _, rest = key.partition(":")
    if kind == "f":
        return _get(desired, rest), _get(live, rest), rest
    if kind == "k":
        match = json.loads(rest)
        return _item(desired, match, partial=True), _item(live, match), f"[{rest}]"
    if kind == "v":
        value = json.loads(rest)
        want = value if isinstance(desired, list) and value in desired else _MISSING
        have = value if isinstance(live, list) and value in live else _MISSING
        return want, have, f"[{rest}]"
    if kind == "i":
        index = int(rest)
        return _index(desired, index), _index(live, index), f"[{index}]"
    return _MISSING, _MISSING, key


def _get(obj: Any, name: str) -> Any:
    return obj.get(name, _MISSING) if isinstance(obj, Mapping) else _MISSING


def _item(items: Any, match: Mapping[str, Any], *, partial: bool = False) -> Any:
    """The list item with the key fields of `match`; `partial` lets the desired item leave
    out key fields the server defaults (a port's protocol)."""
    if not isinstance(items, list):
        return _MISSING
    for item in items:
        if not isinstance(item, Mapping):
            continue
        keys = [k for k in match if k in item] if partial else list(match)
        if keys and all(item.get(k) == match[k] for k in keys):
            return item
    return _MISSING


def _covers(wanted: Any, live: Any) -> bool:
    """Whether the live value says what the desired one says (the server adds defaults)."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(
            _covers(v, live.get(k, _MISSING)) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(wanted) == len(live)
            and all(_covers(w, v) for w, v in zip(wanted, live, strict=True))
        )
    return bool(wanted == live) or _same_quantity(wanted, live)


def _same_quantity(wanted: Any, live: Any) -> bool:
    """The server stores quantities in canonical form: `0.5` comes back as `500m`, `1024Mi` as
    `1Gi`. Without this, such a spec would count as taken on every pass."""
    if not (isinstance(wanted, str) and isinstance(live, str)):
        return False
    try:
        values: list[Decimal] = [parse_quantity(q) for q in (wanted, live)]  # type: ignore[no-untyped-call]
    except ValueError:
        return False
    return values[0] == values[1]


def _index(items: Any, index: int) -> Any:
    return items[index] if isinstance(items, list) and 0 <= index < len(items) else _MISSING
