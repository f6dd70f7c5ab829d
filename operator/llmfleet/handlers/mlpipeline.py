"""MLPipeline handlers: thin; the reconcile lives in llmfleet.reconcile.mlpipeline."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile import mlpipeline as reconciler
from llmfleet.render.mlpipeline import HUB_KINDS, STAGE_KINDS

PLURAL = "mlpipelines"


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec")
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, id="resync", interval=common.RESYNC_SECONDS, initial_delay=5)
async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Training Jobs finishing, the owned resources becoming ready, drift checks completing."""
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Removes every stage's children in every cluster; the owned LLMDeployment and
    ChatEndpoint then remove theirs through their own finalizers."""
    owner = reconciler.owner_of(body)
    await common.remove_everywhere(memo, owner, (*HUB_KINDS, *STAGE_KINDS), STAGE_KINDS)
