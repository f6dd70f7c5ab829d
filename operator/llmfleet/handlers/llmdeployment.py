"""LLMDeployment handlers: thin; the reconcile lives in llmfleet.reconcile.llmdeployment."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.handlers.chatendpoint import ENDPOINTS_BY_MODEL
from llmfleet.reconcile.llmdeployment import KIND
from llmfleet.settings import Settings

PLURAL = "llmdeployments"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    common.register_kind(
        registry, settings, KIND, PLURAL,
        "Safety net: drift in children, replicas becoming ready, clusters coming back.",
    )  # fmt: skip

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wake-endpoints", registry=registry)
    async def follow_model(
        namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
    ) -> None:
        """Wakes the endpoints that route to a model whose status changed (they route to
        where it serves)."""
        runtime = common.runtime_of(memo)
        index: kopf.Index[tuple[str | None, str], str] = kwargs[ENDPOINTS_BY_MODEL]
        for endpoint in index.get((namespace, name), []):
            runtime.wakeups.notify_resource("ChatEndpoint", namespace or "", endpoint)
