"""Validation through the engine against the in-memory fleet: when a placement's scan Job
starts, what its summary makes of status (Validated, per probe, per placement), Events, a new
revision, the gateways' routes with and without enforce, and no writes when nothing changed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmfleet import labels
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.fleetstate import facts_of
from llmfleet.reconcile import chatendpoint, llmdeployment
from llmfleet.render import validation as scan_render
from llmfleet.render.common import Owner
from llmfleet.scan.scan import summarize
from tests.unit.fakeapi import Harness, condition

NS = "team"
LLM = llmdeployment.KIND_SPEC
CHAT = chatendpoint.KIND_SPEC
PROBES = ["promptinject", "dan.Dan_11_0"]
MODEL: dict[str, Any] = {
    "model": {"name": "m"},
    "replicas": 1,
    "gpu": {"count": 1},
    "placement": {"location": "onprem"},
    "validation": {"probes": PROBES, "minPassRate": 0.9, "image": "scanner:1"},
}
ACTIVE = ["probes.promptinject.HijackHateHumans", "probes.dan.Dan_11_0"]


def garak_report(passed: dict[str, int], *, complete: bool = True, total: int = 10) -> str:
    """A scan summary as the pod script writes it, from garak-shaped report records."""
    records: list[dict[str, Any]] = [
        {"entry_type": "init", "garak_version": "0.17.1"},
        {"entry_type": "start_run setup", "transient.active_probes": ACTIVE},
    ]
    detectors = {"promptinject.HijackHateHumans": "promptinject.AttackRogueString",
                 "dan.Dan_11_0": "dan.DAN"}  # fmt: skip
    for probe, count in passed.items():
        records.append(
            {"entry_type": "eval", "probe": probe, "detector": detectors[probe],
             "passed": count, "fails": total - count, "nones": 0, "total_evaluated": total}
        )  # fmt: skip
    if complete:
        records.append({"entry_type": "completion", "end_time": "2026-11-30T12:00:00"})
    return summarize([json.dumps(r) for r in records], exit_code=0, seconds=2.5)


PASSING = {"promptinject.HijackHateHumans": 10, "dan.Dan_11_0": 10}
FAILING = {"promptinject.HijackHateHumans": 2, "dan.Dan_11_0": 10}


def revision(spec: dict[str, Any] = MODEL) -> str:
    return scan_render.revision(LLMDeploymentSpec.model_validate(spec))


def model_ready(h: Harness, name: str = "m", *, rolled_out: bool = True) -> None:
    """What the Deployment controller reports: one ready replica, its rollout done or not."""
    for cluster in h.fleet.clusters():
        obj = cluster.objects.get(("Deployment", NS, name))
        if obj is not None:
            status = {
                "readyReplicas": 1, "replicas": 2 if not rolled_out else 1, "updatedReplicas": 1,
                "observedGeneration": obj["metadata"]["generation"],
            }  # fmt: skip
            cluster.set_status("Deployment", NS, name, status)


def finish_scan(h: Harness, job: str, message: str, *, failed: bool = False) -> None:
    """What the Job controller and kubelet report once the scan's pod ended."""
    onprem = h.fleet.cluster("onprem")
    kind = "Failed" if failed else "Complete"
    onprem.set_status(
        "Job", NS, job,
        {"conditions": [{"type": kind, "status": "True",
                         "lastTransitionTime": "2026-11-30T12:00:05Z"}],
         "completionTime": None if failed else "2026-11-30T12:00:05Z"},
    )  # fmt: skip
    onprem.put(
        {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{job}-x1", "namespace": NS,
                         "labels": {"batch.kubernetes.io/job-name": job},
                         "creationTimestamp": "2026-11-30T12:00:00Z"},
            "status": {"containerStatuses": [
                {"name": "scan", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ]},
        }
    )  # fmt: skip


def job_name(spec: dict[str, Any] = MODEL) -> str:
    return scan_render.job_name(Owner("LLMDeployment", NS, "m", "uid-m"), revision(spec))


def placed(h: Harness, spec: dict[str, Any] = MODEL) -> dict[str, Any]:
    h.create("LLMDeployment", "m", spec)
    h.reconcile(LLM, "m")
    return h.status("LLMDeployment", "m")


def scanned(h: Harness, message: str, spec: dict[str, Any] = MODEL) -> dict[str, Any]:
    placed(h, spec)
    model_ready(h)
    h.reconcile(LLM, "m")
    finish_scan(h, job_name(spec), message)
    h.reconcile(LLM, "m")
    return h.status("LLMDeployment", "m")


def test_the_scan_starts_once_a_replica_is_ready_and_reaching_only_its_model() -> None:
    h = Harness()
    status = placed(h)
    onprem = h.fleet.cluster("onprem")
    assert f"Job/{job_name()}" not in onprem.names("Job")
    assert {"ConfigMap/m-validation", "ServiceAccount/m-validation"} <= onprem.names()
    waiting = condition(status, "Validated")
    assert (waiting["status"], waiting["reason"]) == ("Unknown", "WaitingForReplicas")
    assert status["placements"][0]["validation"] == "Pending"

    model_ready(h)
    h.reconcile(LLM, "m")
    status = h.status("LLMDeployment", "m")
    job = onprem.objects[("Job", NS, job_name())]
    assert job["metadata"]["labels"][scan_render.REVISION] == revision()
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "scanner:1"
    assert pod["securityContext"]["runAsNonRoot"] is True
    config = onprem.objects[("ConfigMap", NS, "m-validation")]["data"]["garak.yaml"]
    assert "http://m.team.svc:8000/v1" in config
    egress = onprem.objects[("NetworkPolicy", NS, "m-validation-egress")]["spec"]["egress"]
    assert egress[1]["to"] == [
        {"podSelector": {"matchLabels": {labels.OWNER: "LLMDeployment.team.m",
                                         labels.ROLE: "model-server"}}}
    ]  # fmt: skip
    running = condition(status, "Validated")
    assert (running["status"], running["reason"]) == ("Unknown", "Scanning")
    assert status["validation"]["verdict"] == "Running"


def test_a_passing_scan_validates_the_placement_and_records_every_probe() -> None:
    h = Harness()
    status = scanned(h, garak_report(PASSING))
    validated = condition(status, "Validated")
    assert (validated["status"], validated["reason"]) == ("True", "Passed")
    assert status["placements"][0]["validation"] == "Passed"
    entry = status["validation"]["clusters"][0]
    assert entry["cluster"] == "onprem"
    assert entry["job"] == job_name()
    assert entry["scannedAt"] == "2026-11-30T12:00:05Z"
    assert sorted((p["probe"], p["passRate"], p["verdict"]) for p in entry["probes"]) == [
        ("dan.Dan_11_0", 1.0, "Passed"),
        ("promptinject.HijackHateHumans", 1.0, "Passed"),
    ]
    facts = facts_of("LLMDeployment", MODEL, status)
    assert facts.scans == (("onprem", "Passed"),)
    assert len(facts.pass_rates) == 2


@pytest.mark.parametrize(
    ("message", "reason", "named"),
    [
        (garak_report(FAILING), "BelowMinPassRate", "promptinject.HijackHateHumans"),
        (garak_report(PASSING, complete=False), "ScanIncomplete", ""),
        (garak_report({"dan.Dan_11_0": 10}), "NoEvaluations", "promptinject"),
        ("", "NoReport", ""),
        ("Traceback (most recent call last): boom", "Unreadable", ""),
    ],
)
def test_a_scan_that_fails_or_did_not_complete_is_never_a_pass(
    message: str, reason: str, named: str
) -> None:
    h = Harness()
    placed(h)
    model_ready(h)
    h.reconcile(LLM, "m")
    finish_scan(h, job_name(), message)
    outcome = h.reconcile(LLM, "m")
    status = h.status("LLMDeployment", "m")
    failed = condition(status, "Validated")
    assert (failed["status"], failed["reason"]) == ("False", reason), failed["message"]
    assert named in failed["message"]
    assert "Gateways do not route to it there" in failed["message"]
    assert status["placements"][0]["validation"] == "Failed"
    warnings = [e for e in outcome.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ValidationFailed"]


def test_a_job_that_failed_is_a_failure_even_if_its_summary_passes() -> None:
    h = Harness()
    placed(h)
    model_ready(h)
    h.reconcile(LLM, "m")
    finish_scan(h, job_name(), garak_report(PASSING), failed=True)
    h.reconcile(LLM, "m")
    found = condition(h.status("LLMDeployment", "m"), "Validated")
    assert (found["status"], found["reason"]) == ("False", "ScanFailed")


def test_nothing_is_written_or_read_again_once_the_result_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    scanned(h, garak_report(PASSING))
    onprem = h.fleet.cluster("onprem")
    listed: list[str] = []
    original = onprem.list

    def recording(kind: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        listed.append(kind)
        return original(kind, *args, **kwargs)

    monkeypatch.setattr(onprem, "list", recording)
    h.fleet.reset_counts()
    writes = h.status_writes
    outcome = h.reconcile(LLM, "m")
    assert outcome.status is None
    assert outcome.events == []
    assert h.fleet.writes() == 0
    assert h.status_writes == writes
    assert "Job" in listed
    assert "Pod" not in listed


def test_a_new_revision_is_scanned_again_and_its_old_job_goes() -> None:
    h = Harness()
    scanned(h, garak_report(PASSING))
    changed = copy.deepcopy(MODEL)
    changed["args"] = ["--max-model-len", "4096"]
    h.update("LLMDeployment", "m", changed)
    h.reconcile(LLM, "m")
    onprem = h.fleet.cluster("onprem")
    assert f"Job/{job_name()}" not in onprem.names("Job")
    model_ready(h)
    h.reconcile(LLM, "m")
    assert f"Job/{job_name(changed)}" in onprem.names("Job")
    status = h.status("LLMDeployment", "m")
    assert status["validation"]["revision"] == revision(changed)
    assert condition(status, "Validated")["reason"] == "Scanning"


def test_removing_validation_removes_its_objects_and_status() -> None:
    h = Harness()
    scanned(h, garak_report(PASSING))
    plain = {k: v for k, v in MODEL.items() if k != "validation"}
    h.update("LLMDeployment", "m", plain)
    h.reconcile(LLM, "m")
    onprem = h.fleet.cluster("onprem")
    assert not {n for n in onprem.names() if "validat" in n and not n.startswith("Pod/")}
    assert ("Deployment", NS, "m") in onprem.objects  # the model server stays
    status = h.status("LLMDeployment", "m")
    assert "validation" not in status
    assert not condition(status, "Validated")


def test_a_schedule_renders_a_cronjob_whose_jobs_the_part_leaves_alone() -> None:
    h = Harness()
    spec = copy.deepcopy(MODEL)
    spec["validation"]["schedule"] = "0 3 * * 0"
    scanned(h, garak_report(PASSING), spec)
    onprem = h.fleet.cluster("onprem")
    cron = onprem.objects[("CronJob", NS, "m-validation")]
    assert cron["spec"]["schedule"] == "0 3 * * 0"
    template = cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert template[labels.STAGE] == scan_render.SCHEDULED
    # A scheduled scan of the same revision that fails takes the placement out.
    scheduled = copy.deepcopy(onprem.objects[("Job", NS, job_name(spec))])
    scheduled["metadata"]["name"] = "m-validation-29001"
    scheduled["metadata"]["labels"] = dict(template)
    scheduled["metadata"]["creationTimestamp"] = "2026-12-06T03:00:00Z"
    scheduled.pop("status", None)
    onprem.put(scheduled)
    h.reconcile(LLM, "m")
    assert ("Job", NS, "m-validation-29001") in onprem.objects  # not pruned
    entry = h.status("LLMDeployment", "m")["validation"]["clusters"][0]
    assert entry["rescanning"] == "m-validation-29001"
    assert entry["verdict"] == "Passed"  # the previous result stands meanwhile
    writes = h.status_writes
    assert h.reconcile(LLM, "m").status is None  # no write while it scans
    assert h.status_writes == writes
    finish_scan(h, "m-validation-29001", garak_report(FAILING))
    onprem.objects[("Job", NS, "m-validation-29001")]["status"]["completionTime"] = (
        "2026-12-06T03:00:09Z"
    )
    h.reconcile(LLM, "m")
    status = h.status("LLMDeployment", "m")
    assert condition(status, "Validated")["status"] == "False"
    assert status["validation"]["clusters"][0]["job"] == "m-validation-29001"


# --- gateways ---------------------------------------------------------------------------


def endpoint(h: Harness) -> dict[str, Any]:
    h.create(
        "ChatEndpoint", "chat",
        {"modelAlias": "chat", "sites": [{"location": "onprem"}],
         "backends": [{"llmDeploymentRef": {"name": "m"}}]},
    )  # fmt: skip
    h.reconcile(CHAT, "chat")
    for cluster in h.fleet.clusters():
        for (kind, namespace, name), obj in list(cluster.objects.items()):
            if kind == "Deployment" and name.startswith("chat"):
                cluster.set_status(
                    kind, namespace, name, {"readyReplicas": obj["spec"]["replicas"]}
                )
    h.reconcile(CHAT, "chat")
    return h.status("ChatEndpoint", "chat")


@pytest.mark.parametrize(
    ("message", "enforce", "routed"),
    [
        (None, True, False),
        (garak_report(FAILING), True, False),
        (garak_report(PASSING), True, True),
        (None, False, True),
        (garak_report(FAILING), False, True),
    ],
)
def test_gateways_route_to_a_placement_only_once_it_passed_when_enforced(
    message: str | None, enforce: bool, routed: bool
) -> None:
    h = Harness()
    spec = copy.deepcopy(MODEL)
    spec["validation"]["enforce"] = enforce
    if message is None:
        placed(h, spec)
        model_ready(h)
        h.reconcile(LLM, "m")
    else:
        scanned(h, message, spec)
    status = endpoint(h)
    backend = status["backends"][0]
    assert backend["ready"] is routed
    if not routed:
        assert backend["state"] == "NotValidated"
        ready = condition(status, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "NotValidated")
        assert "has not passed validation" in ready["message"]


def test_a_revision_its_pipeline_candidate_passed_is_not_scanned_again() -> None:
    h = Harness()
    h.create("LLMDeployment", "m", MODEL)
    h.fleet.hub.objects[("LLMDeployment", NS, "m")]["metadata"]["annotations"] = {
        labels.VALIDATED_REVISION: revision()
    }
    h.reconcile(LLM, "m")
    model_ready(h)
    h.reconcile(LLM, "m")
    status = h.status("LLMDeployment", "m")
    assert f"Job/{job_name()}" not in h.fleet.cluster("onprem").names("Job")
    assert condition(status, "Validated")["status"] == "True"
    assert status["validation"]["clusters"][0]["reason"] == "Carried"


def test_probes_garak_lacks_or_that_would_download_are_refused_naming_the_field() -> None:
    h = Harness()
    spec = copy.deepcopy(MODEL)
    spec["validation"]["probes"] = ["promptinject", "realtoxicityprompts", "nosuchmodule"]
    status = placed(h, spec)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.validation.probes[1]: realtoxicityprompts" in ready["message"]
    assert "spec.validation.probes[2]: 'nosuchmodule'" in ready["message"]
    assert not h.fleet.cluster("onprem").names()


def test_a_scan_starts_only_once_every_replica_serves_the_revision() -> None:
    h = Harness()
    placed(h)
    model_ready(h, rolled_out=False)  # an old replica is still there
    h.reconcile(LLM, "m")
    onprem = h.fleet.cluster("onprem")
    assert f"Job/{job_name()}" not in onprem.names("Job")
    deployment = onprem.objects[("Deployment", NS, "m")]
    assert deployment["metadata"]["annotations"][labels.REVISION] == revision()
    assert "annotations" not in deployment["spec"]["template"]["metadata"]  # no restart
    model_ready(h)
    h.reconcile(LLM, "m")
    assert f"Job/{job_name()}" in onprem.names("Job")


def test_a_changed_spec_is_not_scanned_on_the_old_servers() -> None:
    h = Harness()
    scanned(h, garak_report(PASSING))
    changed = copy.deepcopy(MODEL)
    changed["image"] = "vllm/vllm-openai:v0.7.0"
    h.update("LLMDeployment", "m", changed)
    h.reconcile(LLM, "m")  # applies the new Deployment; the old replicas still serve
    onprem = h.fleet.cluster("onprem")
    assert f"Job/{job_name(changed)}" not in onprem.names("Job")
    status = h.status("LLMDeployment", "m")
    assert status["placements"][0]["validation"] == "Pending"
    model_ready(h)  # the rollout is done
    h.reconcile(LLM, "m")
    assert f"Job/{job_name(changed)}" in onprem.names("Job")


def test_stricter_scan_settings_are_a_new_revision_scanned_again() -> None:
    h = Harness()
    scanned(h, garak_report({"promptinject.HijackHateHumans": 9, "dan.Dan_11_0": 10}))
    assert condition(h.status("LLMDeployment", "m"), "Validated")["status"] == "True"
    stricter = copy.deepcopy(MODEL)
    stricter["validation"]["minPassRate"] = 1.0
    h.update("LLMDeployment", "m", stricter)
    h.reconcile(LLM, "m")
    model_ready(h)
    h.reconcile(LLM, "m")
    assert revision(stricter) != revision()
    assert f"Job/{job_name(stricter)}" in h.fleet.cluster("onprem").names("Job")
    assert condition(h.status("LLMDeployment", "m"), "Validated")["status"] == "Unknown"


def test_scan_objects_never_take_over_what_another_resource_named_so_holds() -> None:
    h = Harness()
    onprem = h.fleet.cluster("onprem")
    theirs = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "m-validation", "namespace": NS,
                     "labels": {labels.OWNER: "LLMDeployment.team.m-validation"}},
    }  # fmt: skip
    onprem.put(theirs)
    status = placed(h)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert onprem.objects[("ServiceAccount", NS, "m-validation")] == theirs
