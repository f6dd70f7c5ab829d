"""Mode names, exactly as the catalogue writes them, for all 28 modes (and the LLM models)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from llmfleet.api import ChatEndpointSpec, LLMDeploymentSpec, MLPipelineSpec
from llmfleet.placement import modes
from localfleet.paths import REPO_ROOT

AOAI = {"provider": "azure-openai", "url": "https://a.openai.azure.com", "deployment": "gpt-4o"}
AML = {"provider": "azure-ml", "url": "https://e.westeurope.inference.ml.azure.com"}


def llm(location: str, management: str = "self-managed") -> LLMDeploymentSpec:
    spec: dict[str, Any] = {
        "model": {"name": "m"},
        "placement": {"location": location, "management": management},
    }
    if management == "managed":
        spec["managed"] = AOAI
    return LLMDeploymentSpec.model_validate(spec)


def site(location: str, management: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"location": location, "management": management}
    if management == "managed":
        entry["managed"] = AML
    return entry


def chat(sites: list[dict[str, Any]], backends: list[dict[str, Any]]) -> ChatEndpointSpec:
    return ChatEndpointSpec.model_validate(
        {"modelAlias": "chat", "sites": sites, "backends": backends}
    )


C_M, C_S = site("cloud", "managed"), site("cloud", "self-managed")
O_M, O_S = site("onprem", "managed"), site("onprem", "self-managed")
SITES = [
    ([C_M], "Managed Cloud Endpoint"),
    ([C_S], "Unmanaged Cloud Endpoint"),
    ([O_M], "Managed On-Premises Endpoint"),
    ([O_S], "Unmanaged On-Premises Endpoint"),
    ([C_M, O_M], "Managed Hybrid Endpoints"),
    ([C_S, O_S], "Unmanaged Hybrid Endpoints"),
    ([C_M, O_S], "Mixed Managed/Unmanaged Hybrid Endpoints"),
    ([C_S, O_M], "Mixed Unmanaged/Managed Hybrid Endpoints"),
]
# The catalogue numbers the on-premises LLM's own-location endpoints first (9, 10), then
# the cloud endpoints (11, 12); the cloud LLM's list starts with the cloud endpoints (1, 2).
ONPREM_ORDER = [SITES[2], SITES[3], SITES[0], SITES[1], *SITES[4:]]
LLM_DEPLOYMENT_MODELS = [
    (number + offset, location, sites, f"{subject} with {phrase}")
    for offset, location, subject, order in (
        (1, "cloud", "LLM in Cloud", SITES),
        (9, "onprem", "LLM On-Premises", ONPREM_ORDER),
    )
    for number, (sites, phrase) in enumerate(order)
]


@pytest.mark.parametrize(
    ("number", "location", "sites", "name"),
    LLM_DEPLOYMENT_MODELS,
    ids=[f"mode-{m[0]}" for m in LLM_DEPLOYMENT_MODELS],
)
def test_the_16_llm_deployment_models(
    number: int, location: str, sites: list[dict[str, Any]], name: str
) -> None:
    spec = chat(sites, [{"llmDeploymentRef": {"name": "llama"}}])
    # status.mode carries the catalogue's number, as status.option does.
    assert modes.chat_endpoint_mode(spec, {"llama": llm(location)}) == f"{number} {name}"
    # Sites listed the other way round name the same mode.
    reversed_spec = chat(list(reversed(sites)), [{"llmDeploymentRef": {"name": "llama"}}])
    assert modes.chat_endpoint_mode(reversed_spec, {"llama": llm(location)}) == f"{number} {name}"


def test_the_catalogue_numbers_match() -> None:
    assert (
        LLM_DEPLOYMENT_MODELS[6][3] == "LLM in Cloud with Mixed Managed/Unmanaged Hybrid Endpoints"
    )
    assert LLM_DEPLOYMENT_MODELS[15][3] == (
        "LLM On-Premises with Mixed Unmanaged/Managed Hybrid Endpoints"
    )
    by_number = {m[0]: m[3] for m in LLM_DEPLOYMENT_MODELS}
    assert by_number[9] == "LLM On-Premises with Managed On-Premises Endpoint"
    assert by_number[10] == "LLM On-Premises with Unmanaged On-Premises Endpoint"
    assert by_number[11] == "LLM On-Premises with Managed Cloud Endpoint"
    assert by_number[12] == "LLM On-Premises with Unmanaged Cloud Endpoint"
    assert [m[0] for m in LLM_DEPLOYMENT_MODELS] == list(range(1, 17))


SAMPLES = REPO_ROOT / "config" / "samples" / "llm-deployment-models"


@pytest.mark.parametrize(
    ("number", "location", "sites", "name"),
    LLM_DEPLOYMENT_MODELS,
    ids=[f"sample-{m[0]}" for m in LLM_DEPLOYMENT_MODELS],
)
def test_each_sample_is_numbered_as_its_mode(
    number: int, location: str, sites: list[dict[str, Any]], name: str
) -> None:
    """The sample `NN-*.yaml` holds mode NN: its header names it and the mode is what its
    LLMDeployment and ChatEndpoint make."""
    (path,) = SAMPLES.glob(f"{number:02d}-*.yaml")
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert path.read_text().splitlines()[0] == f"# Mode {number}: {name}"
    models = {
        d["metadata"]["name"]: LLMDeploymentSpec.model_validate(d["spec"])
        for d in docs
        if d["kind"] == "LLMDeployment"
    }
    (endpoint,) = [d for d in docs if d["kind"] == "ChatEndpoint"]
    spec = ChatEndpointSpec.model_validate(endpoint["spec"])
    assert modes.chat_endpoint_mode(spec, models) == f"{number} {name}"
    assert sorted((s.location, s.management) for s in spec.sites) == sorted(
        (s["location"], s["management"]) for s in sites
    )


@pytest.mark.parametrize(
    ("location", "management", "name"),
    [
        ("cloud", "managed", "2.1 Cloud Azure-Managed"),
        ("cloud", "self-managed", "2.2 Cloud Self-Managed (Containerized)"),
        ("onprem", "managed", "2.3 On-Premises Azure-Managed"),
        ("onprem", "self-managed", "2.4 On-Premises Self-Managed (Containerized)"),
    ],
)
def test_the_4_chat_endpoint_models(location: str, management: str, name: str) -> None:
    assert modes.endpoint_model(location, management) == name


@pytest.mark.parametrize(
    ("training", "inference", "endpoint", "name"),
    [
        ("cloud", "cloud", "cloud", "1 Training, Inference, and Endpoint using Cloud Compute"),
        (
            "onprem",
            "cloud",
            "cloud",
            "2 Training using HCI Compute; Inference and Endpoint using Cloud Compute",
        ),
        (
            "onprem",
            "onprem",
            "cloud",
            "3 Training and Inference using HCI Compute; Endpoint using Cloud Compute",
        ),
        ("onprem", "onprem", "onprem", "4 Training, Inference, and Endpoint using HCI Compute"),
        (
            "cloud",
            "onprem",
            "onprem",
            "5 Training using Cloud Compute; Inference and Endpoint using HCI Compute",
        ),
        (
            "cloud",
            "onprem",
            "cloud",
            "6 Training using Cloud Compute; Inference using HCI Compute; Endpoint using Cloud Compute",
        ),
        (
            "onprem",
            "cloud",
            "onprem",
            "7 Training using HCI Compute; Inference using Cloud Compute; Endpoint using HCI Compute",
        ),
        (
            "cloud",
            "cloud",
            "onprem",
            "8 Training and Inference using Cloud Compute; Endpoint using HCI Compute",
        ),
    ],
)
def test_the_8_ml_deployment_options(
    training: str, inference: str, endpoint: str, name: str
) -> None:
    spec = MLPipelineSpec.model_validate(
        {
            "model": {"base": "hf://org/base", "artifactURI": "s3://models/{name}/{run}"},
            "training": {
                "placement": {"location": training},
                "image": "trainer:1",
                "dataset": {"uri": "pvc://data/x"},
            },
            "inference": {"placement": {"location": inference}},
            "endpoint": {"placement": {"location": endpoint}},
        }
    )
    assert modes.ml_option(spec) == name


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        (llm("cloud", "managed"), "1.1 Cloud Provider-Managed LLM"),
        (llm("cloud"), "1.2 Cloud Self-Managed LLM"),
        (llm("onprem"), "1.3 On-Premises Self-Managed LLM"),
        (llm("edge"), "Edge Self-Managed LLM"),
    ],
)
def test_llm_models(spec: LLMDeploymentSpec, name: str) -> None:
    assert modes.llm_model(spec) == name


def ref(name: str, weight: int = 1, fallback: bool = False) -> dict[str, Any]:
    return {"llmDeploymentRef": {"name": name}, "weight": weight, "fallbackOnly": fallback}


@pytest.mark.parametrize(
    ("backends", "expected_subject"),
    [
        ([ref("onprem-llm", 3), ref("cloud-llm", 1)], "LLM On-Premises"),
        ([ref("onprem-llm", 1), ref("cloud-llm", 3)], "LLM in Cloud"),
        ([ref("onprem-llm", 2), ref("cloud-llm", 2)], "LLM On-Premises"),  # first wins a tie
        ([ref("cloud-llm", 9, fallback=True), ref("onprem-llm", 1)], "LLM On-Premises"),
        ([{"managed": AOAI, "weight": 5}, ref("onprem-llm", 1)], "LLM in Cloud"),
        ([ref("aoai-llm", 2), ref("onprem-llm", 1)], "LLM in Cloud"),  # managed LLM is cloud
    ],
    ids=[
        "highest-weight",
        "highest-weight-second",
        "tie",
        "fallback-skipped",
        "managed-backend",
        "managed-llmdeployment",
    ],
)
def test_the_primary_backend_names_the_llm_location(
    backends: list[dict[str, Any]], expected_subject: str
) -> None:
    known = {
        "onprem-llm": llm("onprem"),
        "cloud-llm": llm("cloud"),
        "aoai-llm": llm("cloud", "managed"),
    }
    name = modes.chat_endpoint_mode(chat([O_S], backends), known) or ""
    assert name.split(" ", 1)[1] == f"{expected_subject} with Unmanaged On-Premises Endpoint"


def test_an_unknown_primary_llmdeployment_leaves_the_mode_open() -> None:
    assert modes.chat_endpoint_mode(chat([C_S], [ref("missing")]), {}) is None
