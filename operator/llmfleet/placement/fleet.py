"""How a model's replicas are divided over the fleet: sticky placements first, then the
preferred location (Pack or Spread), then overflow, with failover for lost members and the
move back from overflow once the preferred location has had room long enough.

Pure: the candidates (with their room), the current placements and the time come in; the
allocations and one explained choice per cluster come out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from llmfleet.placement.capacity import Room

Role = Literal["preferred", "overflow", "failover"]
Pool = Literal["preferred", "overflow"]
ROLES: tuple[Role, ...] = ("preferred", "overflow", "failover")
NOTES: dict[Role, str] = {
    "preferred": "the preferred location",
    "overflow": "the preferred location is full",
    "failover": "replaces replicas of an unreachable member",
}


@dataclass(frozen=True)
class Candidate:
    """A member cluster as placement sees it: in a pool, reachable with some room, or left out
    with the reason (`excluded`)."""

    cluster: str
    location: str
    pool: Pool | None = None
    room: Room | None = None  # None: unreachable (or left out)
    excluded: str = ""
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.room is not None


@dataclass(frozen=True)
class Current:
    """A placement from the previous status."""

    cluster: str
    role: Role
    replicas: int
    ready: int = 0
    unreachable_for: float = 0.0  # seconds the cluster has not answered (0: it answers)
    room_for: float | None = None  # overflow: seconds the preferred location has had room


@dataclass(frozen=True)
class Request:
    replicas: int
    strategy: Literal["Pack", "Spread"] = "Pack"
    min_clusters: int = 1
    max_clusters: int | None = None
    overflow_max: int | None = None  # None: no overflow
    failover_after: float | None = None  # None: nothing moves while a member is unreachable
    move_back_after: float = 300.0


@dataclass(frozen=True)
class Allocation:
    cluster: str
    location: str
    role: Role
    replicas: int
    room: bool = False  # overflow only: the preferred location has room for it now


@dataclass(frozen=True)
class Choice:
    """One cluster's part in the decision, for status and `llmfleet explain`."""

    cluster: str
    location: str
    replicas: int
    reason: str
    free: int | None = None
    total: int | None = None
    pool: Pool | None = None


@dataclass(frozen=True)
class Decision:
    allocations: tuple[Allocation, ...]
    choices: tuple[Choice, ...]
    unplaced: int
    lost: tuple[str, ...] = ()  # clusters whose replicas were failed over

    @property
    def placed(self) -> int:
        return sum(a.replicas for a in self.allocations)

    def clusters(self) -> list[str]:
        return [a.cluster for a in self.allocations]


@dataclass
class _Plan:
    replicas: dict[str, int] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    room_for: dict[str, float | None] = field(default_factory=dict)
    room: dict[str, bool] = field(default_factory=dict)
    # Replicas each candidate can still take in this decision.
    left: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, cluster: str, role: Role, replicas: int, note: str) -> None:
        if replicas <= 0:
            return
        self.replicas[cluster] = self.replicas.get(cluster, 0) + replicas
        self.roles.setdefault(cluster, role)
        self.notes.setdefault(cluster, note)

    def total(self, role: Role | None = None) -> int:
        return sum(n for c, n in self.replicas.items() if role is None or self.roles[c] == role)

    def take(self, cluster: str, replicas: int) -> None:
        self.replicas[cluster] -= replicas
        if self.replicas[cluster] <= 0:
            for table in (self.replicas, self.roles, self.room_for, self.room, self.notes):
                table.pop(cluster, None)


def decide(
    request: Request, candidates: Sequence[Candidate], current: Sequence[Current]
) -> Decision:
    by_name = {c.cluster: c for c in candidates}
    plan = _Plan(left={c.cluster: (c.room.fits if c.room else 0) for c in candidates})
    lost: list[str] = []

    # 1. What runs stays where it is, while its cluster is still a candidate.
    failovers = [c for c in current if c.role == "failover"]
    for placed in current:
        if placed.role == "failover" or placed.replicas <= 0:
            continue
        candidate = by_name.get(placed.cluster)
        if candidate is None or candidate.pool is None:
            continue
        if (
            not candidate.reachable
            and request.failover_after is not None
            and placed.unreachable_for >= request.failover_after
        ):
            lost.append(placed.cluster)
            continue
        role: Role = "preferred" if candidate.pool == "preferred" else "overflow"
        plan.add(placed.cluster, role, placed.replicas, NOTES[role])
        if role == "overflow":
            plan.room_for[placed.cluster] = placed.room_for
    if lost:
        # Replacements stay while the lost clusters are away.
        for placed in failovers:
            candidate = by_name.get(placed.cluster)
            if candidate is not None and candidate.pool is not None and candidate.reachable:
                plan.add(
                    placed.cluster, "failover", placed.replicas, "kept: replaces lost replicas"
                )

    # 2. Fewer replicas wanted: overflow goes first, then replacements, then preferred ones.
    _shrink(plan, request)

    # 3. More wanted: the preferred location, then overflow.
    need = request.replicas - plan.total()
    lost_replicas = sum(c.replicas for c in current if c.cluster in lost)
    replacing = min(need, max(0, lost_replicas - plan.total("failover")))
    preferred = [c for c in candidates if c.pool == "preferred" and c.reachable]
    overflow = [c for c in candidates if c.pool == "overflow" and c.reachable]
    if replacing > 0:
        left = _fill(plan, request, preferred, replacing, role="failover", note=NOTES["failover"])
        left = _fill_overflow(plan, request, overflow, left, role="failover")
        need -= replacing - left
    need = _fill(plan, request, preferred, need, role="preferred", note=NOTES["preferred"])
    _fill_overflow(plan, request, overflow, need, role="overflow")

    # 4. Overflow moves back once the preferred location has had room long enough.
    _move_back(plan, request, preferred)
    if request.replicas == 0 and not plan.replicas:
        _home(plan, current, by_name, preferred)

    allocations = tuple(
        Allocation(
            cluster,
            by_name[cluster].location,
            plan.roles[cluster],
            replicas,
            plan.room.get(cluster, False),
        )
        for cluster, replicas in plan.replicas.items()
    )
    return Decision(
        allocations=allocations,
        choices=_explain(candidates, plan, request, lost),
        unplaced=max(0, request.replicas - plan.total()),
        lost=tuple(lost),
    )


def _home(
    plan: _Plan,
    current: Sequence[Current],
    by_name: dict[str, Candidate],
    preferred: Sequence[Candidate],
) -> None:
    """A model at zero replicas keeps one cluster holding its objects (Service, policies), so
    it can scale up in place: where it ran, else the preferred cluster with most room."""
    kept = [c.cluster for c in current if by_name.get(c.cluster) and by_name[c.cluster].pool]
    roomiest = sorted(preferred, key=lambda c: -(c.room.fits if c.room else 0))
    home = kept[0] if kept else (roomiest[0].cluster if roomiest else None)
    if home is not None:
        plan.replicas[home] = 0
        plan.roles[home] = "preferred" if by_name[home].pool == "preferred" else "overflow"
        plan.notes[home] = "holds the model at zero replicas"


def _shrink(plan: _Plan, request: Request) -> None:
    excess = plan.total() - request.replicas
    for role in ("overflow", "failover", "preferred"):
        holders = [c for c in plan.replicas if plan.roles[c] == role]
        while excess > 0 and holders:
            # Spread keeps clusters even (take from the largest); Pack empties the smallest.
            if request.strategy == "Spread" or role != "preferred":
                cluster = max(holders, key=lambda c: (plan.replicas[c], c))
            else:
                cluster = min(holders, key=lambda c: (plan.replicas[c], c))
            plan.take(cluster, 1)
            excess -= 1
            holders = [c for c in plan.replicas if plan.roles[c] == role]


def _fill(
    plan: _Plan, request: Request, pool: Sequence[Candidate], need: int, *, role: Role, note: str
) -> int:
    """Adds up to `need` replicas on `pool`; returns what did not fit."""
    limit = request.max_clusters or len(pool) or 1
    room = plan.left
    while need > 0:
        used = [c.cluster for c in pool if c.cluster in plan.replicas]
        open_ = [c for c in pool if room[c.cluster] > 0]
        if len(used) >= limit:
            open_ = [c for c in open_ if c.cluster in used]
        if not open_:
            break
        if request.strategy == "Spread":
            # One at a time onto the least loaded cluster; the roomiest first on a tie.
            target = min(
                open_,
                key=lambda c: (plan.replicas.get(c.cluster, 0), -room[c.cluster], c.cluster),
            )
            amount = 1
        else:
            # Pack: fill the clusters already used, then the one with most room.
            target = max(
                open_,
                key=lambda c: (c.cluster in used, room[c.cluster], -_order(pool, c)),
            )
            amount = min(need, room[target.cluster])
        plan.add(target.cluster, role, amount, note)
        room[target.cluster] -= amount
        need -= amount
    return need


def _fill_overflow(
    plan: _Plan, request: Request, pool: Sequence[Candidate], need: int, *, role: Role
) -> int:
    if need <= 0 or request.overflow_max is None:
        return need
    allowed = max(0, request.overflow_max - plan.total("overflow"))
    wanted = min(need, allowed)
    pack = replace(request, strategy="Pack", max_clusters=None)
    left = _fill(plan, pack, pool, wanted, role=role, note=NOTES[role])
    return need - (wanted - left)


def _move_back(plan: _Plan, request: Request, preferred: Sequence[Candidate]) -> None:
    spare = sum(plan.left[c.cluster] for c in preferred)
    for cluster in [c for c in plan.replicas if plan.roles[c] == "overflow"]:
        plan.room[cluster] = spare > 0
        waited = plan.room_for.get(cluster)
        if spare <= 0 or (waited or 0.0) < request.move_back_after:
            continue
        moving = min(spare, plan.replicas[cluster])
        left = _fill(plan, request, preferred, moving, role="preferred", note=NOTES["preferred"])
        plan.take(cluster, moving - left)
        spare -= moving - left


def _order(pool: Sequence[Candidate], candidate: Candidate) -> int:
    return next(i for i, c in enumerate(pool) if c.cluster == candidate.cluster)


def _explain(
    candidates: Sequence[Candidate], plan: _Plan, request: Request, lost: Sequence[str]
) -> tuple[Choice, ...]:
    choices = []
    for candidate in candidates:
        taken = plan.replicas.get(candidate.cluster, 0)
        room = candidate.room
        free = room.free if room else None
        total = room.total if room else None
        if candidate.cluster in plan.replicas:
            reason = f"taken, {plan.roles[candidate.cluster]}: {plan.notes[candidate.cluster]}"
        elif candidate.excluded:
            reason = candidate.excluded
        elif candidate.cluster in lost:
            reason = f"unreachable beyond failover.afterSeconds ({candidate.error})"
        elif room is None:
            reason = f"unreachable ({candidate.error})" if candidate.error else "unreachable"
        elif (
            candidate.pool == "overflow"
            and request.overflow_max is not None
            and (plan.total("overflow") >= request.overflow_max)
        ):
            reason = f"overflow.maxReplicas {request.overflow_max} reached"
        elif room.fits <= 0:
            reason = f"no room: {room.describe()}"
        elif (
            request.max_clusters
            and candidate.pool == "preferred"
            and (
                sum(1 for c in candidates if c.pool == "preferred" and c.cluster in plan.replicas)
                >= request.max_clusters
            )
        ):
            reason = f"maxClusters {request.max_clusters} reached"
        else:
            reason = "not needed: the replicas fit elsewhere"
        choices.append(
            Choice(
                candidate.cluster, candidate.location, taken, reason, free, total, candidate.pool
            )
        )
    return tuple(choices)
