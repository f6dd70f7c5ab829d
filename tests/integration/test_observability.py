"""The chart's dashboard and alerts against a real Prometheus and Alertmanager scraping the
operator and a live gateway (in front of a real llama.cpp server). With a fleet in every
state a panel shows (placed, autoscaled, degraded, refused by a FleetPolicy, a pipeline that
detected drift, a gateway site with traffic), every panel's query returns data; a stopped member cluster fires the unreachable-cluster alert, which reaches a webhook
on loopback through Alertmanager and resolves when the cluster is back.

The rules are the chart's rendered PrometheusRule with each `for:` shortened to seconds (the
real durations are proven by `promtool test rules` in test_alert_rules.py)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmfleet.api import GROUP, VERSION
from localfleet import chart, components, gateway_run, topology
from localfleet.alertmanager import LocalAlertmanager, WebhookReceiver
from localfleet.paths import REPO_ROOT
from localfleet.prometheus import LocalPrometheus, QueryError, Target
from tests.integration import resources
from tests.integration.conftest import Fleet, Operator, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, create_chat_endpoint, get, ready
from tests.integration.test_mlpipeline import pipeline, run_drift_check

DASHBOARDS = sorted((REPO_ROOT / "charts" / "llmfleet" / "dashboards").glob("*.json"))
# This Prometheus scrapes the operator as job "llmfleet", not through the ServiceMonitor's
# job: LLMFleetOperatorDown selects that job.
MONITORED = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "operatorSelector": 'job="llmfleet"'},
    }
}
# Components of a member that stop with its API server (lease holders) and come back after.
SUPERVISED = ("kube-controller-manager", "kube-scheduler", "kwok-controller")


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows included."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    return [
        (panel.get("title", "?"), target["expr"])
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text())["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def shortened_chart_rules(path: Path) -> Path:
    """The chart's PrometheusRule as a rule file, each `for:` cut to 2 seconds."""
    objects = chart.template(chart.TEST_VALUES | MONITORED)
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    spec = rule["spec"]
    for group in spec["groups"]:
        for item in group["rules"]:
            if "for" in item:
                item["for"] = "2s"
    path.write_text(yaml.safe_dump(spec))
    return path


def panels_without_data(
    prometheus: LocalPrometheus, queries: list[tuple[str, str]], timeout: float = 90
) -> list[tuple[str, str]]:
    """The panels whose query still has no series after `timeout`; a query Prometheus
    refuses fails at once."""
    deadline = time.monotonic() + timeout
    empty = list(queries)
    while empty and time.monotonic() < deadline:
        still: list[tuple[str, str]] = []
        for title, expr in empty:
            try:
                if not prometheus.query(expr):
                    still.append((title, expr))
            except QueryError as error:
                pytest.fail(f"panel {title!r}: Prometheus refuses {expr!r}: {error}")
        empty = still
        if empty:
            time.sleep(1)
    return empty


@dataclass
class Monitoring:
    prometheus: LocalPrometheus
    alertmanager: LocalAlertmanager
    receiver: WebhookReceiver


@pytest.fixture
def monitoring(operator: Operator, tmp_path: Path) -> Iterator[Monitoring]:
    receiver = WebhookReceiver().start()
    alertmanager = LocalAlertmanager(tmp_path / "alertmanager").start(receiver.url)
    prometheus = LocalPrometheus(tmp_path / "prometheus")
    try:
        prometheus.start(
            [Target(f"127.0.0.1:{operator.metrics_port}", labels={"job": "llmfleet"})],
            rule_files=[shortened_chart_rules(tmp_path / "rules.yaml")],
            alertmanagers=[alertmanager.address],
        )
        yield Monitoring(prometheus, alertmanager, receiver)
    finally:
        prometheus.stop()
        alertmanager.stop()
        receiver.stop()


llm = resources.llm_deployment


def create(fleet: Fleet, namespace: str, plural: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )


@pytest.fixture
def no_managed_models(fleet: Fleet, namespace: str) -> Iterator[str]:
    """A FleetPolicy denying managed providers to this test's namespace."""
    name = f"no-managed-{namespace}"[:63]
    label = {"llmfleet.io/data-class": f"no-managed-{uuid.uuid4().hex[:8]}"}
    custom = client.CustomObjectsApi(fleet.cloud)
    custom.create_cluster_custom_object(GROUP, VERSION, "fleetpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "FleetPolicy", "metadata": {"name": name},
        "spec": {"namespaceSelector": {"matchLabels": label}, "managedProviders": "Deny"},
    })  # fmt: skip
    client.CoreV1Api(fleet.cloud).patch_namespace(namespace, {"metadata": {"labels": label}})
    yield name
    custom.delete_cluster_custom_object(GROUP, VERSION, "fleetpolicies", name)


@pytest.mark.usefixtures("idle_gpus", "load_balancers", "no_managed_models")
def test_every_dashboard_panel_returns_data(
    fleet: Fleet, namespace: str, monitoring: Monitoring, tmp_path: Path
) -> None:
    queries = panel_queries()
    assert len(queries) >= 20, queries
    # Every state a panel shows, in one namespace.
    # A CPU model the gateway routes to: a real llama-server answers for it below.
    create(fleet, namespace, "llmdeployments", llm(
        "served", "cloud", runtime="llamacpp", gpu={"count": 0}, model={"name": "tiny"}
    ))  # fmt: skip
    create(fleet, namespace, "llmdeployments", llm(
        "autoscaled", "cloud", autoscaling={"maxReplicas": 2, "query": "vector(3)"}
    ))  # fmt: skip
    create(fleet, namespace, "llmdeployments", llm("too-big", "onprem", gpu={"count": 5}))
    client.CoreV1Api(fleet.cloud).create_namespaced_secret(
        namespace, {"metadata": {"name": "aoai-key"}, "stringData": {"api-key": "sk-test"}}
    )
    provider_run = llm("provider-run", "cloud", managed={
        "provider": "azure-openai", "url": "https://contoso.openai.azure.com",
        "deployment": "gpt-4o", "apiKeySecretRef": {"name": "aoai-key", "key": "api-key"},
    })  # fmt: skip
    del provider_run["spec"]["gpu"]
    provider_run["spec"]["placement"]["management"] = "managed"
    create(fleet, namespace, "llmdeployments", provider_run)
    create_chat_endpoint(
        fleet.cloud, namespace, "chat",
        sites=[{"location": "cloud", "management": "self-managed"}],
        backends=[{"llmDeploymentRef": {"name": "served"}}],
    )  # fmt: skip
    drift = {
        "drift": {"schedule": "@hourly", "threshold": 0.2, "image": "sim.llmfleet.local/drift:0.42"}
    }
    create(fleet, namespace, "mlpipelines", pipeline(
        "drifty", ("cloud", "onprem", "cloud"), monitoring=drift
    ))  # fmt: skip

    def serving() -> bool:
        obj = get(fleet.cloud, namespace, "mlpipelines", "drifty")
        seen["drifty"] = (obj.get("status") or {}).get("conditions")
        return ready(obj)

    seen: dict[str, Any] = {}
    try:
        wait_until(serving, what="the pipeline to serve", timeout=120)
    except AssertionError as error:
        raise AssertionError(f"{error}: {seen}") from error
    run_drift_check(fleet.onprem, namespace, "drifty-drift", "check-high")
    wait_until(
        lambda: (
            condition(get(fleet.cloud, namespace, "mlpipelines", "drifty"), "DriftDetected").get(
                "status"
            )
            == "True"
        ),
        what="DriftDetected=True",
        timeout=60,
    )
    refused = condition(get(fleet.cloud, namespace, "llmdeployments", "provider-run"), "Ready")
    assert refused.get("reason") == "PolicyViolation", refused

    # The gateway as rendered, in front of llama-server with the rendered arguments, scraped
    # beside the operator, with traffic.
    wait_until(
        lambda: ready(get(fleet.cloud, namespace, "chatendpoints", "chat")),
        what="the endpoint",
        timeout=90,
    )
    with gateway_run.before_llamacpp(fleet.cloud, namespace, "served", "chat-cloud", tmp_path) as (
        gateway,
        _,
    ):
        scraped = Target(f"127.0.0.1:{gateway.port}", "/metrics/", {"job": "gateway"})
        monitoring.prometheus.set_targets([*monitoring.prometheus.targets, scraped])
        for _ in range(5):
            code, answer = gateway.chat(None, "hello", model="chat")
            assert code == 200, answer
        empty = panels_without_data(monitoring.prometheus, queries)
    assert not empty, f"panels without data: {empty}"

    # Nothing in this healthy fleet fires but what it was built to show.
    firing = {
        a["labels"]["alertname"] for a in monitoring.prometheus.api("/api/v1/alerts")["alerts"]
    }
    assert "LLMFleetOperatorDown" not in firing
    assert "LLMFleetClusterUnreachable" not in firing


def test_a_stopped_member_fires_the_unreachable_alert_through_alertmanager(
    fleet: Fleet, namespace: str, monitoring: Monitoring
) -> None:
    spec = topology.ONPREM2
    create(fleet, namespace, "llmdeployments", llm("steady", "onprem", placement=pinned(spec)))
    wait_until(
        lambda: ready(get(fleet.cloud, namespace, "llmdeployments", "steady")),
        what="the model on the member to be Ready",
        timeout=90,
    )
    monitoring.prometheus.wait_for(
        f'llmfleet_cluster_reachable{{cluster="{spec.name}"}}', lambda r: r and r[0].value == 1
    )

    def fired(state: str) -> Any:
        def matches(alert: dict[str, Any]) -> bool:
            labels = alert["labels"]
            return bool(
                alert["status"] == state
                and labels.get("alertname") == "LLMFleetClusterUnreachable"
                and labels.get("cluster") == spec.name
            )

        return matches

    others = [components.snapshot(spec, c) for c in SUPERVISED]
    stopped = components.stop(spec, "kube-apiserver")
    try:
        alert = monitoring.receiver.wait_for(
            fired("firing"), what=f"firing LLMFleetClusterUnreachable for {spec.name}", timeout=90
        )
    finally:
        components.start(stopped)
        components.revive(others)
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["location"] == "onprem"
    assert alert["annotations"]["summary"] == f"Member cluster {spec.name} is unreachable"
    assert alert["annotations"]["runbook_url"].endswith("llmfleetclusterunreachable.md")
    # The placement there was left alone, not moved: the alert is what tells people.
    obj = get(fleet.cloud, namespace, "llmdeployments", "steady")
    assert [p["cluster"] for p in obj["status"]["placements"]] == [spec.name]

    monitoring.receiver.wait_for(
        fired("resolved"), what=f"resolved LLMFleetClusterUnreachable for {spec.name}", timeout=120
    )
    wait_until(
        lambda: client.CoreV1Api(fleet.onprem2).list_namespace(limit=1) is not None,
        what=f"{spec.name} to answer again",
        timeout=30,
    )
