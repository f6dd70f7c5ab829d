"""Prints the argocd-cm merge patch that installs llmfleet's resource health checks:

    python3 hack/argocd_cm_patch.py | kubectl -n argocd patch configmap argocd-cm \\
        --type merge --patch-file /dev/stdin
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CUSTOMIZATIONS = (
    Path(__file__).resolve().parent.parent / "config" / "argocd" / "resource_customizations"
)


def patch() -> dict[str, dict[str, str]]:
    """One `resource.customizations.health.<group>_<kind>` key per check, as argocd-cm expects."""
    return {
        "data": {
            f"resource.customizations.health.{check.parent.parent.name}_{check.parent.name}": (
                check.read_text()
            )
            for check in sorted(CUSTOMIZATIONS.glob("*/*/health.lua"))
        }
    }


if __name__ == "__main__":
    json.dump(patch(), sys.stdout, indent=2)
    sys.stdout.write("\n")
