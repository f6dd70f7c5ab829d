"""Fleet placement on the real local fleet (cloud 2 x 8 H100, onprem 2 x 4 L40S, onprem-2
2 x 2 A100): bursts onto limited capacity, Spread and Pack over two on-prem clusters,
overflow to the cloud and back, failover of a stopped member, FleetPolicies, cordoned and
tainted nodes, and `llmfleet explain` on the live fleet."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmfleet.api import GROUP, VERSION
from localfleet import kwok, topology
from tests.integration.conftest import Fleet, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, create_chat_endpoint
from tests.integration.test_llmdeployment import create, get, llmd, patch_spec

pytestmark = pytest.mark.usefixtures("operator", "idle_gpus")

L40S, A100 = topology.L40S.product, topology.A100.product
ONPREM, ONPREM2 = topology.ONPREM.name, topology.ONPREM2.name


def model(
    name: str,
    placement: dict[str, Any],
    gpus: int,
    replicas: int = 1,
    product: list[str] | None = None,
) -> dict[str, Any]:
    body = llmd(name, placement["location"], replicas=replicas)
    body["spec"]["placement"] = placement
    body["spec"]["gpu"] = {"count": gpus, **({"product": product} if product else {})}
    return body


def shares(obj: dict[str, Any]) -> dict[str, tuple[str, int, str]]:
    return {
        p["cluster"]: (p.get("role", ""), p.get("replicas", 0), p.get("state", ""))
        for p in (obj.get("status") or {}).get("placements") or []
    }


def settle(fleet: Fleet, namespace: str, name: str, wanted: dict[str, tuple[str, int, str]],
           timeout: float = 90) -> dict[str, Any]:  # fmt: skip
    def reached() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        return obj if shares(obj) == wanted else None

    return wait_until(reached, what=f"{name} placed as {wanted}", timeout=timeout)


def reason(obj: dict[str, Any], type_: str) -> str:
    return str(condition(obj, type_).get("reason", ""))


def deployment_replicas(fleet: Fleet, cluster: str, namespace: str, name: str) -> int | None:
    found = (
        client.AppsV1Api(fleet.api_of(cluster))
        .list_namespaced_deployment(namespace, field_selector=f"metadata.name={name}")
        .items
    )
    return found[0].spec.replicas if found else None


def pending_pods(fleet: Fleet, cluster: str, namespace: str) -> list[str]:
    pods = client.CoreV1Api(fleet.api_of(cluster)).list_namespaced_pod(namespace).items
    return [p.metadata.name for p in pods if p.status.phase == "Pending" and not p.spec.node_name]


def test_a_burst_onto_limited_capacity_places_exactly_what_fits(
    fleet: Fleet, namespace: str
) -> None:
    # llmfleet-onprem has 2 nodes x 4 L40S: room for two 4-GPU models, whatever the order.
    names = [f"burst-{i}" for i in range(4)]
    for name in names:
        create(fleet, namespace, model(name, pinned(topology.ONPREM), 4, product=[L40S]))

    def decided() -> dict[str, str] | None:
        reasons = {n: reason(get(fleet, namespace, n), "Placed") for n in names}
        return reasons if all(reasons.values()) else None

    reasons = wait_until(decided, what="every model decided", timeout=90)
    assert sorted(reasons.values()) == ["InsufficientGPU", "InsufficientGPU", "Placed", "Placed"]
    placed = [n for n, r in reasons.items() if r == "Placed"]
    waiting = next(n for n, r in reasons.items() if r == "InsufficientGPU")
    for name in placed:
        wait_until(lambda n=name: reason(get(fleet, namespace, n), "Ready") == "Ready",
                   what=f"{name} ready", timeout=90)  # fmt: skip
    message = condition(get(fleet, namespace, waiting), "Placed")["message"]
    assert f"{ONPREM}: no room: 0/8 {L40S} free" in message
    assert deployment_replicas(fleet, ONPREM, namespace, waiting) is None
    assert pending_pods(fleet, ONPREM, namespace) == [], "nothing waits Pending for GPUs"
    # Room opens: a waiting model takes it without any change to its spec.
    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "llmdeployments", placed[0]
    )
    remaining = [n for n in names if n != placed[0]]
    wait_until(
        lambda: sum(reason(get(fleet, namespace, n), "Placed") == "Placed" for n in remaining) == 2,
        what="a waiting model placed once room opened",
        timeout=90,
    )


def test_spread_over_two_onprem_clusters_and_pack_splitting(fleet: Fleet, namespace: str) -> None:
    products = [L40S, A100]
    create(fleet, namespace, model(
        "spread", {"location": "onprem", "strategy": "Spread"}, 2, replicas=2, product=products
    ))  # fmt: skip
    obj = settle(fleet, namespace, "spread", {
        ONPREM: ("preferred", 1, "Placed"), ONPREM2: ("preferred", 1, "Placed"),
    })  # fmt: skip
    assert deployment_replicas(fleet, ONPREM, namespace, "spread") == 1
    assert deployment_replicas(fleet, ONPREM2, namespace, "spread") == 1
    wait_until(lambda: reason(get(fleet, namespace, "spread"), "Ready") == "Ready",
               what="spread ready", timeout=90)  # fmt: skip
    decision = {d["cluster"]: d for d in get(fleet, namespace, "spread")["status"]["decision"]}
    assert decision["in-cluster"]["reason"] == "location cloud, not onprem"
    assert obj["status"]["clusters"] == f"{ONPREM}=1,{ONPREM2}=1"
    # Pack splits when no single cluster fits: 8 L40S hold four 2-GPU replicas, the rest
    # goes to the A100s (the spread model above holds one of each).
    create(fleet, namespace, model("pack", {"location": "onprem"}, 2, replicas=4, product=products))
    settle(
        fleet,
        namespace,
        "pack",
        {ONPREM: ("preferred", 3, "Placed"), ONPREM2: ("preferred", 1, "Placed")},
    )


def test_overflow_to_the_cloud_scale_in_and_back_when_onprem_frees(
    fleet: Fleet, namespace: str
) -> None:
    # llmfleet-onprem-2 (4 A100) is filled by a blocker; the model prefers it and overflows.
    create(fleet, namespace, model("blocker", pinned(topology.ONPREM2), 2, replicas=2))
    settle(fleet, namespace, "blocker", {ONPREM2: ("preferred", 2, "Placed")})
    overflow = {"location": "cloud", "moveBackAfterSeconds": 0}
    create(
        fleet,
        namespace,
        model("elastic", pinned(topology.ONPREM2, overflow=overflow), 2, replicas=2),
    )
    obj = settle(fleet, namespace, "elastic", {"in-cluster": ("overflow", 2, "Placed")})
    assert reason(obj, "Degraded") == "Overflowing"
    # Scale in: the overflow replicas go first (here: all of them are overflow).
    patch_spec(fleet, namespace, "elastic", {"replicas": 1})
    settle(fleet, namespace, "elastic", {"in-cluster": ("overflow", 1, "Placed")})
    wait_until(lambda: reason(get(fleet, namespace, "elastic"), "Ready") == "Ready",
               what="elastic ready in the cloud", timeout=90)  # fmt: skip
    # The blocker goes: on-prem has room, the replica moves home, make-before-break.
    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "llmdeployments", "blocker"
    )
    settle(fleet, namespace, "elastic", {ONPREM2: ("preferred", 1, "Placed")}, timeout=120)
    wait_until(lambda: deployment_replicas(fleet, "in-cluster", namespace, "elastic") is None,
               what="the cloud copy removed", timeout=60)  # fmt: skip


def test_failover_to_another_onprem_cluster_and_back_and_nothing_moves_without_it(
    fleet: Fleet, namespace: str
) -> None:
    products = [L40S, A100]
    failover = {"location": "onprem", "failover": {"afterSeconds": 5}}
    create(fleet, namespace, model("ha", failover, 2, product=products))
    create(fleet, namespace, model("stay", {"location": "onprem"}, 2, product=products))
    for name in ("ha", "stay"):
        settle(fleet, namespace, name, {ONPREM: ("preferred", 1, "Placed")})
        wait_until(lambda n=name: reason(get(fleet, namespace, n), "Ready") == "Ready",
                   what=f"{name} ready", timeout=90)  # fmt: skip
    kwok.stop(topology.ONPREM)
    try:
        obj = settle(fleet, namespace, "ha", {
            ONPREM: ("preferred", 1, "Unknown"), ONPREM2: ("failover", 1, "Placed"),
        }, timeout=120)  # fmt: skip
        assert reason(obj, "Degraded") in ("ClusterUnreachable", "FailedOver")
        assert deployment_replicas(fleet, ONPREM2, namespace, "ha") == 1
        # The same outage, well past a grace period: without failover nothing moved.
        assert shares(get(fleet, namespace, "stay")) == {ONPREM: ("preferred", 1, "Unknown")}
        assert deployment_replicas(fleet, ONPREM2, namespace, "stay") is None
    finally:
        kwok.start(topology.ONPREM)
    settle(fleet, namespace, "ha", {ONPREM: ("preferred", 1, "Placed")}, timeout=180)
    wait_until(lambda: deployment_replicas(fleet, ONPREM2, namespace, "ha") is None,
               what="the replacement removed", timeout=60)  # fmt: skip
    settle(fleet, namespace, "stay", {ONPREM: ("preferred", 1, "Placed")}, timeout=60)
    for name in ("ha", "stay"):
        wait_until(lambda n=name: reason(get(fleet, namespace, n), "Ready") == "Ready",
                   what=f"{name} serving on {ONPREM} again", timeout=120)  # fmt: skip


@pytest.fixture
def policy(fleet: Fleet, namespace: str) -> Iterator[str]:
    """A FleetPolicy restricting this test's namespace to onprem, no managed providers, no
    cross-location routing; removed after the test."""
    name = f"restricted-{namespace}"[:63]
    label = {"llmfleet.io/data-class": f"restricted-{uuid.uuid4().hex[:8]}"}
    client.CustomObjectsApi(fleet.cloud).create_cluster_custom_object(GROUP, VERSION, "fleetpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FleetPolicy", "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": label}, "allowedLocations": ["onprem"],
                 "managedProviders": "Deny", "crossLocationRouting": "Deny"},
    })  # fmt: skip
    client.CoreV1Api(fleet.cloud).patch_namespace(namespace, {"metadata": {"labels": label}})
    yield name
    client.CustomObjectsApi(fleet.cloud).delete_cluster_custom_object(
        GROUP, VERSION, "fleetpolicies", name
    )


def test_policy_refuses_overflow_and_a_managed_model(
    fleet: Fleet, namespace: str, policy: str
) -> None:
    create(fleet, namespace, model("blocker", pinned(topology.ONPREM2), 2, replicas=2))
    overflow = {"location": "cloud"}
    create(fleet, namespace, model("kept-home", pinned(topology.ONPREM2, overflow=overflow), 2))

    def refused() -> dict[str, Any] | None:
        obj = get(fleet, namespace, "kept-home")
        return obj if reason(obj, "Ready") == "PolicyViolation" else None

    obj = wait_until(refused, what="PolicyViolation", timeout=60)
    message = condition(obj, "Ready")["message"]
    assert policy in message
    assert "spec.placement.overflow.location" in message
    assert deployment_replicas(fleet, "in-cluster", namespace, "kept-home") is None
    events = (
        client.CoreV1Api(fleet.cloud)
        .list_namespaced_event(namespace, field_selector="involvedObject.name=kept-home")
        .items
    )
    assert any(e.reason == "PolicyViolation" and e.type == "Warning" for e in events)


def test_a_policy_added_later_moves_or_stops_what_it_forbids(fleet: Fleet, namespace: str) -> None:
    create(fleet, namespace, model("blocker", pinned(topology.ONPREM2), 2, replicas=2))
    # The blocker holds all of llmfleet-onprem-2 first (applied together, either could win).
    settle(fleet, namespace, "blocker", {ONPREM2: ("preferred", 2, "Placed")})
    create(fleet, namespace, model(
        "spill", pinned(topology.ONPREM2, overflow={"location": "cloud"}), 2
    ))  # fmt: skip
    settle(fleet, namespace, "spill", {"in-cluster": ("overflow", 1, "Placed")})
    name = f"late-{namespace}"[:63]
    label = {"llmfleet.io/data-class": f"late-{uuid.uuid4().hex[:8]}"}
    client.CustomObjectsApi(fleet.cloud).create_cluster_custom_object(GROUP, VERSION, "fleetpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FleetPolicy", "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": label}, "allowedLocations": ["onprem"]},
    })  # fmt: skip
    try:
        client.CoreV1Api(fleet.cloud).patch_namespace(namespace, {"metadata": {"labels": label}})
        # On-prem is full: the forbidden cloud replica cannot be replaced, so it stops.
        wait_until(lambda: deployment_replicas(fleet, "in-cluster", namespace, "spill") is None,
                   what="the forbidden overflow stopped", timeout=60)  # fmt: skip

        # The pass that removed it writes its status right after.
        def reported() -> dict[str, Any] | None:
            obj = get(fleet, namespace, "spill")
            return obj if reason(obj, "Ready") == "PolicyViolation" else None

        obj = wait_until(reported, what="the policy reported", timeout=30)
        assert reason(obj, "Placed") == "InsufficientGPU"
    finally:
        client.CustomObjectsApi(fleet.cloud).delete_cluster_custom_object(
            GROUP, VERSION, "fleetpolicies", name
        )


@pytest.fixture
def onprem2_nodes_unusable(fleet: Fleet) -> Iterator[list[str]]:
    """llmfleet-onprem-2's GPU nodes: the first cordoned, the second tainted; restored after."""
    core = client.CoreV1Api(fleet.onprem2)
    gpu_nodes = sorted(
        n.metadata.name for n in core.list_node(label_selector="nvidia.com/gpu.present=true").items
    )
    first, second = gpu_nodes[:2]
    original = core.read_node(second).spec.taints or []
    core.patch_node(first, {"spec": {"unschedulable": True}})
    taints = [t.to_dict() for t in original] + [
        {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
    ]
    core.patch_node(
        second,
        {"spec": {"taints": [{k: v for k, v in t.items() if v is not None} for t in taints]}},
    )
    yield [first, second]
    core.patch_node(first, {"spec": {"unschedulable": False}})
    core.patch_node(second, {"spec": {"taints": [
        {k: v for k, v in t.to_dict().items() if v is not None} for t in original
    ]}})  # fmt: skip


def test_cordoned_and_tainted_nodes_offer_nothing(
    fleet: Fleet, namespace: str, onprem2_nodes_unusable: list[str]
) -> None:
    create(fleet, namespace, model("nowhere", pinned(topology.ONPREM2), 1))

    def insufficient() -> dict[str, Any] | None:
        obj = get(fleet, namespace, "nowhere")
        return obj if reason(obj, "Placed") == "InsufficientGPU" else None

    message = condition(wait_until(insufficient, what="InsufficientGPU", timeout=60), "Placed")[
        "message"
    ]
    first, second = onprem2_nodes_unusable
    assert f"cordoned: {first}" in message
    assert f"taint dedicated=batch:NoSchedule: {second}" in message
    assert deployment_replicas(fleet, ONPREM2, namespace, "nowhere") is None


def explain(
    fleet: Fleet, manifest: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return subprocess.run(
        [sys.executable, "-m", "llmfleet", "explain", "-f", str(path),
         "--kubeconfig", str(fleet.kubeconfigs["cloud"])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_explain_on_the_live_fleet(
    fleet: Fleet, namespace: str, policy: str, tmp_path: Path
) -> None:
    fits = model("fits", {"location": "onprem"}, 2)
    fits["metadata"]["namespace"] = namespace
    done = explain(fleet, fits, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ONPREM}" in done.stdout
    assert "taken, preferred" in done.stdout
    assert "would apply on" in done.stdout
    too_big = model("too-big", {"location": "onprem"}, 16)
    too_big["metadata"]["namespace"] = namespace
    done = explain(fleet, too_big, tmp_path)
    assert done.returncode == 1
    assert "InsufficientGPU" in done.stdout
    forbidden = model("forbidden", {"location": "cloud"}, 1)
    forbidden["metadata"]["namespace"] = namespace
    done = explain(fleet, forbidden, tmp_path)
    assert done.returncode == 1
    assert "PolicyViolation" in done.stdout
    assert policy in done.stdout
    assert (
        client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments"
        )["items"]
        == []
    ), "explain applies nothing"


def gateway_routes(api: client.ApiClient, namespace: str, configmap: str) -> list[str]:
    """The upstream addresses of a gateway's config, as applied in its cluster."""
    found = (
        client.CoreV1Api(api)
        .list_namespaced_config_map(namespace, field_selector=f"metadata.name={configmap}")
        .items
    )
    if not found:
        return []
    config = yaml.safe_load(found[0].data["config.yaml"])
    return [str(e["litellm_params"].get("api_base", "")) for e in config.get("model_list") or []]


@pytest.mark.usefixtures("load_balancers")
def test_a_tightened_policy_removes_a_crossing_route_from_the_live_gateway(
    fleet: Fleet, namespace: str
) -> None:
    create(fleet, namespace, model("backend", pinned(topology.ONPREM), 1))
    create_chat_endpoint(
        fleet.cloud, namespace, "chat",
        sites=[{"location": "cloud"}, {"location": "onprem", **pinned(topology.ONPREM)}],
        backends=[{"llmDeploymentRef": {"name": "backend"}}],
    )  # fmt: skip
    local = f"http://backend.{namespace}.svc:8000/v1"
    # The cloud site reaches the on-prem model through its export's load-balancer address.
    wait_until(lambda: gateway_routes(fleet.cloud, namespace, "chat-cloud"),
               what="the cloud gateway routing to the on-prem model", timeout=120)  # fmt: skip
    name = f"no-crossing-{namespace}"[:63]
    label = {"llmfleet.io/data-class": f"local-{uuid.uuid4().hex[:8]}"}
    client.CustomObjectsApi(fleet.cloud).create_cluster_custom_object(GROUP, VERSION, "fleetpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FleetPolicy", "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": label}, "crossLocationRouting": "Deny"},
    })  # fmt: skip
    try:
        client.CoreV1Api(fleet.cloud).patch_namespace(namespace, {"metadata": {"labels": label}})
        wait_until(lambda: not gateway_routes(fleet.cloud, namespace, "chat-cloud"),
                   what="the crossing route gone from the cloud gateway", timeout=60)  # fmt: skip
        # The on-prem site still routes to the model in its own cluster.
        assert gateway_routes(fleet.onprem, namespace, "chat-onprem") == [local]

        def refused() -> dict[str, Any] | None:
            obj = client.CustomObjectsApi(fleet.cloud).get_namespaced_custom_object(
                GROUP, VERSION, namespace, "chatendpoints", "chat"
            )
            return obj if reason(obj, "Ready") == "PolicyViolation" else None

        # The cloud gateway rolls to its new config first; the status then says why.
        endpoint = wait_until(refused, what="the endpoint to report the policy", timeout=60)
        assert name in condition(endpoint, "Ready")["message"]
    finally:
        client.CustomObjectsApi(fleet.cloud).delete_cluster_custom_object(
            GROUP, VERSION, "fleetpolicies", name
        )
