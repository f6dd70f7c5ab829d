"""Autoscaling on the local fleet with a real Prometheus: stand-in metrics endpoints publish
vLLM's own metric names for the model's pods, with the load the test sets. Load up -> replicas
grow on-prem, then overflow to the cloud; load down -> the cloud's go first, then down to
zero; Prometheus stopped -> the count holds; a request through the live LiteLLM gateway wakes
a sleeping model while the hybrid fallback answers, or gets 503 with Retry-After at once."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from llmfleet.names import owner_label
from localfleet import gateway_run, topology
from localfleet.prometheus import LocalPrometheus, Target
from localfleet.stubs import MetricsStub, StubModel
from tests.integration.conftest import Fleet, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, create_chat_endpoint
from tests.integration.test_fleet import deployment_replicas, shares
from tests.integration.test_llmdeployment import create, events_for, get, llmd

pytestmark = pytest.mark.usefixtures("operator", "idle_gpus")

RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"


@pytest.fixture
def pods_metrics(prometheus: LocalPrometheus) -> Iterator[MetricsStub]:
    """What the model's pods publish, scraped as a Kubernetes scrape config would label them."""
    stub = MetricsStub()
    yield stub
    prometheus.set_targets([])
    stub.close()


def pods(stub: MetricsStub, namespace: str, owner: str) -> Target:
    """The stand-in for a model's pods, labelled as a Kubernetes scrape config would."""
    return Target(stub.target, "/metrics", {"namespace": namespace, "llmfleet_io_owner": owner})


def autoscaled(name: str, placement: dict[str, Any], gpus: int, **autoscaling: Any) -> dict[str, Any]:  # fmt: skip
    body = llmd(name, placement["location"], replicas=1, gpu={"count": gpus})
    body["spec"]["placement"] = placement
    body["spec"]["autoscaling"] = autoscaling
    return body


def scaling(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("autoscaling") or {})


def when(
    fleet: Fleet,
    namespace: str,
    name: str,
    holds: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 60,
) -> dict[str, Any]:
    """The resource once `holds` is true of it."""

    def probe() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        return obj if holds(obj) else None

    return wait_until(probe, what=what, timeout=timeout)


def desired(
    fleet: Fleet, namespace: str, name: str, count: int, timeout: float = 60
) -> dict[str, Any]:
    return when(
        fleet, namespace, name,
        lambda o: scaling(o).get("desiredReplicas") == count,
        f"{name} to ask for {count} replica(s)", timeout,
    )  # fmt: skip


def figure(text: str) -> None:
    """A measured figure, in the test's output (`pytest -s`)."""
    sys.stdout.write(f"\n[figure] {text}\n")


def test_load_fills_onprem_overflows_to_the_cloud_and_gives_the_cloud_back_first(
    fleet: Fleet, namespace: str, prometheus: LocalPrometheus, pods_metrics: MetricsStub
) -> None:
    # llmfleet-onprem: 2 nodes x 4 L40S, room for two 4-GPU replicas; the cloud takes the rest.
    name = "burst"
    owner = owner_label("LLMDeployment", namespace, name)
    pods_metrics.set(RUNNING, 6)
    pods_metrics.set(WAITING, 2)
    prometheus.set_targets([pods(pods_metrics, namespace, owner)])
    placement = pinned(topology.ONPREM, overflow={"location": "cloud", "moveBackAfterSeconds": 0})
    create(fleet, namespace, autoscaled(
        name, placement, 4, minReplicas=0, maxReplicas=4, targetPerReplica=8,
        scaleDownDelaySeconds=6, scaleToZeroAfterSeconds=12,
    ))  # fmt: skip
    # Until its pods are scraped the load is missing (the count holds); then it is read.
    obj = when(
        fleet, namespace, name,
        lambda o: scaling(o).get("load") == 8 and condition(o, "Autoscaling").get("status") == "True",
        "the load read from Prometheus",
    )  # fmt: skip
    assert scaling(obj)["desiredReplicas"] == 1
    assert condition(obj, "Autoscaling")["reason"] == "Steady"

    # 30 in flight at 8 per replica: 4 replicas; on-prem holds 2, the cloud the other 2.
    changed = time.monotonic()
    pods_metrics.set(RUNNING, 22)
    pods_metrics.set(WAITING, 8)
    obj = desired(fleet, namespace, name, 4)
    spread = {
        topology.ONPREM.name: ("preferred", 2, "Placed"),
        "in-cluster": ("overflow", 2, "Placed"),
    }
    when(fleet, namespace, name, lambda o: shares(o) == spread,
         "2 replicas on-prem and 2 overflowing to the cloud", 90)  # fmt: skip
    to_placed = time.monotonic() - changed
    assert "load 30 at 8 per replica" in scaling(obj)["reason"]
    wait_until(lambda: condition(get(fleet, namespace, name), "Ready").get("status") == "True",
               what="4 replicas ready", timeout=120)  # fmt: skip
    figure(f"load change -> 4 replicas placed over two clusters: {to_placed:.1f} s")

    # Load falls to 12: 2 replicas, after the 6 s delay; the cloud's overflow goes first.
    pods_metrics.set(RUNNING, 12)
    pods_metrics.set(WAITING, 0)
    low = time.monotonic()
    obj = get(fleet, namespace, name)
    assert scaling(obj)["desiredReplicas"] == 4  # not at once
    desired(fleet, namespace, name, 2)
    assert time.monotonic() - low >= 5
    home = {topology.ONPREM.name: ("preferred", 2, "Placed")}
    when(fleet, namespace, name, lambda o: shares(o) == home,
         "the cloud's replicas removed first", 90)  # fmt: skip
    assert deployment_replicas(fleet, "in-cluster", namespace, name) is None

    # Prometheus stops: missing data holds the count, even with the load at zero meanwhile.
    pods_metrics.set(RUNNING, 0)
    prometheus.stop()
    try:
        obj = when(
            fleet, namespace, name,
            lambda o: condition(o, "Autoscaling").get("reason") == "MetricsUnavailable",
            "the missing load reported",
        )  # fmt: skip
        assert condition(obj, "Autoscaling")["status"] == "False"
        assert "cannot be read" in condition(obj, "Autoscaling")["message"]
        time.sleep(15)  # longer than the scale-down delay and the idle time before zero
        assert scaling(get(fleet, namespace, name))["desiredReplicas"] == 2
    finally:
        prometheus.restart()

    # Idle: down to one after the delay, then to zero after 12 s idle; the model keeps its home.
    obj = desired(fleet, namespace, name, 0, timeout=90)
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ScaledToZero")
    wait_until(lambda: deployment_replicas(fleet, topology.ONPREM.name, namespace, name) == 0,
               what="the on-prem Deployment at zero", timeout=60)  # fmt: skip

    def reasons() -> set[str] | None:
        # Events are posted after the status they tell of: wait for the last one.
        events = client.CoreV1Api(fleet.cloud).list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        found = {e.reason for e in events.items}
        return found if {"ScaledUp", "ScaledDown", "ScaledToZero"} <= found else None

    wait_until(reasons, what="the ScaledUp, ScaledDown and ScaledToZero Events", timeout=30)


@pytest.fixture
def fallback() -> Iterator[StubModel]:
    stub = StubModel("fallback")
    yield stub
    stub.close()


def test_a_request_through_the_live_gateway_wakes_a_sleeping_model(
    fleet: Fleet,
    namespace: str,
    prometheus: LocalPrometheus,
    pods_metrics: MetricsStub,
    fallback: StubModel,
    tmp_path: Path,
) -> None:
    if not gateway_run.LITELLM.exists():
        pytest.fail(f"{gateway_run.LITELLM} is missing: run `make gateway-venv`", pytrace=False)
    name = "sleeper"
    owner = owner_label("LLMDeployment", namespace, name)
    pods_metrics.set(RUNNING, 0)
    pods_metrics.set(WAITING, 0)
    prometheus.set_targets([pods(pods_metrics, namespace, owner)])
    core = client.CoreV1Api(fleet.cloud)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "keys"}, "stringData": {"provider": "sk-provider"}}
    )
    create(fleet, namespace, autoscaled(
        name, {"location": "cloud"}, 0, minReplicas=0, maxReplicas=2,
        scaleDownDelaySeconds=0, scaleToZeroAfterSeconds=5,
    ))  # fmt: skip
    hybrid_fallback = {
        "name": "provider",
        "fallbackOnly": True,
        "managed": {
            "provider": "openai-compatible", "url": fallback.url, "deployment": "fallback",
            "apiKeySecretRef": {"name": "keys", "key": "provider"},
            "egressCIDRs": ["127.0.0.1/32"],
        },
    }  # fmt: skip
    model = {"llmDeploymentRef": {"name": name}}
    create_chat_endpoint(fleet.cloud, namespace, "hybrid", sites=[{"location": "cloud"}],
                         backends=[model, hybrid_fallback])  # fmt: skip
    create_chat_endpoint(fleet.cloud, namespace, "alone", sites=[{"location": "cloud"}],
                         backends=[model])  # fmt: skip

    obj = desired(fleet, namespace, name, 0, timeout=90)
    assert condition(obj, "Ready")["reason"] == "ScaledToZero"

    def rendered_asleep(endpoint: str) -> dict[str, str] | None:
        env = gateway_run.rendered_gateway(
            fleet.cloud, namespace, f"{endpoint}-cloud", tmp_path / endpoint
        )
        wakes = json.loads(env.get("LLMFLEET_WAKES") or "{}")
        config = (tmp_path / endpoint / "config.yaml").read_text()
        asleep = wakes == {"chat": [name]} and f"{name}." not in config
        return env if asleep else None

    hybrid_env = wait_until(lambda: rendered_asleep("hybrid"), what="the hybrid gateway without the sleeping model", timeout=60)  # fmt: skip
    alone_env = wait_until(lambda: rendered_asleep("alone"), what="the lone gateway without the sleeping model", timeout=60)  # fmt: skip
    assert json.loads(alone_env["LLMFLEET_STARTING"])["chat"].startswith("model chat is starting")
    gateways = {
        "hybrid": gateway_run.LocalGateway(tmp_path / "hybrid", hybrid_env),
        "alone": gateway_run.LocalGateway(tmp_path / "alone", alone_env),
    }
    try:
        for gateway in gateways.values():
            gateway.wait_ready()
        prometheus.set_targets([
            pods(pods_metrics, namespace, owner),
            *(Target(f"127.0.0.1:{g.port}", "/metrics/", {"namespace": namespace})
              for g in gateways.values()),
        ])  # fmt: skip
        requests = f'llmfleet_gateway_requests_total{{llmdeployment="{name}"}}'
        prometheus.wait_for(requests, lambda found: len(found) == 2, timeout=30)
        time.sleep(3)  # a round of the operator sees the counters before any request

        # The hybrid endpoint answers from its fallback while the request wakes the model.
        def wakes() -> list[str]:
            return [m for r, m in events_for(fleet, namespace, name) if r == "Woken"]

        assert wakes() == []
        asked = time.monotonic()
        code, _, answer = gateways["hybrid"].ask(None, "hello", "chat")
        assert code == 200, answer
        assert answer["choices"][0]["message"]["content"] == "answer from fallback"
        desired(fleet, namespace, name, 1, timeout=60)
        woken = time.monotonic() - asked
        # The status may already show the next decision (Steady); the Event keeps this one.
        [message] = wait_until(wakes, what="the Woken Event", timeout=30)
        assert message == "0 -> 1 replica(s): woken by a request"
        figure(
            f"request through the gateway -> the sleeping model asks for a replica: {woken:.1f} s"
        )

        # Idle again, it sleeps; a request with nothing to fall back on is answered at once.
        desired(fleet, namespace, name, 0, timeout=90)
        time.sleep(3)
        asked = time.monotonic()
        code, headers, answer = gateways["alone"].ask(None, "hello", "chat")
        answered = time.monotonic() - asked
        assert code == 503, answer
        assert headers.get("retry-after") == "10"
        assert "model chat is starting" in answer["error"]["message"]
        assert answered < 5, f"answered after {answered:.1f} s"
        desired(fleet, namespace, name, 1, timeout=60)
    finally:
        for gateway in gateways.values():
            gateway.stop()
