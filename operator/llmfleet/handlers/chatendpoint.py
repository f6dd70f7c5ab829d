"""ChatEndpoint handlers: thin; the reconcile lives in llmfleet.reconcile.chatendpoint."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile.chatendpoint import KIND
from llmfleet.settings import Settings

PLURAL = "chatendpoints"


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
        """Safety net: backends becoming ready, managed sites' health, drift in children."""
        await common.reconcile(KIND, body, patch, memo)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup", registry=registry)
    async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await common.cleanup(KIND, body, memo)

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry)
    async def endpoints_by_model(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[tuple[str | None, str], str]:
        """The endpoints in front of each LLMDeployment (`llmDeploymentRef` backends)."""
        return {
            (namespace, backend["llmDeploymentRef"]["name"]): name
            for backend in spec.get("backends") or []
            if (backend.get("llmDeploymentRef") or {}).get("name")
        }
