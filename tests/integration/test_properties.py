"""Generated specs against the real API server: what the CRD admits renders into objects the
server accepts, and syncing twice writes nothing the second time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import client

from llmfleet.api import GROUP, VERSION, LLMDeploymentSpec
from llmfleet.kube import apply
from llmfleet.kube.rest import KubeClient, KubeError, path_of
from llmfleet.render.common import Owner
from tests.integration.conftest import Fleet
from tests.specs import llm_specs
from tests.unit.test_properties import rendered

EXAMPLES = 40
UNPROCESSABLE = 422


@pytest.fixture
def hub(fleet: Fleet) -> KubeClient:
    return KubeClient(fleet.cloud, "cloud")


def admitted(hub: KubeClient, namespace: str, spec: dict[str, Any]) -> bool:
    """Whether the CRD's schema and rules admit the spec (server-side dry run)."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": "generated", "namespace": namespace},
        "spec": spec,
    }
    try:
        hub.request(
            "POST",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/llmdeployments",
            query={"dryRun": "All"},
            body=body,
        )
    except KubeError as error:
        if error.status == UNPROCESSABLE:
            return False
        raise
    return True


def test_every_admitted_spec_renders_objects_the_server_accepts_and_syncs_once(
    fleet: Fleet, namespace: str, hub: KubeClient
) -> None:
    seen = {"admitted": 0, "refused": 0}
    owner_uid = client.CoreV1Api(fleet.cloud).read_namespace(namespace).metadata.uid

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(body=llm_specs())
    def check(body: dict[str, Any]) -> None:
        if not admitted(hub, namespace, body):
            seen["refused"] += 1
            return
        seen["admitted"] += 1
        # A name per example: an earlier example's objects may still be going away.
        name = f"generated-{seen['admitted'] + seen['refused']}"
        spec = LLMDeploymentSpec.model_validate(body)
        owner = Owner("LLMDeployment", namespace, name, owner_uid)
        for in_owner_cluster in (True, False):
            objects = rendered(spec, in_owner_cluster=in_owner_cluster, owner=owner).objects
            for obj in objects:
                meta = obj["metadata"]
                hub.request(
                    "PATCH",
                    path_of(obj["kind"], meta["namespace"], meta["name"]),
                    query={"fieldManager": "llmfleet", "force": "true", "dryRun": "All"},
                    body=json.dumps(obj),
                    content_type="application/apply-patch+yaml",
                )
        # Labelled only: the garbage collector would remove children whose ownerReference
        # names a resource that does not exist (managed models always have one).
        objects = rendered(spec, in_owner_cluster=False, owner=owner).objects
        for obj in objects:
            obj["metadata"].pop("ownerReferences", None)
        kinds = sorted({o["kind"] for o in objects})
        first = apply.sync(hub, namespace, owner.label, objects, kinds)
        second = apply.sync(hub, namespace, owner.label, objects, kinds)
        assert (second.applied, second.pruned) == ([], []), first.applied
        apply.remove_all(hub, namespace, owner.label, kinds)

    check()
    # The generator aims at valid specs: most must get through the CRD, or it tests little.
    assert seen["admitted"] >= EXAMPLES // 2, seen
