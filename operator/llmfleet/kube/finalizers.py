"""The operator's finalizer on its own resources, put on only where garbage collection cannot
remove the children: those in member clusters (children in the resource's own cluster carry
an ownerReference). Both writes carry the resourceVersion they were decided on, so another
writer's finalizers are never lost; a conflict reads the resource again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmfleet.api import GROUP
from llmfleet.kube.rest import KubeClient, KubeError, path_of

FINALIZER = f"{GROUP}/finalizer"
CONFLICT = 409
ATTEMPTS = 3


def holds(body: Mapping[str, Any]) -> bool:
    return FINALIZER in (body.get("metadata") or {}).get("finalizers", ())


def add(client: KubeClient, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Puts the finalizer on; returns the resource as written (None: it was already on)."""
    return _change(
        client, kind, body, lambda names: names if FINALIZER in names else [*names, FINALIZER]
    )


def remove(client: KubeClient, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Takes the finalizer off (the API server then completes a pending deletion)."""
    return _change(client, kind, body, lambda names: [n for n in names if n != FINALIZER])


def _change(
    client: KubeClient, kind: str, body: Mapping[str, Any], edit: Any
) -> dict[str, Any] | None:
    meta = body["metadata"]
    path = path_of(kind, meta["namespace"], meta["name"])
    current: Mapping[str, Any] = body
    for attempt in range(ATTEMPTS):
        names = list(current["metadata"].get("finalizers") or [])
        wanted = edit(names)
        if wanted == names:
            return None
        patch = {
            "metadata": {
                "finalizers": wanted,
                "resourceVersion": current["metadata"]["resourceVersion"],
            }
        }
        try:
            written: dict[str, Any] = client.request(
                "PATCH", path, body=patch, content_type="application/merge-patch+json"
            )
        except KubeError as error:
            if error.status != CONFLICT or attempt == ATTEMPTS - 1:
                raise
        else:
            return written
        fresh = client.request("GET", path)
        if not isinstance(fresh, dict) or not fresh.get("metadata"):
            return None
        current = fresh
    return None
