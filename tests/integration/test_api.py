"""The API on the real API server: CRDs install, every sample is accepted, every manifest of the
invalid corpus is rejected with its message, and explain, categories and columns work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from llmfleet.api import GROUP, VERSION
from llmfleet.api.crd import KINDS
from localfleet.fleet import raw_get
from localfleet.paths import REPO_ROOT
from tests.integration.conftest import Fleet
from tests.integration.resources import TABLE

SAMPLES = sorted((REPO_ROOT / "config" / "samples").rglob("*.yaml"))
INVALID = sorted((REPO_ROOT / "tests" / "invalid").rglob("*.yaml"))
PLURALS = {info.kind: info.plural for info in KINDS}
NAMESPACED = {info.kind: info.namespaced for info in KINDS}
NOT_FOUND = 404


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def expected_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <message>'"
    return first.removeprefix("# expect: ")


def create(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> Any:
    """Creates the object in `namespace`, or cluster-wide for a cluster-scoped kind."""
    objects = client.CustomObjectsApi(api)
    plural = PLURALS[doc["kind"]]
    if not NAMESPACED[doc["kind"]]:
        return objects.create_cluster_custom_object(GROUP, VERSION, plural, doc)
    return objects.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, doc)


def replace(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> Any:
    objects = client.CustomObjectsApi(api)
    plural, name = PLURALS[doc["kind"]], doc["metadata"]["name"]
    if NAMESPACED[doc["kind"]]:
        live = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    else:
        live = objects.get_cluster_custom_object(GROUP, VERSION, plural, name)
    doc = {
        **doc,
        "metadata": {**doc["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]},
    }
    if not NAMESPACED[doc["kind"]]:
        return objects.replace_cluster_custom_object(GROUP, VERSION, plural, name, doc)
    return objects.replace_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, doc)


def delete_cluster_scoped(api: client.ApiClient, doc: dict[str, Any]) -> None:
    try:
        client.CustomObjectsApi(api).delete_cluster_custom_object(
            GROUP, VERSION, PLURALS[doc["kind"]], doc["metadata"]["name"]
        )
    except ApiException as error:
        if error.status != NOT_FOUND:
            raise


def rejection(call: Any) -> str:
    with pytest.raises(ApiException) as error:
        call()
    assert error.value.status == 422, error.value.body
    return str(json.loads(error.value.body)["message"])


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: str(p.relative_to(REPO_ROOT / "config")))
def test_every_sample_is_accepted(fleet: Fleet, namespace: str, sample: Path) -> None:
    cluster_scoped = []
    try:
        for sample_doc in documents(sample):
            doc = sample_doc
            if not NAMESPACED[doc["kind"]]:
                # Outlives the test's namespace: named after it, so runs never collide, and
                # deleted after the test.
                name = f"{doc['metadata']['name']}-{namespace}"
                doc = {**doc, "metadata": {**doc["metadata"], "name": name}}
                cluster_scoped.append(doc)
            created = create(fleet.cloud, namespace, doc)
            assert created["spec"], f"{doc['kind']}/{doc['metadata']['name']} lost its spec"
    finally:
        for doc in cluster_scoped:
            delete_cluster_scoped(fleet.cloud, doc)


def test_the_corpus_is_big_enough_to_mean_something() -> None:
    assert len(INVALID) >= 40
    kinds = {documents(path)[0]["kind"] for path in INVALID}
    assert kinds == set(PLURALS)


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("manifest", INVALID, ids=lambda p: str(p.relative_to(REPO_ROOT / "tests")))
def test_invalid_manifest_is_rejected_with_its_message(
    fleet: Fleet, namespace: str, manifest: Path
) -> None:
    docs = documents(manifest)
    if len(docs) == 2:  # a transition: the first is valid, changing it to the second is not
        create(fleet.cloud, namespace, docs[0])
        try:
            message = rejection(lambda: replace(fleet.cloud, namespace, docs[1]))
        finally:
            if not NAMESPACED[docs[0]["kind"]]:
                delete_cluster_scoped(fleet.cloud, docs[0])
    else:
        message = rejection(lambda: create(fleet.cloud, namespace, docs[0]))
    assert expected_error(manifest) in message


@pytest.fixture(scope="module")
def openapi(fleet: Fleet, crds: list[str]) -> dict[str, Any]:
    status, body = raw_get(fleet.cloud, f"/openapi/v3/apis/{GROUP}/{VERSION}")
    assert status == 200
    return dict(json.loads(body)["components"]["schemas"])


def undescribed_fields(schema: dict[str, Any], path: str) -> Iterator[str]:
    for name, prop in (schema.get("properties") or {}).items():
        if name in ("apiVersion", "kind", "metadata"):
            continue
        if not prop.get("description"):
            yield f"{path}.{name}"
        yield from undescribed_fields(prop, f"{path}.{name}")
        if "items" in prop:
            yield from undescribed_fields(prop["items"], f"{path}.{name}[]")


@pytest.mark.parametrize("kind", sorted(PLURALS))
def test_explain_has_a_description_for_every_field(openapi: dict[str, Any], kind: str) -> None:
    schema = openapi[f"io.llmfleet.{VERSION}.{kind}"]
    assert schema.get("description")
    assert list(undescribed_fields(schema, kind)) == []


@pytest.mark.usefixtures("crds")
def test_all_kinds_are_in_the_llmfleet_category_with_short_names(fleet: Fleet) -> None:
    status, body = raw_get(fleet.cloud, f"/apis/{GROUP}/{VERSION}")
    assert status == 200
    resources = {r["kind"]: r for r in json.loads(body)["resources"] if "/" not in r["name"]}
    assert set(resources) == set(PLURALS)
    assert {kind: r["shortNames"] for kind, r in resources.items()} == {
        "LLMDeployment": ["llmd"],
        "ChatEndpoint": ["chat"],
        "MLPipeline": ["mlp"],
        "FleetPolicy": ["fpol"],
    }
    assert all(r["categories"] == ["llmfleet"] for r in resources.values())
    assert {kind: r["namespaced"] for kind, r in resources.items()} == {
        "LLMDeployment": True,
        "ChatEndpoint": True,
        "MLPipeline": True,
        "FleetPolicy": False,  # owned by admins; tenants cannot weaken it
    }


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize(
    ("sample", "kind", "columns", "cells"),
    [
        (
            "llm-deployment-models/10-llm-onprem-unmanaged-onprem-endpoint.yaml",
            "LLMDeployment",
            [
                "Name",
                "Mode",
                "Location",
                "Management",
                "GPU",
                "GPUs",
                "Replicas",
                "Clusters",
                "Validated",
                "Ready",
                "Reason",
                "Age",
            ],
            {"Location": "onprem", "GPU": "NVIDIA-L40S", "GPUs": 2, "Replicas": 1},
        ),
        (
            "llm-deployment-models/15-llm-onprem-mixed-managed-unmanaged-hybrid-endpoints.yaml",
            "ChatEndpoint",
            [
                "Name",
                "Mode",
                "Cloud",
                "On-Prem",
                "Edge",
                "Alias",
                "URL",
                "Clusters",
                "Ready",
                "Reason",
                "Age",
            ],
            {"Cloud": "managed", "On-Prem": "self-managed", "Edge": None, "Alias": "chat-default"},
        ),
        (
            "ml-options/2-training-hci-inference-cloud-endpoint-cloud.yaml",
            "MLPipeline",
            [
                "Name",
                "Option",
                "Training",
                "Inference",
                "Endpoint",
                "Stage",
                "Clusters",
                "Ready",
                "Reason",
                "Age",
            ],
            {"Training": "onprem", "Inference": "cloud", "Endpoint": "cloud"},
        ),
    ],
    ids=["llmdeployment", "chatendpoint", "mlpipeline"],
)
def test_printer_columns(
    fleet: Fleet, namespace: str, sample: str, kind: str, columns: list[str], cells: dict[str, Any]
) -> None:
    for doc in documents(REPO_ROOT / "config" / "samples" / sample):
        create(fleet.cloud, namespace, doc)
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURALS[kind]}"
    status, body = raw_get(fleet.cloud, path, accept=TABLE)
    assert status == 200
    table = json.loads(body)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == columns
    row = dict(zip(names, table["rows"][0]["cells"], strict=True))
    assert {key: row[key] for key in cells} == cells
