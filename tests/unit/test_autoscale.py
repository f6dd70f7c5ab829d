"""The autoscaling decision, table-driven: steps, stabilisation, clamps, zero, missing data."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from llmfleet.api.llmdeployment import Autoscaling
from llmfleet.placement import autoscale
from llmfleet.placement.autoscale import NEVER, Memory, Reading

NOW = 10_000.0
SPEC = Autoscaling(
    min_replicas=0,
    max_replicas=12,
    target_per_replica=8,
    scale_down_delay_seconds=300,
    scale_to_zero_after_seconds=900,
)


@dataclass(frozen=True)
class Case:
    name: str
    current: int
    reading: Reading
    memory: Memory = field(default_factory=lambda: Memory(active_at=NOW))
    ready: int = 1
    spec: Autoscaling = SPEC
    replicas: int = 0
    reason: str = ""


CASES = [
    Case("steady at the target", 2, Reading(16.0), replicas=2, reason="Steady"),
    Case("up at once", 1, Reading(40.0), replicas=5, reason="ScaledUp"),
    Case("up by a bounded step", 2, Reading(200.0), replicas=6, reason="ScaledUp"),
    Case("up to the most allowed", 10, Reading(1000.0), replicas=12, reason="ScaledUp"),
    Case(
        "the floor applies at once",
        0,
        Reading(0.0),
        spec=SPEC.model_copy(update={"min_replicas": 2}),
        replicas=2,
        reason="Steady",
    ),
    Case("down waits for the delay", 4, Reading(8.0), replicas=4, reason="ScaleDownPending"),
    Case(
        "down after the delay, to the most asked meanwhile",
        4,
        Reading(8.0),
        memory=Memory(active_at=NOW, low_since=NOW - 300, peak=3),
        replicas=3,
        reason="ScaledDown",
    ),
    Case(
        "idle but not for long enough: one stays",
        1,
        Reading(0.0),
        memory=Memory(active_at=NOW - 899),
        replicas=1,
        reason="Steady",
    ),
    Case(
        "idle long enough: zero",
        1,
        Reading(0.0),
        memory=Memory(active_at=NOW - 900),
        replicas=0,
        reason="ScaledToZero",
    ),
    Case(
        "a recent gateway request keeps it awake",
        1,
        Reading(0.0, requested_at=NOW - 10),
        memory=Memory(active_at=NOW - 5000),
        replicas=1,
        reason="Steady",
    ),
    Case(
        "a request wakes a sleeping model",
        0,
        Reading(0.0, requested_at=NOW - 2),
        memory=Memory(active_at=NEVER),
        ready=0,
        replicas=1,
        reason="Woken",
    ),
    Case(
        "load wakes a sleeping model to what it asks",
        0,
        Reading(30.0),
        memory=Memory(active_at=NEVER),
        ready=0,
        replicas=4,
        reason="Woken",
    ),
    Case(
        "asleep stays asleep",
        0,
        Reading(0.0),
        memory=Memory(active_at=NEVER),
        ready=0,
        replicas=0,
        reason="Asleep",
    ),
    Case(
        "the floor keeps one without scale to zero",
        3,
        Reading(0.0),
        memory=Memory(active_at=NOW - 5000, low_since=NOW - 400, peak=1),
        spec=SPEC.model_copy(update={"min_replicas": 1}),
        replicas=1,
        reason="ScaledDown",
    ),
    Case(
        "Prometheus unreachable holds",
        3,
        Reading(None, "Prometheus at http://p cannot be read"),
        memory=Memory(active_at=NOW - 5000, low_since=NOW - 400, peak=1),
        replicas=3,
        reason="MetricsUnavailable",
    ),
    Case(
        "missing data never puts a model to sleep",
        1,
        Reading(None, "no data"),
        memory=Memory(active_at=NOW - 5000),
        replicas=1,
        reason="MetricsUnavailable",
    ),
    Case(
        "no series while replicas are ready holds",
        2,
        Reading(0.0, found=False),
        ready=2,
        replicas=2,
        reason="MetricsUnavailable",
    ),
    Case(
        "no series with nothing ready is no load",
        0,
        Reading(0.0, found=False),
        memory=Memory(active_at=NEVER),
        ready=0,
        replicas=0,
        reason="Asleep",
    ),
    Case("a hair over the target is not one more", 2, Reading(16.0000001), replicas=2),
    Case(
        "replicas still loading report nothing: the count holds",
        4,
        Reading(0.0, found=False),
        ready=0,
        replicas=4,
        reason="MetricsUnavailable",
    ),
    Case(
        "a request wakes a sleeping model even while Prometheus is partly silent",
        0,
        Reading(None, "Prometheus at http://edge cannot be read", requested_at=NOW - 1),
        memory=Memory(active_at=NOW - 5000),
        ready=0,
        replicas=1,
        reason="Woken",
    ),
    Case(
        "a lowered maximum caps a pending scale-down",
        5,
        Reading(8.0),
        memory=Memory(active_at=NOW, low_since=NOW - 400, peak=6),
        spec=SPEC.model_copy(update={"max_replicas": 5}),
        replicas=5,
        reason="Steady",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    scaling, _ = autoscale.decide(
        case.spec,
        current=case.current,
        ready=case.ready,
        reading=case.reading,
        memory=case.memory,
        now=NOW,
    )
    assert scaling.replicas == case.replicas
    if case.reason:
        assert scaling.reason == case.reason, scaling.message


def run(
    loads: list[float], *, start: int, step: float = 15.0, spec: Autoscaling = SPEC
) -> list[int]:
    """Replicas after each reading, one reading every `step` seconds."""
    memory, current, out = Memory.fresh(start, 0.0), start, []
    for i, load in enumerate(loads):
        scaling, memory = autoscale.decide(
            spec, current=current, ready=current, reading=Reading(load), memory=memory, now=i * step
        )
        current = scaling.replicas
        out.append(current)
    return out


def test_a_load_that_dips_and_returns_within_the_delay_removes_nothing() -> None:
    loads = [40.0] * 4 + [8.0] * 10 + [40.0] * 4  # 150 s low, under the 300 s delay
    assert run(loads, start=5) == [5] * 18


def test_a_load_that_stays_low_scales_down_once_after_the_delay() -> None:
    replicas = run([40.0] * 2 + [8.0] * 30, start=5)
    # Low from the third reading (30 s) on; 300 s later, at the 23rd, it scales down.
    assert replicas[:22] == [5] * 22
    assert replicas[22:] == [1] * 10


def test_scaling_down_keeps_the_highest_count_asked_in_the_delay() -> None:
    replicas = run([40.0] + [8.0] * 10 + [24.0] + [8.0] * 9 + [8.0] * 25, start=5)
    assert 3 in replicas  # the 24 asked for 3 within the delay: that is where it stops first
    assert replicas.index(3) < replicas.index(1)


def test_an_idle_model_sleeps_after_scale_to_zero_and_not_before() -> None:
    replicas = run([8.0] + [0.0] * 70, start=1, step=15.0)
    first_zero = replicas.index(0)
    assert first_zero * 15.0 >= 900
    assert all(r == 0 for r in replicas[first_zero:])


def test_a_restart_keeps_a_sleeping_model_asleep_and_an_awake_one_for_a_full_delay() -> None:
    assert Memory.fresh(0, NOW).active_at == NEVER
    assert Memory.fresh(2, NOW).active_at == NOW


def test_queries_use_each_runtimes_own_metrics() -> None:
    assert autoscale.runtime_query("vllm") == (
        "sum by (llmfleet_io_owner) "
        '({__name__=~"vllm:num_requests_running|vllm:num_requests_waiting", '
        'llmfleet_io_owner!=""})'
    )
    assert "llamacpp:requests_deferred" in str(autoscale.runtime_query("llamacpp"))
    assert "tgi_queue_size" in str(autoscale.runtime_query("tgi"))
    assert autoscale.runtime_query("ollama") is None  # the gateways' request rate instead
    assert (
        autoscale.custom_query('sum(x{owner="$owner", ns="$namespace"})', "L.team.m", "team")
        == 'sum(x{owner="L.team.m", ns="team"})'
    )
