"""LLMDeployment through the engine: place, render for the chosen cluster, keep the previous
cluster serving until the new placement is ready (make-before-break), report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.api.llmdeployment import LLMDeploymentSpec, LLMDeploymentStatus
from llmfleet.children import LLM_DEPLOYMENT, WHOLE
from llmfleet.placement import modes
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.placement.select import Decision
from llmfleet.reconcile.engine import (
    UNKNOWN,
    Desired,
    Event,
    Executed,
    Kind,
    Plan,
    Subject,
)
from llmfleet.reconcile.gather import (
    Where,
    check_secrets,
    member_list,
    mirrored_secrets,
    place,
)
from llmfleet.reconcile.reads import Context
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner, Rendered

KIND = "LLMDeployment"
PART = LLM_DEPLOYMENT.part(WHOLE)
CONDITIONS = ("Ready", "Placed", "Segmented", "Degraded")


def serving_placement(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The placement that serves callers: during a move the previous cluster (Draining) until
    the new one is ready, otherwise the placed one. Endpoints and pipelines route here."""
    placements = status.get("placements") or []
    for state in ("Draining", "Placed", "Unknown"):
        found = next((p for p in placements if p.get("state") == state), None)
        if found is not None:
            return dict(found)
    return {}


@dataclass
class Facts:
    spec: LLMDeploymentSpec
    owner: Owner
    old: Mapping[str, Any]
    generation: int
    mode: str
    metrics_namespace: str
    managed: Rendered | None = None
    where: Where | None = None
    rendered: Rendered | None = None
    mirrored: list[dict[str, Any]] = field(default_factory=list)
    # Ready replicas of the model server in the chosen cluster, as its watch last saw them.
    ready_replicas: int = 0
    previous: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> str | None:
        for placement in self.previous:
            if placement.get("state") in ("Placed", "Unknown"):
                return str(placement.get("cluster"))
        return None

    def all_ready(self) -> bool:
        return self.ready_replicas >= self.spec.replicas


def gather(subject: Subject, ctx: Context) -> Facts:
    spec: LLMDeploymentSpec = subject.spec
    owner, old = subject.owner, subject.old
    facts = Facts(
        spec=spec, owner=owner, old=old, generation=subject.generation,
        mode=modes.llm_model(spec),
        metrics_namespace=ctx.settings.metrics_namespace,
        previous=list(old.get("placements") or []),
    )  # fmt: skip
    check_secrets(
        ctx.reads,
        owner.namespace,
        [
            spec.model.credentials_secret_ref,
            spec.managed.api_key_secret_ref if spec.managed else None,
        ],
    )
    if spec.placement.management == "managed":
        facts.managed = render.managed(spec, owner)
        return facts
    facts.where = place(ctx.fleet, spec.placement, render.gpu_of(spec), facts.current)
    target = facts.where.cluster
    if target is None or facts.where.unreachable:
        return facts
    in_owner_cluster = target.kubeconfig is None
    facts.rendered = render.self_managed(
        spec, owner, spec.placement.location,
        in_owner_cluster=in_owner_cluster, metrics_namespace=facts.metrics_namespace,
    )  # fmt: skip
    if not in_owner_cluster:
        facts.mirrored = mirrored_secrets(ctx.reads, owner, [spec.model.credentials_secret_ref])
    live = member_list(
        ctx.fleet, target, "Deployment", owner.namespace, f"{labels.OWNER}={owner.label}"
    )
    if live is None:
        silent = Decision(target, "ClusterUnreachable", "its API server does not answer")
        facts.where = Where(silent, facts.where.members)
        return facts
    server = next((d for d in live if d["metadata"]["name"] == owner.name), {})
    facts.ready_replicas = int((server.get("status") or {}).get("readyReplicas") or 0)
    return facts


def plan(facts: Facts) -> Plan:
    result = Plan()
    if facts.managed is not None:
        result.add(Desired(IN_CLUSTER, PART, facts.managed.objects))
        return result
    where = facts.where
    if where is None or where.cluster is None or facts.rendered is None:
        # Not placeable (or its cluster silent): what runs keeps running, untouched.
        for placement in facts.previous:
            result.add(Desired(str(placement.get("cluster")), PART, None))
        if where is not None and where.cluster is not None:
            result.add(Desired(where.cluster.name, PART, None))
        return result
    target = where.cluster.name
    result.add(Desired(target, PART, [*facts.mirrored, *facts.rendered.objects]))
    if not facts.all_ready():
        # Make-before-break: earlier clusters serve until the new placement is ready.
        for placement in facts.previous:
            if placement.get("cluster") != target:
                result.add(Desired(str(placement.get("cluster")), PART, None))
    return result


def report(facts: Facts, plan: Plan, executed: Executed) -> tuple[dict[str, Any], list[Event]]:
    status = Status(facts)
    if facts.managed is not None:
        return status.managed(facts.managed), []
    where = facts.where
    if where is None or where.cluster is None:
        decision = where.decision if where else None
        reason = decision.reason if decision else "NoCluster"
        message = decision.message if decision else "no member cluster"
        return status.unplaced(reason, message), []
    target = where.cluster.name
    silent = next(
        (f for f in executed.findings if f.severity == UNKNOWN and f.cluster == target), None
    )
    if where.unreachable or silent is not None:
        message = (
            silent.message
            if silent
            else (
                f"cluster {target} is unreachable ({where.decision.message}); nothing is moved or "
                "deleted"
            )
        )
        return status.unknown(target, message), []
    rendered = facts.rendered
    if rendered is None:  # pragma: no cover - placed implies rendered
        return status.unplaced("NoCluster", "nothing rendered"), []
    server = executed.object(target, f"Deployment/{facts.owner.name}")
    ready = int((server.get("status") or {}).get("readyReplicas") or facts.ready_replicas)
    placements: list[dict[str, Any]] = [
        {
            "cluster": target,
            "location": facts.spec.placement.location,
            "state": "Placed",
            "replicas": facts.spec.replicas,
            "readyReplicas": ready,
            "endpoint": rendered.url,
        }
    ]
    kept = {d.cluster for d in plan.desired if d.objects is None}
    for previous in facts.previous:
        cluster = previous.get("cluster")
        if cluster == target:
            continue
        if cluster in kept:
            placements.append({**previous, "state": "Draining"})
        elif cluster in executed.held:
            placements.append({**previous, "state": "Removing"})
    all_ready = ready >= facts.spec.replicas
    events = []
    if target != facts.current:
        events.append(Event("Normal", "Placed", where.decision.message))
    new = status.done(
        placements, rendered, placed_message=where.decision.message,
        ready=all_ready and len(placements) == 1,
        ready_message=f"{ready}/{facts.spec.replicas} replicas ready on {target}",
    )  # fmt: skip
    return new, events


class Status:
    """The status of one pass, in each of the shapes a pass can end in."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.old = facts.old

    def _base(
        self, placements: Sequence[Mapping[str, Any]], segmentation: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "mode": self.facts.mode,
            "placements": list(placements),
            "segmentation": segmentation
            or self.old.get("segmentation")
            or {"roles": [], "objects": []},
        }

    def _conditions(self, items: Iterable[tuple[str, bool | None, str, str]]) -> list[Any]:
        return conditions.conditions_of(
            list(items), generation=self.facts.generation, previous=self.old.get("conditions") or []
        )

    def managed(self, rendered: Rendered) -> dict[str, Any]:
        provider = self.facts.spec.managed.provider if self.facts.spec.managed else "provider"
        placement = {
            "cluster": provider, "location": "cloud", "state": "Placed",
            "replicas": 0, "readyReplicas": 0, "endpoint": rendered.url,
        }  # fmt: skip
        return self.done(
            [placement], rendered, placed_message=f"run by {provider}", ready=True,
            ready_message=f"provider endpoint {rendered.url}",
        )  # fmt: skip

    def unplaced(self, reason: str, message: str) -> dict[str, Any]:
        return {
            **self._base(self.old.get("placements") or [], None),
            "conditions": self._conditions(
                [
                    ("Ready", False, reason, message),
                    ("Placed", False, reason, message),
                    ("Segmented", None, reason, "nothing placed yet"),
                    ("Degraded", True, reason, message),
                ]
            ),
        }

    def unknown(self, cluster: str, message: str) -> dict[str, Any]:
        placements = [
            {**p, "state": "Unknown"} if p.get("cluster") == cluster else p
            for p in self.old.get("placements") or []
        ] or [{"cluster": cluster, "location": "", "state": "Unknown"}]
        text = message
        return {
            **self._base(placements, None),
            "conditions": self._conditions(
                (type_, None, "ClusterUnreachable", text) for type_ in CONDITIONS[:3]
            )
            + self._conditions([("Degraded", True, "ClusterUnreachable", text)]),
        }

    def done(
        self,
        placements: list[dict[str, Any]],
        rendered: Rendered,
        *,
        placed_message: str,
        ready: bool,
        ready_message: str,
    ) -> dict[str, Any]:
        segmentation = {"roles": list(rendered.roles), "objects": rendered.segmentation_objects()}
        return {
            **self._base(placements, segmentation),
            "conditions": self._conditions(
                [
                    ("Ready", ready, "Ready" if ready else "ReplicasLoading", ready_message),
                    ("Placed", True, "Placed", placed_message),
                    ("Segmented", True, "RolesApplied", ", ".join(rendered.roles)),
                    ("Degraded", False, "AsExpected", "every placement is as specified"),
                ]
            ),
        }


def clusters_in_status(status: Mapping[str, Any]) -> list[str]:
    return [str(p.get("cluster")) for p in status.get("placements") or []]


KIND_SPEC: Kind[Facts] = Kind(
    name=KIND,
    children=LLM_DEPLOYMENT,
    spec_model=LLMDeploymentSpec,
    status_model=LLMDeploymentStatus,
    gather=gather,
    plan=plan,
    report=report,
    clusters_in_status=clusters_in_status,
    condition_types=CONDITIONS,
)
