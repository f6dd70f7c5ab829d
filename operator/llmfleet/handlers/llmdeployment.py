"""LLMDeployment handlers: thin; the reconcile lives in llmfleet.reconcile.llmdeployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from llmfleet.handlers import common
from llmfleet.handlers.chatendpoint import ENDPOINTS_BY_MODEL
from llmfleet.reconcile.llmdeployment import KIND
from llmfleet.settings import Settings

PLURAL = "llmdeployments"


def wake_endpoints(
    runtime: common.Runtime, namespace: str, name: str, kwargs: Mapping[str, Any]
) -> None:
    """A model's status changed: the endpoints that route to it are looked at again within a
    second (they route to where it serves), not at their next resync."""
    index: kopf.Index[tuple[str | None, str], str] = kwargs[ENDPOINTS_BY_MODEL]
    for endpoint in index.get((namespace, name), []):
        runtime.wakeups.notify_resource("ChatEndpoint", namespace, endpoint)


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    common.register_kind(
        registry, settings, KIND, PLURAL,
        also_on_event=wake_endpoints,
    )  # fmt: skip
