"""Validation of an LLMDeployment's placements: what each cluster's scans of the served revision
said, which Jobs to keep or start, and the Validated condition.

A placement is scanned once every replica serves the revision (its rollout done) and nothing
scanned that revision there; the Job that scanned it stays (its result is in its pod's
termination message, read once). Scheduled scans
(a CronJob) re-validate; the latest finished scan of the revision decides. A scan that did not
complete is a failure, never a pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet.api.validation import Validation, probe_problems
from llmfleet.children import VALIDATION
from llmfleet.kube.cluster import ClusterApi
from llmfleet.reconcile.engine import SpecError
from llmfleet.reconcile.jobs import job_phase, termination_message
from llmfleet.render import validation as render
from llmfleet.render.common import Owner
from llmfleet.scan import report as scan_report

STAGES = (VALIDATION, render.SCHEDULED)
PASSED, FAILED, RUNNING, PENDING, UNKNOWN = "Passed", "Failed", "Running", "Pending", "Unknown"


@dataclass
class ClusterScans:
    """One cluster's scans of the served revision, as its watches see them."""

    cluster: str
    jobs: list[Mapping[str, Any]] = field(default_factory=list)
    # The latest finished scan's entry (read from its pod when it is new).
    result: dict[str, Any] | None = None
    running: str = ""  # a Job of the revision still scanning
    silent: bool = False

    @property
    def initial_exists(self) -> bool:
        return any((j["metadata"].get("labels") or {}).get(labels.STAGE) == VALIDATION
                   for j in self.jobs)  # fmt: skip


def check_probes(validation: Validation | None, field_path: str) -> None:
    """Refuses probes garak does not have or that would download what the scanner may not
    (InvalidSpec, naming each field)."""
    problems = probe_problems(validation, field_path)
    if problems:
        raise SpecError("InvalidSpec", problems)


def scans_of(jobs: Sequence[Mapping[str, Any]], rev: str) -> list[Mapping[str, Any]]:
    """The validation Jobs (first and scheduled) of revision `rev`."""
    return [
        j
        for j in jobs
        if (j["metadata"].get("labels") or {}).get(labels.STAGE) in STAGES
        and (j["metadata"].get("labels") or {}).get(render.REVISION) == rev
    ]


def finished_at(job: Mapping[str, Any]) -> str:
    status = job.get("status") or {}
    done = [
        c.get("lastTransitionTime") or ""
        for c in status.get("conditions") or []
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
    ]
    return str(status.get("completionTime") or max(done, default=""))


def gather(
    client: ClusterApi,
    cluster: str,
    owner: Owner,
    *,
    rev: str,
    jobs: Sequence[Mapping[str, Any]],
    old: Mapping[str, Any],
    validation: Validation,
) -> ClusterScans:
    """`jobs`: the owner's Jobs in the cluster; `old`: the cluster's entry in the stored status
    (its result is kept while no newer scan finished)."""
    found = ClusterScans(cluster, scans_of(jobs, rev))
    finished = [j for j in found.jobs if job_phase(j) in ("Succeeded", "Failed")]
    latest = max(finished, key=lambda j: (finished_at(j), j["metadata"]["name"]), default=None)
    newest = max(found.jobs, key=lambda j: j["metadata"].get("creationTimestamp", ""), default=None)
    if newest is not None and newest is not latest and newest not in finished:
        found.running = str(newest["metadata"]["name"])
    if latest is None:
        return found
    name = str(latest["metadata"]["name"])
    known = (old.get("job"), old.get("revision"), old.get("verdict") in (PASSED, FAILED))
    if known == (name, rev, True):
        found.result = {k: v for k, v in old.items() if k != "rescanning"}
        return found
    said = termination_message(client, owner.namespace, name)
    found.result = judged(said, latest, validation, rev)
    return found


def judged(said: str, job: Mapping[str, Any], validation: Validation, rev: str) -> dict[str, Any]:
    """A finished scan's entry: its summary judged against the spec."""
    report = scan_report.parse_summary(said)
    verdict = scan_report.judge(report, validation.probes, validation.min_pass_rate)
    if job_phase(job) == "Failed" and verdict.passed:
        # The pod did not end well (deadline, crash): whatever it printed is not a pass.
        reasons = [
            c.get("message", "")
            for c in (job.get("status") or {}).get("conditions") or []
            if c.get("type") == "Failed"
        ]
        verdict = scan_report.Verdict(
            passed=False, reason="ScanFailed",
            message=f"the scan Job failed: {'; '.join(r for r in reasons if r) or 'no reason'}",
            results=verdict.results,
        )  # fmt: skip
    return {
        "revision": rev,
        "verdict": PASSED if verdict.passed else FAILED,
        "reason": verdict.reason,
        "message": verdict.message[:1024],
        "job": str(job["metadata"]["name"]),
        "scannedAt": finished_at(job) or None,
        "probes": [
            {
                "probe": r.probe, "detector": r.detector, "passed": r.passed, "total": r.total,
                "passRate": None if r.pass_rate is None else round(r.pass_rate, 4),
                "verdict": PASSED if r.ok else FAILED,
            }
            for r in verdict.results
        ][:64],
    }  # fmt: skip


def rolled_out(server: Mapping[str, Any] | None, rev: str) -> bool:
    """Whether a model server's Deployment serves `rev` with every replica: its rollout is
    done (a scan started earlier would judge the previous revision's pods) and one is ready."""
    if not server:
        return False
    meta, status = server.get("metadata") or {}, server.get("status") or {}
    return (
        (meta.get("annotations") or {}).get(labels.REVISION) == rev
        and int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(status.get("updatedReplicas") or 0) == int(status.get("replicas") or 0)
        and int(status.get("readyReplicas") or 0) > 0
    )


def entry(
    scans: ClusterScans, rev: str, *, rolled_out: bool, carried: bool, job: str
) -> dict[str, Any]:
    """The cluster's entry in status.validation.clusters; `job`: the name of the revision's
    first scan, started once every replica serves the revision."""
    base = {"cluster": scans.cluster, "revision": rev}
    if scans.result is not None:
        result = {**scans.result, "cluster": scans.cluster}
        if scans.running:
            result["rescanning"] = scans.running
        return result
    if carried:
        message = "passed as the candidate of its MLPipeline; not scanned again"
        return {**base, "verdict": PASSED, "reason": "Carried", "message": message}
    if scans.silent:
        message = f"cluster {scans.cluster} does not answer"
        return {**base, "verdict": UNKNOWN, "reason": "ClusterUnreachable", "message": message}
    if scans.running or scans.initial_exists or rolled_out:
        job = scans.running or job
        message = f"Job {job} scans revision {rev}"
        return {**base, "verdict": RUNNING, "reason": "Scanning", "job": job, "message": message}
    message = "scanned once every replica serves this revision and one is ready"
    return {**base, "verdict": PENDING, "reason": "WaitingForReplicas", "message": message}


def condition(
    entries: Sequence[Mapping[str, Any]], validation: Validation
) -> tuple[bool | None, str, str]:
    """Validated: True when every placement passed, False when one failed (naming it)."""
    if not entries:
        return None, "NothingPlaced", "scanned once the model is placed"
    failed = [e for e in entries if e.get("verdict") == FAILED]
    if failed:
        first = failed[0]
        text = "; ".join(f"{e['cluster']}: {e.get('message', '')}" for e in failed)
        gate = (
            " Gateways do not route to it there."
            if validation.enforce
            else " Recorded only (enforce: false)."
        )
        return False, str(first.get("reason") or "ValidationFailed"), (text + gate)[:4096]
    waiting = [e for e in entries if e.get("verdict") != PASSED]
    if waiting:
        first = waiting[0]
        text = "; ".join(f"{e['cluster']}: {e.get('message', '')}" for e in waiting)
        return None, str(first.get("reason") or "Scanning"), text[:4096]
    where = ", ".join(str(e["cluster"]) for e in entries)
    return True, "Passed", f"every placement passed its latest scan ({where})"


def summary(
    entries: Sequence[Mapping[str, Any]], rev: str, validation: Validation, cond: tuple[Any, ...]
) -> dict[str, Any]:
    verdict = {True: PASSED, False: FAILED}.get(cond[0])
    if verdict is None:
        states = {e.get("verdict") for e in entries}
        verdict = next((v for v in (RUNNING, UNKNOWN) if v in states), PENDING)
    return {
        "revision": rev,
        "verdict": verdict,
        "message": cond[2],
        "enforced": validation.enforce,
        "clusters": [{k: v for k, v in e.items() if v is not None} for e in entries],
    }


def changed_verdicts(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Clusters whose finished scan is new since the stored status: (verdict, entry)."""
    before = {(e.get("cluster"), e.get("job"), e.get("verdict")) for e in old}
    return [
        (str(e["verdict"]), e)
        for e in new
        if e.get("verdict") in (PASSED, FAILED)
        and e.get("reason") != "Carried"
        and (e.get("cluster"), e.get("job"), e.get("verdict")) not in before
    ]


def silent_entry(cluster: str, old: Mapping[str, Any], rev: str) -> ClusterScans:
    found = ClusterScans(cluster, silent=True)
    if old.get("revision") == rev and old.get("verdict") in (PASSED, FAILED):
        found.result = {k: v for k, v in old.items() if k != "rescanning"}
    return found
