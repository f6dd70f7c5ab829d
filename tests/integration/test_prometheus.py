"""A real Prometheus (hack/localfleet/prometheus.py) scraping stub model servers' metrics:
the labels a scrape job attaches, the sums the autoscaling queries take, a value that
changes, a reload with other targets, and Prometheus stopped and back. No cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localfleet.prometheus import LocalPrometheus, Sample, Target
from localfleet.stubs import MetricsStub

NAMESPACE = "t-prometheus"
OWNER_A = f"LLMDeployment.{NAMESPACE}.llama-a"
OWNER_B = f"LLMDeployment.{NAMESPACE}.llama-b"
QUEUE = (
    'sum by (llmfleet_io_owner) ({__name__=~"vllm:num_requests_running|vllm:num_requests_waiting"})'
)


def by_owner(samples: list[Sample]) -> dict[str, float]:
    return {sample.labels["llmfleet_io_owner"]: sample.value for sample in samples}


def target(stub: MetricsStub, owner: str) -> Target:
    return Target(stub.target, labels={"namespace": NAMESPACE, "llmfleet_io_owner": owner})


@pytest.fixture
def stubs() -> Iterator[tuple[MetricsStub, MetricsStub]]:
    a, b = MetricsStub(), MetricsStub()
    a.set("vllm:num_requests_running", 2, model_name="llama-a")
    a.set("vllm:num_requests_waiting", 3, model_name="llama-a")
    a.set("vllm:gpu_cache_usage_perc", 0.5, model_name="llama-a")  # not in the sum
    b.set("vllm:num_requests_running", 4, model_name="llama-b")
    b.set("vllm:num_requests_waiting", 1, model_name="llama-b")
    b.set("llamacpp:requests_processing", 6)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(tmp_path / "prometheus") as running:
        yield running


def test_scrapes_stub_metrics_with_the_labels_of_their_owner(
    prometheus: LocalPrometheus, stubs: tuple[MetricsStub, MetricsStub]
) -> None:
    a, b = stubs
    prometheus.start([target(a, OWNER_A), target(b, OWNER_B)])
    assert prometheus.port != 9090
    assert prometheus.url == f"http://127.0.0.1:{prometheus.port}"

    sums = prometheus.wait_for(QUEUE, lambda r: by_owner(r) == {OWNER_A: 5, OWNER_B: 5})
    assert all(set(sample.labels) == {"llmfleet_io_owner"} for sample in sums)

    [running] = prometheus.query(f'vllm:num_requests_running{{llmfleet_io_owner="{OWNER_A}"}}')
    assert running.value == 2
    assert running.labels == {
        "__name__": "vllm:num_requests_running",
        "instance": a.target,
        "job": "models",
        "llmfleet_io_owner": OWNER_A,
        "model_name": "llama-a",
        "namespace": NAMESPACE,
    }
    [processing] = prometheus.query("llamacpp:requests_processing")
    assert (processing.labels["llmfleet_io_owner"], processing.value) == (OWNER_B, 6)
    assert {s.labels["instance"]: s.value for s in prometheus.query("up")} == {
        a.target: 1,
        b.target: 1,
    }

    started = time.monotonic()
    a.set("vllm:num_requests_waiting", 10, model_name="llama-a")
    prometheus.wait_for(QUEUE, lambda r: by_owner(r) == {OWNER_A: 12, OWNER_B: 5}, timeout=5)
    assert time.monotonic() - started < 5

    # Another configuration, reloaded: b's series go stale, a's stay.
    prometheus.set_targets([target(a, OWNER_A)])
    prometheus.wait_for(QUEUE, lambda r: by_owner(r) == {OWNER_A: 12}, timeout=5)


def test_stopped_prometheus_refuses_queries_and_restarts_with_its_data(
    prometheus: LocalPrometheus, stubs: tuple[MetricsStub, MetricsStub]
) -> None:
    a, _ = stubs
    prometheus.start([target(a, OWNER_A)])
    prometheus.wait_for(QUEUE, lambda r: by_owner(r) == {OWNER_A: 5})
    before = time.time()
    url = prometheus.url

    prometheus.stop()
    with pytest.raises(ConnectionError, match="does not answer"):
        prometheus.query(QUEUE)

    a.set("vllm:num_requests_running", 7, model_name="llama-a")
    prometheus.restart()
    assert prometheus.url == url
    prometheus.wait_for(QUEUE, lambda r: by_owner(r) == {OWNER_A: 10})
    # The samples scraped before the stop are still in its data.
    assert by_owner(prometheus.query(QUEUE, at=before)) == {OWNER_A: 5}
