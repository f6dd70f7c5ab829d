"""ChatEndpoint handlers: thin; the reconcile lives in llmfleet.reconcile.chatendpoint."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile import chatendpoint as reconciler
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
