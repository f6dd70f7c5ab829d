"""Fixtures for tests against the real local clusters (or any clusters given by kubeconfig)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from llmfleet import labels
from localfleet import fleet as localfleet
from localfleet import topology

pytestmark = pytest.mark.integration


@dataclass
class Fleet:
    kubeconfigs: dict[str, Path]
    cloud: client.ApiClient
    onprem: client.ApiClient

    def clients(self) -> dict[str, client.ApiClient]:
        return {"cloud": self.cloud, "onprem": self.onprem}


def _refuse_unless_test_cluster(name: str, api: client.ApiClient) -> None:
    """Tests create and delete objects freely: never run them against a cluster that matters."""
    try:
        namespace = client.CoreV1Api(api).read_namespace(topology.SYSTEM_NAMESPACE)
    except ApiException as error:
        pytest.fail(
            f"cluster {name!r} has no namespace {topology.SYSTEM_NAMESPACE} ({error.status}); "
            "integration tests only run on clusters made by `make cluster-up` or `make kind-up`",
            pytrace=False,
        )
    if (namespace.metadata.labels or {}).get(labels.TEST_CLUSTER) != "true":
        pytest.fail(
            f"cluster {name!r} is not marked as a test cluster (namespace "
            f"{topology.SYSTEM_NAMESPACE} lacks label {labels.TEST_CLUSTER}=true); refusing to run",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    try:
        kubeconfigs = localfleet.external_kubeconfigs() or localfleet.up()
    except Exception as error:  # noqa: BLE001 - any failure becomes one actionable message
        pytest.fail(
            f"could not get the test clusters: {error}\n"
            "  fix: run `make cluster-up` and read its output (it builds the control plane from "
            "Go modules on first use), or point LLMFLEET_CLOUD_KUBECONFIG and "
            "LLMFLEET_ONPREM_KUBECONFIG at clusters made by `make kind-up`",
            pytrace=False,
        )
    apis = {name: localfleet.api_client(path) for name, path in kubeconfigs.items()}
    for name, api in apis.items():
        _refuse_unless_test_cluster(name, api)
    yield Fleet(kubeconfigs=kubeconfigs, cloud=apis["cloud"], onprem=apis["onprem"])
    for api in apis.values():
        api.close()


@pytest.fixture
def namespace(fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace of the same name in every cluster, deleted after the test."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"name": name, "labels": {labels.TEST_CLUSTER: "true"}}}
    for api in fleet.clients().values():
        client.CoreV1Api(api).create_namespace(body)
    yield name
    for api in fleet.clients().values():
        client.CoreV1Api(api).delete_namespace(name)
