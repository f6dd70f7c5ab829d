"""Autoscaled LLMDeployments through the engine: the load from a scripted Prometheus, the count
placed by the fleet placement (on-prem first, the cloud as overflow), status, Events, zero."""

from __future__ import annotations

from typing import Any

from llmfleet.names import owner_label
from llmfleet.placement.capacity import PodUse
from llmfleet.reconcile.load import LoadReader
from llmfleet.settings import Settings
from tests.unit.fakeapi import Harness, condition
from tests.unit.test_fleet_reconcile import KIND, deployed, ready_everywhere, shares, spec
from tests.unit.test_load_reader import HUB, Prometheus

OWNER = owner_label("LLMDeployment", "team", "m")
AUTOSCALED = spec(
    gpus=1,
    replicas=1,
    overflow={"location": "cloud", "moveBackAfterSeconds": 0},
    autoscaling={
        "minReplicas": 0,
        "maxReplicas": 8,
        "targetPerReplica": 8,
        "scaleDownDelaySeconds": 0,
        "scaleToZeroAfterSeconds": 0,
    },
)


def running(h: Harness) -> None:
    """The model's pods run and are ready where its Deployments ask for them."""
    ready_everywhere(h)
    for cluster, node in (("in-cluster", "cloud-gpu-0"), ("onprem", "onprem-gpu-0")):
        h.fleet.pods[cluster] = [
            PodUse(f"team/m-{i}", node, {"nvidia.com/gpu": 1}, owner=OWNER)
            for i in range(deployed(h, cluster) or 0)
        ]


def harness() -> tuple[Harness, Prometheus]:
    prometheus = Prometheus()
    h = Harness(settings=Settings(probe_providers=False, prometheus_url=HUB))
    h.context.load = LoadReader(query=prometheus.query)
    return h, prometheus


def load(h: Harness, prometheus: Prometheus, value: float) -> dict[str, Any]:
    """The model's pods report `value` in flight; Prometheus is read, then one pass."""
    prometheus.owners(HUB, "vllm", {OWNER: value})
    assert h.context.load is not None
    h.context.load.read_all()
    h.reconcile(KIND, "m")
    return h.status("LLMDeployment", "m")


def test_load_grows_onprem_then_overflows_and_shrinks_overflow_first_down_to_zero() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")  # nothing read yet: the starting count holds
    status = h.status("LLMDeployment", "m")
    assert status["autoscaling"]["desiredReplicas"] == 1
    assert status["autoscaling"]["reason"] == "started at spec.replicas (1)"
    assert condition(status, "Autoscaling")["reason"] == "MetricsUnavailable"
    running(h)

    status = load(h, prometheus, 48.0)  # asks for 6; one step goes from 1 to 5
    assert status["autoscaling"] == {
        "desiredReplicas": 5,
        "load": 48.0,
        "lastScaleTime": status["autoscaling"]["lastScaleTime"],
        "reason": "1 -> 5 replica(s): load 48 at 8 per replica",
    }
    assert shares(h) == {"onprem": ("preferred", 4, "Placed"), "in-cluster": ("overflow", 1, "Placed")}  # fmt: skip
    running(h)
    status = load(h, prometheus, 48.0)
    assert shares(h) == {"onprem": ("preferred", 4, "Placed"), "in-cluster": ("overflow", 2, "Placed")}  # fmt: skip
    assert condition(status, "Autoscaling")["reason"] == "ScaledUp"
    running(h)
    h.reconcile(KIND, "m")

    status = load(h, prometheus, 16.0)  # asks for 2: the cloud's go first
    assert status["autoscaling"]["desiredReplicas"] == 2
    running(h)
    h.reconcile(KIND, "m")
    h.reconcile(KIND, "m")
    assert shares(h) == {"onprem": ("preferred", 2, "Placed")}
    assert deployed(h, "in-cluster") is None

    status = load(h, prometheus, 0.0)  # idle (scaleToZeroAfterSeconds 0): asleep
    running(h)
    h.reconcile(KIND, "m")
    status = h.status("LLMDeployment", "m")
    assert status["autoscaling"]["desiredReplicas"] == 0
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["reason"] == "ScaledToZero"
    assert deployed(h, "onprem") == 0  # the model keeps its home, with no replica


def test_a_steady_load_writes_nothing() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    load(h, prometheus, 20.0)
    running(h)
    load(h, prometheus, 20.0)
    writes = h.status_writes
    for _ in range(3):
        outcome = load(h, prometheus, 20.0)
    assert h.status_writes == writes
    assert outcome["autoscaling"]["desiredReplicas"] == 3


def test_each_change_of_count_is_an_event() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    prometheus.owners(HUB, "vllm", {OWNER: 24.0})
    assert h.context.load is not None
    h.context.load.read_all()
    outcome = h.reconcile(KIND, "m")
    assert [(e.reason, e.message) for e in outcome.events if e.reason == "ScaledUp"] == [
        ("ScaledUp", "1 -> 3 replica(s): load 24 at 8 per replica")
    ]
    assert not [e for e in h.reconcile(KIND, "m").events if e.reason == "ScaledUp"]


def test_prometheus_down_holds_the_count_and_says_so() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    load(h, prometheus, 24.0)
    running(h)
    prometheus.down.add(HUB)
    status = load(h, prometheus, 0.0)
    autoscaling = condition(status, "Autoscaling")
    assert (autoscaling["status"], autoscaling["reason"]) == ("False", "MetricsUnavailable")
    assert "prom-hub" in autoscaling["message"]
    assert status["autoscaling"]["desiredReplicas"] == 3


def test_a_request_through_a_gateway_wakes_a_sleeping_model() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    prometheus.requests(HUB, {("team", "m"): 4.0})
    load(h, prometheus, 0.0)
    running(h)
    status = load(h, prometheus, 0.0)
    assert status["autoscaling"]["desiredReplicas"] == 0
    prometheus.requests(HUB, {("team", "m"): 5.0})
    status = load(h, prometheus, 0.0)
    assert status["autoscaling"]["desiredReplicas"] == 1
    assert condition(status, "Autoscaling")["reason"] == "Woken"
    assert deployed(h, "onprem") == 1


def test_without_autoscaling_the_spec_count_is_placed_and_no_autoscaling_status() -> None:
    h, _ = harness()
    h.create("LLMDeployment", "m", spec(gpus=1, replicas=2))
    h.reconcile(KIND, "m")
    status = h.status("LLMDeployment", "m")
    assert "autoscaling" not in status
    assert not condition(status, "Autoscaling")
    assert deployed(h, "onprem") == 2


def test_a_restarted_operator_writes_nothing_before_its_first_reading() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    load(h, prometheus, 20.0)
    running(h)
    load(h, prometheus, 20.0)
    before = h.status("LLMDeployment", "m")
    # A new process: nothing read yet, no timers.
    h.context.load, h.context.scaling = LoadReader(query=prometheus.query), {}
    writes = h.status_writes
    h.reconcile(KIND, "m")
    assert h.status_writes == writes
    assert h.status("LLMDeployment", "m") == before
    load(h, prometheus, 20.0)  # its first reading: the same load, still nothing to write
    assert h.status_writes == writes


def test_removing_autoscaling_returns_to_the_spec_count_and_forgets_the_timers() -> None:
    h, prometheus = harness()
    h.create("LLMDeployment", "m", AUTOSCALED)
    h.reconcile(KIND, "m")
    load(h, prometheus, 24.0)
    assert OWNER in h.context.scaling
    running(h)
    h.update("LLMDeployment", "m", spec(gpus=1, replicas=2))
    h.reconcile(KIND, "m")
    assert OWNER not in h.context.scaling
    assert "autoscaling" not in h.status("LLMDeployment", "m")
    assert deployed(h, "onprem") == 2
