"""Properties over generated LLMDeployment specs: every valid spec renders, the same way twice,
into objects that name their owner; the renderer never raises on a spec the model accepts."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from llmfleet import labels
from llmfleet.api import LLMDeploymentSpec
from llmfleet.placement import modes
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner, Rendered
from tests.specs import llm_specs

OWNER = Owner("LLMDeployment", "team-a", "model-x", "uid-1")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def rendered(spec: LLMDeploymentSpec, *, in_owner_cluster: bool, owner: Owner = OWNER) -> Rendered:
    if spec.placement.management == "managed":
        return render.managed(spec, owner)
    return render.self_managed(
        spec, owner, spec.placement.location,
        in_owner_cluster=in_owner_cluster, metrics_namespace="monitoring",
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=llm_specs())
def test_every_valid_spec_renders_deterministically(body: dict[str, Any]) -> None:
    spec = LLMDeploymentSpec.model_validate(body)
    assert modes.llm_model(spec)  # every spec names its placement mode
    for in_owner_cluster in (True, False):
        first = rendered(spec, in_owner_cluster=in_owner_cluster)
        again = rendered(LLMDeploymentSpec.model_validate(body), in_owner_cluster=in_owner_cluster)
        assert json.dumps(first.objects, sort_keys=True) == json.dumps(
            again.objects, sort_keys=True
        )
        names = [(o["kind"], o["metadata"]["name"]) for o in first.objects]
        assert len(names) == len(set(names)), names
        for obj in first.objects:
            meta = obj["metadata"]
            assert meta["labels"][labels.OWNER], obj["kind"]
            assert meta["namespace"] == OWNER.namespace
            assert len(meta["name"]) <= 63
            assert DNS_LABEL.match(meta["name"]), meta["name"]
