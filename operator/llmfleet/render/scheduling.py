"""Where a workload's pods may run: node location, GPU product and count, taints, resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmfleet import labels
from llmfleet.api.common import Gpu, Resources, Toleration


def pod_scheduling(
    location: str,
    gpu: Gpu,
    node_selector: Mapping[str, str] | None,
    tolerations: Sequence[Toleration] | None,
) -> dict[str, Any]:
    """Pod spec fields pinning pods to nodes of the location (and GPU product), tolerating the
    GPU taint when they ask for GPUs: an onprem pod never lands on a cloud node."""
    node_terms = [{"key": labels.LOCATION, "operator": "In", "values": [location]}]
    if gpu.count and gpu.product:
        node_terms.append(
            {"key": labels.GPU_PRODUCT, "operator": "In", "values": list(gpu.product)}
        )
    pod_tolerations: list[dict[str, Any]] = []
    if gpu.count:
        pod_tolerations.append(
            {"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
        )
    pod_tolerations += [t.model_dump(by_alias=True, exclude_none=True) for t in tolerations or []]
    fields: dict[str, Any] = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": node_terms}]
                }
            }
        },
        "tolerations": pod_tolerations,
    }
    if node_selector:
        fields["nodeSelector"] = dict(node_selector)
    return fields


def container_resources(gpu: Gpu, resources: Resources | None) -> dict[str, Any]:
    """Requests equal limits: GPUs cannot be overcommitted, and equal CPU and memory keep the
    pod in the Guaranteed class."""
    amounts: dict[str, str] = {}
    if gpu.count:
        amounts[gpu.resource_name] = str(gpu.count)
    if resources and resources.cpu:
        amounts["cpu"] = resources.cpu
    if resources and resources.memory:
        amounts["memory"] = resources.memory
    return {"requests": amounts, "limits": dict(amounts)}
