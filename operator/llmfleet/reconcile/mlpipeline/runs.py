"""The training stage: which run is desired, where it trains, what its Job says.

A run is placed on the fleet's free GPUs (allocatable minus what pods hold, minus what the
operator has decided but cannot see yet), and its decision is recorded in the ledger, so a
burst of pipelines never over-commits a cluster. A run that does not fit now but would on an
idle node is queued: its Job is created once room opens. A Job that exists keeps its cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet.api.common import Gpu, Placement
from llmfleet.api.mlpipeline import MLPipelineSpec
from llmfleet.children import TRAINING
from llmfleet.kube.cluster import ClusterApi
from llmfleet.kube.rest import KubeError
from llmfleet.placement.capacity import Assumption, room
from llmfleet.placement.clusters import MemberCluster
from llmfleet.placement.policy import Violation
from llmfleet.placement.select import Decision, candidates, decide, shape_of
from llmfleet.reconcile.gather import Where, member_list
from llmfleet.reconcile.jobs import job_phase, job_pods
from llmfleet.reconcile.reads import Context
from llmfleet.render import mlpipeline as render
from llmfleet.render.common import Owner

MAX_RUNS = 32


@dataclass
class Stage:
    """One stage's status entry, and the condition reason that explains its phase."""

    entry: dict[str, Any]
    reason: str

    @property
    def phase(self) -> str:
        return str(self.entry["phase"])

    @property
    def message(self) -> str:
        return str(self.entry.get("message", ""))


@dataclass
class Training:
    """What was gathered about the desired run's training."""

    run: render.Run
    base: dict[str, Any]
    # Trained before: its record, and whether the stage entry already says so.
    recorded: Mapping[str, Any] | None = None
    same_child: bool = False
    where: Where | None = None
    job: Mapping[str, Any] | None = None
    # What the run's pods said: the failing container's message or the scheduler's reason.
    pods_said: str = ""
    # The stage's message from before, for a failure already explained (pods read once).
    explained: str = ""
    # No GPUs free now, but a candidate has a node that could hold the run: it waits.
    queued: bool = False
    # What the namespace's FleetPolicies forbid of the stage: nothing of it is created.
    refused: list[Violation] = field(default_factory=list)

    @property
    def cluster(self) -> MemberCluster | None:
        return self.where.cluster if self.where else None


def gather_training(
    spec: MLPipelineSpec,
    owner: Owner,
    runs: Sequence[Mapping[str, Any]],
    old_stage: Mapping[str, Any],
    ctx: Context,
    *,
    refused: Sequence[Violation] = (),
) -> Training:
    run = render.run_of(spec, owner.name)
    location = spec.training.placement.location
    child = f"Job/{render.job_name(owner, run)}"
    base = {"name": "training", "location": location, "child": child, "artifact": run.artifact}
    found = Training(run, base, same_child=old_stage.get("child") == child, refused=list(refused))
    found.recorded = next((r for r in runs if r.get("id") == run.id), None)
    if found.recorded is not None or found.refused:
        ctx.ledger.forget(owner.label)  # nothing trains: no GPUs are held for it
        return found
    stage = spec.training.placement
    placement = Placement(
        location=location,
        cluster_selector=stage.cluster_selector,
        node_selector=stage.node_selector,
        tolerations=stage.tolerations,
    )
    current = old_stage.get("cluster") if found.same_child else None
    found.where, found.queued = place_run(ctx, owner, placement, render.training_gpu(spec), current)
    target = found.cluster
    if target is None or found.where.unreachable:
        return found
    selector = f"{labels.OWNER}={owner.label},{labels.STAGE}={TRAINING}"
    name = child.split("/", 1)[1]
    jobs = member_list(ctx.fleet, target, "Job", owner.namespace, selector)
    if jobs is None:
        found.where = Where(
            Decision(target, "ClusterUnreachable", "its API server does not answer"),
            found.where.members,
        )
        return found
    found.job = next((j for j in jobs if j["metadata"]["name"] == name), None)
    phase = job_phase(found.job) if found.job is not None else ""
    if phase in ("Succeeded", "Failed"):
        ctx.ledger.forget(owner.label)  # its pod is done: the GPUs are free again
    if phase == "Failed" and found.same_child and old_stage.get("phase") == "Failed":
        found.explained = str(old_stage.get("message", ""))
    elif phase in ("Failed", "Pending"):
        try:
            found.pods_said = pods_say(ctx.fleet.client(target), owner.namespace, name, phase)
        except KubeError as error:
            if not error.transient:
                raise  # the pods' words are a detail: a silent cluster shows on the next pass
    return found


def place_run(
    ctx: Context, owner: Owner, placement: Placement, gpu: Gpu, current: str | None
) -> tuple[Where, bool]:
    """Where the run trains, decided on free GPUs under the ledger's lock and recorded there
    (its one pod), so concurrent decisions each see the others' runs; and whether a run that
    gets no GPUs now waits for them (a candidate has a node that could hold it when idle)."""
    members, _ = ctx.fleet.members()
    pool = candidates(placement, members)
    with ctx.ledger.deciding() as ledger:
        inventories = {m.name: ctx.fleet.inventory(m) for m in pool}
        decision = decide(
            placement, gpu, members, inventories, current,
            owner=owner.label, assumed={m.name: ledger.assumed(m.name) for m in pool},
        )  # fmt: skip
        if decision.cluster is not None and decision.reason == "Placed":
            if gpu.count:
                products = tuple(gpu.product or ())
                assumption = Assumption(owner.label, 1, gpu.count, gpu.resource_name, products)
                ledger.assume(owner.label, {decision.cluster.name: assumption})
        elif decision.cluster is None:
            ledger.forget(owner.label)
    queued = False
    if decision.reason == "InsufficientGPU":
        shape = shape_of(placement, gpu)
        queued = any(
            room(inventory.nodes, (), shape).fits > 0
            for inventory in inventories.values()
            if inventory.nodes is not None
        )
    return Where(decision, tuple(members)), queued


def job_stage(
    training: Training, job: Mapping[str, Any] | None, cluster: str
) -> tuple[Stage, dict[str, Any] | None]:
    """The stage a run's Job is in, and its run record once it succeeded."""
    run = training.run
    base = {**training.base, "cluster": cluster}
    if job is None:
        return Stage(
            {**base, "phase": "Pending", "message": f"run {run.id} is waiting to start"}, "Training"
        ), None
    status = job.get("status") or {}
    done = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    entry = {**base, "startTime": status.get("startTime")}
    if "Complete" in done:
        finished = status.get("completionTime") or done["Complete"].get("lastTransitionTime")
        record = {
            "id": run.id,
            "run": run.number,
            "artifact": run.artifact,
            "succeededAt": finished,
        }
        message = f"run {run.id} wrote {run.artifact}"
        return Stage(
            {**entry, "phase": "Succeeded", "completionTime": finished, "message": message},
            "Trained",
        ), record
    if "Failed" in done:
        condition = done["Failed"]
        why = f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}"
        message = training.explained or f"run {run.id} failed ({why})"
        if training.pods_said and not training.explained:
            message += f"; the trainer's last message: {training.pods_said}"
        finished = condition.get("lastTransitionTime")
        return Stage(
            {**entry, "phase": "Failed", "completionTime": finished, "message": message},
            "TrainingFailed",
        ), None
    if status.get("ready"):  # `active` counts pods still waiting for a node too
        message = f"run {run.id} is training on {cluster}"
        return Stage({**entry, "phase": "Running", "message": message}, "Training"), None
    waiting = training.pods_said
    message = f"run {run.id} is waiting to start" + (f": {waiting}" if waiting else "")
    return Stage({**entry, "phase": "Pending", "message": message}, "Training"), None


def pods_say(client: ClusterApi, namespace: str, job: str, phase: str) -> str:
    pods = job_pods(client, namespace, job)
    return failed_pod_message(pods) if phase == "Failed" else pending_pod_message(pods)


def failed_pod_message(pods: Sequence[Mapping[str, Any]]) -> str:
    """What the newest failed pod's container said when it stopped (termination message)."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or (
                container.get("lastState") or {}
            ).get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                said = (terminated.get("message") or "").strip()
                exit_code = f"exit code {terminated.get('exitCode')}"
                return f"{said} ({exit_code})"[:1000] if said else exit_code
    return ""


def pending_pod_message(pods: Sequence[Mapping[str, Any]]) -> str:
    """Why the run's pod has not started, as the scheduler put it (for example no GPU free)."""
    for pod in pods:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return str(condition.get("message", ""))[:1000]
    return ""


def unreachable(base: Mapping[str, Any], cluster: str, message: str) -> Stage:
    text = f"cluster {cluster} is unreachable ({message}); nothing is moved or deleted"
    return Stage(
        {**base, "cluster": cluster, "phase": "Unknown", "message": text}, "ClusterUnreachable"
    )


def serving_run(
    run: render.Run, runs: Sequence[Mapping[str, Any]], previous: str
) -> render.Run | None:
    """The desired run once trained; until then the run already serving, else the newest."""
    by_id = {r["id"]: r for r in runs}
    chosen = by_id.get(run.id) or by_id.get(previous) or (runs[0] if runs else None)
    if chosen is None:
        return None
    return render.Run(str(chosen["id"]), int(chosen.get("run", 0)), str(chosen["artifact"]))
