"""The MLPipeline builders and the pure decisions of its reconcile: run ids, the training Job,
the owned LLMDeployment and ChatEndpoint, the drift CronJob, which run serves, and scores."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet import labels
from llmfleet.api import MLPipelineSpec
from llmfleet.api.chatendpoint import ChatEndpointSpec
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.reconcile import mlpipeline as reconcile
from llmfleet.reconcile.mlpipeline import drift as drifts
from llmfleet.render import mlpipeline as render
from llmfleet.render.common import Owner

OWNER = Owner("MLPipeline", "team-a", "support-bot", "uid-1")


def spec(**overrides: Any) -> MLPipelineSpec:
    base: dict[str, Any] = {
        "model": {
            "base": "hf://meta-llama/Llama-3.1-8B",
            "artifactURI": "s3://models/team-a/{name}/{run}",
        },
        "training": {
            "placement": {"location": "onprem"},
            "image": "registry.example/trainer:1.0",
            "command": ["python", "train.py"],
            "gpu": {"count": 4, "product": ["NVIDIA-L40S"]},
            "dataset": {"uri": "pvc://datasets/support-tickets"},
        },
        "inference": {"placement": {"location": "cloud"}, "gpu": {"count": 1}, "replicas": 2},
        "endpoint": {"placement": {"location": "cloud"}},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return MLPipelineSpec.model_validate(base)


def job_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Job")


# --- runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "new_run"),
    [
        ({}, False),
        ({"run": 1}, True),
        ({"training": {"image": "registry.example/trainer:1.1"}}, True),
        ({"training": {"dataset": {"uri": "pvc://datasets/other"}}}, True),
        ({"model": {"base": "hf://mistralai/Mistral-7B-v0.3"}}, True),
        ({"inference": {"replicas": 5}}, False),  # serving changes never retrain
        (
            {
                "endpoint": {
                    "placement": {"location": "cloud"},
                    "rateLimit": {"requestsPerMinute": 9},
                }
            },
            False,
        ),
        ({"monitoring": {"drift": {"schedule": "@hourly", "threshold": 0.3}}}, False),
    ],
)
def test_a_run_is_a_training_spec(change: dict[str, Any], new_run: bool) -> None:
    before = render.run_of(spec(), OWNER.name)
    after = render.run_of(spec(**change), OWNER.name)
    assert (before.id != after.id) is new_run
    assert (before.artifact != after.artifact) is new_run


def test_run_id_fills_the_artifact_template() -> None:
    run = render.run_of(spec(run=3), OWNER.name)
    assert run.id.startswith("3-")
    assert len(run.id) == 10
    assert run.artifact == f"s3://models/team-a/support-bot/{run.id}"


def test_job_names_fit_pod_labels_and_stay_unique_for_long_pipeline_names() -> None:
    long_a = Owner("MLPipeline", "team-a", "a" * 200, "u")
    long_b = Owner("MLPipeline", "team-a", "a" * 199 + "b", "u")
    run = render.run_of(spec(run=1_000_000), long_a.name)
    names = {render.job_name(o, run) for o in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(n) <= 63 for n in names)
    assert all(len(render.drift_name(o)) <= 52 for o in (long_a, long_b))


# --- training -------------------------------------------------------------------------------


def test_training_job_is_gpu_scheduled_at_its_location_and_hardened() -> None:
    run = render.run_of(spec(), OWNER.name)
    job = job_of(render.training(spec(), OWNER, run, in_owner_cluster=False))
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": labels.LOCATION, "operator": "In", "values": ["onprem"]} in expressions
    assert {"key": labels.GPU_PRODUCT, "operator": "In", "values": ["NVIDIA-L40S"]} in expressions
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 86400
    # A member cluster's Job carries the owner label, never an ownerReference.
    assert "ownerReferences" not in job["metadata"]
    assert job["metadata"]["labels"][labels.OWNER] == OWNER.label


def test_training_gets_base_model_dataset_and_artifact() -> None:
    run = render.run_of(spec(), OWNER.name)
    job = job_of(render.training(spec(), OWNER, run, in_owner_cluster=True))
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["LLMFLEET_BASE_MODEL"] == "hf://meta-llama/Llama-3.1-8B"
    assert env["LLMFLEET_DATASET"] == "/data/dataset/support-tickets"  # pvc:// is mounted
    assert env["LLMFLEET_DATASET_URI"] == "pvc://datasets/support-tickets"
    assert env["LLMFLEET_ARTIFACT"] == run.artifact
    assert env["LLMFLEET_RUN"] == run.id
    claims = {
        v["name"]: v["persistentVolumeClaim"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"dataset": {"claimName": "datasets", "readOnly": True}}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "MLPipeline"


def test_training_has_no_ingress_and_egress_only_to_dns_and_public_sources() -> None:
    run = render.run_of(spec(), OWNER.name)
    objects = render.training(spec(), OWNER, run, in_owner_cluster=True)
    found = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    name = render.job_name(OWNER, run)
    assert found[f"{name}-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    egress = found[f"{name}-egress"]["egress"]
    assert egress[0]["ports"][0]["port"] == 53
    assert egress[1]["ports"] == [{"protocol": "TCP", "port": 443}]  # hf://, s3://
    selector = found[f"{name}-default-deny"]["podSelector"]["matchLabels"]
    pod_labels = job_of(objects)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels[labels.ROLE] == "training"


def test_private_sources_only_get_no_public_egress() -> None:
    private = spec(model={"base": "pvc://models/llama", "artifactURI": "pvc://models/out/{run}"})
    run = render.run_of(private, OWNER.name)
    objects = render.training(private, OWNER, run, in_owner_cluster=True)
    egress = next(o for o in objects if o["metadata"]["name"].endswith("-egress"))
    assert len(egress["spec"]["egress"]) == 1  # DNS only


# --- inference and endpoint -----------------------------------------------------------------


def test_inference_is_a_valid_llmdeployment_serving_the_artifact() -> None:
    s = spec(
        inference={
            "placement": {"location": "cloud", "clusterSelector": {"matchLabels": {"region": "eu"}}}
        }
    )
    run = render.Run("0-abc", 0, "s3://models/x/0-abc")
    llm = render.inference(s, OWNER, run)
    parsed = LLMDeploymentSpec.model_validate(llm["spec"])
    assert parsed.model.uri == "s3://models/x/0-abc"
    assert parsed.model.name == OWNER.name
    assert parsed.replicas == 2
    assert parsed.placement.management == "self-managed"
    assert parsed.placement.cluster_selector is not None
    assert llm["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_endpoint_routes_to_the_inference_deployment_with_the_stage_guards() -> None:
    s = spec(
        endpoint={"placement": {"location": "onprem"}, "guardrails": {"promptInjection": "flag"}}
    )
    chat = render.endpoint(s, OWNER)
    parsed = ChatEndpointSpec.model_validate(chat["spec"])
    assert [site.location for site in parsed.sites] == ["onprem"]
    assert parsed.backends[0].llm_deployment_ref is not None
    assert parsed.backends[0].llm_deployment_ref.name == OWNER.name
    assert parsed.guardrails is not None
    assert parsed.guardrails.prompt_injection == "flag"
    assert parsed.model_alias == OWNER.name


# --- drift ----------------------------------------------------------------------------------


def test_drift_cronjob_reaches_only_its_model_server() -> None:
    s = spec(monitoring={"drift": {"schedule": "0 * * * *", "threshold": 0.2}})
    assert s.monitoring is not None
    assert s.monitoring.drift is not None
    run = render.Run("0-abc", 0, "s3://m/0-abc")
    objects = render.drift_monitor(
        s, s.monitoring.drift, OWNER, run, image="checker:1", model_url="http://m:8000/v1",
        location="cloud", in_owner_cluster=False,
    )  # fmt: skip
    cron = next(o for o in objects if o["kind"] == "CronJob")
    assert cron["spec"]["schedule"] == "0 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"][labels.ROLE] == "drift-monitor"
    assert template["metadata"]["labels"]["backend.llmfleet.io/support-bot"] == "true"
    env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
    assert env["LLMFLEET_MODEL_URL"] == "http://m:8000/v1"
    assert env["LLMFLEET_DRIFT_THRESHOLD"] == "0.2"
    egress = next(o for o in objects if o["metadata"]["name"].endswith("-egress"))["spec"]["egress"]
    to_model = egress[1]["to"][0]["podSelector"]["matchLabels"]
    assert to_model == {
        labels.OWNER: "LLMDeployment.team-a.support-bot",
        labels.ROLE: "model-server",
    }
    assert egress[1]["ports"] == [{"protocol": "TCP", "port": 8000}]


@pytest.mark.parametrize(
    ("said", "score"),
    [('{"score": 0.42}', 0.42), ("0.1", 0.1), ('{"score": 1}', 1.0), ("", None),
     ("oops", None), ('{"score": "high"}', None), ("true", None)],
)  # fmt: skip
def test_drift_score_from_termination_message(said: str, score: float | None) -> None:
    assert drifts.parse_score(said) == score


@pytest.mark.parametrize(
    ("score", "detected"), [(0.05, False), (0.2, False), (0.21, True), (None, None)]
)
def test_drift_detected_only_above_threshold(score: float | None, detected: bool | None) -> None:
    drift = spec(monitoring={"drift": {"schedule": "@daily", "threshold": 0.2}}).monitoring
    assert drift is not None
    assert drift.drift is not None
    value, _, message = drifts.drift_condition({"score": score, "job": "j"}, drift.drift)
    assert value is detected
    if score is not None:
        assert f"{score:g}" in message
        assert "0.2" in message


# --- which run serves -----------------------------------------------------------------------

RUN_A = {"id": "0-aaaa", "run": 0, "artifact": "s3://a"}
RUN_B = {"id": "1-bbbb", "run": 1, "artifact": "s3://b"}


@pytest.mark.parametrize(
    ("desired", "runs", "previous", "serves"),
    [
        ("0-aaaa", [], "", None),  # nothing trained yet: nothing to serve
        ("0-aaaa", [RUN_A], "", "0-aaaa"),
        ("1-bbbb", [RUN_A], "0-aaaa", "0-aaaa"),  # B trains (or failed): A keeps serving
        ("1-bbbb", [RUN_B, RUN_A], "0-aaaa", "1-bbbb"),  # B succeeded: roll forward
        ("0-aaaa", [RUN_B, RUN_A], "1-bbbb", "0-aaaa"),  # rollback: A again, no retraining
        ("2-cccc", [RUN_B, RUN_A], "", "1-bbbb"),  # status lost its serving run: the newest
    ],
)
def test_serving_run(
    desired: str, runs: list[dict[str, Any]], previous: str, serves: str | None
) -> None:
    chosen = reconcile.serving_run(render.Run(desired, 0, ""), runs, previous)
    assert (chosen.id if chosen else None) == serves


# --- stages run by owned resources ----------------------------------------------------------


def owned(generation: int, observed: int | None, **conditions: tuple[str, str]) -> dict[str, Any]:
    found = [
        {"type": t, "status": value, "reason": reason, "message": f"{t} says {reason}"}
        for t, (value, reason) in conditions.items()
    ]
    status = (
        {"conditions": found}
        if observed is None
        else {"observedGeneration": observed, "conditions": found}
    )
    return {"metadata": {"generation": generation, "creationTimestamp": "t0"}, "status": status}


@pytest.mark.parametrize(
    ("live", "phase", "reason"),
    [
        (owned(2, 1, Ready=("True", "Ready")), "Pending", "Deploying"),  # status is stale
        (owned(1, None), "Pending", "Deploying"),  # never reconciled yet
        (owned(1, 1, Ready=("True", "Ready")), "Running", "Serving"),
        (owned(1, 1, Ready=("False", "ReplicasLoading"), Placed=("True", "Placed")), "Pending", "Deploying"),
        (owned(1, 1, Ready=("False", "InsufficientGPU"), Placed=("False", "InsufficientGPU")), "Unschedulable", "InsufficientGPU"),
        (owned(1, 1, Ready=("Unknown", "ClusterUnreachable")), "Unknown", "ClusterUnreachable"),
        (owned(1, 1, Ready=("False", "SecretNotFound"), Degraded=("True", "SecretNotFound")), "Failed", "SecretNotFound"),
    ],
)  # fmt: skip
def test_owned_resource_conditions_give_the_stage_phase(
    live: dict[str, Any], phase: str, reason: str
) -> None:
    stage = reconcile.child_stage({"name": "inference", "child": "LLMDeployment/x"}, live, "c1")
    assert (stage.phase, stage.reason) == (phase, reason)
    assert stage.entry["cluster"] == "c1"


def stage_of(name: str, phase: str, reason: str = "R") -> reconcile.Stage:
    return reconcile.Stage({"name": name, "phase": phase, "message": f"{name} {phase}"}, reason)


RUN = render.Run("1-new", 1, "s3://new")
OLD = render.Run("0-old", 0, "s3://old")


@pytest.mark.parametrize(
    ("phases", "serving", "ready", "reason"),
    [
        (("Succeeded", "Running", "Running"), RUN, True, "Serving"),
        (("Running", "Running", "Running"), OLD, False, "Training"),
        (("Failed", "Running", "Running"), OLD, False, "TrainingFailed"),
        (("Unschedulable", "Pending", "Pending"), None, False, "InsufficientGPU"),
        (("Unknown", "Running", "Running"), OLD, None, "ClusterUnreachable"),
        (("Succeeded", "Pending", "Pending"), RUN, False, "Deploying"),
        (("Succeeded", "Running", "Unknown"), RUN, None, "ClusterUnreachable"),
        (("Succeeded", "Running", "Running"), OLD, False, "RollingOut"),
    ],
)
def test_readiness(
    phases: tuple[str, str, str], serving: render.Run | None, ready: bool | None, reason: str
) -> None:
    reasons = {
        "Failed": "TrainingFailed",
        "Unschedulable": "InsufficientGPU",
        "Unknown": "ClusterUnreachable",
        "Pending": "Deploying",
    }
    stages = [
        stage_of(n, p, reasons.get(p, "R"))
        for n, p in zip(("training", "inference", "endpoint"), phases, strict=True)
    ]
    value, why, message = reconcile.readiness(RUN, serving, stages)
    assert (value, why) == (ready, reason)
    if serving is OLD and phases[0] in ("Running", "Failed"):
        assert "run 0-old keeps serving" in message
