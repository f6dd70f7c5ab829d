"""MLPipeline through the engine: train the desired run where its training stage is placed,
serve the newest successful run through an owned LLMDeployment and ChatEndpoint, and check
drift next to the model. A new run trains while the previous artifact keeps serving;
inference switches only once the new run succeeded, and every successful run stays recorded
for a rollback. A stage at a location the namespace's FleetPolicies forbid creates nothing,
and what it ran goes (a forbidden inference stage leaves the endpoint without a model, so
that is not created either).

Training is placed on the fleet's free GPUs (llmfleet.reconcile.mlpipeline.runs): a run
that gets none yet is Queued, and starts once room opens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.api.mlpipeline import MLPipelineSpec, MLPipelineStatus
from llmfleet.children import DRIFT, ML_PIPELINE, SERVING, TRAINING
from llmfleet.kube.rest import KubeError
from llmfleet.placement import modes
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.placement.policy import Residency, Violation
from llmfleet.reconcile import validation as validating
from llmfleet.reconcile.engine import (
    UNKNOWN,
    Desired,
    Event,
    Executed,
    Kind,
    Plan,
    Subject,
)
from llmfleet.reconcile.gather import member_named, reachable
from llmfleet.reconcile.llmdeployment import serving_placement
from llmfleet.reconcile.mlpipeline import drift as drifts
from llmfleet.reconcile.mlpipeline import gate as gating
from llmfleet.reconcile.mlpipeline.runs import (
    MAX_RUNS,
    Stage,
    Training,
    gather_training,
    job_stage,
    serving_run,
    unreachable,
)
from llmfleet.reconcile.reads import Context
from llmfleet.render import mlpipeline as render
from llmfleet.render.common import Owner

KIND = "MLPipeline"
CONDITIONS = ("Ready", "Trained", "Serving", "Degraded")
# Phases that need a person (or a returning cluster) rather than time.
TROUBLE = ("Failed", "Unschedulable", "Unknown", "Refused")
POLICY_VIOLATION = "PolicyViolation"
BASE = ("name", "location", "child")  # what a stage's entry says before anything runs


@dataclass
class Facts:
    spec: MLPipelineSpec
    owner: Owner
    old: Mapping[str, Any]
    generation: int
    training: Training
    runs: list[dict[str, Any]]
    # The owned LLMDeployment and ChatEndpoint as the hub's watch last saw them.
    owned: dict[str, dict[str, Any]]
    drift: drifts.DriftFacts
    # Per stage: what the namespace's FleetPolicies forbid of it.
    refused: dict[str, list[Violation]] = field(default_factory=dict)

    def serves(self) -> bool:
        """Whether the inference stage may run (and the drift checks next to it)."""
        return not self.refused.get("inference")


def violations(spec: MLPipelineSpec, residency: Residency) -> dict[str, list[Violation]]:
    """What the FleetPolicies forbid of each stage: its location; for the endpoint also a
    route to an inference stage at another location while crossing locations is denied."""
    found: dict[str, list[Violation]] = {}
    locations = {
        "training": spec.training.placement.location,
        "inference": spec.inference.placement.location,
        "endpoint": spec.endpoint.placement.location,
    }
    for name, location in locations.items():
        field_name = f"spec.{name}.placement.location"
        refused = [residency.location_violation(location, field_name)]
        if name == "endpoint":
            refused.append(
                residency.cross_location_violation(
                    location,
                    locations["inference"],
                    field_name,
                    remedy="place the endpoint where inference runs",
                )
            )
        if any(refused):
            found[name] = [v for v in refused if v is not None]
    return found


def gather(subject: Subject, ctx: Context) -> Facts:
    spec: MLPipelineSpec = subject.spec
    owner, old = subject.owner, subject.old
    validating.check_probes(spec.inference.validation, "spec.inference.validation")
    runs = [dict(r) for r in old.get("runs") or []]
    old_stages = {s.get("name"): s for s in old.get("stages") or []}
    refused = violations(spec, ctx.reads.residency(owner.namespace))
    training = gather_training(
        spec, owner, runs, old_stages.get("training", {}), ctx, refused=refused.get("training", ())
    )
    hub_live = [
        {"kind": kind, **obj}
        for kind in ("LLMDeployment", "ChatEndpoint")
        for obj in ctx.fleet.hub.list(kind, owner.namespace, f"{labels.OWNER}={owner.label}")
    ]
    owned = {f"{o['kind']}/{o['metadata']['name']}": o for o in hub_live}
    drift = gather_drift(spec, owner, old, owned, ctx, serves=not refused.get("inference"))
    return Facts(
        spec=spec, owner=owner, old=old, generation=subject.generation, training=training,
        runs=runs, owned=owned, drift=drift, refused=refused,
    )  # fmt: skip


def gather_drift(
    spec: MLPipelineSpec,
    owner: Owner,
    old: Mapping[str, Any],
    owned: Mapping[str, Mapping[str, Any]],
    ctx: Context,
    *,
    serves: bool = True,
) -> drifts.DriftFacts:
    drift = spec.monitoring.drift if spec.monitoring and serves else None
    image = ((drift.image if drift else None) or ctx.settings.drift_image) or ""
    model = owned.get(f"LLMDeployment/{owner.name}", {})
    site = serving_placement(model.get("status") or {})
    member = member_named(ctx.fleet, site.get("cluster")) if drift else None
    found = drifts.DriftFacts(drift, image, member, reachable=False, latest=None)
    if member is None or not image:
        return found
    found.reachable = reachable(ctx.fleet, member)
    if not found.reachable:
        found.latest = dict(old.get("drift") or {}) or None
        return found
    client = ctx.fleet.client(member)
    previous = dict(old.get("drift") or {})
    try:
        latest = drifts.latest_check(client, owner)
        if latest is not None and latest["metadata"]["name"] != previous.get("job"):
            previous = drifts.read_check(client, latest)
    except KubeError as error:
        if not error.transient:
            raise
        found.reachable = False
    found.latest = previous or None
    return found


@dataclass
class PipelinePlan(Plan):
    training: Stage | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    serving: render.Run | None = None
    gate: gating.Gate | None = None
    # Where the model serves and its in-cluster URL, once placed.
    model_site: dict[str, Any] = field(default_factory=dict)


def plan(facts: Facts) -> PipelinePlan:
    spec, owner = facts.spec, facts.owner
    result = PipelinePlan()
    result.training, record = plan_training(facts, result)
    runs = facts.runs
    if record is not None:
        runs = [record, *[r for r in runs if r["id"] != record["id"]]][:MAX_RUNS]
    previous = str(facts.old.get("servingRun", ""))
    candidate = None
    if spec.inference.validation is not None and spec.inference.validation.enforce:
        result.gate = gating.decide(
            spec, owner, facts.training.run, runs=runs, previous=previous, owned=facts.owned
        )
        runs, serving, candidate = result.gate.runs, result.gate.serving, result.gate.candidate
    else:
        serving = serving_run(facts.training.run, runs, previous)
    result.runs = runs
    result.serving = serving
    hub = ML_PIPELINE.part(SERVING)
    desired = []
    if serving is not None and facts.serves():
        validated = gating.validated_revision(spec, owner, serving, runs)
        desired.append(render.inference(spec, owner, serving, validated_revision=validated))
        if candidate is not None:
            desired.append(candidate)
        if not facts.refused.get("endpoint"):
            desired.append(render.endpoint(spec, owner))
    result.add(Desired(IN_CLUSTER, hub, desired, refuse_foreign=True))
    model = facts.owned.get(f"LLMDeployment/{owner.name}", {})
    if serving is not None and facts.serves():
        result.model_site = dict(serving_placement(model.get("status") or {}))
    plan_drift(facts, result)
    return result


def plan_training(facts: Facts, result: PipelinePlan) -> tuple[Stage, dict[str, Any] | None]:
    training = facts.training
    part = ML_PIPELINE.part(TRAINING)
    stages: list[Mapping[str, Any]] = list(facts.old.get("stages") or [])
    old_stage: Mapping[str, Any] = next((s for s in stages if s.get("name") == "training"), {})
    if training.refused:
        return refused_stage(training.base, training.refused), None
    if training.recorded is not None:
        if training.same_child:
            if old_stage.get("cluster"):
                result.add(Desired(str(old_stage["cluster"]), part, None))
            return Stage(dict(old_stage), "Trained"), None
        entry = {
            **training.base, "phase": "Succeeded",
            "completionTime": training.recorded.get("succeededAt"),
            "message": f"run {training.run.id} was trained before; its artifact is served again",
        }  # fmt: skip
        return Stage(entry, "Trained"), None
    where = training.where
    if where is not None and where.cluster is None and training.queued:
        message = (
            f"run {training.run.id} waits for GPUs and starts once they free up: "
            f"{where.decision.message}"
        )
        return Stage({**training.base, "phase": "Queued", "message": message}, "Queued"), None
    if where is None or where.cluster is None:
        message = where.decision.message if where else "no training placement"
        reason = where.decision.reason if where else "NoCluster"
        return Stage({**training.base, "phase": "Unschedulable", "message": message}, reason), None
    target = where.cluster
    if where.unreachable:
        result.add(Desired(target.name, part, None))
        return unreachable(training.base, target.name, where.decision.message), None
    objects = render.training(
        facts.spec, facts.owner, training.run, in_owner_cluster=target.kubeconfig is None
    )
    result.add(Desired(target.name, part, objects, create_only=("Job",)))
    return job_stage(training, training.job, target.name)


def refused_stage(base: Mapping[str, Any], refused: Sequence[Violation]) -> Stage:
    """A stage a FleetPolicy forbids: nothing of it is created."""
    message = "; ".join(v.message for v in refused)
    return Stage({**base, "phase": "Refused", "message": message}, POLICY_VIOLATION)


def plan_drift(facts: Facts, result: PipelinePlan) -> None:
    found = facts.drift
    if found.drift is None or result.serving is None or found.member is None or not found.image:
        return
    part = ML_PIPELINE.part(DRIFT)
    if not found.reachable:
        result.add(Desired(found.member.name, part, None))
        return
    objects = render.drift_monitor(
        facts.spec, found.drift, facts.owner, result.serving, image=found.image,
        model_url=str(result.model_site.get("endpoint", "")),
        location=facts.spec.inference.placement.location,
        in_owner_cluster=found.member.kubeconfig is None,
    )  # fmt: skip
    result.add(Desired(found.member.name, part, objects))


# --- status ---------------------------------------------------------------------------------


def served_stages(facts: Facts, planned: PipelinePlan, executed: Executed) -> tuple[Stage, Stage]:
    """The inference and endpoint stages; a stage a FleetPolicy forbids says so."""
    inference, endpoint = run_stages(facts, planned, executed)
    refused = facts.refused.get("endpoint")
    if refused:
        endpoint = refused_stage({k: endpoint.entry.get(k) for k in BASE}, refused)
    return inference, endpoint


def run_stages(facts: Facts, planned: PipelinePlan, executed: Executed) -> tuple[Stage, Stage]:
    spec, owner = facts.spec, facts.owner
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
    refused = facts.refused.get("inference")
    if refused:
        waiting = "waiting for the inference stage, which a FleetPolicy refuses"
        return refused_stage(inference, refused), Stage(
            {**endpoint, "phase": "Pending", "message": waiting}, POLICY_VIOLATION
        )
    taken = next((f for f in executed.findings if f.reason == "NameConflict"), None)
    if taken is not None:
        return (
            Stage({**inference, "phase": "Failed", "message": taken.message}, "NameConflict"),
            Stage({**endpoint, "phase": "Pending", "message": taken.message}, "NameConflict"),
        )
    serving = planned.serving
    if serving is None:
        waiting = "waiting for the first training run to succeed"
        return (
            Stage({**inference, "phase": "Pending", "message": waiting}, "WaitingForTraining"),
            Stage({**endpoint, "phase": "Pending", "message": waiting}, "WaitingForTraining"),
        )

    def live(ref: str) -> dict[str, Any]:
        return executed.object(IN_CLUSTER, ref) or facts.owned.get(ref, {})

    chat = live(endpoint["child"])
    sites = (chat.get("status") or {}).get("sites") or [{}]
    return (
        child_stage(
            {**inference, "artifact": serving.artifact},
            live(inference["child"]),
            str(planned.model_site.get("cluster", "")),
        ),
        child_stage(endpoint, chat, sites[0].get("cluster", "")),
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
    if ready.get("reason") in ("ClusterUnreachable", "BackendUnreachable"):
        return Stage({**entry, "phase": "Unknown", "message": message}, "ClusterUnreachable")
    if placed.get("status") == "False":
        return Stage(
            {**entry, "phase": "Unschedulable", "message": message}, str(placed.get("reason"))
        )
    if degraded.get("status") == "True":
        return Stage({**entry, "phase": "Failed", "message": message}, str(degraded.get("reason")))
    return Stage({**entry, "phase": "Pending", "message": message}, "Deploying")


def report(facts: Facts, planned: Plan, executed: Executed) -> tuple[dict[str, Any], list[Event]]:
    if not isinstance(planned, PipelinePlan) or planned.training is None:  # pragma: no cover
        raise TypeError("an MLPipeline plan")
    training = planned.training
    inference, endpoint = served_stages(facts, planned, executed)
    stages = [training, inference, endpoint]
    serving = planned.serving
    silent = facts.drift.member is not None and any(
        f.severity == UNKNOWN and f.cluster == facts.drift.member.name for f in executed.findings
    )
    drift = drifts.result_of(facts.drift, serving is not None, silent)
    trained = training.phase == "Succeeded"
    up = inference.phase == "Running" and endpoint.phase == "Running"
    ready_value, ready_reason, ready_message = readiness(
        facts.training.run, serving, stages, planned.gate
    )
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
    new: dict[str, Any] = {
        "option": modes.ml_option(facts.spec),
        "currentStage": next(
            (s.entry["name"] for s in stages if s.phase not in ("Succeeded", "Running")), "Serving"
        ),
        "stages": [{k: v for k, v in s.entry.items() if v is not None} for s in stages],
        # Where each stage runs at a glance (kubectl get).
        "clusters": ",".join(
            f"{s.entry['name']}={s.entry['cluster']}" for s in stages if s.entry.get("cluster")
        )[:1024],
        "servingRun": serving.id if serving else "",
        "runs": planned.runs,
        "conditions": conditions.conditions_of(
            items, generation=facts.generation, previous=facts.old.get("conditions") or []
        ),
    }
    if drift.status is not None:
        new["drift"] = {k: v for k, v in drift.status.items() if v is not None}
    return new, transition_events(facts.old, new, stages)


def readiness(
    run: render.Run,
    serving: render.Run | None,
    stages: list[Stage],
    gate: gating.Gate | None = None,
) -> tuple[bool | None, str, str]:
    training, inference, endpoint = stages
    keeps = f"; run {serving.id} keeps serving" if serving and serving.id != run.id else ""
    refused = [s.message for s in stages if s.phase == "Refused"]
    if refused:
        return False, POLICY_VIOLATION, "; ".join(dict.fromkeys(refused))
    if training.phase == "Queued":
        return False, "Queued", training.message + keeps
    if training.phase == "Unknown":
        return None, training.reason, training.message
    if training.phase in ("Failed", "Unschedulable"):
        return False, training.reason, training.message + keeps
    if training.phase != "Succeeded":
        return False, "Training", training.message + keeps
    if gate is not None and gate.blocked is not None:
        found = gate.blocked.get("validationMessage") or "its scan failed"
        reason = "RolloutBlocked" if keeps else "ValidationFailed"
        return False, reason, f"run {run.id} failed validation: {found}{keeps}"
    if gate is not None and gate.candidate is not None:
        name = gate.candidate["metadata"]["name"]
        says = f" ({gate.candidate_says})" if gate.candidate_says else ""
        message = f"run {run.id} is being validated by LLMDeployment {name}{says}{keeps}"
        return False, "Validating", message
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
    before_runs = {r.get("id"): r.get("validation") for r in old.get("runs") or []}
    for record in new.get("runs") or []:
        verdict = record.get("validation")
        if verdict == "Failed" and before_runs.get(record.get("id")) != "Failed":
            found = record.get("validationMessage") or "its scan failed"
            events.append(Event("Warning", "RolloutBlocked", f"run {record['id']}: {found}"))
    was, now = old.get("servingRun"), new.get("servingRun")
    if was and now and was != now:
        events.append(Event("Normal", "RolledOut", f"inference moved from run {was} to run {now}"))
    old_drift = conditions.find(old.get("conditions") or [], "DriftDetected")
    new_drift = conditions.find(new["conditions"], "DriftDetected")
    if new_drift.get("status") == "True" and old_drift.get("status") != "True":
        events.append(Event("Warning", "DriftDetected", str(new_drift.get("message"))))
    return events


def clusters_in_status(status: Mapping[str, Any]) -> list[str]:
    """Where the pipeline's own children ran: its training Job and its drift checks (the
    inference and endpoint stages' clusters hold their owned resources' children)."""
    training = [
        str(s.get("cluster"))
        for s in status.get("stages") or []
        if s.get("name") == "training" and s.get("cluster")
    ]
    return [*training, str((status.get("drift") or {}).get("cluster") or "")]


KIND_SPEC: Kind[Facts] = Kind(
    name=KIND,
    children=ML_PIPELINE,
    spec_model=MLPipelineSpec,
    status_model=MLPipelineStatus,
    gather=gather,
    plan=plan,
    report=report,
    clusters_in_status=clusters_in_status,
    condition_types=CONDITIONS,
    ready_events=False,  # an Event per stage transition says more
)
