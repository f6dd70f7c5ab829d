"""LLMDeployments over the fleet through the engine: spread, overflow and its way back,
InsufficientGPU, bursts, failover and FleetPolicies, against the in-memory fleet (cloud
8 x H100, onprem 4 x L40S, onprem2 2 x 2 A100)."""

from __future__ import annotations

import copy
from typing import Any

from llmfleet.names import owner_label
from llmfleet.placement.capacity import PodUse
from llmfleet.reconcile import llmdeployment
from tests.unit.fakeapi import FakeCluster, FakeFleet, Harness, condition

NS = "team"
KIND = llmdeployment.KIND_SPEC
MODEL: dict[str, Any] = {
    "model": {"name": "m"},
    "runtime": "vllm",
    "replicas": 1,
    "gpu": {"count": 4},
    "placement": {"location": "onprem"},
}
RESTRICTED = {
    "namespaceSelector": {"matchLabels": {"llmfleet.io/data-class": "restricted"}},
    "allowedLocations": ["onprem"],
    "managedProviders": "Deny",
    "crossLocationRouting": "Deny",
}


def spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(MODEL)
    for key, value in changes.items():
        if key in ("strategy", "overflow", "failover", "maxClusters", "minClusters"):
            out["placement"][key] = value
        elif key == "product":
            out["gpu"]["product"] = value
        elif key == "gpus":
            out["gpu"]["count"] = value
        else:
            out[key] = value
    return out


def three() -> Harness:
    return Harness(fleet=FakeFleet(onprem2=FakeCluster("onprem2")))


def shares(h: Harness, name: str = "m") -> dict[str, tuple[str, int, str]]:
    return {
        p["cluster"]: (p["role"], p["replicas"], p["state"])
        for p in h.status("LLMDeployment", name)["placements"]
    }


def deployed(h: Harness, cluster: str, name: str = "m") -> int | None:
    obj = h.fleet.cluster(cluster).objects.get(("Deployment", NS, name))
    return None if obj is None else int(obj["spec"]["replicas"])


def ready_everywhere(h: Harness, name: str = "m") -> None:
    for cluster in h.fleet.clusters():
        obj = cluster.objects.get(("Deployment", NS, name))
        if obj is not None:
            cluster.set_status("Deployment", NS, name, {"readyReplicas": obj["spec"]["replicas"]})


def run(h: Harness, name: str = "m", model: dict[str, Any] | None = None) -> dict[str, Any]:
    if ("LLMDeployment", NS, name) not in h.fleet.hub.objects:
        h.create("LLMDeployment", name, model or MODEL)
    h.reconcile(KIND, name)
    return h.status("LLMDeployment", name)


def test_spread_divides_replicas_over_two_onprem_clusters() -> None:
    h = three()
    status = run(h, model=spec(replicas=2, gpus=2, strategy="Spread"))
    assert shares(h) == {
        "onprem": ("preferred", 1, "Placed"),
        "onprem2": ("preferred", 1, "Placed"),
    }
    assert (deployed(h, "onprem"), deployed(h, "onprem2")) == (1, 1)
    assert status["clusters"] == "onprem=1,onprem2=1"
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    assert condition(h.status("LLMDeployment", "m"), "Ready")["status"] == "True"
    h.fleet.reset_counts()
    writes = h.status_writes
    h.reconcile(KIND, "m")
    assert (h.fleet.writes(), h.status_writes) == (0, writes), "a resync writes nothing"


def test_pack_splits_when_no_single_cluster_fits() -> None:
    h = three()
    run(h, model=spec(replicas=3, gpus=2))
    assert shares(h) == {
        "onprem": ("preferred", 2, "Placed"),
        "onprem2": ("preferred", 1, "Placed"),
    }


def test_min_clusters_is_not_ready_below_it() -> None:
    h = three()
    run(h, model=spec(replicas=1, gpus=2, strategy="Spread", minClusters=2))
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    ready = condition(h.status("LLMDeployment", "m"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BelowMinClusters")


def test_what_does_not_fit_is_insufficient_gpu_with_free_and_total_per_candidate() -> None:
    h = three()
    status = run(h, model=spec(replicas=3, gpus=4))
    placed = condition(status, "Placed")
    assert (placed["status"], placed["reason"]) == ("False", "InsufficientGPU")
    assert "2 of 3 replica(s) cannot get GPUs" in placed["message"]
    assert "onprem2: no room: 4/4 NVIDIA-A100-SXM4-80GB free" in placed["message"]
    assert deployed(h, "onprem") == 1, "what fits runs; nothing waits Pending for GPUs"
    decision = {d["cluster"]: d for d in status["decision"]}
    assert decision["in-cluster"]["reason"] == "location cloud, not onprem"
    assert (decision["onprem2"]["gpusFree"], decision["onprem2"]["gpusTotal"]) == (4, 4)
    assert condition(status, "Ready")["reason"] == "InsufficientGPU"


def test_gpus_held_by_other_pods_are_not_free() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 2})]
    status = run(h, model=spec(gpus=4))
    assert condition(status, "Placed")["reason"] == "InsufficientGPU"
    assert "onprem: no room: 2/4 NVIDIA-L40S free" in condition(status, "Placed")["message"]


def test_a_burst_onto_limited_capacity_places_exactly_what_fits() -> None:
    h = Harness()
    for name in ("a", "b", "c"):
        run(h, name, spec(gpus=2))
    placed = [n for n in ("a", "b", "c") if deployed(h, "onprem", n)]
    assert placed == ["a", "b"]
    assert condition(h.status("LLMDeployment", "c"), "Placed")["reason"] == "InsufficientGPU"


def test_overflow_to_the_cloud_then_back_when_onprem_frees() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 4})]
    model = spec(replicas=1, overflow={"location": "cloud", "moveBackAfterSeconds": 0})
    status = run(h, model=model)
    assert shares(h) == {"in-cluster": ("overflow", 1, "Placed")}
    assert condition(status, "Degraded")["reason"] == "Overflowing"
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    # On-prem frees: the preferred location takes the replica; the cloud one serves until
    # it is ready (make-before-break).
    h.fleet.pods["onprem"] = []
    h.reconcile(KIND, "m")  # records the room
    h.reconcile(KIND, "m")
    assert shares(h) == {
        "onprem": ("preferred", 1, "Placed"),
        "in-cluster": ("overflow", 1, "Draining"),
    }
    assert deployed(h, "in-cluster") == 1
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 1, "Placed")}
    assert deployed(h, "in-cluster") is None


def test_overflow_stays_until_the_room_has_lasted() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 4})]
    run(h, model=spec(overflow={"location": "cloud"}))  # moveBackAfterSeconds: 300
    h.fleet.pods["onprem"] = []
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {"in-cluster": ("overflow", 1, "Placed")}
    assert h.status("LLMDeployment", "m")["placements"][0]["roomSince"]


def test_scale_in_removes_overflow_first() -> None:
    h = Harness()
    run(h, model=spec(replicas=3, overflow={"location": "cloud"}))
    assert shares(h) == {
        "onprem": ("preferred", 1, "Placed"),
        "in-cluster": ("overflow", 2, "Placed"),
    }
    ready_everywhere(h)
    h.update("LLMDeployment", "m", spec(replicas=1, overflow={"location": "cloud"}))
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 1, "Placed")}


def test_failover_after_the_grace_period_with_the_same_products_only() -> None:
    h = three()
    model = spec(gpus=2, failover={"afterSeconds": 0}, product=["NVIDIA-L40S"])
    run(h, model=model)
    assert shares(h) == {"onprem": ("preferred", 1, "Placed")}
    h.fleet.onprem.silent = True
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 1, "Unknown")}
    h.reconcile(KIND, "m")
    # onprem2 has A100s only: not an accepted product, so nothing moves there.
    assert shares(h) == {"onprem": ("preferred", 1, "Unknown")}
    assert deployed(h, "onprem2") is None
    assert condition(h.status("LLMDeployment", "m"), "Placed")["reason"] == "InsufficientGPU"


def test_failover_places_again_and_removes_the_replacement_when_the_member_is_back() -> None:
    h = three()
    model = spec(gpus=2, failover={"afterSeconds": 0})
    run(h, model=model)
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    h.fleet.onprem.silent = True
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {
        "onprem2": ("failover", 1, "Placed"),
        "onprem": ("preferred", 1, "Unknown"),
    }
    assert condition(h.status("LLMDeployment", "m"), "Degraded")["reason"] == "ClusterUnreachable"
    ready_everywhere(h)
    h.fleet.onprem.set_status("Deployment", NS, "m", {"readyReplicas": 0})  # restarting
    h.fleet.onprem.silent = False
    h.reconcile(KIND, "m")
    assert shares(h)["onprem"] == ("preferred", 1, "Placed")
    assert shares(h)["onprem2"][2] == "Draining", "the replacement serves until the member is ready"
    ready_everywhere(h)
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 1, "Placed")}
    assert deployed(h, "onprem2") is None


def test_without_failover_nothing_moves() -> None:
    h = three()
    run(h, model=spec(gpus=2))
    h.fleet.onprem.silent = True
    for _ in range(3):
        h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 1, "Unknown")}
    assert deployed(h, "onprem2") is None


def restricted(h: Harness) -> None:
    h.policies.policies["restricted-stays-onprem"] = RESTRICTED
    h.policies.namespace_labels[NS] = {"llmfleet.io/data-class": "restricted"}


def test_policy_refuses_an_overflow_to_the_cloud() -> None:
    h = Harness()
    restricted(h)
    h.fleet.pods["onprem"] = [PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 4})]
    status = run(h, model=spec(overflow={"location": "cloud"}))
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PolicyViolation")
    assert "spec.placement.overflow.location" in ready["message"]
    assert "restricted-stays-onprem" in ready["message"]
    assert deployed(h, "in-cluster") is None, "nothing of the forbidden part is applied"


def test_policy_stops_a_cloud_model_and_a_managed_one() -> None:
    h = Harness()
    restricted(h)
    status = run(h, model={**spec(), "placement": {"location": "cloud"}})
    assert condition(status, "Ready")["reason"] == "PolicyViolation"
    assert "spec.placement.location" in condition(status, "Ready")["message"]
    assert h.fleet.hub.names("Deployment") == set()


def test_a_tightened_policy_moves_overflow_home_or_stops_it() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 4})]
    run(h, model=spec(overflow={"location": "cloud"}))
    assert deployed(h, "in-cluster") == 1
    restricted(h)
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    # On-prem is full: the forbidden cloud replica cannot be replaced, so it stops.
    assert deployed(h, "in-cluster") is None
    status = h.status("LLMDeployment", "m")
    assert condition(status, "Ready")["reason"] == "PolicyViolation"
    assert condition(status, "Placed")["reason"] == "InsufficientGPU"


def test_a_pass_on_an_older_status_takes_its_own_pods_as_its_own_room() -> None:
    # A second pass may start from the body before the first pass's status arrived: the pods
    # that pass created are its own Deployment's, not someone else's claim on the GPUs.
    h = Harness()
    model = spec(replicas=2, gpus=2, overflow={"location": "cloud"})
    owner = owner_label("LLMDeployment", NS, "m")
    h.fleet.pods["onprem"] = [
        PodUse(f"{NS}/m-{i}", "onprem-gpu-0", {"nvidia.com/gpu": 2}, owner=owner) for i in range(2)
    ]
    run(h, model=model)
    assert shares(h) == {"onprem": ("preferred", 2, "Placed")}
    # With the status known, the same pods are what its placement there already holds.
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 2, "Placed")}
