"""MLPipeline: train the desired run where its training stage is placed, serve the newest
successful run through an owned LLMDeployment and ChatEndpoint, and check drift next to the
model. A new run trains while the previous artifact keeps serving; inference switches only
once the new run succeeded, and every successful run stays recorded for a rollback."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.api.common import Placement
from llmfleet.api.mlpipeline import Drift, MLPipelineSpec, MLPipelineStatus
from llmfleet.kube import apply
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import KubeClient, KubeError
from llmfleet.placement import modes
from llmfleet.placement.clusters import MemberCluster
from llmfleet.placement.select import candidates, decide
from llmfleet.reconcile import Event, Outcome
from llmfleet.render import mlpipeline as render
from llmfleet.render.common import Owner
from llmfleet.settings import Settings

KIND = "MLPipeline"
MAX_RUNS = 32
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Phases that need a person (or a returning cluster) rather than time.
TROUBLE = ("Failed", "Unschedulable", "Unknown")


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
class DriftResult:
    status: dict[str, Any] | None
    condition: tuple[bool | None, str, str] | None  # DriftDetected: value, reason, message


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(KIND, meta["namespace"], meta["name"], meta.get("uid", ""))


def reconcile(body: Mapping[str, Any], federation: Federation, settings: Settings) -> Outcome:
    old = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 0))
    try:
        spec = MLPipelineSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return failed(old, generation, "InvalidSpec", f"the spec does not parse: {error}")
    owner = owner_of(body)
    run = render.run_of(spec, owner.name)
    old_stages = {s.get("name"): s for s in old.get("stages") or []}
    runs = [dict(r) for r in old.get("runs") or []]
    members, _ = federation.members()

    training, record = train(
        spec, owner, run, runs, old_stage=old_stages.get("training", {}), federation=federation
    )
    if record is not None:
        runs = [record, *[r for r in runs if r["id"] != record["id"]]][:MAX_RUNS]
    serving = serving_run(run, runs, str(old.get("servingRun", "")))
    inference, endpoint, model_site = serve(spec, owner, serving, federation)
    drift = monitor(
        spec, owner, serving, model_site,
        federation=federation, members=members, settings=settings, old=old,
    )  # fmt: skip
    return report(
        old, generation, spec=spec, run=run, runs=runs, serving=serving,
        stages=[training, inference, endpoint], drift=drift,
    )  # fmt: skip


# --- training -------------------------------------------------------------------------------


def train(
    spec: MLPipelineSpec,
    owner: Owner,
    run: render.Run,
    runs: Sequence[Mapping[str, Any]],
    *,
    old_stage: Mapping[str, Any],
    federation: Federation,
) -> tuple[Stage, dict[str, Any] | None]:
    """The training stage of the desired run, and its record when it just succeeded."""
    location = spec.training.placement.location
    child = f"Job/{render.job_name(owner, run)}"
    base = {"name": "training", "location": location, "child": child, "artifact": run.artifact}
    recorded = next((r for r in runs if r.get("id") == run.id), None)
    if recorded is not None:
        if old_stage.get("child") == child:
            return Stage(dict(old_stage), "Trained"), None
        abandon(federation, owner, old_stage, render.TRAINING_KINDS, render.TRAINING)
        entry = {
            **base, "phase": "Succeeded", "completionTime": recorded.get("succeededAt"),
            "message": f"run {run.id} was trained before; its artifact is served again",
        }  # fmt: skip
        return Stage(entry, "Trained"), None

    stage = spec.training.placement
    placement = Placement(
        location=location,
        cluster_selector=stage.cluster_selector,
        node_selector=stage.node_selector,
        tolerations=stage.tolerations,
    )
    members, _ = federation.members()
    inventories = {m.name: federation.inventory(m) for m in candidates(placement, members)}
    current = old_stage.get("cluster") if old_stage.get("child") == child else None
    decision = decide(placement, render.training_gpu(spec), members, inventories, current)
    if decision.cluster is None:
        return Stage(
            {**base, "phase": "Unschedulable", "message": decision.message}, decision.reason
        ), None
    target = decision.cluster
    if decision.reason == "ClusterUnreachable":
        return unreachable(base, target.name, decision.message), None
    client = federation.client(target)
    in_owner_cluster = target.kubeconfig is None
    try:
        if not in_owner_cluster:
            apply.ensure_namespace(client, owner.namespace)
        objects = render.training(spec, owner, run, in_owner_cluster=in_owner_cluster)
        result = apply.sync(
            client, owner.namespace, owner.label, objects, render.TRAINING_KINDS,
            stage=render.TRAINING, create_only=("Job",),
        )  # fmt: skip
        if old_stage.get("cluster") not in (None, "", target.name):
            abandon(federation, owner, old_stage, render.TRAINING_KINDS, render.TRAINING)
        return job_stage({**base, "cluster": target.name}, result.live[child], client, run)
    except KubeError as error:
        if error.unreachable:
            return unreachable(base, target.name, error.message), None
        raise


def job_stage(
    base: dict[str, Any], job: Mapping[str, Any], client: KubeClient, run: render.Run
) -> tuple[Stage, dict[str, Any] | None]:
    status = job.get("status") or {}
    done = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    entry = {**base, "startTime": status.get("startTime")}
    name = job["metadata"]["name"]
    namespace = job["metadata"]["namespace"]
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
        message = f"run {run.id} failed ({why})"
        said = failed_pod_message(client, namespace, name)
        if said:
            message += f"; the trainer's last message: {said}"
        finished = condition.get("lastTransitionTime")
        return Stage(
            {**entry, "phase": "Failed", "completionTime": finished, "message": message},
            "TrainingFailed",
        ), None
    if status.get("ready"):  # `active` counts pods still waiting for a node too
        message = f"run {run.id} is training on {base['cluster']}"
        return Stage({**entry, "phase": "Running", "message": message}, "Training"), None
    waiting = pending_pod_message(client, namespace, name)
    message = f"run {run.id} is waiting to start" + (f": {waiting}" if waiting else "")
    return Stage({**entry, "phase": "Pending", "message": message}, "Training"), None


def job_pods(client: KubeClient, namespace: str, job: str) -> list[dict[str, Any]]:
    pods = client.list("Pod", namespace, f"{JOB_NAME_LABEL}={job}")
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)


def failed_pod_message(client: KubeClient, namespace: str, job: str) -> str:
    """What the newest failed pod's container said when it stopped (termination message)."""
    for pod in job_pods(client, namespace, job):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or (
                container.get("lastState") or {}
            ).get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                said = (terminated.get("message") or "").strip()
                exit_code = f"exit code {terminated.get('exitCode')}"
                return f"{said} ({exit_code})"[:1000] if said else exit_code
    return ""


def pending_pod_message(client: KubeClient, namespace: str, job: str) -> str:
    """Why the run's pod has not started, as the scheduler put it (for example no GPU free)."""
    for pod in job_pods(client, namespace, job):
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return str(condition.get("message", ""))[:1000]
    return ""


def unreachable(base: Mapping[str, Any], cluster: str, message: str) -> Stage:
    text = f"cluster {cluster} is unreachable ({message}); nothing is moved or deleted"
    return Stage(
        {**base, "cluster": cluster, "phase": "Unknown", "message": text}, "ClusterUnreachable"
    )


def abandon(
    federation: Federation,
    owner: Owner,
    old_stage: Mapping[str, Any],
    kinds: Sequence[str],
    stage: str,
) -> None:
    """Removes a stage's objects from the cluster it ran on before (another run, another site)."""
    cluster = old_stage.get("cluster")
    members, _ = federation.members()
    member = next((m for m in members if m.name == cluster), None)
    if member is None:
        return
    try:
        apply.remove_all(
            federation.client(member), owner.namespace, owner.label, kinds, stage=stage
        )
    except KubeError as error:
        if not error.unreachable:
            raise  # an unreachable cluster is cleaned when it returns, or by the finalizer


# --- inference and endpoint -----------------------------------------------------------------


def serving_run(
    run: render.Run, runs: Sequence[Mapping[str, Any]], previous: str
) -> render.Run | None:
    """The desired run once trained; until then the run already serving, else the newest."""
    by_id = {r["id"]: r for r in runs}
    chosen = by_id.get(run.id) or by_id.get(previous) or (runs[0] if runs else None)
    if chosen is None:
        return None
    return render.Run(str(chosen["id"]), int(chosen.get("run", 0)), str(chosen["artifact"]))


def serve(
    spec: MLPipelineSpec, owner: Owner, serving: render.Run | None, federation: Federation
) -> tuple[Stage, Stage, Mapping[str, Any]]:
    """Applies the owned LLMDeployment and ChatEndpoint; returns both stages and the model's
    placement (cluster and in-cluster URL) once it has one."""
    inference = {
        "name": "inference",
        "location": spec.inference.placement.location,
        "child": f"LLMDeployment/{owner.name}",
    }
    endpoint = {
        "name": "endpoint",
        "location": spec.endpoint.placement.location,
        "child": f"ChatEndpoint/{owner.name}",
    }
    desired = []
    if serving is not None:
        desired = [render.inference(spec, owner, serving), render.endpoint(spec, owner)]
    try:
        result = apply.sync(
            federation.hub, owner.namespace, owner.label, desired, render.HUB_KINDS,
            refuse_foreign=True,
        )  # fmt: skip
    except apply.ForeignObjectError as taken:
        return (
            Stage({**inference, "phase": "Failed", "message": str(taken)}, "NameConflict"),
            Stage({**endpoint, "phase": "Pending", "message": str(taken)}, "NameConflict"),
            {},
        )
    if serving is None:
        waiting = "waiting for the first training run to succeed"
        return (
            Stage({**inference, "phase": "Pending", "message": waiting}, "WaitingForTraining"),
            Stage({**endpoint, "phase": "Pending", "message": waiting}, "WaitingForTraining"),
            {},
        )
    llm = result.live[inference["child"]]
    chat = result.live[endpoint["child"]]
    placed: Mapping[str, Any] = next(
        (
            p
            for p in (llm.get("status") or {}).get("placements") or []
            if p.get("state") == "Placed"
        ),
        {},
    )
    sites = (chat.get("status") or {}).get("sites") or [{}]
    return (
        child_stage({**inference, "artifact": serving.artifact}, llm, placed.get("cluster", "")),
        child_stage(endpoint, chat, sites[0].get("cluster", "")),
        placed,
    )


def child_stage(base: dict[str, Any], live: Mapping[str, Any], cluster: str) -> Stage:
    """A stage run by an owned resource: its phase follows that resource's conditions."""
    meta = live.get("metadata") or {}
    status = live.get("status") or {}
    entry = {**base, "cluster": cluster, "startTime": meta.get("creationTimestamp")}
    kind = base["child"].split("/")[0]
    if status.get("observedGeneration") != meta.get("generation"):
        return Stage(
            {**entry, "phase": "Pending", "message": f"the {kind} is being reconciled"}, "Deploying"
        )
    found = status.get("conditions") or []
    ready = conditions.find(found, "Ready")
    placed = conditions.find(found, "Placed")
    degraded = conditions.find(found, "Degraded")
    message = f"{kind}: {ready.get('message', '')}"
    if ready.get("status") == "True":
        return Stage({**entry, "phase": "Running", "message": message}, "Serving")
    if ready.get("reason") == "ClusterUnreachable":
        return Stage({**entry, "phase": "Unknown", "message": message}, "ClusterUnreachable")
    if placed.get("status") == "False":
        return Stage(
            {**entry, "phase": "Unschedulable", "message": message}, str(placed.get("reason"))
        )
    if degraded.get("status") == "True":
        return Stage({**entry, "phase": "Failed", "message": message}, str(degraded.get("reason")))
    return Stage({**entry, "phase": "Pending", "message": message}, "Deploying")


# --- drift ----------------------------------------------------------------------------------


def monitor(
    spec: MLPipelineSpec,
    owner: Owner,
    serving: render.Run | None,
    model_site: Mapping[str, Any],
    *,
    federation: Federation,
    members: Sequence[MemberCluster],
    settings: Settings,
    old: Mapping[str, Any],
) -> DriftResult:
    """Keeps the drift CronJob next to the model server and reads its latest result."""
    drift = spec.monitoring.drift if spec.monitoring else None
    previous = dict(old.get("drift") or {})
    member = next((m for m in members if m.name == model_site.get("cluster")), None)
    image = (drift.image if drift else None) or settings.drift_image
    if drift is None or serving is None or member is None or not image:
        if previous.get("cluster"):
            abandon(federation, owner, previous, render.DRIFT_KINDS, render.DRIFT)
        if drift is None:
            return DriftResult(None, None)
        if not image:
            why = (
                "no drift checker image: set spec.monitoring.drift.image, or start the "
                "operator with --drift-image"
            )
            return DriftResult(None, (None, "NoDriftImage", why))
        return DriftResult(
            None, (None, "WaitingForInference", "drift is checked once the model is placed")
        )

    client = federation.client(member)
    in_owner_cluster = member.kubeconfig is None
    objects = render.drift_monitor(
        spec, drift, owner, serving, image=image, model_url=str(model_site.get("endpoint", "")),
        location=spec.inference.placement.location, in_owner_cluster=in_owner_cluster,
    )  # fmt: skip
    try:
        apply.sync(
            client, owner.namespace, owner.label, objects, render.DRIFT_KINDS, stage=render.DRIFT
        )
        if previous.get("cluster") not in (None, "", member.name):
            abandon(federation, owner, previous, render.DRIFT_KINDS, render.DRIFT)
        latest = latest_check(client, owner)
        if latest is not None and latest["metadata"]["name"] != previous.get("job"):
            previous = read_check(client, latest)
    except KubeError as error:
        if not error.unreachable:
            raise
        return DriftResult(previous or None, (None, "ClusterUnreachable", error.message))
    if not previous.get("job"):
        waiting = f"no drift check has finished yet (schedule {drift.schedule})"
        return DriftResult(None, (None, "NoCheckYet", waiting))
    result = {**previous, "cluster": member.name, "threshold": drift.threshold}
    return DriftResult(result, drift_condition(result, drift))


def latest_check(client: KubeClient, owner: Owner) -> dict[str, Any] | None:
    selector = f"{labels.OWNER}={owner.label},{labels.STAGE}={render.DRIFT}"
    finished = [
        job
        for job in client.list("Job", owner.namespace, selector)
        if (job.get("status") or {}).get("succeeded") or (job.get("status") or {}).get("failed")
    ]
    return max(finished, key=lambda j: j["metadata"].get("creationTimestamp", ""), default=None)


def read_check(client: KubeClient, job: Mapping[str, Any]) -> dict[str, Any]:
    """The score a drift Job's pod wrote as its termination message: {"score": S} or S."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    checked_at = status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in status.get("conditions") or []), None
    )
    said = ""
    for pod in job_pods(client, job["metadata"]["namespace"], name):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            said = said or (terminated.get("message") or "").strip()
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


# --- status ---------------------------------------------------------------------------------


def report(
    old: Mapping[str, Any],
    generation: int,
    *,
    spec: MLPipelineSpec,
    run: render.Run,
    runs: list[dict[str, Any]],
    serving: render.Run | None,
    stages: list[Stage],
    drift: DriftResult,
) -> Outcome:
    training, inference, endpoint = stages
    trained = training.phase == "Succeeded"
    up = inference.phase == "Running" and endpoint.phase == "Running"
    ready_value, ready_reason, ready_message = readiness(run, serving, stages)
    trouble = [s for s in stages if s.phase in TROUBLE]
    serving_message = "the endpoint is not serving yet"
    if up and serving is not None:
        serving_message = f"run {serving.id} serves {serving.artifact}"
    items: list[tuple[str, bool | None, str, str]] = [
        ("Ready", ready_value, ready_reason, ready_message),
        ("Trained", trained, training.reason, training.message),
        ("Serving", up, "Serving" if up else "NotServing", serving_message),
        (
            "Degraded",
            bool(trouble),
            trouble[0].reason if trouble else "AsExpected",
            trouble[0].message if trouble else "every stage is as specified",
        ),
    ]
    if drift.condition is not None:
        items.append(("DriftDetected", *drift.condition))
    previous_conditions = old.get("conditions") or []
    new: dict[str, Any] = {
        "observedGeneration": generation,
        "option": modes.ml_option(spec),
        "currentStage": next(
            (s.entry["name"] for s in stages if s.phase not in ("Succeeded", "Running")), "Serving"
        ),
        "stages": [{k: v for k, v in s.entry.items() if v is not None} for s in stages],
        "servingRun": serving.id if serving else "",
        "runs": runs,
        "conditions": conditions.conditions_of(
            items, generation=generation, previous=previous_conditions
        ),
    }
    if drift.status is not None:
        new["drift"] = {k: v for k, v in drift.status.items() if v is not None}
    # The API server fills the schema's defaults; compare with the same form, or every
    # resync would see a difference and write.
    new = MLPipelineStatus.model_validate(new).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    events = transition_events(old, new, stages)
    return Outcome(status=new if new != old else None, events=events)


def readiness(
    run: render.Run, serving: render.Run | None, stages: list[Stage]
) -> tuple[bool | None, str, str]:
    training, inference, endpoint = stages
    keeps = f"; run {serving.id} keeps serving" if serving and serving.id != run.id else ""
    if training.phase == "Unknown":
        return None, training.reason, training.message
    if training.phase in ("Failed", "Unschedulable"):
        return False, training.reason, training.message + keeps
    if training.phase != "Succeeded":
        return False, "Training", training.message + keeps
    for stage in (inference, endpoint):
        if stage.phase == "Unknown":
            return None, stage.reason, stage.message
        if stage.phase != "Running":
            return False, stage.reason, stage.message
    if serving is None or serving.id != run.id:
        return False, "RollingOut", f"inference is moving to run {run.id}"
    return True, "Serving", f"run {run.id} is trained and served"


def transition_events(
    old: Mapping[str, Any], new: Mapping[str, Any], stages: list[Stage]
) -> list[Event]:
    before = {s.get("name"): s.get("phase") for s in old.get("stages") or []}
    events = []
    for stage in stages:
        name = str(stage.entry["name"])
        if before.get(name) == stage.phase:
            continue
        kind = "Warning" if stage.phase in TROUBLE else "Normal"
        events.append(Event(kind, f"{name.capitalize()}{stage.phase}", stage.message))
    was, now = old.get("servingRun"), new.get("servingRun")
    if was and now and was != now:
        events.append(Event("Normal", "RolledOut", f"inference moved from run {was} to run {now}"))
    old_drift = conditions.find(old.get("conditions") or [], "DriftDetected")
    new_drift = conditions.find(new["conditions"], "DriftDetected")
    if new_drift.get("status") == "True" and old_drift.get("status") != "True":
        events.append(Event("Warning", "DriftDetected", str(new_drift.get("message"))))
    return events


def failed(old: Mapping[str, Any], generation: int, reason: str, message: str) -> Outcome:
    previous = old.get("conditions") or []
    new = {
        **old,
        "observedGeneration": generation,
        "conditions": conditions.conditions_of(
            [("Ready", False, reason, message), ("Degraded", True, reason, message)],
            generation=generation,
            previous=previous,
        ),
    }
    changed = new != old
    events = [Event("Warning", reason, message)] if changed else []
    return Outcome(status=new if changed else None, events=events)
