"""MLPipeline -> its stages' objects: the training Job, the owned LLMDeployment and ChatEndpoint,
and the drift CronJob. Pure: the run, the artifact and the clusters come in as arguments."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from llmfleet import labels
from llmfleet.api.common import Gpu
from llmfleet.api.llmdeployment import DEFAULT_RUNTIME
from llmfleet.api.mlpipeline import Drift, MLPipelineSpec
from llmfleet.children import DRIFT, TRAINING
from llmfleet.render import llmdeployment as llm
from llmfleet.render import scheduling
from llmfleet.render.common import Owner, bounded, child_metadata
from llmfleet.render.runtimes import RUNTIMES, TMP_DIR
from llmfleet.segmentation import policies

TRAINING_ROLE = "training"
DRIFT_ROLE = "drift-monitor"
DATA_DIR = "/data"
PUBLIC_SOURCES = ("hf://", "s3://", "oci://")
DRIFT_DEADLINE_SECONDS = 600
JOB_NAME_LIMIT = 63  # Job names become pod label values
CRONJOB_NAME_LIMIT = 52  # the CronJob controller appends an 11-character suffix
# On the inference LLMDeployments: the run they serve.
RUN_ANNOTATION = f"{labels.GROUP}/run"


@dataclass(frozen=True)
class Run:
    """One training run: its id names the Job and the artifact, so a changed spec is a new run
    and an unchanged one is the same run however often it is reconciled."""

    id: str
    number: int
    artifact: str


def run_of(spec: MLPipelineSpec, name: str) -> Run:
    trained_from = {
        "model": spec.model.model_dump(by_alias=True, exclude_none=True),
        "training": spec.training.model_dump(by_alias=True, exclude_none=True),
        "run": spec.run,
    }
    digest = hashlib.sha256(json.dumps(trained_from, sort_keys=True).encode()).hexdigest()[:8]
    run_id = f"{spec.run}-{digest}"
    artifact = spec.model.artifact_uri.replace("{name}", name).replace("{run}", run_id)
    return Run(run_id, spec.run, artifact)


def job_name(owner: Owner, run: Run) -> str:
    return f"{bounded(owner.name, JOB_NAME_LIMIT - len(run.id) - 7)}-train-{run.id}"


def drift_name(owner: Owner) -> str:
    return f"{bounded(owner.name, CRONJOB_NAME_LIMIT - 6)}-drift"


def stage_pod_labels(owner: Owner, stage: str, role: str, location: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": owner.instance,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
        labels.OWNER: owner.label,
        labels.STAGE: stage,
        labels.ROLE: role,
        labels.LOCATION: location,
        labels.SEGMENT: f"{location}-{role}",
    }


def mounted(uri: str, volume: str, read_only: bool) -> tuple[str, list[dict[str, Any]], list[Any]]:
    """pvc://CLAIM/PATH becomes a mounted claim and a local path; other URIs pass as they are."""
    if not uri.startswith("pvc://"):
        return uri, [], []
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    source = {"persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
    mount_path = f"{DATA_DIR}/{volume}"
    return (
        f"{mount_path}/{path}".rstrip("/"),
        [{"name": volume, **source}],
        [{"name": volume, "mountPath": mount_path, "readOnly": read_only}],
    )


def stage_account(owner: Owner, name: str, stage: str, *, in_owner_cluster: bool) -> dict[str, Any]:
    """The stage pods' own ServiceAccount, with no token mounted."""
    metadata = child_metadata(
        owner, name, in_owner_cluster=in_owner_cluster, extra_labels={labels.STAGE: stage}
    )
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata,
        "automountServiceAccountToken": False,
    }


def training_gpu(spec: MLPipelineSpec) -> Gpu:
    return spec.training.gpu or Gpu()


def training(
    spec: MLPipelineSpec, owner: Owner, run: Run, *, in_owner_cluster: bool
) -> list[dict[str, Any]]:
    """The run's Job, hardened like a model server, with its ServiceAccount and policies: no
    ingress at all, egress to DNS and to the public sources its URIs name."""
    stage = spec.training
    location = stage.placement.location
    name = job_name(owner, run)
    gpu = training_gpu(spec)
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": TMP_DIR}]
    env: list[dict[str, Any]] = [{"name": "HOME", "value": TMP_DIR}]
    for variable, uri, volume, read_only in (
        ("LLMFLEET_BASE_MODEL", spec.model.base, "base-model", True),
        ("LLMFLEET_DATASET", stage.dataset.uri, "dataset", True),
        ("LLMFLEET_ARTIFACT", run.artifact, "artifact", False),
    ):
        value, claim_volumes, claim_mounts = mounted(uri, volume, read_only)
        env += [{"name": variable, "value": value}, {"name": f"{variable}_URI", "value": uri}]
        volumes += claim_volumes
        mounts += claim_mounts
    env.append({"name": "LLMFLEET_RUN", "value": run.id})
    if gpu.count:
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}})
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})  # noqa: S108 - NCCL shared memory
    pod_labels = stage_pod_labels(owner, TRAINING, TRAINING_ROLE, location)
    container: dict[str, Any] = {
        "name": "trainer",
        "image": stage.image,
        "env": env,
        "resources": scheduling.container_resources(gpu, stage.resources),
        "securityContext": policies.container_security_context(),
        "volumeMounts": mounts,
        # The reason of a failed run reaches status even when the trainer writes no message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if stage.command:
        container["command"] = list(stage.command)
    if stage.args:
        container["args"] = list(stage.args)
    extra = {labels.STAGE: TRAINING}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **child_metadata(owner, name, in_owner_cluster=in_owner_cluster, extra_labels=extra),
            "annotations": {
                f"{labels.GROUP}/run": run.id,
                f"{labels.GROUP}/artifact": run.artifact,
            },
        },
        "spec": {
            "backoffLimit": stage.backoff_limit,
            "activeDeadlineSeconds": stage.active_deadline_seconds,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": policies.pod_security_context(),
                    **scheduling.pod_scheduling(
                        location, gpu, stage.placement.node_selector, stage.placement.tolerations
                    ),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    account = stage_account(owner, name, TRAINING, in_owner_cluster=in_owner_cluster)
    object_labels = account["metadata"]["labels"]
    selector = {labels.OWNER: owner.label, labels.STAGE: TRAINING}
    uris = (spec.model.base, stage.dataset.uri, run.artifact)
    stage_policies = [
        policies.default_deny(name, owner.namespace, object_labels, selector),
        policies.egress_to_declared(
            name, owner.namespace, object_labels, selector,
            public_https=any(u.startswith(PUBLIC_SOURCES) for u in uris), cidrs=[],
        ),
    ]  # fmt: skip
    if in_owner_cluster:  # the Job and CronJob get theirs from child_metadata
        for policy in stage_policies:
            policy["metadata"]["ownerReferences"] = [owner.reference()]
    return [account, *stage_policies, job]


def candidate_name(owner: Owner) -> str:
    return f"{bounded(owner.name, 63 - 10)}-candidate"


def inference(
    spec: MLPipelineSpec,
    owner: Owner,
    run: Run,
    *,
    validated_revision: str | None = None,
) -> dict[str, Any]:
    """The LLMDeployment serving `run`'s artifact, owned by the pipeline (same name). With
    `validated_revision`, a scan of it already passed (as a candidate): not scanned again."""
    stage = spec.inference
    placement = stage.placement.model_dump(by_alias=True, exclude_none=True)
    llm_spec: dict[str, Any] = {
        "model": {"name": owner.name, "uri": run.artifact},
        "runtime": stage.runtime or DEFAULT_RUNTIME,
        "replicas": stage.replicas,
        "placement": {**placement, "management": "self-managed"},
    }
    if stage.image:
        llm_spec["image"] = stage.image
    if stage.gpu:
        llm_spec["gpu"] = stage.gpu.model_dump(by_alias=True, exclude_none=True)
    if stage.validation:
        llm_spec["validation"] = stage.validation.model_dump(by_alias=True, exclude_none=True)
    metadata = child_metadata(owner, owner.name, in_owner_cluster=True)
    metadata["annotations"] = {RUN_ANNOTATION: run.id}
    if validated_revision:
        metadata["annotations"][labels.VALIDATED_REVISION] = validated_revision
    return {
        "apiVersion": owner.api_version,
        "kind": "LLMDeployment",
        "metadata": metadata,
        "spec": llm_spec,
    }


def candidate(spec: MLPipelineSpec, owner: Owner, run: Run) -> dict[str, Any]:
    """A newly trained run's model, served by its own LLMDeployment that no gateway routes
    to, scanned once (no schedule) before inference moves to the run."""
    obj = inference(spec, owner, run)
    obj["metadata"]["name"] = candidate_name(owner)
    validation = dict(obj["spec"].get("validation") or {})
    validation.pop("schedule", None)
    obj["spec"]["validation"] = {**validation, "enforce": True}
    obj["spec"]["replicas"] = 1
    return obj


def endpoint(spec: MLPipelineSpec, owner: Owner) -> dict[str, Any]:
    """The ChatEndpoint in front of the inference LLMDeployment, owned by the pipeline."""
    stage = spec.endpoint
    site: dict[str, Any] = {"location": stage.placement.location}
    if stage.placement.cluster_selector:
        site["clusterSelector"] = stage.placement.cluster_selector.model_dump(
            by_alias=True, exclude_none=True
        )
    endpoint_spec: dict[str, Any] = {
        "modelAlias": owner.name,
        "sites": [site],
        "backends": [{"llmDeploymentRef": {"name": owner.name}}],
    }
    for key, value in (
        ("guardrails", stage.guardrails),
        ("rateLimit", stage.rate_limit),
        ("auth", stage.auth),
        ("exposure", stage.exposure),
    ):
        if value is not None:
            endpoint_spec[key] = value.model_dump(by_alias=True, exclude_none=True)
    return {
        "apiVersion": owner.api_version,
        "kind": "ChatEndpoint",
        "metadata": child_metadata(owner, owner.name, in_owner_cluster=True),
        "spec": endpoint_spec,
    }


def drift_monitor(
    spec: MLPipelineSpec,
    drift: Drift,
    owner: Owner,
    run: Run,
    *,
    image: str,
    model_url: str,
    location: str,
    in_owner_cluster: bool,
) -> list[dict[str, Any]]:
    """A CronJob next to the model server that scores drift and writes `{"score": S}` to its
    termination message; its pods may call the model server and nothing else."""
    name = drift_name(owner)
    extra = {labels.STAGE: DRIFT}
    pod_labels = {
        **stage_pod_labels(owner, DRIFT, DRIFT_ROLE, location),
        policies.backend_label(owner.name): "true",  # admitted by the model server's policy
    }
    container = {
        "name": "drift",
        "image": image,
        "env": [
            {"name": "HOME", "value": TMP_DIR},
            {"name": "LLMFLEET_MODEL_URL", "value": model_url},
            {"name": "LLMFLEET_MODEL_NAME", "value": owner.name},
            {"name": "LLMFLEET_ARTIFACT", "value": run.artifact},
            {"name": "LLMFLEET_BASE_MODEL", "value": spec.model.base},
            {"name": "LLMFLEET_DATASET", "value": spec.training.dataset.uri},
            {"name": "LLMFLEET_DRIFT_THRESHOLD", "value": str(drift.threshold)},
        ],
        "securityContext": policies.container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": TMP_DIR}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": child_metadata(
            owner, name, in_owner_cluster=in_owner_cluster, extra_labels=extra
        ),
        "spec": {
            "schedule": drift.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {labels.OWNER: owner.label, labels.STAGE: DRIFT}},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": DRIFT_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": policies.helper_pod_spec(
                            name,
                            [container],
                            [{"name": "tmp", "emptyDir": {}}],
                            scheduling.pod_scheduling(location, Gpu(count=0), None, None),
                        ),
                    },
                },
            },
        },
    }
    account = stage_account(owner, name, DRIFT, in_owner_cluster=in_owner_cluster)
    object_labels = account["metadata"]["labels"]
    served_by = Owner("LLMDeployment", owner.namespace, owner.name, "")
    stage_policies = policies.only_to_model(
        name, owner.namespace, object_labels, {labels.OWNER: owner.label, labels.STAGE: DRIFT},
        model_pods=llm.selector_labels(served_by),
        port=RUNTIMES[spec.inference.runtime or DEFAULT_RUNTIME].port,
    )  # fmt: skip
    if in_owner_cluster:
        for policy in stage_policies:
            policy["metadata"]["ownerReferences"] = [owner.reference()]
    return [account, *stage_policies, cronjob]
