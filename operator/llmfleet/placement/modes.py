"""Names of the placement modes exactly as the catalogue writes them (docs/placement-modes.md).

This is what `status.mode` (LLMDeployment, ChatEndpoint), `status.sites[].model` and
`status.option` (MLPipeline) show. Pure functions over the typed specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmfleet.api.chatendpoint import Backend, ChatEndpointSpec
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.api.mlpipeline import MLPipelineSpec

# A provider-run model is a cloud model, wherever its endpoint is.
MANAGED_LOCATION = "cloud"

LOCATION_WORDS = {"cloud": "Cloud", "onprem": "On-Premises", "edge": "Edge"}
LLM_SUBJECTS = {"cloud": "LLM in Cloud", "onprem": "LLM On-Premises", "edge": "LLM at the Edge"}

# Section 1 of the source: how the LLM itself is run.
LLM_MODELS = {
    ("cloud", "managed"): "1.1 Cloud Provider-Managed LLM",
    ("cloud", "self-managed"): "1.2 Cloud Self-Managed LLM",
    ("onprem", "self-managed"): "1.3 On-Premises Self-Managed LLM",
    ("edge", "self-managed"): "Edge Self-Managed LLM",
}

# Section 2: chat endpoint and ML serving models, one per site.
ENDPOINT_MODELS = {
    ("cloud", "managed"): "2.1 Cloud Azure-Managed",
    ("cloud", "self-managed"): "2.2 Cloud Self-Managed (Containerized)",
    ("onprem", "managed"): "2.3 On-Premises Azure-Managed",
    ("onprem", "self-managed"): "2.4 On-Premises Self-Managed (Containerized)",
    ("edge", "self-managed"): "Edge Self-Managed (Containerized)",
}

# Hybrid endpoints by (cloud site, on-prem site) management.
HYBRID_PHRASES = {
    ("managed", "managed"): "Managed Hybrid Endpoints",
    ("self-managed", "self-managed"): "Unmanaged Hybrid Endpoints",
    ("managed", "self-managed"): "Mixed Managed/Unmanaged Hybrid Endpoints",
    ("self-managed", "managed"): "Mixed Unmanaged/Managed Hybrid Endpoints",
}

# Section 3: ML deployment options by (training, inference, endpoint) location.
ML_OPTIONS = {
    ("cloud", "cloud", "cloud"): "1 Training, Inference, and Endpoint using Cloud Compute",
    ("onprem", "cloud", "cloud"): (
        "2 Training using HCI Compute; Inference and Endpoint using Cloud Compute"
    ),
    ("onprem", "onprem", "cloud"): (
        "3 Training and Inference using HCI Compute; Endpoint using Cloud Compute"
    ),
    ("onprem", "onprem", "onprem"): "4 Training, Inference, and Endpoint using HCI Compute",
    ("cloud", "onprem", "onprem"): (
        "5 Training using Cloud Compute; Inference and Endpoint using HCI Compute"
    ),
    ("cloud", "onprem", "cloud"): (
        "6 Training using Cloud Compute; Inference using HCI Compute; Endpoint using Cloud Compute"
    ),
    ("onprem", "cloud", "onprem"): (
        "7 Training using HCI Compute; Inference using Cloud Compute; Endpoint using HCI Compute"
    ),
    ("cloud", "cloud", "onprem"): (
        "8 Training and Inference using Cloud Compute; Endpoint using HCI Compute"
    ),
}

Site = tuple[str, str]  # (location, management)

_CLOUD_ENDPOINTS = ("Managed Cloud Endpoint", "Unmanaged Cloud Endpoint")
_ONPREM_ENDPOINTS = ("Managed On-Premises Endpoint", "Unmanaged On-Premises Endpoint")
_HYBRID_ENDPOINTS = (
    "Managed Hybrid Endpoints",
    "Unmanaged Hybrid Endpoints",
    "Mixed Managed/Unmanaged Hybrid Endpoints",
    "Mixed Unmanaged/Managed Hybrid Endpoints",
)
# The catalogue lists each LLM location's own endpoints first, then the other's, then hybrids.
LLM_DEPLOYMENT_MODEL_NUMBERS = {
    name: number
    for number, name in enumerate(
        [
            *(f"LLM in Cloud with {e}" for e in (*_CLOUD_ENDPOINTS, *_ONPREM_ENDPOINTS)),
            *(f"LLM in Cloud with {e}" for e in _HYBRID_ENDPOINTS),
            *(f"LLM On-Premises with {e}" for e in (*_ONPREM_ENDPOINTS, *_CLOUD_ENDPOINTS)),
            *(f"LLM On-Premises with {e}" for e in _HYBRID_ENDPOINTS),
        ],
        start=1,
    )
}


def llm_model(spec: LLMDeploymentSpec) -> str:
    return LLM_MODELS[(spec.placement.location, spec.placement.management)]


def llm_location(spec: LLMDeploymentSpec) -> str:
    if spec.placement.management == "managed":
        return MANAGED_LOCATION
    return spec.placement.location


def endpoint_model(location: str, management: str) -> str:
    return ENDPOINT_MODELS[(location, management)]


def sites_phrase(sites: Sequence[Site]) -> str:
    if len(sites) == 1:
        location, management = sites[0]
        kind = "Managed" if management == "managed" else "Unmanaged"
        return f"{kind} {LOCATION_WORDS[location]} Endpoint"
    by_location = dict(sites)
    return HYBRID_PHRASES[(by_location["cloud"], by_location["onprem"])]


def llm_deployment_model(llm_location: str, sites: Sequence[Site]) -> str:
    """One of the 16 LLM deployment models (more with edge): the LLM's location and the sites,
    numbered as the catalogue numbers them (docs/placement-modes.md); edge ones have no number."""
    name = f"{LLM_SUBJECTS[llm_location]} with {sites_phrase(sites)}"
    number = LLM_DEPLOYMENT_MODEL_NUMBERS.get(name)
    return f"{number} {name}" if number else name


def primary_backend(backends: Sequence[Backend]) -> Backend:
    """The non-fallback backend with the highest weight; the first listed wins a tie."""
    candidates = [b for b in backends if not b.fallback_only] or list(backends)
    return max(candidates, key=lambda b: b.weight)  # max keeps the first of equals


def chat_endpoint_mode(
    spec: ChatEndpointSpec, llm_deployments: Mapping[str, LLMDeploymentSpec]
) -> str | None:
    """The endpoint's mode; None while the primary backend's LLMDeployment is not known."""
    primary = primary_backend(spec.backends)
    if primary.managed is not None:
        location = MANAGED_LOCATION
    else:
        ref = primary.llm_deployment_ref  # the CRD requires a ref when `managed` is absent
        referenced = llm_deployments.get(ref.name) if ref else None
        if referenced is None:
            return None
        location = llm_location(referenced)
    return llm_deployment_model(location, [(s.location, s.management) for s in spec.sites])


def ml_option(spec: MLPipelineSpec) -> str:
    key = (
        spec.training.placement.location,
        spec.inference.placement.location,
        spec.endpoint.placement.location,
    )
    return ML_OPTIONS[key]
