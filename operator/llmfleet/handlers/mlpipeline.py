"""MLPipeline handlers: thin; the reconcile lives in llmfleet.reconcile.mlpipeline."""

from __future__ import annotations

import kopf

from llmfleet.handlers import common
from llmfleet.reconcile.mlpipeline import KIND
from llmfleet.settings import Settings

PLURAL = "mlpipelines"


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    # Deleting a pipeline removes every stage's children in every cluster; the owned
    # LLMDeployment and ChatEndpoint (garbage-collected) then remove theirs.
    common.register_kind(
        registry, settings, KIND, PLURAL,
    )  # fmt: skip
