"""Building blocks shared by the three kinds: references, placement, managed endpoints, status.

Every field has a description (it becomes `kubectl explain` text) and a bound, so the API
server can check it and estimate the cost of the CEL rules that read it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "llmfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Location = Literal["cloud", "onprem", "edge"]
StageLocation = Literal["cloud", "onprem"]
Management = Literal["self-managed", "managed"]
Provider = Literal["azure-openai", "azure-ml", "openai-compatible"]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def cel(
    rule: str, message: str, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry: a CEL rule and the message a person acts on."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


URL_RULES = validations(
    cel(
        "isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",
        "must be an http(s) URL such as https://example.openai.azure.com",
    )
)
CIDR_RULES = validations(cel("isCIDR(self)", "must be a CIDR such as 203.0.113.0/24"))
QUANTITY_RULES = validations(cel("isQuantity(self)", "must be a quantity such as 16Gi or 500m"))

Cidr = Annotated[str, Field(min_length=3, max_length=43, json_schema_extra=CIDR_RULES)]
Quantity = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra=QUANTITY_RULES)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ClusterName = Annotated[str, Field(max_length=253)]
LabelKey = Annotated[str, Field(min_length=1, max_length=317, pattern=LABEL_KEY)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]
Arg = Annotated[str, Field(max_length=4096)]


class ApiModel(BaseModel):
    """Wire format: camelCase names; unknown fields are ignored (the API server prunes them)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the same namespace as the resource."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key inside the Secret whose value is used."""


class LocalObjectRef(ApiModel):
    """A reference to an object of the expected kind in the same namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """Name of the referenced object."""


class LabelSelectorRequirement(ApiModel):
    """One expression of a label selector."""

    key: LabelKey
    """Label key the expression applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values."""
    values: list[LabelValue] = Field(default_factory=list, max_length=32)
    """Values for In and NotIn; empty for Exists and DoesNotExist."""


class LabelSelector(ApiModel):
    """Selects member clusters by the labels of their registration Secrets."""

    match_labels: Labels | None = None
    """Labels a cluster must carry, all of them (for example region: eu)."""
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=16)
    """Expressions a cluster's labels must satisfy, all of them."""


class Toleration(ApiModel):
    """A toleration added to the workload's pods, as in a Pod spec."""

    key: str | None = Field(default=None, max_length=317)
    """Taint key the toleration applies to; empty with operator Exists matches every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Exists matches any value; Equal matches `value`."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value to match when operator is Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches every effect."""
    toleration_seconds: int | None = Field(default=None, ge=0, le=86400)
    """For NoExecute: how long the pod stays bound after the taint appears."""


class ManagedEndpoint(ApiModel):
    """A provider-run endpoint (Azure OpenAI, an Azure ML online endpoint, any OpenAI-compatible
    URL): the operator runs no pods for it, it only wires and secures the path to it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.provider != 'azure-openai' || has(self.deployment)",
                "azure-openai needs `deployment`: the name of the model deployment in the "
                "Azure OpenAI resource (for example gpt-4o)",
                field_path=".deployment",
                reason="FieldValueRequired",
            )
        )
    )

    provider: Provider
    """Who runs the endpoint: azure-openai, azure-ml or openai-compatible."""
    url: str = Field(min_length=8, max_length=2048, json_schema_extra=URL_RULES)
    """Base URL of the provider endpoint, for example https://my-aoai.openai.azure.com."""
    deployment: str | None = Field(default=None, min_length=1, max_length=256)
    """Model deployment name at the provider (required for azure-openai)."""
    api_version: str | None = Field(default=None, min_length=1, max_length=64)
    """Provider API version, for example 2024-10-21 for Azure OpenAI."""
    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the provider's API key; read through an environment variable, never
    written into a ConfigMap."""
    egress_cidrs: list[Cidr] = Field(default_factory=list, max_length=32, alias="egressCIDRs")
    """Address ranges where the provider endpoint lives; egress to them is allowed."""


class Placement(ApiModel):
    """Where a workload runs: a location, who manages it, and optional cluster and node filters."""

    location: Location
    """cloud (a public-cloud cluster or node pool), onprem (an HCI cluster or node pool) or
    edge (small CPU or single-GPU sites). onprem workloads never land on cloud clusters or
    nodes."""
    management: Management = "self-managed"
    """self-managed: containers this operator runs; managed: run by a provider (set `managed`)."""
    cluster_selector: LabelSelector | None = None
    """Narrows the member clusters of the location by the labels of their registration Secrets."""
    node_selector: Labels | None = None
    """Extra node labels the workload's pods require."""
    tolerations: list[Toleration] | None = Field(default=None, max_length=32)
    """Extra tolerations for the workload's pods (GPU taints are tolerated already)."""


class StagePlacement(ApiModel):
    """Where an ML pipeline stage runs: cloud or HCI (onprem) compute."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.location in ['cloud', 'onprem']",
                "an MLPipeline stage runs on cloud or onprem (HCI) compute; set location to one "
                "of them",
                field_path=".location",
            )
        )
    )

    location: Location = Field(
        json_schema_extra=validations(
            cel(
                "self == oldSelf",
                "is immutable: the stage locations define the pipeline's deployment option; "
                "create a new MLPipeline to use another option",
            )
        )
    )
    """cloud or onprem; immutable, as the three stage locations name the deployment option."""
    cluster_selector: LabelSelector | None = None
    """Narrows the member clusters of the location by the labels of their registration Secrets."""
    node_selector: Labels | None = None
    """Extra node labels the stage's pods require."""
    tolerations: list[Toleration] | None = Field(default=None, max_length=32)
    """Extra tolerations for the stage's pods (GPU taints are tolerated already)."""


class Gpu(ApiModel):
    """GPUs per replica (or per training pod)."""

    count: int = Field(default=1, ge=0, le=16)
    """GPUs per replica; 0 runs on CPU only (edge, llama.cpp)."""
    product: (
        list[Annotated[str, Field(min_length=1, max_length=128, pattern=LABEL_VALUE)]] | None
    ) = Field(default=None, max_length=16)
    """Acceptable GPU products, any of them, as nvidia.com/gpu.product reports them (for
    example NVIDIA-H100-80GB-HBM3)."""
    resource_name: str = Field(
        default="nvidia.com/gpu",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9.-]+/[a-z0-9._-]+$",
    )
    """Extended resource that counts GPUs on the nodes."""


class Resources(ApiModel):
    """CPU and memory per replica, as Kubernetes quantities; requests equal limits."""

    cpu: Quantity | None = None
    """CPU per replica, for example 8 or 500m."""
    memory: Quantity | None = None
    """Memory per replica, for example 64Gi."""


class Condition(ApiModel):
    """An observation of one aspect of the resource (Ready, Placed, Segmented, Degraded...)."""

    type: str = Field(max_length=64)
    """Aspect observed: Ready, Placed, Segmented, Degraded, ..."""
    status: Literal["True", "False", "Unknown"]
    """Whether the aspect holds."""
    reason: str = Field(default="", max_length=128)
    """One CamelCase word for machines."""
    message: str = Field(default="", max_length=4096)
    """What happened and what to do, for people."""
    last_transition_time: str | None = Field(default=None, max_length=64)
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """Generation of the spec the condition describes."""


class SegmentationStatus(ApiModel):
    """The security roles applied to the workload and the objects that realize them."""

    roles: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=16)
    """Roles of the mode: network-boundary, workload-segmentation, kernel-minimization,
    model-robustness."""
    objects: list[Annotated[str, Field(max_length=320)]] = Field(
        default_factory=list, max_length=256
    )
    """Objects realizing them, as Kind/name."""


class SegmentationOverrides(ApiModel):
    """Additions to the segmentation the mode decides."""

    allowed_namespaces: list[NamespaceName] = Field(default_factory=list, max_length=32)
    """Extra namespaces whose pods may call the workload."""
    extra_egress_cidrs: list[Cidr] = Field(
        default_factory=list, max_length=32, alias="extraEgressCIDRs"
    )
    """Extra address ranges the workload may reach."""
