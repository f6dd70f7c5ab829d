"""LLMDeployment through the engine: divide the replicas over the fleet (free GPUs, Pack or
Spread, overflow, failover), render each cluster's share, keep what serves until its
replacement is ready (make-before-break), report the decision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.api.llmdeployment import (
    DEFAULT_RUNTIME,
    Autoscaling,
    LLMDeploymentSpec,
    LLMDeploymentStatus,
)
from llmfleet.children import LLM_DEPLOYMENT, VALIDATION, WHOLE
from llmfleet.kube.rest import KubeError
from llmfleet.placement import autoscale, modes
from llmfleet.placement import fleet as placement
from llmfleet.placement.capacity import Assumption
from llmfleet.placement.clusters import IN_CLUSTER, MemberCluster
from llmfleet.placement.policy import Residency, Violation
from llmfleet.placement.select import selector_matches, shape_of
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
from llmfleet.reconcile.gather import check_secrets, member_list, mirrored_secrets
from llmfleet.reconcile.load import Interest
from llmfleet.reconcile.reads import Context
from llmfleet.render import llmdeployment as render
from llmfleet.render import validation as scan_render
from llmfleet.render.common import Owner, Rendered

KIND = "LLMDeployment"
PART = LLM_DEPLOYMENT.part(WHOLE)
VALIDATION_PART = LLM_DEPLOYMENT.part(VALIDATION)
CONDITIONS = ("Ready", "Placed", "Segmented", "Degraded")
SERVING_STATES = ("Placed", "Unknown")


def serving_placements(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The placements that serve callers: placed ones, and those draining until their
    replacement is ready. Endpoints route to each of them."""
    return [
        dict(p)
        for p in status.get("placements") or []
        if p.get("state") in ("Placed", "Unknown", "Draining")
    ]


def serving_placement(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The one placement a single-backend caller routes to: during a move the previous
    cluster (Draining) until the new one is ready, otherwise the placed one with most ready
    replicas."""
    placements: list[Mapping[str, Any]] = list(status.get("placements") or [])
    for state in ("Draining", "Placed", "Unknown"):
        found = [p for p in placements if p.get("state") == state]
        if found:
            return dict(max(found, key=lambda p: int(dict(p).get("readyReplicas") or 0)))
    return {}


@dataclass
class Share:
    """One cluster's part: the replicas asked of it and its rendered objects."""

    member: MemberCluster
    allocation: placement.Allocation
    rendered: Rendered
    mirrored: list[dict[str, Any]] = field(default_factory=list)
    ready: int = 0
    silent: bool = False
    # Every replica serves the revision a validation scan judges (no rollout under way).
    rolled_out: bool = False


@dataclass
class Facts:
    spec: LLMDeploymentSpec
    owner: Owner
    old: Mapping[str, Any]
    generation: int
    mode: str
    metrics_namespace: str
    now: str = ""
    now_seconds: float = 0.0
    managed: Rendered | None = None
    decision: placement.Decision | None = None
    no_cluster: str = ""
    shares: dict[str, Share] = field(default_factory=dict)
    # Clusters of earlier placements not in the decision, by name: their ready replicas.
    leaving: dict[str, int] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    previous: list[Mapping[str, Any]] = field(default_factory=list)
    # What the namespace's FleetPolicies forbid in the spec; `stopped`: the whole of it.
    violations: list[Violation] = field(default_factory=list)
    stopped: bool = False
    # Clusters of a location the policies rule out: what runs there goes.
    forbidden: set[str] = field(default_factory=set)
    # Replicas across the fleet: spec.replicas, or what the load asks for with autoscaling.
    replicas: int = 0
    scaling: autoscale.Scaling | None = None
    # With spec.validation: the served revision, the scans per placed cluster, the scanner
    # image, and whether an MLPipeline's candidate already passed this revision.
    revision: str = ""
    scans: dict[str, validating.ClusterScans] = field(default_factory=dict)
    validation_image: str = ""
    carried: bool = False
    # What status says per placed cluster, and in all, once reported.
    scan_entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    validated: tuple[bool | None, str, str] | None = None

    def settled(self) -> bool:
        """Whether the decided shares serve every replica, so what else runs can go."""
        asked = sum(s.allocation.replicas for s in self.shares.values())
        ready = sum(min(s.ready, s.allocation.replicas) for s in self.shares.values())
        return ready >= asked

    def before(self, cluster: str) -> Mapping[str, Any]:
        return next((p for p in self.previous if p.get("cluster") == cluster), {})


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def violations(spec: LLMDeploymentSpec, residency: Residency) -> list[Violation]:
    """What of the spec the namespace's FleetPolicies forbid."""
    where = spec.placement
    found = [
        residency.managed_violation("spec.placement.management")
        if where.management == "managed"
        else None,
        residency.location_violation(where.location, "spec.placement.location"),
        residency.location_violation(
            where.overflow.location,
            "spec.placement.overflow.location",
            remedy="remove the overflow",
        )
        if where.overflow is not None
        else None,
    ]
    return [v for v in found if v is not None]


def candidates(
    spec: LLMDeploymentSpec, members: Sequence[MemberCluster], residency: Residency | None = None
) -> list[tuple[MemberCluster, placement.Pool | None, str, str]]:
    """Every member with its pool (preferred, overflow, or None with the reason it is left
    out) and the location its replicas would run at."""
    where = spec.placement
    residency = residency or Residency()
    found: list[tuple[MemberCluster, placement.Pool | None, str, str]] = []
    for member in members:
        if member.location in (where.location, labels.MIXED):
            if selector_matches(where.cluster_selector, member.labels):
                found.append((member, "preferred", where.location, ""))
                continue
            why = "spec.placement.clusterSelector does not match its labels"
        else:
            why = f"location {member.location}, not {where.location}"
        overflow = where.overflow
        if overflow is not None and member.location in (overflow.location, labels.MIXED):
            ruled_out = residency.location_violation(overflow.location, "overflow")
            if ruled_out is not None:
                why = f"FleetPolicy {ruled_out.policy} does not allow {overflow.location}"
            elif selector_matches(overflow.cluster_selector, member.labels):
                found.append((member, "overflow", overflow.location, ""))
                continue
            else:
                why = "spec.placement.overflow.clusterSelector does not match its labels"
        found.append((member, None, member.location, why))
    return found


def gather(subject: Subject, ctx: Context) -> Facts:
    spec: LLMDeploymentSpec = subject.spec
    owner, old = subject.owner, subject.old
    moment = datetime.now(UTC)
    facts = Facts(
        spec=spec, owner=owner, old=old, generation=subject.generation,
        mode=modes.llm_model(spec),
        metrics_namespace=ctx.settings.metrics_namespace,
        now=moment.strftime("%Y-%m-%dT%H:%M:%SZ"), now_seconds=moment.timestamp(),
        previous=list(old.get("placements") or []), replicas=spec.replicas,
        revision=scan_render.revision(spec) if spec.validation is not None else "",
    )  # fmt: skip
    check_secrets(
        ctx.reads,
        owner.namespace,
        [
            spec.model.credentials_secret_ref,
            spec.managed.api_key_secret_ref if spec.managed else None,
        ],
    )
    validating.check_probes(spec.validation, "spec.validation")
    residency = ctx.reads.residency(owner.namespace)
    facts.violations = violations(spec, residency)
    facts.stopped = any(
        v.field in ("spec.placement.management", "spec.placement.location")
        for v in facts.violations
    )
    members, _ = ctx.fleet.members()
    facts.forbidden = {
        m.name
        for m in members
        if m.location != labels.MIXED and not residency.allows_location(m.location)
    }
    if facts.stopped or spec.autoscaling is None:
        ctx.scaling.pop(owner.label, None)  # its timers start over if it scales again
    if facts.stopped:
        return facts
    if spec.placement.management == "managed":
        facts.managed = render.managed(spec, owner)
        return facts
    if spec.autoscaling is not None:
        facts.scaling = _autoscale(facts, ctx, spec.autoscaling, members)
        facts.replicas = facts.scaling.replicas
    pooled = candidates(spec, members, residency)
    if not any(pool for _, pool, _, _ in pooled):
        wanted = f"location {spec.placement.location}"
        if spec.placement.cluster_selector is not None:
            wanted += " matching spec.placement.clusterSelector"
        facts.no_cluster = (
            f"no member cluster has {wanted}; register one with a Secret labelled "
            f"{labels.CLUSTER}=true and {labels.LOCATION}={spec.placement.location}"
        )
        return facts
    facts.decision = _decide(facts, ctx, pooled)
    by_name = {m.name: m for m in members}
    for allocation in facts.decision.allocations:
        member = by_name[allocation.cluster]
        facts.shares[allocation.cluster] = _share(facts, ctx, member, allocation)
    for previous in facts.previous:
        cluster = str(previous.get("cluster"))
        known = by_name.get(cluster)
        if cluster in facts.shares or known is None or cluster in facts.unreachable:
            continue
        ready, silent = _ready(ctx, known, owner)
        if silent:
            facts.unreachable[cluster] = "its API server does not answer"
        else:
            facts.leaving[cluster] = ready
    if spec.validation is not None:
        _gather_scans(facts, ctx)
    return facts


def _gather_scans(facts: Facts, ctx: Context) -> None:
    """The scans of the served revision in each placed cluster."""
    spec, owner = facts.spec, facts.owner
    validation = spec.validation
    if validation is None:  # pragma: no cover - the caller checks
        return
    facts.validation_image = validation.image or ctx.settings.validation_image
    body = ctx.reads.resource(KIND, owner.namespace, owner.name) or {}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    facts.carried = annotations.get(labels.VALIDATED_REVISION) == facts.revision
    old = {
        str(e.get("cluster")): e for e in (facts.old.get("validation") or {}).get("clusters") or []
    }
    for cluster, share in facts.shares.items():
        before = old.get(cluster, {})
        if share.silent:
            facts.scans[cluster] = validating.silent_entry(cluster, before, facts.revision)
            continue
        jobs = member_list(
            ctx.fleet, share.member, "Job", owner.namespace, f"{labels.OWNER}={owner.label}"
        )
        if jobs is None:
            facts.scans[cluster] = validating.silent_entry(cluster, before, facts.revision)
            continue
        try:
            facts.scans[cluster] = validating.gather(
                ctx.fleet.client(share.member), cluster, owner, rev=facts.revision, jobs=jobs,
                old=before, validation=validation,
            )  # fmt: skip
        except KubeError as error:
            if not error.transient:
                raise
            facts.scans[cluster] = validating.silent_entry(cluster, before, facts.revision)


def _autoscale(
    facts: Facts, ctx: Context, spec: Autoscaling, members: Sequence[MemberCluster]
) -> autoscale.Scaling:
    """The replicas the load asks for, from the last reading of the Prometheus of each cluster
    the model runs in; the timers between passes are kept in the context."""
    owner = facts.owner
    known = facts.old.get("autoscaling") or {}
    current = int(known["desiredReplicas"]) if "desiredReplicas" in known else facts.spec.replicas
    by_name = {m.name: m for m in members}
    urls = {ctx.settings.prometheus_url} if ctx.settings.prometheus_url else set()
    for previous in facts.previous:
        member = by_name.get(str(previous.get("cluster")))
        if member is not None and member.prometheus_url:
            urls.add(member.prometheus_url)
    interest = Interest(
        namespace=owner.namespace,
        name=owner.name,
        runtime=facts.spec.runtime or DEFAULT_RUNTIME,
        urls=tuple(sorted(urls)),
        query=spec.query,
    )
    reading = (
        ctx.load.reading(owner.label, interest)
        if ctx.load is not None
        else autoscale.Reading(None, "the operator reads no load")
    )
    shown = conditions.find(facts.old.get("conditions") or [], "Autoscaling")
    if reading.pending and known and shown:
        # The reader's first round for it (after a restart) is seconds away and wakes it:
        # until then, what the status says stands, and nothing is written.
        return autoscale.Scaling(
            current, str(shown.get("reason", "")), str(shown.get("message", "")),
            known.get("load"),
        )  # fmt: skip
    ready = sum(int(p.get("readyReplicas") or 0) for p in facts.previous)
    memory = ctx.scaling.get(owner.label) or autoscale.Memory.fresh(current, facts.now_seconds)
    scaling, ctx.scaling[owner.label] = autoscale.decide(
        spec, current=current, ready=ready, reading=reading, memory=memory, now=facts.now_seconds
    )
    return scaling


def _decide(
    facts: Facts,
    ctx: Context,
    pooled: Sequence[tuple[MemberCluster, placement.Pool | None, str, str]],
) -> placement.Decision:
    """Reads the room and records the decision under the ledger's lock, so concurrent
    decisions each see the others' replicas."""
    spec, owner = facts.spec, facts.owner
    gpu = render.gpu_of(spec)
    # Where its current placements account for its pods; elsewhere its pods are what a pass
    # on an older status placed, and count as its own room.
    accounted = {str(p.get("cluster")) for p in facts.previous if p.get("state") in SERVING_STATES}
    with ctx.ledger.deciding() as ledger:
        found = []
        for member, pool, location, why in pooled:
            room, error = None, ""
            if pool is not None:
                inventory = ctx.fleet.inventory(member)
                error = inventory.error
                if inventory.nodes is not None:
                    shape = shape_of(spec.placement, gpu, location)
                    room = inventory.room(
                        shape, owner.label, ledger.assumed(member.name),
                        own_pods_free=member.name not in accounted,
                    )  # fmt: skip
                else:
                    facts.unreachable[member.name] = error or "its API server does not answer"
            found.append(placement.Candidate(member.name, location, pool, room, why, error))
        decision = placement.decide(_request(spec, facts.replicas), found, _current(facts, found))
        if gpu.count:
            products = tuple(gpu.product or ())
            ledger.assume(
                owner.label,
                {
                    a.cluster: Assumption(
                        owner.label, a.replicas, gpu.count, gpu.resource_name, products
                    )
                    for a in decision.allocations
                },
            )
    return decision


def _share(
    facts: Facts, ctx: Context, member: MemberCluster, allocation: placement.Allocation
) -> Share:
    spec, owner = facts.spec, facts.owner
    in_owner_cluster = member.kubeconfig is None
    rendered = render.self_managed(
        spec, owner, allocation.location, in_owner_cluster=in_owner_cluster,
        metrics_namespace=facts.metrics_namespace, replicas=allocation.replicas,
        revision=facts.revision,
    )  # fmt: skip
    share = Share(member, allocation, rendered)
    if not in_owner_cluster:
        share.mirrored = mirrored_secrets(ctx.reads, owner, [spec.model.credentials_secret_ref])
    if member.name in facts.unreachable:
        share.silent = True
        return share
    server = _server(ctx, member, owner)
    share.silent = server is None
    share.ready = int(((server or {}).get("status") or {}).get("readyReplicas") or 0)
    share.rolled_out = bool(facts.revision) and validating.rolled_out(server, facts.revision)
    if share.silent:
        facts.unreachable[member.name] = "its API server does not answer"
    return share


def _server(ctx: Context, member: MemberCluster, owner: Owner) -> dict[str, Any] | None:
    """The model server's Deployment in a cluster, as its watch last saw it ({} when there is
    none); None when the cluster is silent."""
    live = member_list(
        ctx.fleet, member, "Deployment", owner.namespace, f"{labels.OWNER}={owner.label}"
    )
    if live is None:
        return None
    return next((dict(d) for d in live if d["metadata"]["name"] == owner.name), {})


def _ready(ctx: Context, member: MemberCluster, owner: Owner) -> tuple[int, bool]:
    """Ready model-server replicas in a cluster, as its watch last saw them; silent or not."""
    server = _server(ctx, member, owner)
    if server is None:
        return 0, True
    return int((server.get("status") or {}).get("readyReplicas") or 0), False


def _request(spec: LLMDeploymentSpec, replicas: int) -> placement.Request:
    where = spec.placement
    overflow, failover = where.overflow, where.failover
    return placement.Request(
        replicas=replicas,
        strategy=where.strategy,
        min_clusters=where.min_clusters,
        max_clusters=where.max_clusters,
        overflow_max=(overflow.max_replicas or replicas) if overflow else None,
        failover_after=float(failover.after_seconds) if failover else None,
        move_back_after=float(overflow.move_back_after_seconds) if overflow else 0.0,
    )


def _current(facts: Facts, found: Sequence[placement.Candidate]) -> list[placement.Current]:
    reachable = {c.cluster for c in found if c.reachable}
    current = []
    for previous in facts.previous:
        if previous.get("state") not in SERVING_STATES:
            continue
        cluster = str(previous.get("cluster"))
        silent_since = (
            _seconds(previous.get("since")) if previous.get("state") == "Unknown" else None
        )
        room_since = _seconds(previous.get("roomSince"))
        current.append(
            placement.Current(
                cluster=cluster,
                role=previous.get("role") or "preferred",
                replicas=int(previous.get("replicas") or 0),
                ready=int(previous.get("readyReplicas") or 0),
                unreachable_for=(
                    0.0
                    if cluster in reachable or silent_since is None
                    else facts.now_seconds - silent_since
                ),
                room_for=None if room_since is None else facts.now_seconds - room_since,
            )
        )
    return current


def plan(facts: Facts) -> Plan:
    result = Plan()
    if facts.stopped:
        return result  # the policies forbid all of it: everything it runs goes
    if facts.managed is not None:
        result.add(Desired(IN_CLUSTER, PART, facts.managed.objects))
        return result
    settled = facts.settled()
    replaceable = facts.decision is not None and not facts.decision.unplaced
    for cluster, share in facts.shares.items():
        asked = share.allocation.replicas
        before = int(facts.before(cluster).get("replicas") or 0)
        rendered = share.rendered
        if not settled and before > asked:
            # Make-before-break: fewer replicas here only once the others are ready.
            rendered = render.self_managed(
                facts.spec, facts.owner, share.allocation.location,
                in_owner_cluster=share.member.kubeconfig is None,
                metrics_namespace=facts.metrics_namespace, replicas=before,
                revision=facts.revision,
            )  # fmt: skip
        result.add(Desired(cluster, PART, [*share.mirrored, *rendered.objects]))
        plan_scans(facts, cluster, share, result)
    for previous in facts.previous:
        cluster = str(previous.get("cluster"))
        if cluster in facts.shares:
            continue
        if cluster in facts.forbidden and not (replaceable and not settled):
            continue  # ruled out by a policy: serves only until its replacement is ready
        if cluster in facts.unreachable or not settled or facts.decision is None:
            # Silent, still serving, or nothing decided: left as it is, never deleted blind.
            result.add(Desired(cluster, PART, None))
            if facts.spec.validation is not None:
                result.add(Desired(cluster, VALIDATION_PART, None))
    return result


def plan_scans(facts: Facts, cluster: str, share: Share, result: Plan) -> None:
    """A placement's scan objects; its Job once a replica is ready and nothing scanned what
    it serves (kept afterwards: its pod holds the result)."""
    validation = facts.spec.validation
    scans = facts.scans.get(cluster)
    if validation is None or scans is None:
        return
    if scans.silent:
        result.add(Desired(cluster, VALIDATION_PART, None))
        return
    start = share.rolled_out and scans.result is None and not facts.carried
    objects = scan_render.scan_objects(
        facts.spec, validation, facts.owner, rev=facts.revision, image=facts.validation_image,
        model_url=share.rendered.url, location=share.allocation.location,
        in_owner_cluster=share.member.kubeconfig is None,
        run_now=start or scans.initial_exists,
    )  # fmt: skip
    # Its names end in -validation: never take over what another resource named so holds.
    result.add(
        Desired(cluster, VALIDATION_PART, objects, create_only=("Job",), refuse_foreign=True)
    )


def report(facts: Facts, plan: Plan, executed: Executed) -> tuple[dict[str, Any], list[Event]]:
    status = Status(facts)
    if facts.stopped:
        return status.stopped(executed), []
    if facts.managed is not None:
        return status.managed(facts.managed), []
    decision = facts.decision
    if decision is None:
        return status.unplaced("NoCluster", facts.no_cluster), []
    for finding in executed.findings:
        if finding.severity == UNKNOWN and finding.cluster in facts.shares:
            facts.unreachable.setdefault(finding.cluster, finding.message)
    events = report_scans(facts)
    placements = status.placements(decision, plan, executed)
    before = sorted(str(p.get("cluster")) for p in facts.previous if p.get("state") == "Placed")
    after = sorted(p["cluster"] for p in placements if p["state"] == "Placed")
    if after and after != before:
        events.append(Event("Normal", "Placed", f"placed on {', '.join(after)}"))
    scaled = facts.scaling
    if scaled is not None:
        known = facts.old.get("autoscaling") or {}
        if known.get("desiredReplicas", facts.spec.replicas) != scaled.replicas:
            events.append(Event("Normal", scaled.reason, scaled.message))
    return status.decided(decision, placements), events


def report_scans(facts: Facts) -> list[Event]:
    """Each placed cluster's validation entry and the Validated condition; an Event for each
    scan that finished since the stored status."""
    validation = facts.spec.validation
    if validation is None:
        return []
    for cluster, share in facts.shares.items():
        scans = facts.scans.get(cluster)
        if scans is None:
            continue
        scans.silent = scans.silent or cluster in facts.unreachable
        facts.scan_entries[cluster] = validating.entry(
            scans, facts.revision, rolled_out=share.rolled_out, carried=facts.carried,
            job=scan_render.job_name(facts.owner, facts.revision),
        )  # fmt: skip
    entries = list(facts.scan_entries.values())
    facts.validated = validating.condition(entries, validation)
    old = (facts.old.get("validation") or {}).get("clusters") or []
    events = []
    for verdict, entry in validating.changed_verdicts(old, entries):
        where = f"{entry['cluster']} (Job {entry.get('job', '')})"
        if verdict == validating.PASSED:
            events.append(Event("Normal", "Validated", f"{where}: {entry.get('message', '')}"))
        else:
            gate = "; gateways do not route to it there" if validation.enforce else ""
            message = f"{where}: {entry.get('message', '')}{gate}"
            events.append(Event("Warning", "ValidationFailed", message[:1024]))
    return events


class Status:
    """The status of one pass, in each of the shapes a pass can end in."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.old = facts.old

    def _base(
        self, placements: Sequence[Mapping[str, Any]], segmentation: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        base = {
            "mode": self.facts.mode,
            "placements": list(placements),
            "segmentation": segmentation
            or self.old.get("segmentation")
            or {"roles": [], "objects": []},
        }
        clusters = self.where(placements)
        if clusters:
            base["clusters"] = clusters
        if self.facts.decision is not None:
            base["decision"] = self._decision(self.facts.decision)
        if self.facts.scaling is not None:
            base["autoscaling"] = self._autoscaling(self.facts.scaling)
        validation = self.facts.spec.validation
        if validation is not None and self.facts.validated is not None:
            base["validation"] = validating.summary(
                list(self.facts.scan_entries.values()), self.facts.revision, validation,
                self.facts.validated,
            )  # fmt: skip
        elif validation is not None and self.old.get("validation"):
            base["validation"] = self.old["validation"]  # nothing new is known
        return base

    def _autoscaling(self, scaling: autoscale.Scaling) -> dict[str, Any]:
        """The count and why; the time and reason move only when the count does."""
        before = self.old.get("autoscaling") or {}
        start = self.facts.spec.replicas
        if "desiredReplicas" not in before and scaling.replicas == start:
            before = {"reason": f"started at spec.replicas ({start})"}
        changed = before.get("desiredReplicas", start) != scaling.replicas
        entry: dict[str, Any] = {
            "desiredReplicas": scaling.replicas,
            "lastScaleTime": before.get("lastScaleTime", self.facts.now)
            if not changed
            else self.facts.now,
            "reason": scaling.message if changed else before.get("reason", scaling.message),
        }
        if scaling.load is not None:
            entry["load"] = scaling.load
        return entry

    def _decision(self, decision: placement.Decision) -> list[dict[str, Any]]:
        """The choices as decided; kept as they were while the outcome is the same, so the
        free GPUs of the moment do not rewrite the status of every model at each pass."""
        fresh = [_choice(c) for c in decision.choices]
        old = list(self.old.get("decision") or [])

        def outcome(entries: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
            return [(e.get("cluster"), e.get("replicas"), e.get("reason")) for e in entries]

        return old if outcome(old) == outcome(fresh) else fresh

    @staticmethod
    def where(placements: Sequence[Mapping[str, Any]]) -> str:
        return ",".join(
            f"{p['cluster']}={p.get('replicas', 0)}"
            for p in placements
            if p.get("state") in SERVING_STATES
        )[:1024]

    def _conditions(self, items: Iterable[tuple[str, bool | None, str, str]]) -> list[Any]:
        return conditions.conditions_of(
            list(items), generation=self.facts.generation, previous=self.old.get("conditions") or []
        )

    def managed(self, rendered: Rendered) -> dict[str, Any]:
        provider = self.facts.spec.managed.provider if self.facts.spec.managed else "provider"
        placement_ = {
            "cluster": provider, "location": "cloud", "state": "Placed", "role": "preferred",
            "replicas": 0, "readyReplicas": 0, "endpoint": rendered.url,
        }  # fmt: skip
        segmentation = {"roles": list(rendered.roles), "objects": rendered.segmentation_objects()}
        message = f"provider endpoint {rendered.url}"
        return {
            **self._base([placement_], segmentation),
            "conditions": self._conditions(
                [
                    ("Ready", True, "Ready", message),
                    ("Placed", True, "Placed", f"run by {provider}"),
                    ("Segmented", True, "RolesApplied", ", ".join(rendered.roles)),
                    ("Degraded", False, "AsExpected", "every placement is as specified"),
                ]
            ),
        }

    def stopped(self, executed: Executed) -> dict[str, Any]:
        """The policies forbid the spec: nothing runs; what ran is being removed."""
        message = "; ".join(v.message for v in self.facts.violations)
        removing = [
            {**p, "state": "Removing"}
            for p in self.old.get("placements") or []
            if p.get("cluster") in executed.held
        ]
        return {
            **self._base([self._since(p) for p in removing], None),
            "conditions": self._conditions(
                [
                    ("Ready", False, "PolicyViolation", message),
                    ("Placed", False, "PolicyViolation", message),
                    ("Segmented", None, "PolicyViolation", "nothing runs"),
                    ("Degraded", True, "PolicyViolation", message),
                ]
            ),
        }

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

    def placements(
        self, decision: placement.Decision, plan: Plan, executed: Executed
    ) -> list[dict[str, Any]]:
        facts = self.facts
        entries: list[dict[str, Any]] = []
        for cluster, share in facts.shares.items():
            silent = cluster in facts.unreachable
            live = executed.object(cluster, f"Deployment/{facts.owner.name}")
            ready = int((live.get("status") or {}).get("readyReplicas") or share.ready)
            entry = {
                "cluster": cluster,
                "location": share.allocation.location,
                "role": share.allocation.role,
                "state": "Unknown" if silent else "Placed",
                "replicas": share.allocation.replicas,
                "readyReplicas": int(facts.before(cluster).get("readyReplicas") or 0)
                if silent
                else ready,
                "endpoint": share.rendered.url,
            }
            scanned = facts.scan_entries.get(cluster)
            if scanned is not None:
                entry["validation"] = scanned["verdict"]
            if share.allocation.role == "overflow" and share.allocation.room:
                entry["roomSince"] = facts.before(cluster).get("roomSince") or facts.now
            entries.append(self._since(entry))
        kept = {d.cluster for d in plan.desired if d.objects is None}
        for previous in facts.previous:
            cluster = str(previous.get("cluster"))
            if cluster in facts.shares:
                continue
            entry = {k: v for k, v in previous.items() if k != "roomSince"}
            if cluster in decision.lost or (
                cluster in facts.unreachable and previous.get("state") in SERVING_STATES
            ):
                entry["state"] = "Unknown"
            elif cluster in kept:
                entry["state"] = "Draining"
                entry["readyReplicas"] = facts.leaving.get(cluster, entry.get("readyReplicas", 0))
            elif cluster in executed.held:
                entry["state"] = "Removing"
            else:
                continue
            entries.append(self._since(entry))
        return entries

    def _since(self, entry: dict[str, Any]) -> dict[str, Any]:
        before = self.facts.before(entry["cluster"])
        same = before.get("state") == entry["state"] and before.get("since")
        entry["since"] = before["since"] if same else self.facts.now
        return entry

    def decided(
        self, decision: placement.Decision, placements: list[dict[str, Any]]
    ) -> dict[str, Any]:
        facts = self.facts
        shares = list(facts.shares.values())
        reachable = [s for s in shares if s.member.name not in facts.unreachable]
        pooled = [c for c in decision.choices if c.pool is not None]
        all_silent = bool(pooled) and all(c.cluster in facts.unreachable for c in pooled)
        if not facts.violations and (
            (shares and not reachable and not decision.unplaced) or (not shares and all_silent)
        ):
            return self._unknown(placements)  # every candidate is silent: nothing is known
        if not shares and not decision.unplaced and not facts.violations:
            return self.unplaced("NoCluster", "no candidate cluster can hold the model")
        rendered = next(
            (s.rendered for s in shares if s.allocation.role == "preferred"),
            shares[0].rendered if shares else None,
        )
        segmentation = (
            {"roles": list(rendered.roles), "objects": rendered.segmentation_objects()}
            if rendered
            else None
        )
        segmented = (
            (True, "RolesApplied", ", ".join(rendered.roles))
            if rendered
            else (None, "NothingPlaced", "nothing placed yet")
        )
        ready = sum(p.get("readyReplicas", 0) for p in placements if p["state"] == "Placed")
        ready_clusters = sum(
            1 for p in placements if p["state"] == "Placed" and p.get("readyReplicas", 0) > 0
        )
        where = self.where(placements)
        if decision.unplaced:
            placed = (False, "InsufficientGPU", self._insufficient(decision))
        else:
            placed = (True, "Placed", f"placed: {where}")
        troubles = []
        if decision.unplaced:
            troubles.append(("InsufficientGPU", placed[2]))
        if facts.unreachable:
            silent = ", ".join(f"{c} ({m})" for c, m in sorted(facts.unreachable.items()))
            troubles.append(("ClusterUnreachable", f"unreachable: {silent}"))
        if decision.lost:
            troubles.append(
                ("FailedOver", f"replicas of {', '.join(decision.lost)} placed again elsewhere")
            )
        overflowing = [s for s in shares if s.allocation.role == "overflow"]
        state = self._readiness(decision, ready, ready_clusters, placed[2], where)
        if facts.violations:
            message = "; ".join(v.message for v in facts.violations)
            state = (False, "PolicyViolation", message)
            troubles.insert(0, ("PolicyViolation", message))
        if troubles:
            degraded = (True, troubles[0][0], "; ".join(t[1] for t in troubles))
        elif overflowing:
            count = sum(s.allocation.replicas for s in overflowing)
            degraded = (True, "Overflowing", f"{count} replica(s) run in the overflow location")
        else:
            degraded = (False, "AsExpected", "every placement is as specified")
        items = [
            ("Ready", *state),
            ("Placed", *placed),
            ("Segmented", *segmented),
            ("Degraded", *degraded),
        ]
        items += self._optional_conditions()
        return {**self._base(placements, segmentation), "conditions": self._conditions(items)}

    def _optional_conditions(self) -> list[tuple[str, bool | None, str, str]]:
        """Autoscaling and Validated, for models that have them."""
        items: list[tuple[str, bool | None, str, str]] = []
        scaling = self.facts.scaling
        if scaling is not None:
            items.append(("Autoscaling", scaling.has_data, scaling.reason, scaling.message))
        if self.facts.validated is not None:
            items.append(("Validated", *self.facts.validated))
        return items

    def _readiness(
        self,
        decision: placement.Decision,
        ready: int,
        ready_clusters: int,
        insufficient: str,
        where: str,
    ) -> tuple[bool, str, str]:
        spec, unreachable = self.facts.spec, self.facts.unreachable
        wanted = self.facts.replicas
        if wanted and ready >= wanted and ready_clusters < spec.placement.min_clusters:
            return False, "BelowMinClusters", (
                f"ready on {ready_clusters} cluster(s); spec.placement.minClusters is "
                f"{spec.placement.min_clusters}"
            )  # fmt: skip
        if decision.unplaced:
            return False, "InsufficientGPU", insufficient
        scaling = self.facts.scaling
        if scaling is not None and wanted == 0 and not unreachable:
            return True, "ScaledToZero", scaling.message
        if ready >= wanted and not unreachable:
            return True, "Ready", f"{ready}/{wanted} replicas ready: {where}"
        if unreachable and ready >= wanted:
            silent = ", ".join(sorted(unreachable))
            return False, "ClusterUnreachable", f"unreachable: {silent}"
        return False, "ReplicasLoading", f"{ready}/{wanted} replicas ready: {where}"

    def _insufficient(self, decision: placement.Decision) -> str:
        facts = self.facts
        shape = shape_of(facts.spec.placement, render.gpu_of(facts.spec))
        offers = "; ".join(
            f"{c.cluster}: {c.reason}"
            for c in decision.choices
            if not c.replicas and c.pool is not None
        )
        placed = decision.placed
        return (
            f"{decision.unplaced} of {facts.replicas} replica(s) cannot get GPUs; each needs "
            f"{shape.need()} on one node. {placed} placed. Candidates: {offers or 'none'}"
        )[:4096]

    def _unknown(self, placements: list[dict[str, Any]]) -> dict[str, Any]:
        """Every placement is in a silent cluster: nothing is known, nothing moves."""
        silent = ", ".join(f"{c} ({m})" for c, m in sorted(self.facts.unreachable.items()))
        text = f"unreachable: {silent}; nothing is moved or deleted"
        return {
            **self._base(placements, None),
            "conditions": self._conditions(
                (type_, None, "ClusterUnreachable", text) for type_ in CONDITIONS[:3]
            )
            + self._conditions([("Degraded", True, "ClusterUnreachable", text)]),
        }


def _choice(choice: placement.Choice) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "cluster": choice.cluster,
        "location": choice.location,
        "replicas": choice.replicas,
        "reason": choice.reason[:1024],
    }
    if choice.free is not None:
        entry["gpusFree"] = max(0, choice.free)
        entry["gpusTotal"] = choice.total
    return entry


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
