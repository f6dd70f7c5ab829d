"""LLMDeployment: place, render, apply in the chosen cluster, read back, report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from llmfleet import status as conditions
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.kube import apply
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import KubeClient, KubeError
from llmfleet.placement import modes
from llmfleet.placement.select import Decision, candidates, decide
from llmfleet.reconcile import Event, Outcome
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner, Rendered, child_metadata
from llmfleet.settings import Settings

KIND = "LLMDeployment"
MIRRORED_SECRET_KINDS = ("Secret",)


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(KIND, meta["namespace"], meta["name"], meta.get("uid", ""))


def reconcile(body: Mapping[str, Any], federation: Federation, settings: Settings) -> Outcome:
    meta = body["metadata"]
    generation = int(meta.get("generation", 0))
    old = dict(body.get("status") or {})
    report = Report(old, generation)
    try:
        spec = LLMDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return report.failed("InvalidSpec", f"the spec does not parse: {error}", mode="")
    report.mode = modes.llm_model(spec)
    owner = owner_of(body)

    missing = missing_secrets(federation.hub, owner.namespace, spec)
    if missing:
        return report.failed(
            "SecretNotFound",
            f"Secret {missing} does not exist in namespace {owner.namespace}: create it, or fix "
            "the reference in the spec",
        )
    if spec.placement.management == "managed":
        return reconcile_managed(spec, owner, federation, report)
    return reconcile_self_managed(spec, owner, federation, settings, report)


def missing_secrets(hub: KubeClient, namespace: str, spec: LLMDeploymentSpec) -> str | None:
    refs = [
        spec.model.credentials_secret_ref,
        spec.managed.api_key_secret_ref if spec.managed else None,
    ]
    for ref in refs:
        if ref is None:
            continue
        secret = hub.get("Secret", namespace, ref.name)
        if secret is None or ref.key not in (secret.get("data") or {}):
            return f"{ref.name} (key {ref.key})"
    return None


def reconcile_managed(
    spec: LLMDeploymentSpec, owner: Owner, federation: Federation, report: Report
) -> Outcome:
    rendered = render.managed(spec, owner)
    apply.sync(
        federation.hub, owner.namespace, owner.label, rendered.objects, ("Service", "NetworkPolicy")
    )
    assert spec.managed is not None  # noqa: S101 - checked by the CRD in managed mode
    placement = {
        "cluster": spec.managed.provider,
        "location": "cloud",
        "state": "Placed",
        "replicas": 0,
        "readyReplicas": 0,
        "endpoint": rendered.url,
    }
    return report.done(
        [placement], rendered, placed_message=f"run by {spec.managed.provider}", ready=True,
        ready_message=f"provider endpoint {rendered.url}",
    )  # fmt: skip


def reconcile_self_managed(
    spec: LLMDeploymentSpec,
    owner: Owner,
    federation: Federation,
    settings: Settings,
    report: Report,
) -> Outcome:
    members, _ = federation.members()
    inventories = {m.name: federation.inventory(m) for m in candidates(spec.placement, members)}
    current = report.current_cluster()
    decision = decide(spec.placement, render.gpu_of(spec), members, inventories, current)
    if decision.cluster is None:
        return report.unplaced(decision)
    target = decision.cluster
    if decision.reason == "ClusterUnreachable":
        return report.unknown(target.name, decision.message)

    client = federation.client(target)
    in_owner_cluster = target.kubeconfig is None
    rendered = render.self_managed(
        spec, owner, spec.placement.location,
        in_owner_cluster=in_owner_cluster, metrics_namespace=settings.metrics_namespace,
    )  # fmt: skip
    try:
        objects = list(rendered.objects)
        kinds = list(render.CHILD_KINDS)
        if not in_owner_cluster:
            apply.ensure_namespace(client, owner.namespace)
            objects = mirrored_secrets(federation.hub, spec, owner) + objects
            kinds += MIRRORED_SECRET_KINDS
        result = apply.sync(client, owner.namespace, owner.label, objects, kinds)
    except KubeError as error:
        if error.unreachable:
            return report.unknown(target.name, error.message)
        raise
    live = result.live.get(f"Deployment/{owner.name}", {})
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    placement = {
        "cluster": target.name,
        "location": spec.placement.location,
        "state": "Placed",
        "replicas": spec.replicas,
        "readyReplicas": ready,
        "endpoint": rendered.url,
    }
    placements = [placement]
    # Make-before-break: an earlier cluster keeps serving until the new placement is ready.
    all_ready = ready >= spec.replicas
    for previous in report.previous_placements(exclude=target.name):
        kept = retire(federation, previous, owner, remove=all_ready)
        if kept is not None:
            placements.append(kept)
    report.events_for_placement(decision, current)
    return report.done(
        placements,
        rendered,
        placed_message=decision.message,
        ready=all_ready and len(placements) == 1,
        ready_message=f"{ready}/{spec.replicas} replicas ready on {target.name}",
    )


def mirrored_secrets(
    hub: KubeClient, spec: LLMDeploymentSpec, owner: Owner
) -> list[dict[str, Any]]:
    """A member cluster's pods read model credentials from a Secret there, never from a copy
    in another object; the operator keeps that Secret equal to the hub's."""
    ref = spec.model.credentials_secret_ref
    if ref is None:
        return []
    source = hub.get("Secret", owner.namespace, ref.name) or {}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": child_metadata(owner, ref.name, in_owner_cluster=False),
            "type": source.get("type", "Opaque"),
            "data": {ref.key: (source.get("data") or {}).get(ref.key, "")},
        }
    ]


def retire(
    federation: Federation, placement: Mapping[str, Any], owner: Owner, *, remove: bool
) -> dict[str, Any] | None:
    """Removes a placement that is no longer wanted; returns it while it still exists."""
    members, _ = federation.members()
    member = next((m for m in members if m.name == placement.get("cluster")), None)
    if member is None:
        return None  # the cluster was unregistered: nothing left to reach
    if not remove:
        return {**placement, "state": "Draining"}
    kinds = (*render.CHILD_KINDS, *(() if member.kubeconfig is None else MIRRORED_SECRET_KINDS))
    try:
        apply.remove_all(federation.client(member), owner.namespace, owner.label, kinds)
    except KubeError as error:
        if error.unreachable:
            return {**placement, "state": "Removing"}
        raise
    return None


class Report:
    """Builds the status of one reconcile and compares it with what is stored."""

    def __init__(self, old: dict[str, Any], generation: int) -> None:
        self.old = old
        self.generation = generation
        self.mode = str(old.get("mode", ""))
        self.events: list[Event] = []

    def current_cluster(self) -> str | None:
        for placement in self.old.get("placements") or []:
            if placement.get("state") in ("Placed", "Unknown"):
                return str(placement.get("cluster"))
        return None

    def previous_placements(self, exclude: str) -> list[Mapping[str, Any]]:
        return [p for p in self.old.get("placements") or [] if p.get("cluster") != exclude]

    def _conditions(self, items: list[tuple[str, bool | None, str, str]]) -> list[dict[str, Any]]:
        previous = self.old.get("conditions") or []
        return conditions.conditions_of(items, generation=self.generation, previous=previous)

    def _outcome(self, new: dict[str, Any]) -> Outcome:
        self._event_on_ready_change(new)
        changed = new != self.old
        return Outcome(status=new if changed else None, events=self.events)

    def _event_on_ready_change(self, new: dict[str, Any]) -> None:
        old_ready = conditions.find(self.old.get("conditions") or [], "Ready")
        new_ready = conditions.find(new["conditions"], "Ready")
        if (old_ready.get("status"), old_ready.get("reason")) == (
            new_ready["status"],
            new_ready["reason"],
        ):
            return
        kind = "Normal" if new_ready["status"] == "True" else "Warning"
        if new_ready["reason"] in ("ReplicasLoading",):
            kind = "Normal"
        self.events.append(Event(kind, str(new_ready["reason"]), str(new_ready["message"])))

    def failed(self, reason: str, message: str, mode: str | None = None) -> Outcome:
        new = {
            "observedGeneration": self.generation,
            "mode": self.mode if mode is None else mode,
            "placements": self.old.get("placements") or [],
            "segmentation": self.old.get("segmentation") or {"roles": [], "objects": []},
            "conditions": self._conditions(
                [
                    ("Ready", False, reason, message),
                    ("Placed", bool(self.old.get("placements")), reason, message),
                    ("Segmented", None, reason, "waiting for a valid spec"),
                    ("Degraded", True, reason, message),
                ]
            ),
        }
        return self._outcome(new)

    def unplaced(self, decision: Decision) -> Outcome:
        new = {
            "observedGeneration": self.generation,
            "mode": self.mode,
            "placements": self.old.get("placements") or [],
            "segmentation": self.old.get("segmentation") or {"roles": [], "objects": []},
            "conditions": self._conditions(
                [
                    ("Ready", False, decision.reason, decision.message),
                    ("Placed", False, decision.reason, decision.message),
                    ("Segmented", None, decision.reason, "nothing placed yet"),
                    ("Degraded", True, decision.reason, decision.message),
                ]
            ),
        }
        return self._outcome(new)

    def unknown(self, cluster: str, message: str) -> Outcome:
        placements = [
            {**p, "state": "Unknown"} if p.get("cluster") == cluster else p
            for p in self.old.get("placements") or []
        ] or [{"cluster": cluster, "location": "", "state": "Unknown"}]
        text = f"cluster {cluster} is unreachable ({message}); nothing is moved or deleted"
        new = {
            "observedGeneration": self.generation,
            "mode": self.mode,
            "placements": placements,
            "segmentation": self.old.get("segmentation") or {"roles": [], "objects": []},
            "conditions": self._conditions(
                [
                    ("Ready", None, "ClusterUnreachable", text),
                    ("Placed", None, "ClusterUnreachable", text),
                    ("Segmented", None, "ClusterUnreachable", text),
                    ("Degraded", True, "ClusterUnreachable", text),
                ]
            ),
        }
        return self._outcome(new)

    def events_for_placement(self, decision: Decision, current: str | None) -> None:
        if decision.cluster is not None and decision.cluster.name != current:
            self.events.append(Event("Normal", "Placed", decision.message))

    def done(
        self,
        placements: list[dict[str, Any]],
        rendered: Rendered,
        *,
        placed_message: str,
        ready: bool,
        ready_message: str,
    ) -> Outcome:
        new = {
            "observedGeneration": self.generation,
            "mode": self.mode,
            "placements": placements,
            "segmentation": {
                "roles": list(rendered.roles),
                "objects": rendered.segmentation_objects(),
            },
            "conditions": self._conditions(
                [
                    ("Ready", ready, "Ready" if ready else "ReplicasLoading", ready_message),
                    ("Placed", True, "Placed", placed_message),
                    ("Segmented", True, "RolesApplied", ", ".join(rendered.roles)),
                    ("Degraded", False, "AsExpected", "every placement is as specified"),
                ]
            ),
        }
        return self._outcome(new)
