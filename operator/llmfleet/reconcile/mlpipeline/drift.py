"""Drift monitoring: a CronJob next to the model server, and the latest check's score."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmfleet import labels
from llmfleet.api.mlpipeline import Drift
from llmfleet.children import DRIFT
from llmfleet.kube.cluster import ClusterApi
from llmfleet.placement.clusters import MemberCluster
from llmfleet.reconcile.jobs import termination_message
from llmfleet.render.common import Owner


@dataclass
class DriftFacts:
    """Where checks run, and the latest finished check (re-read only when it is new)."""

    drift: Drift | None
    image: str
    member: MemberCluster | None
    reachable: bool
    latest: dict[str, Any] | None  # the status.drift of the latest finished check


@dataclass
class DriftResult:
    status: dict[str, Any] | None
    condition: tuple[bool | None, str, str] | None  # DriftDetected: value, reason, message


def latest_check(client: ClusterApi, owner: Owner) -> dict[str, Any] | None:
    selector = f"{labels.OWNER}={owner.label},{labels.STAGE}={DRIFT}"
    finished = [
        job
        for job in client.list("Job", owner.namespace, selector)
        if (job.get("status") or {}).get("succeeded") or (job.get("status") or {}).get("failed")
    ]
    return max(finished, key=lambda j: j["metadata"].get("creationTimestamp", ""), default=None)


def read_check(client: ClusterApi, job: Mapping[str, Any]) -> dict[str, Any]:
    """The score a drift Job's pod wrote as its termination message: {"score": S} or S."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    checked_at = status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in status.get("conditions") or []), None
    )
    said = termination_message(client, job["metadata"]["namespace"], name)
    return {"job": name, "checkedAt": checked_at, "score": parse_score(said)}


def parse_score(said: str) -> float | None:
    try:
        value = json.loads(said)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("score")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def drift_condition(result: Mapping[str, Any], drift: Drift) -> tuple[bool | None, str, str]:
    score = result.get("score")
    job = result.get("job")
    if score is None:
        need = 'the checker must write {"score": S} to its termination message'
        return None, "NoScore", f"drift check {job} wrote no score: {need}"
    if score > drift.threshold:
        return (
            True,
            "AboveThreshold",
            f"drift {score:g} is above the threshold {drift.threshold:g} (Job {job})",
        )
    return (
        False,
        "WithinThreshold",
        f"drift {score:g} is within the threshold {drift.threshold:g} (Job {job})",
    )


def result_of(facts: DriftFacts, serving: bool, silent: bool) -> DriftResult:
    """What status says about drift; `silent`: the checks' cluster did not answer."""
    drift = facts.drift
    if drift is None:
        return DriftResult(None, None)
    if not facts.image:
        why = (
            "no drift checker image: set spec.monitoring.drift.image, or start the "
            "operator with --drift-image"
        )
        return DriftResult(None, (None, "NoDriftImage", why))
    if not serving or facts.member is None:
        return DriftResult(
            None, (None, "WaitingForInference", "drift is checked once the model is placed")
        )
    if silent or not facts.reachable:
        return DriftResult(
            facts.latest,
            (None, "ClusterUnreachable", f"cluster {facts.member.name} does not answer"),
        )
    if not (facts.latest or {}).get("job"):
        waiting = f"no drift check has finished yet (schedule {drift.schedule})"
        return DriftResult(None, (None, "NoCheckYet", waiting))
    result = {**(facts.latest or {}), "cluster": facts.member.name, "threshold": drift.threshold}
    return DriftResult(result, drift_condition(result, drift))
