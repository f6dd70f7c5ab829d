"""How many replicas the load asks for: pure, with the timers it needs carried in `Memory`.

desired = ceil(load / targetPerReplica), clamped to [minReplicas, maxReplicas]. Up at once,
by at most `step_up()` per decision; down only once the load has asked for fewer for
`scaleDownDelaySeconds`, to the most it asked for in that time; to zero only after
`scaleToZeroAfterSeconds` without load or gateway requests; any request wakes a sleeping
model. Without data the count holds: never a scale-down, never a sleep on a missing reading.
The fleet placement then divides the count over the clusters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from llmfleet.api.llmdeployment import Autoscaling

# Where a runtime publishes no queue metrics, load is the gateways' request rate.
RUNTIME_LOAD: dict[str, tuple[str, ...]] = {
    "vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting"),
    "tgi": ("tgi_queue_size", "tgi_batch_current_size"),
    "llamacpp": ("llamacpp:requests_processing", "llamacpp:requests_deferred"),
}
OWNER_LABEL = "llmfleet_io_owner"  # the pods' llmfleet.io/owner label, as scrapes map it
GATEWAY_REQUESTS = "llmfleet_gateway_requests_total"
GATEWAY_RATE_WINDOW = "1m"
NEVER = -math.inf


def runtime_query(runtime: str) -> str | None:
    """The load of every model of a runtime, by owner label (None: the runtime has no queue
    metrics; its load is the gateways' request rate)."""
    names = RUNTIME_LOAD.get(runtime)
    if not names:
        return None
    return f'sum by ({OWNER_LABEL}) ({{__name__=~"{"|".join(names)}", {OWNER_LABEL}!=""}})'


def gateway_requests_query() -> str:
    """Requests the gateways took for each model (their counter, by namespace and name)."""
    return f"sum by (namespace, llmdeployment) ({GATEWAY_REQUESTS})"


def gateway_rate_query() -> str:
    return f"sum by (namespace, llmdeployment) (rate({GATEWAY_REQUESTS}[{GATEWAY_RATE_WINDOW}]))"


def custom_query(query: str, owner_label: str, namespace: str) -> str:
    return query.replace("$owner", owner_label).replace("$namespace", namespace)


@dataclass(frozen=True)
class Reading:
    """What Prometheus says of one model. `load` is None when it could not be read (`error`
    says why); `found` says whether any series named the model; `requested_at` is when the
    gateways' request counter for it last rose (None: never seen rising)."""

    load: float | None
    error: str = ""
    found: bool = True
    requested_at: float | None = None
    pending: bool = False  # not read yet (the reader's first round for it is on its way)


@dataclass(frozen=True)
class Memory:
    """The timers of one model between decisions. Lost on a restart: a model above zero then
    counts as active (nothing is removed before a full delay), one at zero as asleep."""

    active_at: float = NEVER  # last load or gateway request
    low_since: float | None = None  # since when the load asks for fewer replicas
    peak: int = 0  # the most the load asked for since low_since

    @staticmethod
    def fresh(current: int, now: float) -> Memory:
        return Memory(active_at=now if current > 0 else NEVER)


@dataclass(frozen=True)
class Scaling:
    replicas: int
    reason: str  # Steady, ScaledUp, Woken, ScaleDownPending, ScaledDown, ScaledToZero,
    # Asleep, MetricsUnavailable
    message: str
    load: float | None

    @property
    def has_data(self) -> bool:
        return self.reason != "MetricsUnavailable"


def step_up(current: int) -> int:
    """The most one decision adds: double, and at least four."""
    return max(current * 2, current + 4)


def wanted_by(load: float, target: float) -> int:
    # Rounded first so 16.0000001 / 8 asks for 2, not 3.
    return math.ceil(round(load / target, 6))


def decide(
    spec: Autoscaling,
    *,
    current: int,
    ready: int,
    reading: Reading,
    memory: Memory,
    now: float,
) -> tuple[Scaling, Memory]:
    low, high = spec.min_replicas, spec.max_replicas
    held = min(max(current, low), high)
    requested_at = reading.requested_at if reading.requested_at is not None else NEVER
    if reading.load is None or (not reading.found and held > 0):
        # No number (Prometheus silent, or replicas that do not report yet: loading ones
        # publish nothing): the count holds. Missing data counts as activity, so a sleep or a
        # scale-down starts over once it is back; a request still wakes a sleeping model.
        if held == 0 and requested_at > memory.active_at:
            woken = max(1, low)
            message = f"0 -> {woken} replica(s): woken by a request"
            return Scaling(woken, "Woken", message, None), Memory(active_at=requested_at)
        why = reading.error or (
            "no series for the model in Prometheus yet (replicas report their load once ready)"
        )
        return (
            Scaling(held, "MetricsUnavailable", f"{why}; holding {held} replica(s)", None),
            Memory(active_at=now if held else memory.active_at),
        )
    load = reading.load
    active_at = max(memory.active_at, requested_at, now if load > 0 else NEVER)
    wanted = min(max(wanted_by(load, spec.target_per_replica), low), high)
    if wanted == 0:
        if held == 0:
            wanted = 1 if requested_at > memory.active_at else 0  # a request since it slept
        elif now - active_at < spec.scale_to_zero_after_seconds:
            wanted = 1  # idle, not yet for long enough to sleep
    per = f"load {load:g} at {spec.target_per_replica:g} per replica"
    if wanted > held:
        replicas = min(wanted, step_up(held))
        reason = "Woken" if held == 0 else "ScaledUp"
        told = "woken by a request" if held == 0 and load == 0 else per
        return (
            Scaling(replicas, reason, f"{held} -> {replicas} replica(s): {told}", load),
            Memory(active_at=active_at),
        )
    if wanted == held:
        if held == 0:
            return Scaling(0, "Asleep", _asleep(spec), load), Memory(active_at=active_at)
        return (
            Scaling(held, "Steady", f"{held} replica(s): {per}", load),
            Memory(active_at=active_at),
        )
    if wanted == 0:
        message = f"{held} -> 0 replicas: idle for {spec.scale_to_zero_after_seconds} s"
        return Scaling(0, "ScaledToZero", message, load), Memory(active_at=active_at)
    low_since = memory.low_since if memory.low_since is not None else now
    peak = max(memory.peak if memory.low_since is not None else 0, wanted)
    peak = min(peak, high)  # the bounds may have been lowered meanwhile
    if peak >= held:  # what the window asked for is what runs: a new window starts
        return (
            Scaling(held, "Steady", f"{held} replica(s): {per}", load),
            replace(Memory(active_at=active_at), low_since=now, peak=wanted),
        )
    if now - low_since >= spec.scale_down_delay_seconds:
        message = f"{held} -> {peak} replica(s): {per}, low for {spec.scale_down_delay_seconds} s"
        return Scaling(peak, "ScaledDown", message, load), Memory(active_at=active_at)
    since = datetime.fromtimestamp(low_since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = (
        f"{held} replica(s): {per} asks for {peak}; fewer once it has stayed low for "
        f"{spec.scale_down_delay_seconds} s (low since {since})"
    )
    return (
        Scaling(held, "ScaleDownPending", message, load),
        replace(Memory(active_at=active_at), low_since=low_since, peak=peak),
    )


def _asleep(spec: Autoscaling) -> str:
    return (
        f"scaled to zero after {spec.scale_to_zero_after_seconds} s idle; the first request "
        "through a gateway wakes it"
    )
