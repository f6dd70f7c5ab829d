"""Gated rollout through the engine against the in-memory fleet: with inference.validation a
new run is served by a candidate LLMDeployment until its scan passed; a run that fails keeps
the current one serving; a rollback to a run that passed moves at once, without a scan."""

from __future__ import annotations

import copy
from typing import Any

from llmfleet import labels
from llmfleet.reconcile import mlpipeline
from llmfleet.reconcile.mlpipeline import gate
from llmfleet.render import mlpipeline as render
from llmfleet.render.common import Owner
from tests.unit.fakeapi import Harness, condition
from tests.unit.test_mlpipeline_fleet import PIPELINE, complete

NS = "team"
KIND = mlpipeline.KIND_SPEC
GATED: dict[str, Any] = {
    **copy.deepcopy(PIPELINE),
    "inference": {
        **PIPELINE["inference"],
        "validation": {"probes": ["promptinject"], "schedule": "@weekly"},
    },
}
OWNER = Owner("MLPipeline", NS, "ml", "uid-ml")


def train(h: Harness) -> str:
    """Reconciles until the desired run's Job completed; returns its run id."""
    h.reconcile(KIND, "ml")
    spec = mlpipeline.MLPipelineSpec.model_validate(h.body("MLPipeline", "ml")["spec"])
    run = render.run_of(spec, "ml")
    complete(h.fleet.onprem, render.job_name(OWNER, run))
    h.reconcile(KIND, "ml")
    return run.id


def llm(h: Harness, name: str) -> dict[str, Any] | None:
    obj = h.fleet.hub.objects.get(("LLMDeployment", NS, name))
    return copy.deepcopy(obj) if obj is not None else None


def scan_says(h: Harness, name: str, run_id: str, verdict: str, message: str = "") -> None:
    """What the LLMDeployment's own reconcile reports once its scan finished."""
    spec = mlpipeline.MLPipelineSpec.model_validate(h.body("MLPipeline", "ml")["spec"])
    record = next(r for r in h.status("MLPipeline", "ml")["runs"] if r["id"] == run_id)
    run = render.Run(run_id, int(record["run"]), str(record["artifact"]))
    revision = gate.run_revision(spec, OWNER, run)
    h.fleet.hub.set_status(
        "LLMDeployment", NS, name,
        {"validation": {"revision": revision, "verdict": verdict, "message": message}},
    )  # fmt: skip


def test_the_first_run_serves_at_once_and_its_own_scan_is_recorded() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", GATED)
    first = train(h)
    main = llm(h, "ml")
    assert main is not None
    assert main["spec"]["validation"]["schedule"] == "@weekly"
    assert llm(h, render.candidate_name(OWNER)) is None
    assert h.status("MLPipeline", "ml")["servingRun"] == first
    scan_says(h, "ml", first, "Passed")
    h.reconcile(KIND, "ml")
    (record,) = h.status("MLPipeline", "ml")["runs"]
    assert record["validation"] == "Passed"
    main = llm(h, "ml")
    assert main is not None
    assert main["metadata"]["annotations"][labels.VALIDATED_REVISION]


def gated_second_run(h: Harness) -> tuple[str, str]:
    h.create("MLPipeline", "ml", GATED)
    first = train(h)
    scan_says(h, "ml", first, "Passed")
    h.reconcile(KIND, "ml")
    h.update("MLPipeline", "ml", {**GATED, "run": 1})
    second = train(h)
    return first, second


def test_a_new_run_is_scanned_by_a_candidate_while_the_current_run_serves() -> None:
    h = Harness()
    first, second = gated_second_run(h)
    status = h.status("MLPipeline", "ml")
    assert status["servingRun"] == first
    candidate = llm(h, render.candidate_name(OWNER))
    assert candidate is not None
    assert candidate["metadata"]["annotations"][render.RUN_ANNOTATION] == second
    assert candidate["spec"]["validation"]["enforce"] is True
    assert "schedule" not in candidate["spec"]["validation"]
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Validating")
    assert f"run {first} keeps serving" in ready["message"]
    # No gateway routes to the candidate: the endpoint names the serving model only.
    chat = h.fleet.hub.objects[("ChatEndpoint", NS, "ml")]
    assert chat["spec"]["backends"] == [{"llmDeploymentRef": {"name": "ml"}}]


def test_a_run_that_passed_its_scan_is_rolled_out_without_a_second_scan() -> None:
    h = Harness()
    _, second = gated_second_run(h)
    scan_says(h, render.candidate_name(OWNER), second, "Passed")
    outcome = h.reconcile(KIND, "ml")
    status = h.status("MLPipeline", "ml")
    assert status["servingRun"] == second
    assert llm(h, render.candidate_name(OWNER)) is None
    main = llm(h, "ml")
    assert main is not None
    spec = mlpipeline.MLPipelineSpec.model_validate(h.body("MLPipeline", "ml")["spec"])
    record = status["runs"][0]
    run = render.Run(second, 1, record["artifact"])
    assert main["metadata"]["annotations"][labels.VALIDATED_REVISION] == gate.run_revision(
        spec, OWNER, run
    )
    assert "RolledOut" in [e.reason for e in outcome.events]


def test_a_run_that_fails_its_scan_is_blocked_and_the_current_run_keeps_serving() -> None:
    h = Harness()
    first, second = gated_second_run(h)
    scan_says(h, render.candidate_name(OWNER), second, "Failed", "promptinject 20%")
    outcome = h.reconcile(KIND, "ml")
    status = h.status("MLPipeline", "ml")
    assert status["servingRun"] == first
    assert llm(h, render.candidate_name(OWNER)) is None
    blocked = next(r for r in status["runs"] if r["id"] == second)
    assert (blocked["validation"], blocked["validationMessage"]) == ("Failed", "promptinject 20%")
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolloutBlocked")
    assert "promptinject 20%" in ready["message"]
    assert [e.reason for e in outcome.events if e.type == "Warning"] == ["RolloutBlocked"]
    # Level-based: the next pass neither rescans nor repeats the Event.
    again = h.reconcile(KIND, "ml")
    assert again.status is None
    assert again.events == []
    assert llm(h, render.candidate_name(OWNER)) is None


def test_a_rollback_to_a_run_that_passed_moves_at_once() -> None:
    h = Harness()
    first, second = gated_second_run(h)
    scan_says(h, render.candidate_name(OWNER), second, "Passed")
    h.reconcile(KIND, "ml")
    h.update("MLPipeline", "ml", {**GATED, "run": 0})
    h.reconcile(KIND, "ml")
    status = h.status("MLPipeline", "ml")
    assert status["servingRun"] == first
    assert llm(h, render.candidate_name(OWNER)) is None
    main = llm(h, "ml")
    assert main is not None
    assert main["metadata"]["annotations"][render.RUN_ANNOTATION] == first
    assert main["metadata"]["annotations"][labels.VALIDATED_REVISION]


def test_probes_that_would_download_are_refused_naming_the_field() -> None:
    h = Harness()
    spec = copy.deepcopy(GATED)
    spec["inference"]["validation"]["probes"] = ["promptinject", "atkgen"]
    h.create("MLPipeline", "ml", spec)
    h.reconcile(KIND, "ml")
    ready = condition(h.status("MLPipeline", "ml"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec.inference.validation.probes[1]: atkgen")
    assert not h.fleet.onprem.names("Job")


def test_a_verdict_holds_only_for_the_revision_it_judged() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", GATED)
    first = train(h)
    scan_says(h, "ml", first, "Passed")
    h.reconcile(KIND, "ml")
    changed = copy.deepcopy(GATED)
    changed["inference"]["image"] = "registry.example/vllm:untested"
    h.update("MLPipeline", "ml", changed)
    h.reconcile(KIND, "ml")
    (record,) = h.status("MLPipeline", "ml")["runs"]
    assert "validation" not in record  # the new image is scanned before it counts
    main = llm(h, "ml")
    assert main is not None
    assert labels.VALIDATED_REVISION not in main["metadata"]["annotations"]


def test_after_a_failed_first_run_the_next_run_is_served_directly() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", GATED)
    first = train(h)
    scan_says(h, "ml", first, "Failed", "dan 0%")
    h.reconcile(KIND, "ml")
    ready = condition(h.status("MLPipeline", "ml"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ValidationFailed")
    h.update("MLPipeline", "ml", {**GATED, "run": 1})
    second = train(h)
    assert h.status("MLPipeline", "ml")["servingRun"] == second
    assert llm(h, render.candidate_name(OWNER)) is None


def test_a_scheduled_scan_that_fails_is_recorded_on_the_serving_run() -> None:
    h = Harness()
    first, second = gated_second_run(h)
    scan_says(h, render.candidate_name(OWNER), second, "Passed")
    h.reconcile(KIND, "ml")
    scan_says(h, "ml", second, "Failed", "weekly scan: promptinject 40%")
    h.reconcile(KIND, "ml")
    record = next(r for r in h.status("MLPipeline", "ml")["runs"] if r["id"] == second)
    assert (record["validation"], record["validationMessage"]) == (
        "Failed",
        "weekly scan: promptinject 40%",
    )
    assert first != second


def test_the_candidate_says_why_it_is_not_scanned_yet() -> None:
    h = Harness()
    _, _ = gated_second_run(h)
    h.fleet.hub.set_status(
        "LLMDeployment", NS, render.candidate_name(OWNER),
        {"conditions": [{"type": "Ready", "status": "False", "reason": "InsufficientGPU",
                         "message": "1 of 1 replica(s) cannot get GPUs"}]},
    )  # fmt: skip
    h.reconcile(KIND, "ml")
    ready = condition(h.status("MLPipeline", "ml"), "Ready")
    assert ready["reason"] == "Validating"
    assert "InsufficientGPU: 1 of 1 replica(s) cannot get GPUs" in ready["message"]


def test_enforce_false_records_without_gating_the_rollout() -> None:
    h = Harness()
    relaxed = copy.deepcopy(GATED)
    relaxed["inference"]["validation"]["enforce"] = False
    h.create("MLPipeline", "ml", relaxed)
    train(h)
    h.update("MLPipeline", "ml", {**relaxed, "run": 1})
    second = train(h)
    assert h.status("MLPipeline", "ml")["servingRun"] == second
    assert llm(h, render.candidate_name(OWNER)) is None
