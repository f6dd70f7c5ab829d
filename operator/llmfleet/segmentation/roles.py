"""The catalogue's security table as data: which roles each mode needs (section 5 of
docs/placement-modes.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

NETWORK_BOUNDARY: Final = "network-boundary"
WORKLOAD_SEGMENTATION: Final = "workload-segmentation"
KERNEL_MINIMIZATION: Final = "kernel-minimization"
MODEL_ROBUSTNESS: Final = "model-robustness"

ALL = (NETWORK_BOUNDARY, WORKLOAD_SEGMENTATION, KERNEL_MINIMIZATION, MODEL_ROBUSTNESS)
SELF_MANAGED_ONPREM = (WORKLOAD_SEGMENTATION, KERNEL_MINIMIZATION, MODEL_ROBUSTNESS)

# (location, management) -> roles, for the LLM itself (modes 1.x) ...
LLM_ROLES: Final = {
    ("cloud", "managed"): (NETWORK_BOUNDARY,),
    ("cloud", "self-managed"): ALL,
    ("onprem", "self-managed"): SELF_MANAGED_ONPREM,
    ("edge", "self-managed"): SELF_MANAGED_ONPREM,
}
# ... and for a chat endpoint or ML serving site (modes 2.x).
ENDPOINT_ROLES: Final = {
    ("cloud", "managed"): (NETWORK_BOUNDARY, MODEL_ROBUSTNESS),
    ("cloud", "self-managed"): ALL,
    ("onprem", "managed"): (NETWORK_BOUNDARY, MODEL_ROBUSTNESS),
    ("onprem", "self-managed"): SELF_MANAGED_ONPREM,
    ("edge", "self-managed"): SELF_MANAGED_ONPREM,
}


def realized_by(
    mode_roles: Sequence[str],
    *,
    boundary: list[str],
    segmentation: list[str],
    hardening: list[str],
    robustness: list[str],
) -> dict[str, list[str]]:
    """The objects (as `Kind/name`) that realize each of a mode's roles, for status."""
    by_role = {
        NETWORK_BOUNDARY: boundary,
        WORKLOAD_SEGMENTATION: segmentation,
        KERNEL_MINIMIZATION: hardening,
        MODEL_ROBUSTNESS: robustness,
    }
    return {role: by_role[role] for role in mode_roles}
