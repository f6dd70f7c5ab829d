"""Fleet gauges: each moves when its event happens (a resource recorded, changed, forgotten)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from llmfleet.fleetstate import FleetState, facts_of


def condition(type_: str, status: str) -> dict[str, str]:
    return {"type": type_, "status": status}


LLM_SPEC = {
    "model": {"name": "m"},
    "placement": {"location": "onprem"},
    "gpu": {"count": 2, "product": ["NVIDIA-L40S"]},
    "replicas": 3,
}
LLM_STATUS = {
    "mode": "1.3 On-Premises Self-Managed LLM",
    "placements": [{"cluster": "hci-1", "state": "Placed"}],
    "conditions": [condition("Ready", "True"), condition("Degraded", "False")],
}
CHAT_SPEC = {"sites": [{"location": "cloud"}, {"location": "onprem"}]}
CHAT_STATUS = {
    "mode": "LLM On-Premises with Unmanaged Hybrid Endpoints",
    "sites": [
        {"location": "cloud", "management": "self-managed", "cluster": "in-cluster", "ready": True},
        {"location": "onprem", "management": "managed", "cluster": "", "ready": False},
    ],
    "conditions": [condition("Ready", "False"), condition("Degraded", "True")],
}
PIPELINE_SPEC = {
    "training": {"placement": {"location": "cloud"}},
    "inference": {"placement": {"location": "onprem"}},
    "endpoint": {"placement": {"location": "onprem"}},
    "monitoring": {"drift": {"schedule": "@hourly", "threshold": 0.2}},
}
PIPELINE_STATUS = {
    "option": "5 Training using Cloud Compute; Inference and Endpoint using HCI Compute",
    "stages": [
        {"name": "training", "phase": "Succeeded", "cluster": "in-cluster"},
        {"name": "inference", "phase": "Running", "cluster": "hci-1"},
        {"name": "endpoint", "phase": "Pending", "cluster": "hci-1"},
    ],
    "conditions": [condition("Ready", "False"), condition("DriftDetected", "True")],
}


def scrape(state: FleetState) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(state)
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_gauges_follow_recorded_resources() -> None:
    state = FleetState()
    assert scrape(state) == {}
    state.record(("LLMDeployment", "a", "m"), facts_of("LLMDeployment", LLM_SPEC, LLM_STATUS))
    state.record(("ChatEndpoint", "a", "c"), facts_of("ChatEndpoint", CHAT_SPEC, CHAT_STATUS))
    state.record(("MLPipeline", "a", "p"), facts_of("MLPipeline", PIPELINE_SPEC, PIPELINE_STATUS))
    samples = scrape(state)
    assert (
        samples[
            'llmfleet_objects{kind="LLMDeployment",location="onprem",mode="1.3 On-Premises Self-Managed LLM",ready="true"}'
        ]
        == 1
    )
    assert samples['llmfleet_gpus_requested{location="onprem",product="NVIDIA-L40S"}'] == 6
    assert samples['llmfleet_placements{cluster="hci-1",kind="LLMDeployment"}'] == 1
    assert samples['llmfleet_placements{cluster="hci-1",kind="MLPipeline"}'] == 2
    assert (
        samples['llmfleet_gateway_sites{location="onprem",management="managed",ready="false"}'] == 1
    )
    assert (
        samples[
            'llmfleet_objects{kind="ChatEndpoint",location="cloud+onprem",mode="LLM On-Premises with Unmanaged Hybrid Endpoints",ready="false"}'
        ]
        == 1
    )
    assert samples['llmfleet_resource_degraded{kind="ChatEndpoint",name="c",namespace="a"}'] == 1
    assert samples['llmfleet_pipeline_stages{phase="Pending",stage="endpoint"}'] == 1
    assert samples['llmfleet_pipeline_drift_detected{name="p",namespace="a"}'] == 1
    assert (
        samples[
            'llmfleet_objects{kind="MLPipeline",location="cloud/onprem/onprem",mode="5 Training using Cloud Compute; Inference and Endpoint using HCI Compute",ready="false"}'
        ]
        == 1
    )


def test_a_change_moves_the_gauges_and_a_deletion_removes_them() -> None:
    state = FleetState()
    key = ("LLMDeployment", "a", "m")
    state.record(key, facts_of("LLMDeployment", LLM_SPEC, LLM_STATUS))
    scaled: dict[str, Any] = {**LLM_SPEC, "replicas": 1}
    state.record(key, facts_of("LLMDeployment", scaled, LLM_STATUS))
    assert scrape(state)['llmfleet_gpus_requested{location="onprem",product="NVIDIA-L40S"}'] == 2
    state.forget(key)
    assert not [k for k in scrape(state) if k.startswith(("llmfleet_objects", "llmfleet_gpus"))]


def test_managed_models_request_no_gpus() -> None:
    spec = {
        "model": {"name": "gpt-4o"},
        "placement": {"location": "cloud", "management": "managed"},
    }
    assert facts_of("LLMDeployment", spec, {}).gpus == ()
