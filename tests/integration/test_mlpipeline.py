"""MLPipeline end to end on the real clusters: the 8 ML deployment options from apply to
every stage ready, failed and successful runs with staged rollout and rollback, drift checks,
stages that cannot be placed, and deletion in every cluster.

Training Jobs really run to completion in the simulated clusters: kwok completes Job pods,
fails those whose image is sim.llmfleet.local/fail:<message>, and gives pods of
sim.llmfleet.local/drift:<score> that score as termination message (hack/localfleet)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmfleet import labels
from llmfleet.api import GROUP, VERSION
from llmfleet.render.common import owner_label
from localfleet import topology
from localfleet.paths import REPO_ROOT
from tests.integration import resources
from tests.integration.conftest import Fleet, Operator, pin_onprem
from tests.integration.polling import wait_until
from tests.integration.resources import condition, printed, ready

PLURAL = "mlpipelines"
SAMPLES = sorted((REPO_ROOT / "config" / "samples" / "ml-options").glob("*.yaml"))
HUB_CLUSTER = "in-cluster"
CLUSTER_OF = {"cloud": HUB_CLUSTER, "onprem": topology.ONPREM.name}
GPU_OF = {"cloud": "NVIDIA-H100-80GB-HBM3", "onprem": "NVIDIA-L40S"}
HOLD_LABEL = "llmfleet.io/test-hold"
# Kinds a pipeline's stages leave in a cluster, and how to list them.
LISTERS: dict[str, tuple[Any, str]] = {
    "Job": (client.BatchV1Api, "list_namespaced_job"),
    "CronJob": (client.BatchV1Api, "list_namespaced_cron_job"),
    "Deployment": (client.AppsV1Api, "list_namespaced_deployment"),
    "Pod": (client.CoreV1Api, "list_namespaced_pod"),
    "NetworkPolicy": (client.NetworkingV1Api, "list_namespaced_network_policy"),
    "ServiceAccount": (client.CoreV1Api, "list_namespaced_service_account"),
}
pytestmark = pytest.mark.usefixtures("operator", "load_balancers")


def pipeline(name: str, locations: tuple[str, str, str], **overrides: Any) -> dict[str, Any]:
    """A pipeline whose onprem stages run on llmfleet-onprem (CLUSTER_OF)."""
    training, inference, endpoint = locations
    spec: dict[str, Any] = {
        "model": {
            "base": "hf://meta-llama/Llama-3.1-8B",
            "artifactURI": "s3://models/{name}/{run}",
        },
        "training": {
            "placement": {"location": training},
            "image": "registry.example/trainer:1.0",
            "gpu": {"count": 2},
            "dataset": {"uri": "s3://datasets/support-tickets"},
        },
        "inference": {"placement": {"location": inference}, "gpu": {"count": 1}},
        "endpoint": {"placement": {"location": endpoint}},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MLPipeline",
        "metadata": {"name": name},
        "spec": spec,
    }
    return dict(pin_onprem(body))


def create(fleet: Fleet, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def get(fleet: Fleet, namespace: str, name: str) -> dict[str, Any]:
    return resources.get(fleet.cloud, namespace, PLURAL, name)


def patch(fleet: Fleet, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
    """A JSON patch of the pipeline, as `kubectl patch --type json` sends it."""
    api = fleet.cloud
    method, url, headers, body, _ = api.param_serialize(
        "PATCH",
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}",
        header_params={"Content-Type": "application/json-patch+json", "Accept": "application/json"},
        body=operations,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body)
    response.read()
    assert response.status == 200, response.data


def stages(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (obj.get("status") or {}).get("stages") or []}


def all_stages_up(fleet: Fleet, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(fleet, namespace, name)
    phases = [s["phase"] for s in stages(obj).values()]
    if ready(obj) and phases == ["Succeeded", "Running", "Running"]:
        return obj
    return None


def wait_ready(fleet: Fleet, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    return wait_until(
        lambda: all_stages_up(fleet, namespace, name),
        what=f"MLPipeline {name} to have every stage up",
        timeout=timeout,
    )


def api_for(fleet: Fleet, cluster: str) -> client.ApiClient:
    return fleet.api_of(cluster)


def events(fleet: Fleet, namespace: str, name: str) -> dict[str, str]:
    found = client.CoreV1Api(fleet.cloud).list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=MLPipeline,involvedObject.name={name}"
    )
    return {e.reason: e.type for e in found.items}


@pytest.fixture
def dataset_claims(fleet: Fleet, restricted_namespace: str) -> Iterator[str]:
    """A bound `datasets` claim in every cluster, as the samples' pvc:// datasets need."""
    namespace = restricted_namespace
    volume = f"{namespace}-datasets"
    for api in fleet.clients().values():
        core = client.CoreV1Api(api)
        core.create_persistent_volume(
            {
                "metadata": {"name": volume, "labels": {labels.TEST_CLUSTER: "true"}},
                "spec": {
                    "storageClassName": "",
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadOnlyMany"],
                    "hostPath": {"path": "/var/lib/datasets"},
                    "claimRef": {"namespace": namespace, "name": "datasets"},
                },
            }
        )
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": "datasets"},
                "spec": {
                    "storageClassName": "",
                    "volumeName": volume,
                    "accessModes": ["ReadOnlyMany"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    yield namespace
    for api in fleet.clients().values():
        client.CoreV1Api(api).delete_persistent_volume(volume)


def stage_pods(api: client.ApiClient, namespace: str, selector: str) -> list[Any]:
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def assert_on_nodes(api: client.ApiClient, pods: list[Any], location: str, gpu: str | None) -> None:
    assert pods, "no pods found"
    for pod in pods:
        node = client.CoreV1Api(api).read_node(pod.spec.node_name)
        assert node.metadata.labels[labels.LOCATION] == location, pod.metadata.name
        if gpu is not None:
            assert node.metadata.labels[labels.GPU_PRODUCT] == gpu, pod.metadata.name


# Each option trains on GPUs: the previous option's pods (its namespace is being deleted) are
# gone first, so a training pod never waits behind them.
@pytest.mark.usefixtures("idle_gpus")
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_every_ml_option_end_to_end(fleet: Fleet, dataset_claims: str, sample: Path) -> None:
    namespace = dataset_claims
    manifest = pin_onprem(yaml.safe_load(sample.read_text()))  # where CLUSTER_OF says
    name = manifest["metadata"]["name"]
    create(fleet, namespace, manifest)
    obj = wait_ready(fleet, namespace, name)

    spec, status = manifest["spec"], obj["status"]
    assert status["option"] == sample.read_text().splitlines()[0].removeprefix(
        "# ML deployment option "
    )
    by_stage = stages(obj)
    for stage in ("training", "inference", "endpoint"):
        location = spec[stage]["placement"]["location"]
        assert by_stage[stage]["location"] == location
        assert by_stage[stage]["cluster"] == CLUSTER_OF[location], stage
    row = printed(fleet.cloud, namespace, "mlpipelines", name)  # kubectl get
    assert row["Clusters"] == ",".join(
        f"{stage}={CLUSTER_OF[spec[stage]['placement']['location']]}"
        for stage in ("training", "inference", "endpoint")
    )
    assert (row["Ready"], row["Reason"]) == ("True", condition(obj, "Ready")["reason"])

    # Training: a completed Job in the training cluster, its pod on a GPU node of its location,
    # and the run's artifact recorded and served.
    training = spec["training"]["placement"]["location"]
    train_api = api_for(fleet, CLUSTER_OF[training])
    job_name = by_stage["training"]["child"].removeprefix("Job/")
    job = client.BatchV1Api(train_api).read_namespaced_job(job_name, namespace)
    assert job.status.succeeded == 1
    assert_on_nodes(
        train_api,
        stage_pods(train_api, namespace, f"batch.kubernetes.io/job-name={job_name}"),
        training,
        GPU_OF[training],
    )
    for other in {"cloud", "onprem"} - {training}:
        other_api = api_for(fleet, CLUSTER_OF[other])
        # (the drift CronJob may start a Job on the inference site at the top of the hour)
        jobs = client.BatchV1Api(other_api).list_namespaced_job(namespace).items
        assert not [j.metadata.name for j in jobs if j.metadata.name.startswith(f"{name}-train-")]
    artifact = by_stage["training"]["artifact"]
    assert artifact.startswith(f"s3://models/team-a/{name}/0-")
    assert status["runs"][0]["artifact"] == artifact
    assert by_stage["inference"]["artifact"] == artifact

    # Inference: the owned LLMDeployment serves that artifact from the inference location.
    llm = resources.get(fleet.cloud, namespace, "llmdeployments", name)
    assert llm["spec"]["model"]["uri"] == artifact
    assert llm["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    inference = spec["inference"]["placement"]["location"]
    model_api = api_for(fleet, CLUSTER_OF[inference])
    model_owner = owner_label("LLMDeployment", namespace, name)
    assert_on_nodes(
        model_api,
        stage_pods(model_api, namespace, f"{labels.OWNER}={model_owner}"),
        inference,
        GPU_OF[inference],
    )

    # Endpoint: the owned ChatEndpoint's gateway runs at the endpoint location and routes to
    # the inference site, across clusters when the two differ.
    chat = resources.get(fleet.cloud, namespace, "chatendpoints", name)
    assert [b.get("llmDeploymentRef") for b in chat["spec"]["backends"]] == [{"name": name}]
    assert chat["status"]["backends"][0]["ready"] is True
    endpoint = spec["endpoint"]["placement"]["location"]
    gateway_api = api_for(fleet, CLUSTER_OF[endpoint])
    gateway_owner = owner_label("ChatEndpoint", namespace, name)
    assert_on_nodes(
        gateway_api,
        stage_pods(gateway_api, namespace, f"{labels.OWNER}={gateway_owner}"),
        endpoint,
        None,
    )
    # Drift: the check runs next to the model server.
    assert client.BatchV1Api(model_api).read_namespaced_cron_job(f"{name}-drift", namespace)
    reasons = events(fleet, namespace, name)
    assert reasons.get("TrainingSucceeded") == "Normal"
    assert reasons.get("EndpointRunning") == "Normal"


def test_failed_run_keeps_serving_and_a_new_run_rolls_forward_only_once_trained(
    fleet: Fleet, restricted_namespace: str
) -> None:
    namespace, name = restricted_namespace, "rollout"
    create(fleet, namespace, pipeline(name, ("cloud", "cloud", "cloud")))
    first = wait_ready(fleet, namespace, name)["status"]
    run_a = first["servingRun"]

    def served_artifact() -> str:
        return str(
            resources.get(fleet.cloud, namespace, "llmdeployments", name)["spec"]["model"]["uri"]
        )

    artifact_a = served_artifact()
    assert artifact_a == first["runs"][0]["artifact"]

    # Run B fails: the failure is visible, and run A keeps serving.
    patch(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/training/image", "value": "sim.llmfleet.local/fail:loss-diverged-at-step-120"},
        {"op": "add", "path": "/spec/training/backoffLimit", "value": 0},
    ])  # fmt: skip

    def training_failed() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        return (
            obj if resources.current(obj) and stages(obj)["training"]["phase"] == "Failed" else None
        )

    failed = wait_until(training_failed, what="run B's training to fail", timeout=90)
    status = failed["status"]
    ready_condition = condition(failed, "Ready")
    assert ready_condition["status"] == "False"
    assert ready_condition["reason"] == "TrainingFailed"
    assert "loss-diverged-at-step-120" in ready_condition["message"]
    assert "BackoffLimitExceeded" in stages(failed)["training"]["message"]
    assert condition(failed, "Degraded")["status"] == "True"
    assert condition(failed, "Serving")["status"] == "True"
    assert status["servingRun"] == run_a
    assert [r["id"] for r in status["runs"]] == [run_a]
    assert stages(failed)["inference"]["phase"] == "Running"
    assert served_artifact() == artifact_a
    assert events(fleet, namespace, name).get("TrainingFailed") == "Warning"

    # Run C cannot start yet (no node carries the held label): inference stays on run A.
    patch(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/training/image", "value": "registry.example/trainer:1.1"},
        {"op": "replace", "path": "/spec/run", "value": 2},
        {"op": "add", "path": "/spec/training/placement/nodeSelector", "value": {HOLD_LABEL: "true"}},
    ])  # fmt: skip

    def training_waits() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        training = stages(obj).get("training", {})
        # No node can take it: no Job is created, the stage says which nodes refuse and why.
        waiting = training.get("phase") == "Unschedulable" and "nodeSelector" in training.get(
            "message", ""
        )
        return obj if resources.current(obj) and waiting else None

    held = wait_until(training_waits, what="run C to wait for a node", timeout=60)
    run_c = stages(held)["training"]["artifact"].rsplit("/", 1)[-1]
    assert held["status"]["servingRun"] == run_a
    assert condition(held, "Ready")["reason"] == "InsufficientGPU"
    assert served_artifact() == artifact_a

    # A node becomes eligible: run C trains, then inference rolls forward to it.
    core = client.CoreV1Api(fleet.cloud)
    node = next(
        n.metadata.name
        for n in core.list_node(label_selector=f"{labels.GPU_PRODUCT}={GPU_OF['cloud']}").items
    )
    core.patch_node(node, {"metadata": {"labels": {HOLD_LABEL: "true"}}})
    try:
        rolled = wait_until(
            lambda: (
                (o := all_stages_up(fleet, namespace, name))
                and o["status"]["servingRun"] == run_c
                and o
            ),
            what="inference to roll forward to run C",
            timeout=120,
        )
    finally:
        core.patch_node(node, {"metadata": {"labels": {HOLD_LABEL: None}}})
    assert served_artifact() == stages(rolled)["training"]["artifact"]
    assert [r["id"] for r in rolled["status"]["runs"]] == [run_c, run_a]  # B never succeeded
    assert events(fleet, namespace, name).get("RolledOut") == "Normal"

    # Rollback is a spec change back to run A's training spec: served again, not retrained.
    patch(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/training/image", "value": "registry.example/trainer:1.0"},
        {"op": "replace", "path": "/spec/run", "value": 0},
        {"op": "remove", "path": "/spec/training/backoffLimit"},
        {"op": "remove", "path": "/spec/training/placement/nodeSelector"},
    ])  # fmt: skip
    back = wait_until(
        lambda: (
            (o := all_stages_up(fleet, namespace, name))
            and o["status"]["servingRun"] == run_a
            and o
        ),
        what="the rollback to run A",
        timeout=90,
    )
    assert served_artifact() == artifact_a
    assert "trained before" in stages(back)["training"]["message"]
    assert not client.BatchV1Api(fleet.cloud).list_namespaced_job(namespace).items  # no retraining


def test_a_stage_that_cannot_be_placed_says_so(fleet: Fleet, namespace: str) -> None:
    name = "no-gpu"
    body = pipeline(
        name,
        ("onprem", "cloud", "cloud"),
        training={"gpu": {"count": 2, "product": ["NVIDIA-B200"]}},
    )
    create(fleet, namespace, body)

    def unschedulable() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        training = stages(obj).get("training", {})
        return obj if training.get("phase") == "Unschedulable" else None

    obj = wait_until(unschedulable, what="the training stage to be unschedulable", timeout=60)
    training = stages(obj)["training"]
    assert "NVIDIA-B200" in training["message"]
    assert "L40S" in training["message"]  # what the onprem candidates do have
    assert condition(obj, "Ready")["reason"] == "InsufficientGPU"
    row = printed(fleet.cloud, namespace, "mlpipelines", name)
    assert (row["Ready"], row["Reason"]) == ("False", "InsufficientGPU")
    assert condition(obj, "Degraded")["status"] == "True"
    assert stages(obj)["inference"]["phase"] == "Pending"
    assert events(fleet, namespace, name).get("TrainingUnschedulable") == "Warning"
    # Nothing was started anywhere.
    for api in fleet.clients().values():
        assert not client.BatchV1Api(api).list_namespaced_job(namespace).items
    assert not client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "llmdeployments"
    )["items"]


def test_a_name_taken_by_a_foreign_model_is_reported_not_taken_over(
    fleet: Fleet, namespace: str
) -> None:
    name = "taken"
    mine = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": "someone/elses-model"}, "placement": {"location": "cloud"}},
    }
    objects = client.CustomObjectsApi(fleet.cloud)
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "llmdeployments", mine)
    create(fleet, namespace, pipeline(name, ("cloud", "cloud", "cloud")))

    def conflict() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        return obj if stages(obj).get("inference", {}).get("phase") == "Failed" else None

    obj = wait_until(conflict, what="the inference stage to report the taken name", timeout=60)
    message = stages(obj)["inference"]["message"]
    assert f"LLMDeployment/{name} already exists" in message
    assert "delete or rename it" in message
    assert condition(obj, "Ready")["reason"] == "NameConflict"
    assert condition(obj, "Degraded")["status"] == "True"
    theirs = resources.get(fleet.cloud, namespace, "llmdeployments", name)
    assert theirs["spec"]["model"] == {"name": "someone/elses-model"}
    assert "ownerReferences" not in theirs["metadata"]
    assert labels.OWNER not in (theirs["metadata"].get("labels") or {})


def run_drift_check(api: client.ApiClient, namespace: str, cronjob: str, job: str) -> None:
    """What `kubectl create job --from=cronjob/NAME` does: one check now, not at the schedule."""
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job(cronjob, namespace)
    template = api.sanitize_for_serialization(cron.spec.job_template)
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": cronjob,
        "uid": cron.metadata.uid,
        "controller": True,
    }
    body = {
        "metadata": {
            "name": job,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [owner],
        },
        "spec": template["spec"],
    }
    batch.create_namespaced_job(namespace, body)


def test_drift_is_checked_on_the_inference_site_and_deletion_cleans_every_cluster(
    fleet: Fleet, restricted_namespace: str
) -> None:
    namespace, name = restricted_namespace, "drifty"
    drift = {
        "drift": {"schedule": "@hourly", "threshold": 0.2, "image": "sim.llmfleet.local/drift:0.42"}
    }
    create(fleet, namespace, pipeline(name, ("cloud", "onprem", "cloud"), monitoring=drift))
    obj = wait_ready(fleet, namespace, name)
    assert condition(obj, "DriftDetected")["reason"] == "NoCheckYet"

    # The CronJob runs in the member cluster that serves the model, never in the hub.
    cronjob = f"{name}-drift"
    assert not client.BatchV1Api(fleet.cloud).list_namespaced_cron_job(namespace).items
    run_drift_check(fleet.onprem, namespace, cronjob, "check-high")

    def drift_status(value: str) -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        return obj if condition(obj, "DriftDetected").get("status") == value else None

    high = wait_until(lambda: drift_status("True"), what="DriftDetected=True", timeout=60)
    assert high["status"]["drift"] == {
        "score": 0.42, "threshold": 0.2, "job": "check-high",
        "cluster": topology.ONPREM.name, "checkedAt": high["status"]["drift"]["checkedAt"],
    }  # fmt: skip
    assert "0.42" in condition(high, "DriftDetected")["message"]
    assert events(fleet, namespace, name).get("DriftDetected") == "Warning"
    assert_on_nodes(
        fleet.onprem,
        stage_pods(fleet.onprem, namespace, "batch.kubernetes.io/job-name=check-high"),
        "onprem",
        None,
    )

    # A better model (here: a checker that measures less) clears the condition.
    patch(fleet, namespace, name, [
        {"op": "replace", "path": "/spec/monitoring/drift/image", "value": "sim.llmfleet.local/drift:0.05"},
    ])  # fmt: skip
    wait_until(
        lambda: (
            client.BatchV1Api(fleet.onprem)
            .read_namespaced_cron_job(cronjob, namespace)
            .spec.job_template.spec.template.spec.containers[0]
            .image.endswith(":0.05")
        ),
        what="the CronJob to take the new checker image",
    )
    run_drift_check(fleet.onprem, namespace, cronjob, "check-low")
    low = wait_until(lambda: drift_status("False"), what="DriftDetected=False", timeout=60)
    assert low["status"]["drift"]["score"] == 0.05

    # Monitoring removed: its CronJob goes, and so does what status said about drift; the
    # status then stays as it is (a stale field would be rewritten on every pass).
    patch(fleet, namespace, name, [{"op": "remove", "path": "/spec/monitoring"}])

    def drift_gone() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        gone = "drift" not in obj["status"] and not condition(obj, "DriftDetected")
        return (
            obj
            if gone and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            else None
        )

    settled = wait_until(
        drift_gone, what="status.drift and DriftDetected to be removed", timeout=60
    )
    wait_until(
        lambda: not client.BatchV1Api(fleet.onprem).list_namespaced_cron_job(namespace).items,
        what="the drift CronJob to be removed",
    )
    time.sleep(4 * 3)  # four resyncs of the test operator (--resync-seconds 3)
    assert (
        get(fleet, namespace, name)["metadata"]["resourceVersion"]
        == settled["metadata"]["resourceVersion"]
    )

    # Deleting the pipeline removes every stage's children in both clusters.
    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    pipeline_owner = owner_label("MLPipeline", namespace, name)
    owners = [
        pipeline_owner,
        owner_label("LLMDeployment", namespace, name),
        owner_label("ChatEndpoint", namespace, name),
    ]

    def leftovers() -> list[str]:
        found = []
        for cluster, api in fleet.clients().items():
            for owner in owners:
                selector = f"{labels.OWNER}={owner}"
                for kind, (api_class, method) in LISTERS.items():
                    items = getattr(api_class(api), method)(
                        namespace, label_selector=selector
                    ).items
                    found += [f"{cluster}: {kind}/{i.metadata.name}" for i in items]
        for plural in ("llmdeployments", "chatendpoints", PLURAL):
            items = client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural
            )["items"]
            found += [f"hub: {plural}/{i['metadata']['name']}" for i in items]
        return found

    remaining: list[str] = []

    def all_gone() -> bool:
        remaining[:] = leftovers()
        return not remaining

    try:
        wait_until(all_gone, what="every child to be gone", timeout=90)
    except AssertionError as error:
        raise AssertionError(f"left behind: {remaining}") from error


def test_stages_follow_their_children_without_waiting_for_a_resync(
    fleet: Fleet, operator: Operator, namespace: str
) -> None:
    """A pipeline goes through several stage transitions, each caused by a child (a Job
    finishing, an owned LLMDeployment and ChatEndpoint becoming ready, their model servers and
    gateways starting). With the resync far away, only the children's status changes can carry
    it to Ready in time."""
    operator.resync_seconds = 600
    operator.restart()
    try:
        name = "prompt"
        create(fleet, namespace, pipeline(name, ("cloud", "onprem", "cloud")))
        obj = wait_ready(fleet, namespace, name, timeout=90)
        assert stages(obj)["endpoint"]["phase"] == "Running"
    finally:
        operator.resync_seconds = 3
        operator.restart()
