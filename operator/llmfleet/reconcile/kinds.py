"""Every kind the engine reconciles, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmfleet.reconcile import chatendpoint, llmdeployment, mlpipeline
from llmfleet.reconcile.engine import Kind

KINDS: Mapping[str, Kind[Any]] = {
    k.name: k for k in (llmdeployment.KIND_SPEC, chatendpoint.KIND_SPEC, mlpipeline.KIND_SPEC)
}
