"""The watch-fed view of children against a real API server: what it answers, and when not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from llmfleet import labels, metrics
from llmfleet.kube.cache import ChildCache
from llmfleet.kube.cluster import Cluster
from llmfleet.kube.rest import KubeClient
from tests.integration.conftest import Fleet
from tests.integration.polling import wait_until


@pytest.fixture
def cached(fleet: Fleet) -> Iterator[Cluster]:
    client = KubeClient(fleet.cloud, "cloud")
    kube = Cluster(client, ChildCache(client, kinds={"ConfigMap"}).start())
    assert kube.children is not None
    assert kube.children.wait_synced(timeout=30), "the ConfigMap watch never synced"
    yield kube
    kube.stop()


def config_map(namespace: str, name: str, owner: str | None, **extra: str) -> client.V1ConfigMap:
    tags = ({labels.OWNER: owner} if owner else {}) | extra
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=tags),
        data={"k": "v"},
    )


def names(kube: Cluster, namespace: str, selector: str) -> set[str]:
    assert kube.children is not None
    found = kube.children.list("ConfigMap", namespace, selector)
    assert found is not None, "a synced watch answers"
    return {obj["metadata"]["name"] for obj in found}


def test_other_writers_changes_arrive_through_the_watch(
    fleet: Fleet, namespace: str, cached: Cluster
) -> None:
    core = client.CoreV1Api(fleet.cloud)
    owner = "owner-a"
    core.create_namespaced_config_map(namespace, config_map(namespace, "one", owner))
    core.create_namespaced_config_map(namespace, config_map(namespace, "two", owner, tier="x"))
    core.create_namespaced_config_map(namespace, config_map(namespace, "other", "Other.b"))
    core.create_namespaced_config_map(namespace, config_map(namespace, "bare", None))
    selector = f"{labels.OWNER}={owner}"
    wait_until(lambda: names(cached, namespace, selector) == {"one", "two"}, what="both to arrive")
    assert names(cached, namespace, f"{selector},tier=x") == {"two"}
    # Unlabelled objects are outside the watch; the list goes to the server for them.
    assert cached.children is not None
    assert cached.children.list("ConfigMap", namespace, "tier=x") is None
    assert cached.children.list("ConfigMap", namespace, "tier in (x)") is None

    core.patch_namespaced_config_map("two", namespace, {"metadata": {"labels": {"tier": "y"}}})
    wait_until(
        lambda: names(cached, namespace, f"{selector},tier=y") == {"two"}, what="the relabel"
    )
    core.delete_namespaced_config_map("one", namespace)
    wait_until(lambda: names(cached, namespace, selector) == {"two"}, what="the deletion")
    # The client's own list goes through the view, with the same answer as the server.
    served = {o.metadata.name for o in core.list_namespaced_config_map(namespace, label_selector=selector).items}  # fmt: skip
    assert {o["metadata"]["name"] for o in cached.list("ConfigMap", namespace, selector)} == served


def test_own_writes_are_seen_at_once(namespace: str, cached: Cluster) -> None:
    owner = "owner-b"
    selector = f"{labels.OWNER}={owner}"
    body = client.ApiClient().sanitize_for_serialization(config_map(namespace, "mine", owner))
    cached.apply({"apiVersion": "v1", "kind": "ConfigMap", **body})
    # No wait: the apply's answer is in the view before any watch event arrives.
    assert names(cached, namespace, selector) == {"mine"}
    assert cached.delete("ConfigMap", namespace, "mine") is True
    assert names(cached, namespace, selector) == set()
    assert cached.delete("ConfigMap", namespace, "mine") is False


def test_a_kind_not_watched_is_listed_in_place(namespace: str, cached: Cluster) -> None:
    assert cached.children is not None
    assert cached.children.list("Secret", namespace, f"{labels.OWNER}=x") is None
    assert cached.list("Secret", namespace, f"{labels.OWNER}=x") == []


def test_a_stopped_watch_stops_answering(namespace: str, cached: Cluster) -> None:
    gauge = metrics.CACHE_SYNCED.labels("cloud", "ConfigMap")
    assert gauge._value.get() == 1
    assert cached.children is not None
    cached.children.stop()
    assert gauge._value.get() == 0
    assert cached.children.list("ConfigMap", namespace, f"{labels.OWNER}=x") is None
