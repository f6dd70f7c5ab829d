"""The load reader against a scripted Prometheus: grouped queries, several Prometheuses,
custom queries, the gateways' request counters, failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from llmfleet.placement import autoscale
from llmfleet.reconcile.load import Interest, LoadReader, QueryError, Sample, samples

HUB = "http://prom-hub"
EDGE = "http://prom-edge"


@dataclass
class Prometheus:
    """Answers per URL and query; a URL in `down` fails every query."""

    answers: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def query(self, url: str, expr: str) -> list[Sample]:
        self.asked.append((url, expr))
        if url in self.down:
            raise QueryError(f"Prometheus at {url} cannot be read: connection refused")
        return self.answers.get((url, expr), [])

    def owners(self, url: str, runtime: str, values: dict[str, float]) -> None:
        expr = str(autoscale.runtime_query(runtime))
        self.answers[(url, expr)] = [({"llmfleet_io_owner": o}, v) for o, v in values.items()]

    def requests(self, url: str, values: dict[tuple[str, str], float]) -> None:
        self.answers[(url, autoscale.gateway_requests_query())] = [
            ({"namespace": ns, "llmdeployment": name}, v) for (ns, name), v in values.items()
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reader(prometheus: Prometheus, clock: Clock | None = None) -> tuple[LoadReader, list[str]]:
    woken: list[str] = []
    return (
        LoadReader(query=prometheus.query, wake=woken.append, clock=clock or Clock()),
        woken,
    )


def vllm(name: str, *urls: str, query: str | None = None) -> Interest:
    return Interest(namespace="team", name=name, runtime="vllm", urls=urls, query=query)


def test_one_grouped_query_per_runtime_serves_every_model_and_wakes_them() -> None:
    prometheus = Prometheus()
    prometheus.owners(HUB, "vllm", {"a": 3.0, "b": 12.5})
    load, woken = reader(prometheus)
    assert load.reading("a", vllm("a", HUB)).load is None  # not read yet
    load.reading("b", vllm("b", HUB))
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).load == 3.0
    assert load.reading("b", vllm("b", HUB)).load == 12.5
    assert sorted(woken) == ["a", "b"]
    runtime_queries = [e for _, e in prometheus.asked if "vllm:" in e]
    assert len(runtime_queries) == 1


def test_the_load_adds_up_over_the_prometheus_of_each_cluster() -> None:
    prometheus = Prometheus()
    prometheus.owners(HUB, "vllm", {"a": 3.0})
    prometheus.owners(EDGE, "vllm", {"a": 4.0})
    load, _ = reader(prometheus)
    load.reading("a", vllm("a", EDGE, HUB))
    load.read_all()
    assert load.reading("a", vllm("a", EDGE, HUB)).load == 7.0


def test_an_unreachable_prometheus_is_missing_data_with_its_reason() -> None:
    prometheus = Prometheus(down={EDGE})
    prometheus.owners(HUB, "vllm", {"a": 3.0})
    load, _ = reader(prometheus)
    load.reading("a", vllm("a", EDGE, HUB))
    load.read_all()
    reading = load.reading("a", vllm("a", EDGE, HUB))
    assert reading.load is None
    assert "prom-edge" in reading.error


def test_a_model_without_series_is_reported_as_not_found() -> None:
    load, _ = reader(Prometheus())
    load.reading("a", vllm("a", HUB))
    load.read_all()
    reading = load.reading("a", vllm("a", HUB))
    assert (reading.load, reading.found) == (0.0, False)


def test_no_prometheus_says_how_to_name_one() -> None:
    load, _ = reader(Prometheus())
    reading = load.reading("a", vllm("a"))
    assert reading.load is None
    assert "--prometheus-url" in reading.error


def test_a_custom_query_gets_the_owner_and_namespace() -> None:
    prometheus = Prometheus()
    expr = 'sum(my_queue{owner="a", ns="team"})'
    prometheus.answers[(HUB, expr)] = [({}, 9.0)]
    load, _ = reader(prometheus)
    interest = vllm("a", HUB, query='sum(my_queue{owner="$owner", ns="$namespace"})')
    load.reading("a", interest)
    load.read_all()
    assert load.reading("a", interest).load == 9.0


def test_gateway_requests_mark_activity_only_when_the_counter_moves() -> None:
    prometheus, clock = Prometheus(), Clock()
    load, _ = reader(prometheus, clock)
    prometheus.requests(HUB, {("team", "a"): 5.0})
    load.reading("a", vllm("a", HUB))
    load.read_all()  # the first round only learns where the counters are
    assert load.reading("a", vllm("a", HUB)).requested_at is None
    clock.now += 15
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).requested_at is None
    clock.now += 15
    prometheus.requests(HUB, {("team", "a"): 6.0})
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).requested_at == clock.now
    rose_at = clock.now
    clock.now += 15
    prometheus.requests(HUB, {("team", "a"): 0.0})  # the gateway rolled: its counter restarts
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).requested_at == rose_at


def test_a_runtime_without_queue_metrics_is_loaded_by_the_gateway_rate() -> None:
    prometheus = Prometheus()
    prometheus.answers[(HUB, autoscale.gateway_rate_query())] = [
        ({"namespace": "team", "llmdeployment": "o"}, 2.5)
    ]
    load, _ = reader(prometheus)
    interest = Interest(namespace="team", name="o", runtime="ollama", urls=(HUB,))
    load.reading("o", interest)
    load.read_all()
    assert load.reading("o", interest).load == 2.5


def test_a_model_nobody_asks_about_is_forgotten() -> None:
    prometheus, clock = Prometheus(), Clock()
    load, woken = reader(prometheus, clock)
    load.reading("a", vllm("a", HUB))
    clock.now += 601
    load.read_all()
    assert woken == []
    assert prometheus.asked == []


def test_odd_answers_stay_with_their_prometheus_or_model() -> None:
    prometheus = Prometheus()
    prometheus.owners(HUB, "vllm", {"a": 3.0})
    bad = 'rate(x{owner="b"}[5m])'

    def query(url: str, expr: str) -> list[Sample]:
        if url == EDGE:
            raise RuntimeError("a proxy answered HTML")  # not even a QueryError
        if expr == bad:
            raise QueryError("Prometheus at http://prom-hub returned a matrix")
        return prometheus.query(url, expr)

    load = LoadReader(query=query)
    b = vllm("b", HUB, query='rate(x{owner="$owner"}[5m])')
    load.reading("a", vllm("a", HUB))
    load.reading("b", b)
    load.reading("c", vllm("c", EDGE))
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).load == 3.0  # the others are read
    assert "matrix" in load.reading("b", b).error
    assert "could not be read" in load.reading("c", vllm("c", EDGE)).error


def test_a_custom_query_without_series_is_no_data_not_zero() -> None:
    load, _ = reader(Prometheus())
    interest = vllm("a", HUB, query="sum(nothing_like_this)")
    load.reading("a", interest)
    load.read_all()
    assert load.reading("a", interest).found is False


def test_a_counter_missing_from_one_answer_is_no_request_when_it_returns() -> None:
    prometheus, clock = Prometheus(), Clock()
    load, _ = reader(prometheus, clock)
    load.reading("a", vllm("a", HUB))
    prometheus.requests(HUB, {("team", "a"): 7.0})
    load.read_all()
    prometheus.requests(HUB, {})  # one scrape failed
    load.read_all()
    prometheus.requests(HUB, {("team", "a"): 7.0})
    load.read_all()
    assert load.reading("a", vllm("a", HUB)).requested_at is None


def test_prometheus_answers_are_finite_numbers_of_an_instant_vector_or_a_scalar() -> None:
    vector = {"resultType": "vector", "result": [{"metric": {"a": "b"}, "value": [1, "2.5"]}]}
    assert samples(HUB, vector) == [({"a": "b"}, 2.5)]
    assert samples(HUB, {"resultType": "scalar", "result": [1, "4"]}) == [({}, 4.0)]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"resultType": "matrix", "result": []}, "returned a matrix"),
        ({"resultType": "vector", "result": [{"value": [1, "NaN"]}]}, "not a finite number"),
        ({"resultType": "vector", "result": [{"metric": {}}]}, "unreadable result"),
    ],
)
def test_other_answers_say_what_they_were(data: dict[str, Any], said: str) -> None:
    with pytest.raises(QueryError, match=said):
        samples(HUB, data)
