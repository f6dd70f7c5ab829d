"""ChatEndpoint handlers: thin; the reconcile lives in llmfleet.reconcile.chatendpoint."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile import chatendpoint as reconciler
from llmfleet.render.common import owner_label
from llmfleet.render.gateway import GATEWAY_KINDS

PLURAL = "chatendpoints"


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec")
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, id="resync", interval=common.RESYNC_SECONDS, initial_delay=5)
async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Safety net: backends becoming ready, managed sites' health, drift in children."""
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await common.remove_everywhere(memo, reconciler.owner_of(body), GATEWAY_KINDS, reconciler.KINDS)


@kopf.index(GROUP, VERSION, PLURAL)
async def endpoints_by_model(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str], str]:
    """The endpoints in front of each LLMDeployment (`llmDeploymentRef` backends)."""
    return {
        (namespace, backend["llmDeploymentRef"]["name"]): name
        for backend in spec.get("backends") or []
        if (backend.get("llmDeploymentRef") or {}).get("name")
    }


@kopf.on.event(GROUP, VERSION, "llmdeployments")
async def wake_endpoints_of_model(
    namespace: str | None, name: str, memo: Any, **kwargs: Any
) -> None:
    """A model's status changed (it became ready, it moved): the endpoints that route to it
    are looked at again within a second, not at their next resync."""
    index: kopf.Index[tuple[str | None, str], str] = kwargs["endpoints_by_model"]
    for endpoint in index.get((namespace, name), []):
        memo.wakeups.notify(owner_label(reconciler.KIND, namespace or "", endpoint))
