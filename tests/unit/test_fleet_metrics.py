"""Metrics of the fleet: free and allocatable GPUs per cluster and product, replicas by role,
policy violations."""

from __future__ import annotations

from prometheus_client import REGISTRY

from llmfleet import metrics
from llmfleet.fleetstate import FleetState, facts_of
from llmfleet.kube.federation import gpu_rows
from llmfleet.placement.capacity import NodeInfo, PodUse
from llmfleet.placement.clusters import MemberCluster

ONPREM = MemberCluster("hci", "onprem")


def test_gpu_rows_count_bound_pods_and_leave_offline_nodes_without_free_gpus() -> None:
    nodes = [
        NodeInfo("a", "onprem", "L40S", {"nvidia.com/gpu": "4"}),
        NodeInfo("b", "onprem", "L40S", {"nvidia.com/gpu": "4"}, unschedulable=True),
        NodeInfo("c", "onprem", "A100", {"nvidia.com/gpu": "2"}, ready=False),
        NodeInfo("cpu", "onprem", None, {"cpu": "8"}),
    ]
    pods = [
        PodUse("t/p", "a", {"nvidia.com/gpu": 3}),
        PodUse("t/waiting", "", {"nvidia.com/gpu": 4}),
    ]
    assert gpu_rows(ONPREM, nodes, pods) == [
        ("hci", "onprem", "A100", 0, 2),
        ("hci", "onprem", "L40S", 1, 8),
    ]


def test_replicas_by_role_and_policy_violations_are_collected() -> None:
    state = FleetState()
    spec = {"placement": {"location": "onprem"}, "replicas": 3, "gpu": {"count": 1}}
    status = {
        "placements": [
            {"cluster": "hci", "location": "onprem", "role": "preferred", "state": "Placed",
             "replicas": 2},
            {"cluster": "cloud", "location": "cloud", "role": "overflow", "state": "Placed",
             "replicas": 1},
            {"cluster": "old", "location": "cloud", "role": "overflow", "state": "Draining",
             "replicas": 1},
        ],
        "conditions": [{"type": "Ready", "status": "False", "reason": "PolicyViolation"}],
    }  # fmt: skip
    state.record(("LLMDeployment", "team", "m"), facts_of("LLMDeployment", spec, status))
    families = {f.name: f for f in state.collect()}
    replicas = {tuple(s.labels.values()): s.value for s in families["llmfleet_replicas"].samples}
    assert replicas == {("hci", "onprem", "preferred"): 2, ("cloud", "cloud", "overflow"): 1}
    violations = [(s.labels, s.value) for s in families["llmfleet_policy_violations"].samples]
    assert violations == [({"kind": "LLMDeployment", "namespace": "team"}, 1)]


def test_autoscaled_models_report_load_desired_and_ready_replicas_per_location() -> None:
    state = FleetState()
    spec = {
        "placement": {"location": "onprem"},
        "replicas": 1,
        "gpu": {"count": 2},
        "autoscaling": {"maxReplicas": 8},
    }
    status = {
        "autoscaling": {"desiredReplicas": 5, "load": 37.5},
        "placements": [
            {"cluster": "hci", "location": "onprem", "state": "Placed", "replicas": 4,
             "readyReplicas": 4},
            {"cluster": "cloud", "location": "cloud", "state": "Placed", "replicas": 1,
             "readyReplicas": 0},
        ],
    }  # fmt: skip
    state.record(("LLMDeployment", "t", "m"), facts_of("LLMDeployment", spec, status))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in state.collect()
        for s in family.samples
    }
    assert samples[("llmfleet_autoscaling_load", (("name", "m"), ("namespace", "t")))] == 37.5
    assert samples[("llmfleet_autoscaling_desired_replicas", (("name", "m"), ("namespace", "t")))] == 5  # fmt: skip
    ready = "llmfleet_autoscaling_ready_replicas"
    assert samples[(ready, (("location", "onprem"), ("name", "m"), ("namespace", "t")))] == 4
    assert samples[(ready, (("location", "cloud"), ("name", "m"), ("namespace", "t")))] == 0
    # GPUs asked follow the count the load asks for, not the starting replicas.
    gpus = [v for (n, _), v in samples.items() if n == "llmfleet_gpus_requested"]
    assert gpus == [10]


def test_reconcile_errors_start_at_zero_for_every_kind_and_reason() -> None:
    metrics.zero_reconcile_errors(["LLMDeployment", "MLPipeline"])
    for kind in ("LLMDeployment", "MLPipeline"):
        for reason in ("Gone", "KubeError", "Forbidden"):
            labels = {"kind": kind, "reason": reason}
            assert REGISTRY.get_sample_value("llmfleet_reconcile_errors_total", labels) == 0


def test_a_removed_member_leaves_no_series_behind() -> None:
    metrics.CLUSTER_REACHABLE.labels("gone-hci", "onprem").set(0)
    metrics.CLUSTER_REACHABLE.labels("kept-hci", "onprem").set(1)
    metrics.CACHE_SYNCED.labels("gone-hci", "Deployment").set(1)
    metrics.forget_cluster("gone-hci")
    reachable = "llmfleet_cluster_reachable"
    assert (
        REGISTRY.get_sample_value(reachable, {"cluster": "gone-hci", "location": "onprem"}) is None
    )
    assert REGISTRY.get_sample_value(reachable, {"cluster": "kept-hci", "location": "onprem"}) == 1
    synced = {"cluster": "gone-hci", "kind": "Deployment"}
    assert REGISTRY.get_sample_value("llmfleet_watch_synced", synced) is None
