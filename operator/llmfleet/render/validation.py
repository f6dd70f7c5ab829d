"""spec.validation -> the scan of one placement: a Job (and, with a schedule, a CronJob) whose
garak pod calls that cluster's model server and nothing else, its config, its ServiceAccount
and NetworkPolicies. Pure: the revision, the URL and the image come in as arguments."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmfleet import labels, scan
from llmfleet.api.common import Gpu
from llmfleet.api.llmdeployment import DEFAULT_RUNTIME, LLMDeploymentSpec
from llmfleet.api.validation import Validation
from llmfleet.children import VALIDATION
from llmfleet.render import llmdeployment as llm
from llmfleet.render import scheduling
from llmfleet.render.common import Owner, bounded, child_metadata
from llmfleet.render.runtimes import RUNTIMES
from llmfleet.segmentation import policies

ROLE = "validation"
# Jobs the CronJob starts carry this stage: the part's own sync leaves them to their CronJob.
SCHEDULED = "validation-scheduled"
REVISION = labels.REVISION
JOB_NAME_LIMIT = 63  # Job names become pod label values
CRONJOB_NAME_LIMIT = 52  # the CronJob controller appends an 11-character suffix


def revision(spec: LLMDeploymentSpec) -> str:
    """What a scan judges, as a short digest: what the model servers serve (model, source,
    runtime, image, arguments) and what the scan asks of them (probes, prompts per probe,
    minPassRate). A change of either is a new revision, scanned again; replicas, placement,
    the schedule, enforce or the scanner image are not."""
    runtime = spec.runtime or DEFAULT_RUNTIME
    served: dict[str, object] = {
        "model": spec.model.name,
        "uri": spec.model.uri or f"hf://{spec.model.name}",
        "runtime": runtime,
        "image": spec.image or RUNTIMES[runtime].image,
        "args": list(spec.args),
    }
    if spec.validation is not None:
        served["scan"] = {
            "probes": list(spec.validation.probes),
            "promptsPerProbe": spec.validation.prompts_per_probe,
            "minPassRate": spec.validation.min_pass_rate,
        }
    return hashlib.sha256(json.dumps(served, sort_keys=True).encode()).hexdigest()[:10]


def job_name(owner: Owner, rev: str) -> str:
    return f"{bounded(owner.name, JOB_NAME_LIMIT - len(rev) - 10)}-validate-{rev}"


def resource_name(owner: Owner) -> str:
    """The ServiceAccount, ConfigMap, policies' prefix and CronJob of the scans."""
    return f"{bounded(owner.name, CRONJOB_NAME_LIMIT - 11)}-validation"


def pod_labels(owner: Owner, location: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": owner.instance,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
        labels.OWNER: owner.label,
        labels.STAGE: VALIDATION,
        labels.ROLE: ROLE,
        labels.LOCATION: location,
        labels.SEGMENT: f"{location}-{ROLE}",
        policies.backend_label(owner.name): "true",  # admitted by the model server's policy
    }


def scan_objects(
    spec: LLMDeploymentSpec,
    validation: Validation,
    owner: Owner,
    *,
    rev: str,
    image: str,
    model_url: str,
    location: str,
    in_owner_cluster: bool,
    run_now: bool,
) -> list[dict[str, Any]]:
    """The scan's objects in one cluster; the Job only with `run_now` (a ready placement whose
    revision has no scan yet, or the Job that scanned it, kept for its result)."""
    name = resource_name(owner)
    meta = child_metadata(
        owner, name, in_owner_cluster=in_owner_cluster, extra_labels={labels.STAGE: VALIDATION}
    )
    object_labels = meta["labels"]
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            scan.CONFIG_FILE: scan.garak_config(
                validation.probes,
                model_url,
                spec.model.name,
                prompt_cap=validation.prompts_per_probe,
                workdir=scan.WORK_DIR,
            ),
            scan.SCRIPT_FILE: scan.script(),
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
        "automountServiceAccountToken": False,
    }
    scan_policies = network_policies(spec, owner, name, object_labels)
    if in_owner_cluster:
        for policy in scan_policies:
            policy["metadata"]["ownerReferences"] = [owner.reference()]
    objects: list[dict[str, Any]] = [account, config, *scan_policies]
    template = job_spec(validation, owner, rev, image=image, location=location, name=name)
    if run_now:
        job_meta = child_metadata(
            owner, job_name(owner, rev), in_owner_cluster=in_owner_cluster,
            extra_labels={labels.STAGE: VALIDATION, REVISION: rev},
        )  # fmt: skip
        objects.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
                        "spec": template})  # fmt: skip
    if validation.schedule:
        objects.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta,
                "spec": {
                    "schedule": validation.schedule,
                    "concurrencyPolicy": "Forbid",
                    "successfulJobsHistoryLimit": 2,
                    "failedJobsHistoryLimit": 2,
                    "jobTemplate": {
                        "metadata": {
                            "labels": {
                                labels.OWNER: owner.label,
                                labels.STAGE: SCHEDULED,
                                REVISION: rev,
                            }
                        },
                        "spec": template,
                    },
                },
            }
        )
    return objects


def job_spec(
    validation: Validation, owner: Owner, rev: str, *, image: str, location: str, name: str
) -> dict[str, Any]:
    """One scan: garak against the model's URL, its summary as the termination message."""
    # garak stops before the Job's deadline, so the summary says why the scan was cut short.
    budget = max(validation.timeout_seconds - 60, 30)
    env = {
        **scan.environment(timeout_seconds=budget),
        "LLMFLEET_SCAN_PROBES": ",".join(validation.probes),
        "LLMFLEET_REVISION": rev,
    }
    container = {
        "name": "scan",
        "image": image,
        "command": scan.command(),
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": policies.container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": scan.CONFIG_DIR, "readOnly": True},
            {"name": "work", "mountPath": scan.WORK_DIR},
        ],
        # The summary the operator reads; the log's tail if the script could not write it.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "backoffLimit": 2,  # a crash or eviction is retried; a verdict is not
        "activeDeadlineSeconds": validation.timeout_seconds,
        "template": {
            "metadata": {"labels": pod_labels(owner, location)},
            "spec": policies.helper_pod_spec(
                name,
                [container],
                [
                    {"name": "config", "configMap": {"name": name}},
                    {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
                ],
                scheduling.pod_scheduling(location, Gpu(count=0), None, None),
            ),
        },
    }


def network_policies(
    spec: LLMDeploymentSpec, owner: Owner, name: str, object_labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The scan's pods reach their model server's pods (and DNS), nothing else."""
    return policies.only_to_model(
        name, owner.namespace, object_labels,
        {labels.OWNER: owner.label, labels.STAGE: VALIDATION},
        model_pods=llm.selector_labels(owner), port=RUNTIMES[spec.runtime or DEFAULT_RUNTIME].port,
    )  # fmt: skip
