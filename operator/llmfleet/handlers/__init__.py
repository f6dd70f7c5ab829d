"""kopf handlers: the only modules that import kopf. `register` puts them in a registry with
the settings they need (the resync interval), so nothing is read at import time."""

from __future__ import annotations

import kopf

from llmfleet.handlers import chatendpoint, llmdeployment, mlpipeline, operator
from llmfleet.settings import Settings


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    operator.register(registry, settings)
    for kind in (llmdeployment, chatendpoint, mlpipeline):
        kind.register(registry, settings)
