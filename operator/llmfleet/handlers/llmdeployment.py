"""LLMDeployment handlers: thin; the reconcile lives in llmfleet.reconcile.llmdeployment."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile.llmdeployment import KIND
from llmfleet.settings import Settings

PLURAL = "llmdeployments"


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
        """Safety net: drift in children, replicas becoming ready, clusters coming back."""
        await common.reconcile(KIND, body, patch, memo)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup", registry=registry)
    async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Removes the children in every member cluster; the finalizer stays until all are
        gone."""
        await common.cleanup(KIND, body, memo)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def follow_model(
        body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
    ) -> None:
        """Keeps the operator's view of every model current (endpoints read it instead of the
        API server), and wakes the endpoints that route to a model whose status changed."""
        runtime = common.runtime_of(memo)
        if (kwargs.get("type") or "") == "DELETED":
            runtime.reads.gone(KIND, namespace or "", name)
        else:
            runtime.reads.seen(KIND, body)
        index: kopf.Index[tuple[str | None, str], str] = kwargs["endpoints_by_model"]
        for endpoint in index.get((namespace, name), []):
            runtime.wakeups.notify_resource("ChatEndpoint", namespace or "", endpoint)
