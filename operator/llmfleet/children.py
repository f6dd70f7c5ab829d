"""The one declaration of what each kind creates: its child kinds, in parts that are synced
and pruned together.

Apply, prune, the finalizer's cleanup, the watches, the REST client's URL table and the
chart's RBAC rules all follow this table (a unit test ties them together)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The part of a resource without stages.
WHOLE = ""
TRAINING = "training"
DRIFT = "drift"
SERVING = "serving"
VALIDATION = "validation"


@dataclass(frozen=True)
class Part:
    """Children that live and die together. A staged part's children carry the
    `llmfleet.io/stage` label, so parts sharing a cluster and kinds stay apart (an MLPipeline's
    training and drift); `member_kinds` exist in member clusters only (copies of the hub's
    Secrets that pods there read); a `hub_only` part is never placed in a member cluster."""

    name: str
    kinds: tuple[str, ...]
    member_kinds: tuple[str, ...] = ()
    staged: bool = False
    hub_only: bool = False

    def kinds_in(self, *, in_owner_cluster: bool) -> tuple[str, ...]:
        return self.kinds if in_owner_cluster else (*self.kinds, *self.member_kinds)


@dataclass(frozen=True)
class ChildKinds:
    owner: str
    parts: tuple[Part, ...]

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    def every_kind(self) -> tuple[str, ...]:
        found: list[str] = []
        for part in self.parts:
            for kind in part.kinds_in(in_owner_cluster=False):
                if kind not in found:
                    found.append(kind)
        return tuple(found)


LLM_DEPLOYMENT = ChildKinds(
    "LLMDeployment",
    (
        Part(
            WHOLE,
            ("ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"),
            member_kinds=("Secret",),
        ),
        Part(
            VALIDATION,
            ("ServiceAccount", "ConfigMap", "NetworkPolicy", "Job", "CronJob"),
            staged=True,
        ),
    ),
)
CHAT_ENDPOINT = ChildKinds(
    "ChatEndpoint",
    (
        Part(
            WHOLE,
            ("ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "Ingress"),
            member_kinds=("Secret",),
        ),
    ),
)
ML_PIPELINE = ChildKinds(
    "MLPipeline",
    (
        Part(TRAINING, ("ServiceAccount", "NetworkPolicy", "Job"), staged=True),
        Part(DRIFT, ("ServiceAccount", "NetworkPolicy", "CronJob"), staged=True),
        Part(SERVING, ("LLMDeployment", "ChatEndpoint"), hub_only=True),
    ),
)

BY_OWNER: Mapping[str, ChildKinds] = {
    c.owner: c for c in (LLM_DEPLOYMENT, CHAT_ENDPOINT, ML_PIPELINE)
}
# Read in place, never watched: the operator may not list Secrets cluster-wide.
UNWATCHED = frozenset({"Secret"})


def watched_kinds(*, in_owner_cluster: bool = True) -> frozenset[str]:
    """Every labelled child kind a cluster can hold, each read from one watch per cluster
    (member clusters hold no hub-only parts: they need not even know the custom kinds)."""
    return (
        frozenset(
            kind
            for declared in BY_OWNER.values()
            for part in declared.parts
            if in_owner_cluster or not part.hub_only
            for kind in part.kinds_in(in_owner_cluster=in_owner_cluster)
        )
        - UNWATCHED
    )
