"""LLMDeployment handlers: thin; the reconcile lives in llmfleet.reconcile.llmdeployment."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile import llmdeployment as reconciler
from llmfleet.render.llmdeployment import CHILD_KINDS

PLURAL = "llmdeployments"


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec")
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, id="resync", interval=common.RESYNC_SECONDS, initial_delay=5)
async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Safety net: drift in children, replicas becoming ready, clusters coming back."""
    await common.reconcile(reconciler.KIND, reconciler.reconcile, body, patch, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Removes the children in every member cluster; the finalizer stays until all are gone."""
    member_kinds = (*CHILD_KINDS, *reconciler.MIRRORED_SECRET_KINDS)
    await common.remove_everywhere(memo, reconciler.owner_of(body), CHILD_KINDS, member_kinds)
