"""Each kind's reconcile through the engine against an in-memory fleet: the objects planned per
cluster, a second pass that writes nothing, silent clusters, moves, removed status fields,
long names and refused objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmfleet import labels
from llmfleet.kube.rest import KubeError
from llmfleet.reconcile import chatendpoint, engine, llmdeployment, mlpipeline
from llmfleet.reconcile.kinds import KINDS
from llmfleet.reconcile.llmdeployment import serving_placement
from llmfleet.reconcile.reads import Context, Reads
from tests.unit.fakeapi import FakeCluster, Harness, condition

NS = "team"
MODEL: dict[str, Any] = {
    "model": {
        "name": "meta-llama/Llama-3.1-8B-Instruct",
        "credentialsSecretRef": {"name": "hf-token", "key": "token"},
    },
    "runtime": "vllm",
    "replicas": 1,
    "gpu": {"count": 2},
    "placement": {"location": "onprem"},
}
ENDPOINT: dict[str, Any] = {
    "modelAlias": "chat",
    "sites": [{"location": "cloud"}],
    "backends": [{"llmDeploymentRef": {"name": "llm"}}],
}
PIPELINE: dict[str, Any] = {
    "model": {"base": "hf://meta-llama/Llama-3.1-8B", "artifactURI": "s3://models/{name}/{run}"},
    "training": {
        "placement": {"location": "cloud"},
        "image": "registry.example/trainer:1.0",
        "gpu": {"count": 1},
        "dataset": {"uri": "pvc://datasets/tickets"},
    },
    "inference": {"placement": {"location": "cloud"}, "gpu": {"count": 1}},
    "endpoint": {"placement": {"location": "cloud"}},
    "monitoring": {"drift": {"schedule": "0 * * * *", "threshold": 0.2, "image": "drift:1"}},
}


def ready_deployment(cluster: FakeCluster, name: str, replicas: int = 1) -> None:
    cluster.set_status("Deployment", NS, name, {"readyReplicas": replicas})


def placed_model(h: Harness, name: str = "llm", spec: dict[str, Any] | None = None) -> None:
    """An LLMDeployment placed and ready where its spec says."""
    h.secret("hf-token", "token")
    h.create("LLMDeployment", name, spec or MODEL)
    h.reconcile(llmdeployment.KIND_SPEC, name)
    cluster = h.fleet.cluster(h.status("LLMDeployment", name)["placements"][0]["cluster"])
    ready_deployment(cluster, name)
    h.reconcile(llmdeployment.KIND_SPEC, name)


# --- LLMDeployment --------------------------------------------------------------------------


def test_model_first_pass_applies_its_children_in_the_chosen_cluster_then_writes_nothing() -> None:
    h = Harness()
    h.secret("hf-token", "token")
    h.create("LLMDeployment", "llm", MODEL)
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert h.fleet.onprem.names() >= {
        "ServiceAccount/llm", "Deployment/llm", "Service/llm", "Secret/hf-token",
        "Namespace/team",
    }  # fmt: skip
    assert not h.fleet.hub.names("Deployment")
    status = h.status("LLMDeployment", "llm")
    assert status["childClusters"] == ["onprem"]
    assert condition(status, "Ready")["reason"] == "ReplicasLoading"

    ready_deployment(h.fleet.onprem, "llm")
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert condition(h.status("LLMDeployment", "llm"), "Ready")["status"] == "True"

    h.fleet.reset_counts()
    writes_before = h.status_writes
    outcome = h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert outcome.status is None
    assert not outcome.events
    assert h.status_writes == writes_before
    assert h.fleet.writes() == 0
    assert h.fleet.gets() == 0, "a resync reads from caches only"


def test_silent_cluster_makes_the_placement_unknown_and_deletes_nothing() -> None:
    h = Harness()
    placed_model(h)
    h.fleet.onprem.silent = True
    h.fleet.reset_counts()
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    status = h.status("LLMDeployment", "llm")
    assert condition(status, "Ready")["status"] == "Unknown"
    assert condition(status, "Ready")["reason"] == "ClusterUnreachable"
    assert "onprem" in condition(status, "Ready")["message"]
    assert [p["state"] for p in status["placements"]] == ["Unknown"]
    assert h.fleet.writes() == 0
    assert status["childClusters"] == ["onprem"]

    h.fleet.onprem.silent = False
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert condition(h.status("LLMDeployment", "llm"), "Ready")["status"] == "True"


@pytest.mark.parametrize("kind", ["LLMDeployment", "ChatEndpoint", "MLPipeline"])
def test_a_cluster_that_falls_silent_mid_pass_is_a_finding_not_an_error(kind: str) -> None:
    h = Harness()
    placed_model(h)
    onprem_pipeline = {
        **PIPELINE,
        "training": {**PIPELINE["training"], "placement": {"location": "onprem"}},
    }
    spec = {"ChatEndpoint": ENDPOINT, "MLPipeline": onprem_pipeline}.get(kind)
    if spec is not None:
        h.create(kind, "other", spec)
    name = "llm" if spec is None else "other"
    h.reconcile(KINDS[kind], name)
    h.fleet.onprem.silent = True
    h.fleet.stale_inventory = True
    h.fleet.reset_counts()
    h.reconcile(KINDS[kind], name)  # no exception
    assert h.fleet.writes() == 0
    ready = condition(h.status(kind, name), "Ready")
    assert ready["status"] != "True"


def test_move_keeps_the_old_cluster_serving_until_the_new_one_is_ready() -> None:
    h = Harness()
    placed_model(h)
    h.update("LLMDeployment", "llm", {**MODEL, "placement": {"location": "cloud"}})
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    status = h.status("LLMDeployment", "llm")
    assert [(p["cluster"], p["state"]) for p in status["placements"]] == [
        ("in-cluster", "Placed"),
        ("onprem", "Draining"),
    ]
    assert serving_placement(status)["cluster"] == "onprem"
    assert "Deployment/llm" in h.fleet.onprem.names()

    ready_deployment(h.fleet.hub, "llm")
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    status = h.status("LLMDeployment", "llm")
    assert [p["cluster"] for p in status["placements"]] == ["in-cluster"]
    assert serving_placement(status)["cluster"] == "in-cluster"
    assert not h.fleet.onprem.names("Deployment")
    assert status["childClusters"] == ["in-cluster"]


def test_long_names_give_children_names_and_labels_that_fit() -> None:
    h = Harness()
    name = "a-model-with-a-name-much-longer-than-a-kubernetes-label-value-may-be-x"
    assert len(name) == 70
    h.secret("hf-token", "token")
    h.create("LLMDeployment", name, MODEL)
    h.reconcile(llmdeployment.KIND_SPEC, name)
    children = [o for (k, _, _), o in h.fleet.onprem.objects.items() if k != "Namespace"]
    assert len(children) >= 4
    for obj in children:
        for value in (obj["metadata"].get("labels") or {}).values():
            assert len(value) <= 63, obj["metadata"]
        if obj["kind"] == "Service":
            assert len(obj["metadata"]["name"]) <= 63
    assert condition(h.status("LLMDeployment", name), "Ready")["reason"] == "ReplicasLoading"


def test_an_object_the_api_server_refuses_is_reported_not_retried_silently() -> None:
    h = Harness()
    h.secret("hf-token", "token")
    h.fleet.onprem.refuse["Deployment"] = (422, 'Deployment.apps "llm" is invalid: too long')
    h.create("LLMDeployment", "llm", MODEL)
    outcome = h.reconcile(llmdeployment.KIND_SPEC, "llm")
    ready = condition(h.status("LLMDeployment", "llm"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ApplyRefused")
    assert "onprem" in ready["message"]
    assert "too long" in ready["message"]
    assert any(e.reason == "ApplyRefused" and e.type == "Warning" for e in outcome.events)
    again = h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert again.status is None
    assert not again.events


def test_missing_secret_names_the_secret_and_applies_nothing() -> None:
    h = Harness()
    h.create("LLMDeployment", "llm", MODEL)
    outcome = h.reconcile(llmdeployment.KIND_SPEC, "llm")
    ready = condition(h.status("LLMDeployment", "llm"), "Ready")
    assert ready["reason"] == "SecretNotFound"
    assert "hf-token (key token)" in ready["message"]
    assert h.fleet.writes() == 0
    assert [e.reason for e in outcome.events] == ["SecretNotFound"]


def test_a_forbidden_read_becomes_a_condition_with_the_fix() -> None:
    h = Harness()

    def refuse(*_: Any) -> None:
        raise KubeError(403, 'secrets "hf-token" is forbidden', "in-cluster")

    h.fleet.hub.get = refuse  # type: ignore[method-assign]
    h.create("LLMDeployment", "llm", MODEL)
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    ready = condition(h.status("LLMDeployment", "llm"), "Ready")
    assert ready["reason"] == "Forbidden"
    assert "tenant-secrets" in ready["message"]


def test_a_forbidden_write_in_a_member_becomes_a_condition() -> None:
    h = Harness()
    h.secret("hf-token", "token")
    h.fleet.onprem.refuse["Deployment"] = (403, 'deployments.apps is forbidden: User "x"')
    h.create("LLMDeployment", "llm", MODEL)
    outcome = h.reconcile(llmdeployment.KIND_SPEC, "llm")
    ready = condition(h.status("LLMDeployment", "llm"), "Ready")
    assert ready["reason"] == "Forbidden"
    assert "cluster onprem" in ready["message"]
    assert [e.reason for e in outcome.events] == ["Forbidden"]


def test_a_resource_whose_namespace_is_gone_writes_no_status() -> None:
    h = Harness()
    h.create(
        "LLMDeployment",
        "llm",
        {**MODEL, "placement": {"location": "cloud"}, "model": {"name": "m"}},
    )
    h.fleet.hub.refuse["ServiceAccount"] = (404, 'namespaces "team" not found')
    with pytest.raises(KubeError) as raised:
        h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert raised.value.status == 404
    assert h.status_writes == 0


# --- ChatEndpoint ---------------------------------------------------------------------------


def endpoint_ready(h: Harness) -> None:
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    ready_deployment(h.fleet.hub, "chat-cloud")
    service = h.fleet.onprem.objects.get(("Service", NS, "chat-cloud-to-llm"))
    if service is not None:
        service["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.30"}]}}
    h.reconcile(chatendpoint.KIND_SPEC, "chat")


def test_endpoint_opens_a_path_to_a_model_in_another_cluster_then_writes_nothing() -> None:
    h = Harness()
    placed_model(h)
    h.create("ChatEndpoint", "chat", ENDPOINT)
    endpoint_ready(h)
    assert "Service/chat-cloud-to-llm" in h.fleet.onprem.names()
    assert {"Deployment/chat-cloud", "ConfigMap/chat-cloud"} <= h.fleet.hub.names()
    status = h.status("ChatEndpoint", "chat")
    assert condition(status, "Ready")["status"] == "True", status
    assert status["childClusters"] == ["in-cluster", "onprem"]
    assert status["backends"][0]["cluster"] == "onprem"
    h.fleet.reset_counts()
    outcome = h.reconcile(chatendpoint.KIND_SPEC, "chat")
    assert outcome.status is None
    assert h.fleet.writes() == 0
    assert h.fleet.gets() == 0, "Secrets and models come from caches"


def test_a_moved_backend_prunes_its_old_export() -> None:
    h = Harness()
    placed_model(h)
    h.create("ChatEndpoint", "chat", ENDPOINT)
    endpoint_ready(h)
    h.update("LLMDeployment", "llm", {**MODEL, "placement": {"location": "cloud"}})
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    # Still draining: the endpoint keeps routing to the cluster that serves.
    assert h.status("ChatEndpoint", "chat")["backends"][0]["cluster"] == "onprem"
    assert "Service/chat-cloud-to-llm" in h.fleet.onprem.names()

    ready_deployment(h.fleet.hub, "llm")
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    assert "Service/chat-cloud-to-llm" not in h.fleet.onprem.names()
    assert not {
        n for n in h.fleet.onprem.names() if n.startswith(("Service/", "NetworkPolicy/chat"))
    }
    status = h.status("ChatEndpoint", "chat")
    assert status["backends"][0]["cluster"] == "in-cluster"
    assert status["childClusters"] == ["in-cluster"]


def test_a_backend_in_a_silent_cluster_is_unknown_and_recovers() -> None:
    h = Harness()
    placed_model(h)
    h.create("ChatEndpoint", "chat", ENDPOINT)
    endpoint_ready(h)
    config = copy.deepcopy(h.fleet.hub.objects[("ConfigMap", NS, "chat-cloud")])
    h.fleet.onprem.silent = True
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    h.fleet.reset_counts()
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    status = h.status("ChatEndpoint", "chat")
    backend = status["backends"][0]
    assert (backend["state"], backend["cluster"], backend["ready"]) == ("Unknown", "onprem", False)
    ready, degraded = condition(status, "Ready"), condition(status, "Degraded")
    assert ready["status"] == "Unknown"
    assert ready["reason"] == "BackendUnreachable"
    assert degraded["status"] == "True"
    assert "onprem" in degraded["message"]
    assert h.fleet.writes() == 0, "the gateway is left as it is while its backend is silent"
    assert h.fleet.hub.objects[("ConfigMap", NS, "chat-cloud")] == config

    h.fleet.onprem.silent = False
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    status = h.status("ChatEndpoint", "chat")
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Degraded")["status"] == "False"
    assert status["backends"][0]["state"] == "Ready"


def test_a_generated_gateway_key_is_mirrored_as_stored_and_stays_put() -> None:
    h = Harness()
    placed_model(h)
    h.create("ChatEndpoint", "chat", {**ENDPOINT, "sites": [{"location": "onprem"}]})
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    hub_key = h.fleet.hub.objects[("Secret", NS, "chat-gateway-key")]["data"]
    mirrored = h.fleet.onprem.objects[("Secret", NS, "chat-gateway-key")]["data"]
    assert mirrored == hub_key
    for forget_cached_reads in (False, True):
        if forget_cached_reads:  # a minute later: the Secret is read again
            h.reads = Reads(h.fleet.hub)
            h.context = Context(fleet=h.fleet, settings=h.settings, reads=h.reads)
            h.reads.seen("LLMDeployment", h.body("LLMDeployment", "llm"))
        h.fleet.reset_counts()
        h.reconcile(chatendpoint.KIND_SPEC, "chat")
        assert h.fleet.writes() == 0


def test_missing_backend_is_named() -> None:
    h = Harness()
    h.create("ChatEndpoint", "chat", ENDPOINT)
    h.reconcile(chatendpoint.KIND_SPEC, "chat")
    ready = condition(h.status("ChatEndpoint", "chat"), "Ready")
    assert ready["reason"] == "BackendNotFound"
    assert "llmDeploymentRef" in ready["message"]


# --- MLPipeline -----------------------------------------------------------------------------


def complete(cluster: FakeCluster, kind: str, name: str) -> None:
    cluster.set_status(
        kind,
        NS,
        name,
        {
            "succeeded": 1,
            "completionTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    )


def serving_pipeline(h: Harness) -> None:
    """A pipeline whose first run trained and whose model and endpoint serve in the cloud."""
    h.create("MLPipeline", "ml", PIPELINE)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    (job,) = [n.split("/")[1] for n in h.fleet.hub.names("Job")]
    complete(h.fleet.hub, "Job", job)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert {"LLMDeployment/ml", "ChatEndpoint/ml"} <= h.fleet.hub.names()
    for kind in ("LLMDeployment", "ChatEndpoint"):
        obj = h.fleet.hub.objects[(kind, NS, "ml")]
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            "placements": [{"cluster": "in-cluster", "state": "Placed", "endpoint": "http://ml"}],
            "sites": [{"cluster": "in-cluster"}],
        }
    h.reconcile(mlpipeline.KIND_SPEC, "ml")


def finished_drift_check(h: Harness, score: float) -> None:
    owner = labels.OWNER
    cronjob = h.fleet.hub.objects[("CronJob", NS, "ml-drift")]
    job_labels = {owner: cronjob["metadata"]["labels"][owner], labels.STAGE: "drift"}
    h.fleet.hub.put(
        {
            "kind": "Job",
            "metadata": {"name": "ml-drift-1", "namespace": NS, "labels": job_labels,
                         "creationTimestamp": "2026-01-01T01:00:00Z"},
            "status": {"succeeded": 1, "completionTime": "2026-01-01T01:01:00Z"},
        }
    )  # fmt: skip
    h.fleet.hub.put(
        {
            "kind": "Pod",
            "metadata": {"name": "ml-drift-1-x", "namespace": NS,
                         "labels": {"batch.kubernetes.io/job-name": "ml-drift-1"}},
            "status": {"containerStatuses": [
                {"state": {"terminated": {"exitCode": 0, "message": f'{{"score": {score}}}'}}}
            ]},
        }
    )  # fmt: skip


def test_pipeline_trains_serves_and_checks_drift_then_writes_nothing() -> None:
    h = Harness()
    serving_pipeline(h)
    status = h.status("MLPipeline", "ml")
    assert condition(status, "Ready")["status"] == "True", status["conditions"]
    assert "CronJob/ml-drift" in h.fleet.hub.names()
    finished_drift_check(h, 0.5)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    status = h.status("MLPipeline", "ml")
    assert status["drift"]["score"] == 0.5
    assert condition(status, "DriftDetected")["status"] == "True"
    h.fleet.reset_counts()
    outcome = h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert outcome.status is None
    assert h.fleet.writes() == 0
    assert h.fleet.hub.requests["list"] > 0
    assert h.fleet.gets() == 0


def test_removed_drift_monitoring_removes_its_status_and_cronjob() -> None:
    h = Harness()
    serving_pipeline(h)
    finished_drift_check(h, 0.1)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert "drift" in h.status("MLPipeline", "ml")
    h.update("MLPipeline", "ml", {k: v for k, v in PIPELINE.items() if k != "monitoring"})
    outcome = h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert outcome.status is not None
    assert outcome.status["drift"] is None
    status = h.status("MLPipeline", "ml")
    assert "drift" not in status
    assert not condition(status, "DriftDetected")
    assert "CronJob/ml-drift" not in h.fleet.hub.names()
    h.fleet.reset_counts()
    again = h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert again.status is None
    assert h.fleet.writes() == 0


def test_pipeline_name_taken_by_a_foreign_model_is_a_conflict() -> None:
    h = Harness()
    placed_model(h, "ml")
    h.create("MLPipeline", "ml", PIPELINE)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    (job,) = [n.split("/")[1] for n in h.fleet.hub.names("Job")]
    complete(h.fleet.hub, "Job", job)
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    ready = condition(h.status("MLPipeline", "ml"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert h.fleet.hub.objects[("LLMDeployment", NS, "ml")]["spec"] == MODEL


def test_pipeline_drift_follows_the_serving_placement_during_a_move() -> None:
    h = Harness()
    serving_pipeline(h)
    model = h.fleet.hub.objects[("LLMDeployment", NS, "ml")]
    model["status"]["placements"] = [
        {"cluster": "onprem", "state": "Placed", "endpoint": "http://ml"},
        {"cluster": "in-cluster", "state": "Draining", "endpoint": "http://ml"},
    ]
    h.reconcile(mlpipeline.KIND_SPEC, "ml")
    assert "CronJob/ml-drift" in h.fleet.hub.names()
    assert "CronJob/ml-drift" not in h.fleet.onprem.names()


def test_the_view_of_a_resource_keeps_what_an_event_needs() -> None:
    h = Harness()
    h.create("MLPipeline", "ml", PIPELINE)
    body = {**h.body("MLPipeline", "ml"), "status": {"servingRun": "x"}}
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    h.reads.seen("MLPipeline", body)
    kept = h.reads.resource("MLPipeline", NS, "ml")
    assert kept is not None
    assert (kept["apiVersion"], kept["kind"]) == ("llmfleet.io/v1alpha1", "MLPipeline")
    assert kept["metadata"]["uid"] == "uid-ml"
    assert "managedFields" not in kept["metadata"]
    assert h.reads.known("MLPipeline", NS, "ml")
    h.reads.gone("MLPipeline", NS, "ml")
    assert not h.reads.known("MLPipeline", NS, "ml")


# --- engine pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1, "drift": {"score": 1}}, {"a": 1}, {"drift": None}),
        ({"d": {"x": 1, "y": 2}}, {"d": {"x": 1}}, {"d": {"y": None}}),
        ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
        ({}, {"n": {"k": "v"}}, {"n": {"k": "v"}}),
    ],
)
def test_status_patch_removes_what_disappears(
    old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert engine.status_patch(old, new) == patch


@pytest.mark.parametrize(
    ("location", "holds"),
    [
        # Children in the resource's own cluster carry an ownerReference: no finalizer.
        ("cloud", []),
        # Children in a member cluster outlive the resource unless the operator removes them:
        # the finalizer goes on before the first of them is written, once.
        ("onprem", [("llm", 0)]),
    ],
)
def test_the_finalizer_goes_on_only_before_children_are_written_in_a_member(
    location: str, holds: list[tuple[str, int]]
) -> None:
    h = Harness()
    h.secret("hf-token", "token")
    h.create("LLMDeployment", "llm", {**MODEL, "placement": {"location": location}})
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert h.holds == holds
    placed = h.fleet.cluster(h.status("LLMDeployment", "llm")["placements"][0]["cluster"])
    assert placed.names("Deployment") == {"Deployment/llm"}


def test_a_finalizer_that_cannot_go_on_stops_the_pass_before_any_member_write() -> None:
    h = Harness()

    def refused(kind: str, body: Any) -> None:
        raise KubeError(500, "etcd timed out", "in-cluster")

    h.context.hold = refused
    h.secret("hf-token", "token")
    h.create("LLMDeployment", "llm", MODEL)
    with pytest.raises(KubeError):
        h.reconcile(llmdeployment.KIND_SPEC, "llm")
    assert h.fleet.onprem.writes() == 0
