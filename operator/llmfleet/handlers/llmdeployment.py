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
    common.register_kind(
        registry, settings, KIND, PLURAL,
        "Safety net: drift in children, replicas becoming ready, clusters coming back.",
    )  # fmt: skip

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
