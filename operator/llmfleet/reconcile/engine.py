"""The reconcile engine every kind goes through: gather, plan, execute, status.

A kind supplies three functions: `gather` (every read, through cache-backed views, into a
plain value), `plan` (pure: desired objects per cluster and named findings) and `report`
(pure: the typed status from the facts, the plan and what execution found). The engine
owns what they would otherwise each repeat: the owner, spec parsing, failure outcomes,
applying and pruning per cluster, the clusters that hold children, the Ready event and
writing the status only when it changed, with removed fields really removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.children import ChildKinds, Part
from llmfleet.kube import apply
from llmfleet.kube.cluster import ClusterApi
from llmfleet.kube.rest import NOT_FOUND, KubeError
from llmfleet.placement.clusters import IN_CLUSTER, MemberCluster
from llmfleet.placement.select import ClusterInventory
from llmfleet.render.common import Owner

if TYPE_CHECKING:
    from llmfleet.reconcile.reads import Context

log = logging.getLogger(__name__)

Facts = TypeVar("Facts")

# Finding severities: what a finding does to Ready when the kind's report left it True.
REFUSED = "refused"  # the spec or the API server said no: Ready=False
UNKNOWN = "unknown"  # a cluster did not answer: Ready=Unknown, nothing moved or deleted
NOTE = "note"  # reported by the kind itself, the engine adds nothing


class Fleet(Protocol):
    """The member clusters as the engine sees them (llmfleet.kube.federation in the operator,
    an in-memory fake in unit tests)."""

    @property
    def hub(self) -> ClusterApi: ...

    def members(self) -> tuple[list[MemberCluster], list[str]]: ...

    def client(self, member: MemberCluster) -> ClusterApi: ...

    def inventory(self, member: MemberCluster) -> ClusterInventory: ...


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What a reconcile decided: the status patch to write (None: unchanged), Events, and the
    whole status after the pass."""

    status: dict[str, Any] | None
    events: list[Event] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """Something a person should know: a condition reason, its message, the cluster it is
    about, and what it does to Ready."""

    reason: str
    message: str
    cluster: str = ""
    severity: str = REFUSED


class SpecError(Exception):
    """A spec the operator cannot act on as it is (a missing Secret or backend): Ready=False
    with the reason, the rest of the status as it was."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Desired:
    """The children of one part of the owner in one cluster. `objects=None` keeps what is
    there untouched (a placement that serves until its successor is ready)."""

    cluster: str
    part: Part
    objects: Sequence[Mapping[str, Any]] | None
    create_only: tuple[str, ...] = ()
    refuse_foreign: bool = False


@dataclass
class Plan:
    desired: list[Desired] = field(default_factory=list)
    # Objects in the owner's cluster created once and never updated (a generated key).
    creations: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, desired: Desired) -> None:
        """Adds objects to a cluster's part, merging with what the plan already has there."""
        for index, known in enumerate(self.desired):
            if (known.cluster, known.part.name) == (desired.cluster, desired.part.name):
                merged: list[Mapping[str, Any]] | None = None  # kept as is wins: it is silent
                if known.objects is not None and desired.objects is not None:
                    refs = {apply.ref(o) for o in known.objects}
                    merged = [
                        *known.objects,
                        *(o for o in desired.objects if apply.ref(o) not in refs),
                    ]
                self.desired[index] = Desired(
                    known.cluster, known.part, merged, known.create_only, known.refuse_foreign
                )
                return
        self.desired.append(desired)


@dataclass
class Executed:
    """What execution saw: live children per cluster ("Kind/name" -> object), findings, and
    the clusters that hold children afterwards."""

    live: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def object(self, cluster: str, ref: str) -> dict[str, Any]:
        return self.live.get(cluster, {}).get(ref, {})


@dataclass(frozen=True)
class Subject:
    """The resource being reconciled: its parsed spec, who it is, its stored status."""

    spec: Any
    owner: Owner
    old: Mapping[str, Any]
    generation: int


@dataclass(frozen=True)
class Kind(Generic[Facts]):
    """One kind plugged into the engine."""

    name: str
    children: ChildKinds
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    gather: Callable[[Subject, Context], Facts]
    plan: Callable[[Facts], Plan]
    report: Callable[[Facts, Plan, Executed], tuple[dict[str, Any], list[Event]]]
    # Clusters an older status names as holding children (before childClusters existed).
    clusters_in_status: Callable[[Mapping[str, Any]], Iterable[str]] = lambda _: ()
    # Condition types every status of the kind carries, in order.
    condition_types: tuple[str, ...] = ("Ready", "Degraded")
    # An Event whenever Ready changes; a kind whose own Events tell its progress turns it off
    # and gets one for a failure only.
    ready_events: bool = True


def owner_of(kind: str, body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(kind, meta["namespace"], meta["name"], meta.get("uid", ""))


def reconcile(kind: Kind[Any], body: Mapping[str, Any], context: Context) -> Outcome:
    """One level-based pass: what the spec asks, applied where it belongs, reported once."""
    owner = owner_of(kind.name, body)
    old = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 0))
    try:
        spec = kind.spec_model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return failed(kind, old, generation, "InvalidSpec", f"the spec does not parse: {error}")
    try:
        facts = kind.gather(Subject(spec, owner, old, generation), context)
        plan = kind.plan(facts)
        held_before = {*old.get("childClusters", ()), *kind.clusters_in_status(old)} - {""}
        executed = execute(
            plan, context, owner, kind.children, held_before, hold=_holder(kind, body, context)
        )
    except SpecError as problem:
        return failed(kind, old, generation, problem.reason, problem.message)
    except KubeError as error:
        if not error.forbidden:
            raise  # the hub's own API failing: kopf retries with backoff
        return forbidden(kind, old, generation, error)
    new, events = kind.report(facts, plan, executed)
    new["observedGeneration"] = generation
    new["childClusters"] = executed.held
    new = with_findings(new, [*plan.findings, *executed.findings], generation, old)
    return finish(kind, old, new, events)


# --- execute --------------------------------------------------------------------------------


def _holder(kind: Kind[Any], body: Mapping[str, Any], context: Context) -> Callable[[], None]:
    """What runs before the first write in a member cluster: the finalizer goes on (once)."""
    held = [False]

    def hold() -> None:
        if context.hold is not None and not held[0]:
            context.hold(kind.name, body)
        held[0] = True

    return hold


def execute(
    plan: Plan,
    context: Context,
    owner: Owner,
    declared: ChildKinds,
    held_before: Iterable[str],
    *,
    hold: Callable[[], None] = lambda: None,
) -> Executed:
    """Applies each cluster's desired children and prunes every part not desired in a cluster
    that held children. An unreachable cluster or a refused object becomes a finding; nothing
    is deleted in a cluster that did not answer. `hold` runs before the first write in a
    member cluster, where garbage collection cannot follow the owner."""
    fleet = context.fleet
    members = {m.name: m for m in fleet.members()[0]}
    done = Executed()
    for obj in plan.creations:
        meta = obj["metadata"]
        if fleet.hub.get(obj["kind"], meta.get("namespace"), meta["name"]) is None:
            fleet.hub.apply(obj)
        context.reads.created(obj)
    held = _apply_desired(plan, fleet, owner, members, done=done, hold=hold)
    synced = {(d.cluster, d.part.name) for d in plan.desired if d.cluster in members}
    for cluster in sorted({*held_before, *(d.cluster for d in plan.desired)}):
        member = members.get(cluster)
        if member is not None and not _prune_rest(
            fleet, owner, declared, member, synced=synced, done=done
        ):
            held.add(cluster)  # cleaned when it answers again
    done.held = sorted(held)
    return done


def _apply_desired(
    plan: Plan,
    fleet: Fleet,
    owner: Owner,
    members: Mapping[str, MemberCluster],
    *,
    done: Executed,
    hold: Callable[[], None],
) -> set[str]:
    """Syncs every desired part; returns the clusters that hold children afterwards."""
    held: set[str] = set()
    for want in plan.desired:
        member = members.get(want.cluster)
        if member is None:
            continue
        if want.objects is None or want.objects:
            held.add(want.cluster)
        problem = _unreachable(fleet, member)
        if want.objects is None:
            if problem is None:  # left as it is, and reported as it is
                done.live.setdefault(want.cluster, {}).update(_live(fleet, member, owner, want))
            continue
        if problem is not None:
            done.findings.append(problem)
            continue
        try:
            result = _sync(fleet, member, owner, want, hold)
        except KubeError as error:
            if error.forbidden or (error.status == NOT_FOUND and member.kubeconfig is None):
                raise  # no right, or the owner's own namespace is gone with it
            if error.cluster == IN_CLUSTER and member.kubeconfig is not None:
                raise  # the finalizer could not go on: nothing is written there yet
            done.findings.append(finding_of(error, want.cluster))
            continue
        except apply.ForeignObjectError as taken:
            done.findings.append(Finding("NameConflict", str(taken), want.cluster))
            continue
        done.live.setdefault(want.cluster, {}).update(result.live)
    return held


def _prune_rest(
    fleet: Fleet,
    owner: Owner,
    declared: ChildKinds,
    member: MemberCluster,
    *,
    synced: set[tuple[str, str]],
    done: Executed,
) -> bool:
    """Removes the parts not desired in a cluster; False when it could not be reached."""
    in_owner_cluster = member.kubeconfig is None
    parts = [
        p
        for p in declared.parts
        if (member.name, p.name) not in synced and not (p.hub_only and not in_owner_cluster)
    ]
    if not parts:
        return True
    if _unreachable(fleet, member) is not None:
        return False
    try:
        for part in parts:
            _prune(fleet, member, owner, part)
    except KubeError as error:
        if error.forbidden:
            raise
        done.findings.append(finding_of(error, member.name, severity=NOTE))
        return False
    return True


def _unreachable(fleet: Fleet, member: MemberCluster) -> Finding | None:
    if member.kubeconfig is None:
        return None  # the operator's own cluster: its API answers, or nothing runs
    inventory = fleet.inventory(member)
    if inventory.nodes is not None:
        return None
    return Finding(
        "ClusterUnreachable",
        f"cluster {member.name} is unreachable ({inventory.error}); nothing is moved or deleted",
        member.name,
        UNKNOWN,
    )


def _live(
    fleet: Fleet, member: MemberCluster, owner: Owner, want: Desired
) -> dict[str, dict[str, Any]]:
    """The part's children as the cluster's watches see them (no write, no read when synced)."""
    client = fleet.client(member)
    selector = f"{labels.OWNER}={owner.label}"
    if want.part.staged:
        selector += f",{labels.STAGE}={want.part.name}"
    try:
        return {
            f"{kind}/{obj['metadata']['name']}": {"kind": kind, **obj}
            for kind in want.part.kinds_in(in_owner_cluster=member.kubeconfig is None)
            for obj in client.list(kind, owner.namespace, selector)
        }
    except KubeError as error:
        if error.forbidden:
            raise
        return {}


def _sync(
    fleet: Fleet, member: MemberCluster, owner: Owner, want: Desired, hold: Callable[[], None]
) -> apply.SyncResult:
    client = fleet.client(member)
    in_owner_cluster = member.kubeconfig is None

    def before_first_remote_write() -> None:
        hold()
        apply.ensure_namespace(client, owner.namespace)

    return apply.sync(
        client, owner.namespace, owner.label, list(want.objects or []),
        want.part.kinds_in(in_owner_cluster=in_owner_cluster),
        stage=want.part.name if want.part.staged else None,
        create_only=want.create_only, refuse_foreign=want.refuse_foreign,
        before_first_write=None if in_owner_cluster else before_first_remote_write,
    )  # fmt: skip


def _prune(fleet: Fleet, member: MemberCluster, owner: Owner, part: Part) -> None:
    apply.remove_all(
        fleet.client(member), owner.namespace, owner.label,
        part.kinds_in(in_owner_cluster=member.kubeconfig is None),
        stage=part.name if part.staged else None,
    )  # fmt: skip


def remove_everywhere(fleet: Fleet, owner: Owner, declared: ChildKinds) -> list[str]:
    """The finalizer's cleanup: every part in every member; returns the clusters that did not
    answer (their children remain, and the finalizer stays)."""
    unreachable = []
    for member in fleet.members()[0]:
        try:
            for part in declared.parts:
                if part.hub_only and member.kubeconfig is not None:
                    continue
                _prune(fleet, member, owner, part)
        except KubeError as error:
            if not error.transient:
                raise
            unreachable.append(member.name)
    return unreachable


def finding_of(error: KubeError, cluster: str, severity: str | None = None) -> Finding:
    if error.unreachable:
        return Finding(
            "ClusterUnreachable",
            f"cluster {cluster} is unreachable ({error.message}); nothing is moved or deleted",
            cluster,
            severity or UNKNOWN,
        )
    if error.server_error:
        return Finding(
            "ServerError",
            f"the API server of cluster {cluster} failed ({error.status}): {error.message}",
            cluster,
            severity or UNKNOWN,
        )
    return Finding(
        "ApplyRefused",
        f"the API server of cluster {cluster} refused {error.message}",
        cluster,
        severity or REFUSED,
    )


# --- status ---------------------------------------------------------------------------------


def with_findings(
    new: dict[str, Any], findings: Sequence[Finding], generation: int, old: Mapping[str, Any]
) -> dict[str, Any]:
    """Ready and Degraded as the findings say: a refused object makes Ready False; a cluster
    that did not answer makes a Ready status Unknown. What the kind said stays otherwise."""
    worst = next((f for f in findings if f.severity == REFUSED), None) or next(
        (f for f in findings if f.severity == UNKNOWN), None
    )
    if worst is None:
        return new
    found = list(new.get("conditions") or [])
    ready = conditions.find(found, "Ready")
    degraded = conditions.find(found, "Degraded")
    previous = old.get("conditions") or []
    replace: dict[str, dict[str, Any]] = {}
    if worst.severity == REFUSED or ready.get("status") == "True":
        replace["Ready"] = conditions.condition(
            "Ready", False if worst.severity == REFUSED else None, reason=worst.reason,
            message=worst.message, generation=generation, previous=previous,
        )  # fmt: skip
    if worst.severity == REFUSED or degraded.get("status") != "True":
        replace["Degraded"] = conditions.condition(
            "Degraded", True, reason=worst.reason, message=worst.message,
            generation=generation, previous=previous,
        )  # fmt: skip
    merged = [replace.pop(str(c.get("type")), c) for c in found]
    return {**new, "conditions": [*merged, *replace.values()]}


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that turns `old` into `new`: keys that disappear are sent as null
    (a merge patch that only omits them leaves them in place)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = status_patch(before, value)
            if inner:
                patch[key] = inner
        elif value != before or key not in old:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def finish(
    kind: Kind[Any], old: Mapping[str, Any], new: Mapping[str, Any], events: Sequence[Event]
) -> Outcome:
    """The Outcome of a pass: a patch only when the typed status differs from the stored one,
    the kind's Events, and one when Ready changed."""
    wanted: dict[str, Any] = kind.status_model.model_validate(new).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    all_events = [*events, *(ready_event(old, wanted) if kind.ready_events else ())]
    if wanted == dict(old):
        return Outcome(status=None, events=all_events, current=wanted)
    return Outcome(status=status_patch(old, wanted), events=all_events, current=wanted)


# Ready reasons that are progress, not trouble: their Events are Normal.
PROGRESS = frozenset(
    {
        "Ready",
        "Serving",
        "ReplicasLoading",
        "SitesStarting",
        "Training",
        "Deploying",
        "ScaledToZero",
    }
)


def ready_event(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    before = conditions.find(old.get("conditions") or [], "Ready")
    after = conditions.find(new.get("conditions") or [], "Ready")
    if not after or (before.get("status"), before.get("reason")) == (
        after.get("status"),
        after.get("reason"),
    ):
        return []
    kind = "Normal" if after.get("reason") in PROGRESS else "Warning"
    return [Event(kind, str(after["reason"]), str(after.get("message", "")))]


def failed(
    kind: Kind[Any], old: Mapping[str, Any], generation: int, reason: str, message: str
) -> Outcome:
    """Ready=False and Degraded=True with what to fix; the rest of the status stays as it was,
    and the kind's other conditions say they wait for the fix."""
    previous = old.get("conditions") or []
    present = {c.get("type") for c in previous}
    items: list[tuple[str, bool | None, str, str]] = []
    for type_ in kind.condition_types:
        if type_ == "Ready":
            items.append(("Ready", False, reason, message))
        elif type_ == "Degraded":
            items.append(("Degraded", True, reason, message))
        elif type_ not in present:
            items.append((type_, None, reason, "waiting for a valid spec"))
    rebuilt = {t for t, *_ in items}
    new = {
        **old,
        "observedGeneration": generation,
        "conditions": [
            *conditions.conditions_of(items, generation=generation, previous=previous),
            *(c for c in previous if c.get("type") not in rebuilt),
        ],
    }
    order = {t: i for i, t in enumerate(kind.condition_types)}
    new["conditions"].sort(key=lambda c: order.get(c.get("type"), len(order)))
    outcome = finish(kind, old, new, [])
    if not kind.ready_events and outcome.status is not None:
        outcome.events.append(Event("Warning", reason, message))
    return outcome


def forbidden(
    kind: Kind[Any], old: Mapping[str, Any], generation: int, error: KubeError
) -> Outcome:
    """A pass the operator's credentials do not allow: what was refused and how to grant it."""
    message = (
        f"the operator may not do this in cluster {error.cluster}: {error.message}. Grant its "
        "ServiceAccount the right (for Secrets in a workload namespace, bind the chart's "
        "ClusterRole <release>-tenant-secrets there; see the chart's NOTES)"
    )
    return failed(kind, old, generation, "Forbidden", message)
