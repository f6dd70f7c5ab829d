"""MLPipelines over the fleet through the engine: stages at locations a FleetPolicy forbids
create nothing, and training runs take free GPUs through the ledger, queued while there are
none, against the in-memory fleet (cloud 8 x H100, onprem 4 x L40S)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmfleet.handlers.common import waits_for_room
from llmfleet.placement.capacity import PodUse
from llmfleet.reconcile import mlpipeline
from tests.unit.fakeapi import FakeCluster, Harness, condition

NS = "team"
KIND = mlpipeline.KIND_SPEC
PIPELINE: dict[str, Any] = {
    "model": {"base": "hf://meta-llama/Llama-3.1-8B", "artifactURI": "s3://models/{name}/{run}"},
    "training": {
        "placement": {"location": "onprem"},
        "image": "registry.example/trainer:1.0",
        "gpu": {"count": 4},
        "dataset": {"uri": "pvc://datasets/tickets"},
    },
    "inference": {"placement": {"location": "onprem"}, "gpu": {"count": 1}},
    "endpoint": {"placement": {"location": "onprem"}},
}
# Another workload's pod holding half of onprem's GPUs.
OTHER = PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 2}, owner="x")


def pipeline(**locations: str) -> dict[str, Any]:
    spec = copy.deepcopy(PIPELINE)
    for stage, location in locations.items():
        spec[stage]["placement"] = {"location": location}
    return spec


def stage(h: Harness, name: str, which: str) -> dict[str, Any]:
    stages = h.status("MLPipeline", name)["stages"]
    return dict(next(s for s in stages if s["name"] == which))


def jobs(h: Harness) -> set[str]:
    return {n for c in h.fleet.clusters() for n in c.names("Job")}


def complete(cluster: FakeCluster, job: str) -> None:
    done = [{"type": "Complete", "status": "True"}]
    status = {"succeeded": 1, "completionTime": "2026-01-01T00:00:00Z", "conditions": done}
    cluster.set_status("Job", NS, job, status)


def trained(h: Harness, name: str = "ml") -> None:
    """The pipeline's first run trained on onprem."""
    h.reconcile(KIND, name)
    (job,) = [n.split("/")[1] for n in h.fleet.onprem.names("Job")]
    complete(h.fleet.onprem, job)
    h.reconcile(KIND, name)


def policy(h: Harness, **rules: Any) -> None:
    h.policies.policies["team-rules"] = {
        "namespaceSelector": {"matchLabels": {"data-class": "restricted"}},
        **rules,
    }
    h.policies.namespace_labels[NS] = {"data-class": "restricted"}


# --- FleetPolicies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "locations", "refused", "absent"),
    [
        ({"allowedLocations": ["onprem"]}, {"training": "cloud"}, "training", "Job"),
        ({"allowedLocations": ["onprem"]}, {"inference": "cloud"}, "inference", "LLMDeployment"),
        ({"allowedLocations": ["onprem"]}, {"endpoint": "cloud"}, "endpoint", "ChatEndpoint"),
        (
            {"crossLocationRouting": "Deny"},
            {"endpoint": "cloud"},  # in front of an onprem model
            "endpoint",
            "ChatEndpoint",
        ),
    ],
    ids=["training", "inference", "endpoint", "endpoint-crossing"],
)
def test_a_stage_a_policy_forbids_creates_nothing_and_says_which_field(
    rules: dict[str, Any], locations: dict[str, str], refused: str, absent: str
) -> None:
    h = Harness()
    policy(h, **rules)
    h.create("MLPipeline", "ml", pipeline(**locations))
    outcome = h.reconcile(KIND, "ml")
    if refused != "training":
        (job,) = [n.split("/")[1] for n in h.fleet.onprem.names("Job")]
        complete(h.fleet.onprem, job)
        h.reconcile(KIND, "ml")
    status = h.status("MLPipeline", "ml")
    ready, degraded = condition(status, "Ready"), condition(status, "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "PolicyViolation")
    assert (degraded["status"], degraded["reason"]) == ("True", "PolicyViolation")
    assert f"spec.{refused}.placement.location" in ready["message"]
    assert "FleetPolicy team-rules" in ready["message"]
    assert stage(h, "ml", refused)["phase"] == "Refused"
    found = {n for c in h.fleet.clusters() for n in c.names(absent)}
    assert not found, "nothing of the forbidden stage is created"
    if refused == "inference":
        assert not h.fleet.hub.names("ChatEndpoint"), "an endpoint without its model is not either"
    if refused == "training":
        assert ("Warning", "TrainingRefused") in [(e.type, e.reason) for e in outcome.events]
    h.fleet.reset_counts()
    again = h.reconcile(KIND, "ml")
    assert (again.status, h.fleet.writes()) == (None, 0)


def test_a_tightened_policy_removes_the_stage_it_forbids() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", pipeline(endpoint="cloud"))
    trained(h)
    assert "ChatEndpoint/ml" in h.fleet.hub.names()
    policy(h, allowedLocations=["onprem"])
    h.reconcile(KIND, "ml")
    assert "ChatEndpoint/ml" not in h.fleet.hub.names()
    assert "LLMDeployment/ml" in h.fleet.hub.names(), "the allowed stages stay"
    assert condition(h.status("MLPipeline", "ml"), "Ready")["reason"] == "PolicyViolation"


# --- training on free GPUs --------------------------------------------------------------------


def test_a_training_run_queues_while_gpus_are_short_and_starts_once_they_free() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [OTHER]
    h.create("MLPipeline", "ml", PIPELINE)
    outcome = h.reconcile(KIND, "ml")
    assert not jobs(h), "no Job waits Pending for GPUs"
    training = stage(h, "ml", "training")
    assert training["phase"] == "Queued"
    assert "onprem: 2/4 NVIDIA-L40S free" in training["message"]
    status = h.status("MLPipeline", "ml")
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Queued")
    assert "4 x nvidia.com/gpu" in ready["message"]
    assert condition(status, "Degraded")["status"] == "False", "waiting for room is no fault"
    assert waits_for_room(status), "woken when room opens"
    assert ("Normal", "TrainingQueued") in [(e.type, e.reason) for e in outcome.events]
    h.fleet.reset_counts()
    assert h.reconcile(KIND, "ml").status is None
    assert h.fleet.writes() == 0

    h.fleet.pods["onprem"] = []
    h.reconcile(KIND, "ml")
    assert len(h.fleet.onprem.names("Job")) == 1
    assert stage(h, "ml", "training")["phase"] == "Pending"
    assert condition(h.status("MLPipeline", "ml"), "Ready")["reason"] == "Training"


def test_a_job_that_exists_keeps_its_cluster_when_the_gpus_fill_up() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", PIPELINE)
    h.reconcile(KIND, "ml")
    (job,) = h.fleet.onprem.names("Job")
    h.fleet.pods["onprem"] = [
        PodUse("x/other", "onprem-gpu-0", {"nvidia.com/gpu": 4}, owner="x"),
    ]
    h.fleet.reset_counts()
    h.reconcile(KIND, "ml")
    assert h.fleet.onprem.names("Job") == {job}
    assert h.fleet.writes() == 0
    assert stage(h, "ml", "training")["phase"] == "Pending"


def test_two_pipelines_onto_room_for_one_train_one_after_the_other() -> None:
    h = Harness()
    for name in ("a", "b"):
        h.create("MLPipeline", name, PIPELINE)
        h.reconcile(KIND, name)
    assert [stage(h, n, "training")["phase"] for n in ("a", "b")] == ["Pending", "Queued"]
    assert len(jobs(h)) == 1, "the decision is recorded before the pod is visible"
    (job,) = [n.split("/")[1] for n in h.fleet.onprem.names("Job")]
    complete(h.fleet.onprem, job)
    h.reconcile(KIND, "a")  # done: its GPUs are no longer held for it
    h.reconcile(KIND, "b")
    assert stage(h, "b", "training")["phase"] == "Pending"
    assert len(jobs(h)) == 2


def test_a_run_no_node_could_ever_hold_is_unschedulable_not_queued() -> None:
    h = Harness()
    spec = copy.deepcopy(PIPELINE)
    spec["training"]["gpu"] = {"count": 2, "product": ["NVIDIA-B200"]}
    h.create("MLPipeline", "ml", spec)
    h.reconcile(KIND, "ml")
    training = stage(h, "ml", "training")
    assert training["phase"] == "Unschedulable"
    assert condition(h.status("MLPipeline", "ml"), "Ready")["reason"] == "InsufficientGPU"
    assert not jobs(h)
