"""Prometheus metrics of the operator (served on their own port by `llmfleet run`)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

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
