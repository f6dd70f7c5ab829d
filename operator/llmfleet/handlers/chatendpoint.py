"""ChatEndpoint handlers: thin; the reconcile lives in llmfleet.reconcile.chatendpoint."""

from __future__ import annotations

from typing import Any

import kopf

from llmfleet.api import GROUP, VERSION
from llmfleet.handlers import common
from llmfleet.reconcile.chatendpoint import KIND
from llmfleet.settings import Settings

PLURAL = "chatendpoints"
# The index of endpoints by the models they route to; handlers receive it under this name.
ENDPOINTS_BY_MODEL = "endpoints_by_model"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    common.register_kind(
        registry, settings, KIND, PLURAL,
    )  # fmt: skip

    @kopf.index(GROUP, VERSION, PLURAL, id=ENDPOINTS_BY_MODEL, registry=registry)
    async def endpoints_by_model(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[tuple[str | None, str], str]:
        """The endpoints in front of each LLMDeployment (`llmDeploymentRef` backends)."""
        return {
            (namespace, backend["llmDeploymentRef"]["name"]): name
            for backend in spec.get("backends") or []
            if (backend.get("llmDeploymentRef") or {}).get("name")
        }
