"""The Grafana dashboard and the PrometheusRule alerts query only metrics the operator exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import llmfleet.metrics  # noqa: F401 - registers the operator's metrics

CHART = Path(__file__).resolve().parents[2] / "charts" / "llmfleet"
METRIC = re.compile(r"\bllmfleet_[a-z0-9_]+")
# The gateways' own series (LiteLLM's prometheus callback, on in every rendered gateway):
# tests/integration/test_observability.py proves they have data.
GATEWAY_METRIC = re.compile(r"\blitellm_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("llmfleet_"):
            continue
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "llmfleet.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def alert_queries() -> list[str]:
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    return [line.split("expr:", 1)[1].strip() for line in text.splitlines() if "expr:" in line]


def test_the_operator_exports_what_the_issue_names() -> None:
    names = exported()
    for name in (
        "llmfleet_reconcile_duration_seconds_bucket",
        "llmfleet_reconcile_errors_total",
        "llmfleet_objects",
        "llmfleet_gpus_requested",
        "llmfleet_placements",
        "llmfleet_cluster_reachable",
        "llmfleet_api_requests_total",
        "llmfleet_gateway_sites",
        "llmfleet_pipeline_stages",
        "llmfleet_gpus_free",
        "llmfleet_gpus_allocatable",
        "llmfleet_replicas",
        "llmfleet_policy_violations",
    ):
        assert name in names, name


@pytest.mark.parametrize("query", dashboard_queries() + alert_queries())
def test_every_query_names_an_exported_metric(query: str) -> None:
    used = set(METRIC.findall(query))
    if "absent(up" in query:
        return  # the scrape target itself, not an operator metric
    if GATEWAY_METRIC.search(query) and not used:
        return
    assert used, f"no llmfleet metric in {query!r}"
    assert used <= exported(), f"unknown metric in {query!r}: {used - exported()}"


def test_dashboard_shows_fleet_gpus_latency_errors_and_clusters() -> None:
    titles = {
        p["title"]
        for p in json.loads((CHART / "dashboards" / "llmfleet.json").read_text())["panels"]
    }
    for wanted in (
        "Resources by kind and mode",
        "GPUs requested by location and product",
        "Reconcile latency",
        "Reconcile errors",
        "Cluster reachable",
        "Free GPUs by cluster and product",
        "Replicas by role and location",
        "Policy violations",
    ):
        assert wanted in titles
