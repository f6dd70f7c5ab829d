"""Hypothesis strategies for LLMDeployment specs as users write them (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

DNS_LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
LABEL_VALUE = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,12}[A-Za-z0-9])?", fullmatch=True)
LABEL_KEY = st.one_of(DNS_LABEL, st.builds(lambda p, n: f"{p}.io/{n}", DNS_LABEL, DNS_LABEL))
QUANTITY_CPU = st.sampled_from(["100m", "500m", "0.5", "1", "1000m", "2", "4", "16"])
QUANTITY_MEMORY = st.sampled_from(["128Mi", "1Gi", "1024Mi", "16Gi", "80Gi", "1G"])
CIDR = st.builds(
    lambda a, b, bits: f"{a}.{b}.0.0/{bits}",
    st.integers(1, 223),
    st.integers(0, 255),
    st.sampled_from([16, 24]),
)
SECRET_REF = st.fixed_dictionaries({"name": DNS_LABEL, "key": st.from_regex(r"[a-z][-._a-z0-9]{0,10}", fullmatch=True)})  # fmt: skip
MODEL_URI = st.one_of(
    st.builds(lambda o, m: f"hf://{o}/{m}", DNS_LABEL, DNS_LABEL),
    st.builds(lambda c, p: f"pvc://{c}/{p}", DNS_LABEL, DNS_LABEL),
    st.builds(lambda b, p: f"s3://{b}/{p}", DNS_LABEL, DNS_LABEL),
    st.builds(lambda r: f"oci://registry.example/{r}:1", DNS_LABEL),
)
ARG = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-=0123456789/ ", min_size=1, max_size=20)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


TOLERATION = st.one_of(
    st.fixed_dictionaries(
        {"operator": st.just("Exists")},
        optional={"key": LABEL_KEY, "effect": st.sampled_from(["NoSchedule", "NoExecute"])},
    ),
    st.fixed_dictionaries(
        {"key": LABEL_KEY, "operator": st.just("Equal"), "value": LABEL_VALUE},
        optional={"effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"])},
    ),
)
SEGMENTATION = _optional(
    allowedNamespaces=st.lists(DNS_LABEL, max_size=3, unique=True),
    extraEgressCIDRs=st.lists(CIDR, max_size=3, unique=True),
)


@st.composite
def self_managed_specs(draw: st.DrawFn) -> dict[str, Any]:
    location = draw(st.sampled_from(["cloud", "onprem", "edge"]))
    model: dict[str, Any] = {"name": draw(st.builds(lambda o, m: f"{o}/{m}", DNS_LABEL, DNS_LABEL))}
    if draw(st.booleans()):
        model["uri"] = draw(MODEL_URI)
    if draw(st.booleans()):
        model["credentialsSecretRef"] = draw(SECRET_REF)
    gpu_count = draw(st.integers(0, 1 if location == "edge" else 8))
    gpu: dict[str, Any] = {"count": gpu_count}
    if draw(st.booleans()):
        gpu["product"] = draw(st.lists(st.sampled_from(["NVIDIA-H100-80GB-HBM3", "NVIDIA-L40S", "NVIDIA-A10G"]), min_size=1, max_size=2, unique=True))  # fmt: skip
    placement: dict[str, Any] = {"location": location}
    placement |= draw(
        _optional(
            management=st.just("self-managed"),
            nodeSelector=st.dictionaries(LABEL_KEY, LABEL_VALUE, max_size=2),
            tolerations=st.lists(TOLERATION, max_size=2),
        )
    )
    spec: dict[str, Any] = {"model": model, "placement": placement, "gpu": gpu}
    spec |= draw(
        _optional(
            runtime=st.sampled_from(["vllm", "tgi", "ollama", "llamacpp", "triton"]),
            image=st.builds(lambda r: f"registry.example/{r}:1.0", DNS_LABEL),
            args=st.lists(ARG, max_size=4),
            replicas=st.integers(0, 4),
            resources=_optional(cpu=QUANTITY_CPU, memory=QUANTITY_MEMORY),
            modelCache=st.fixed_dictionaries({"claimName": DNS_LABEL}),
            segmentation=SEGMENTATION,
        )
    )
    return spec


@st.composite
def managed_specs(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(["azure-openai", "azure-ml", "openai-compatible"]))
    host = draw(st.builds(lambda h: f"{h}.example.com", DNS_LABEL))
    managed: dict[str, Any] = {"provider": provider, "url": f"https://{host}/v1"}
    managed |= draw(
        _optional(
            deployment=DNS_LABEL,
            apiVersion=st.sampled_from(["2024-06-01", "2025-01-01-preview"]),
            apiKeySecretRef=SECRET_REF,
            egressCIDRs=st.lists(CIDR, max_size=3, unique=True),
        )
    )
    spec: dict[str, Any] = {
        "model": {"name": draw(DNS_LABEL)},
        "placement": {"location": "cloud", "management": "managed"},
        "managed": managed,
    }
    if draw(st.booleans()):
        spec["segmentation"] = draw(SEGMENTATION)
    return spec


def llm_specs() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(self_managed_specs(), managed_specs())
