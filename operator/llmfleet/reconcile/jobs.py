"""Jobs the operator runs (training, drift checks, validation scans): their phase and pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmfleet.kube.cluster import ClusterApi

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def job_phase(job: Mapping[str, Any]) -> str:
    status = job.get("status") or {}
    done = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in done:
        return "Succeeded"
    if "Failed" in done:
        return "Failed"
    return "Running" if status.get("ready") else "Pending"


def job_pods(client: ClusterApi, namespace: str, job: str) -> list[dict[str, Any]]:
    pods = client.list("Pod", namespace, f"{JOB_NAME_LABEL}={job}")
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)


def termination_message(client: ClusterApi, namespace: str, job: str) -> str:
    """What the Job's newest pod wrote as its termination message (a result it reports)."""
    for pod in job_pods(client, namespace, job):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            said = (terminated.get("message") or "").strip()
            if said:
                return str(said)
    return ""
