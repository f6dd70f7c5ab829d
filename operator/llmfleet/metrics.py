"""Prometheus metrics of the operator (served on their own port by `llmfleet run`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from llmfleet.fleetstate import FleetState

API_REQUESTS = Counter(
    "llmfleet_api_requests_total",
    "Requests the operator sent to Kubernetes API servers, by cluster, verb and status code.",
    ["cluster", "verb", "code"],
)
RECONCILE_SECONDS = Histogram(
    "llmfleet_reconcile_duration_seconds",
    "Time to reconcile one resource, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "llmfleet_reconcile_errors_total",
    "Reconciles that ended in an error, by kind and reason.",
    ["kind", "reason"],
)
# Why a reconcile ended in an error: its namespace was gone, an API error, or rights missing.
GONE, KUBE_ERROR, FORBIDDEN = "Gone", "KubeError", "Forbidden"
RECONCILE_ERROR_REASONS = (GONE, KUBE_ERROR, FORBIDDEN)


def zero_reconcile_errors(kinds: Iterable[str]) -> None:
    """Every kind and reason starts at 0, so rates and alerts see a series before the first
    error (a series that appears with its first increment hides that increment from rate())."""
    for kind in kinds:
        for reason in RECONCILE_ERROR_REASONS:
            RECONCILE_ERRORS.labels(kind, reason)


CLUSTER_REACHABLE = Gauge(
    "llmfleet_cluster_reachable",
    "1 when the member cluster answered the last request, else 0.",
    ["cluster", "location"],
)
# Objects, GPUs, placements, gateway sites and pipeline stages, from the latest statuses.
FLEET = FleetState()
REGISTRY.register(FLEET)
CACHE_SYNCED = Gauge(
    "llmfleet_watch_synced",
    "1 while the watch feeding the operator's view of a child kind in a cluster is synced.",
    ["cluster", "kind"],
)

GpuRow = tuple[str, str, str, int, int]  # cluster, location, product, free, allocatable


class FleetCapacity(Collector):
    """GPUs per member cluster and product, free and allocatable, from the clusters' node and
    pod watches at scrape time (a cluster whose watches are not synced is left out)."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[GpuRow]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        free = GaugeMetricFamily(
            "llmfleet_gpus_free",
            "GPUs free on schedulable nodes (allocatable minus the requests of pods bound to "
            "them), by member cluster, location and product.",
            labels=["cluster", "location", "product"],
        )
        total = GaugeMetricFamily(
            "llmfleet_gpus_allocatable",
            "GPUs allocatable on the nodes of each member cluster, location and product.",
            labels=["cluster", "location", "product"],
        )
        for cluster, location, product, available, allocatable in (
            self.source() if self.source else ()
        ):
            free.add_metric([cluster, location, product], available)
            total.add_metric([cluster, location, product], allocatable)
        yield from (free, total)


CAPACITY = FleetCapacity()
REGISTRY.register(CAPACITY)


def forget_cluster(name: str) -> None:
    """Drops the per-cluster series of a member no longer registered: an unreachable member
    that was removed must not keep LLMFleetClusterUnreachable firing."""
    for gauge in (CLUSTER_REACHABLE, CACHE_SYNCED):
        names = gauge._labelnames
        for family in gauge.collect():
            for sample in family.samples:
                if sample.labels.get("cluster") == name:
                    gauge.remove(*(sample.labels[label] for label in names))
