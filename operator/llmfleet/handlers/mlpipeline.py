"""MLPipeline handlers: thin; the reconcile lives in llmfleet.reconcile.mlpipeline."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile.mlpipeline import KIND
from llmfleet.settings import Settings

PLURAL = "mlpipelines"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec", registry=registry)
    async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await common.reconcile(KIND, body, patch, memo)

    @kopf.timer(
        GROUP, VERSION, PLURAL, id="resync", interval=settings.resync_seconds, initial_delay=5,
        registry=registry,
    )  # fmt: skip
    async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        """Training Jobs finishing, the owned resources becoming ready, drift checks completing."""
        await common.reconcile(KIND, body, patch, memo)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup", registry=registry)
    async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Removes every stage's children in every cluster; the owned LLMDeployment and
        ChatEndpoint then remove theirs through their own finalizers."""
        await common.cleanup(KIND, body, memo)
