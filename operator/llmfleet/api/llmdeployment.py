"""LLMDeployment: a model server placed on a cloud, on-prem or edge cluster, or a provider-run
model (Azure OpenAI...), secured as its mode requires."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from llmfleet.api.common import (
    DNS_SUBDOMAIN,
    ApiModel,
    Arg,
    ClusterName,
    Condition,
    Gpu,
    LabelSelector,
    Location,
    ManagedEndpoint,
    Placement,
    Resources,
    SecretKeyRef,
    SegmentationOverrides,
    SegmentationStatus,
    cel,
    validations,
)
from llmfleet.api.validation import Validation, ValidationStatus

Runtime = Literal["vllm", "tgi", "ollama", "llamacpp", "triton"]
DEFAULT_RUNTIME: Runtime = "vllm"

MANAGED = "self.placement.management == 'managed'"
OLLAMA = "has(self.runtime) && self.runtime == 'ollama'"


class ModelSource(ApiModel):
    """The model to serve and where its weights come from."""

    name: str = Field(min_length=1, max_length=256)
    """Served model id, what clients ask for (for example meta-llama/Llama-3.1-8B-Instruct)."""
    uri: str | None = Field(
        default=None,
        min_length=6,
        max_length=2048,
        pattern=r"^(hf|pvc|oci|s3)://.+",
    )
    """Where the weights come from: hf://ORG/MODEL, pvc://CLAIM/PATH, oci://IMAGE or
    s3://BUCKET/PATH. Defaults to hf://<name>."""
    credentials_secret_ref: SecretKeyRef | None = None
    """Secret key with the token for the model source (for example a Hugging Face token)."""


class ModelCache(ApiModel):
    """A PersistentVolumeClaim that keeps downloaded weights across restarts."""

    claim_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """Name of a PersistentVolumeClaim in the namespace (ReadWriteMany when replicas > 1)."""


Strategy = Literal["Pack", "Spread"]


class Overflow(ApiModel):
    """Where replicas go that do not fit in the preferred location (for example on-prem
    first, the cloud when on-prem is full). Overflow replicas are removed first when replicas
    are removed, and move back once the preferred location has room again."""

    location: Location
    """Location that takes the replicas the preferred location cannot fit."""
    cluster_selector: LabelSelector | None = None
    """Narrows the overflow location's member clusters by the labels of their registration
    Secrets."""
    max_replicas: int | None = Field(default=None, ge=1, le=64)
    """At most this many replicas overflow; the rest wait for room (InsufficientGPU). Default:
    all of them."""
    move_back_after_seconds: int = Field(default=300, ge=0, le=86400)
    """How long the preferred location must have had room before overflow replicas move back
    (make-before-break), so a short dip in demand moves nothing."""


class Failover(ApiModel):
    """Replicas on a member cluster that does not answer are placed again elsewhere, with the
    same model and only the accepted GPU products; when the member is back and its replicas
    are ready, the replacements are removed."""

    after_seconds: int = Field(default=300, ge=0, le=86400)
    """How long a member must have been unreachable before its replicas are replaced."""


class Autoscaling(ApiModel):
    """Replicas follow the load: the operator owns the count within [minReplicas,
    maxReplicas] across the fleet, placed like any other replicas (the preferred location
    first, overflow next; overflow replicas go first on the way down)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "spec.autoscaling.minReplicas must not exceed maxReplicas: lower minReplicas "
                "or raise maxReplicas",
                field_path=".minReplicas",
            ),
            cel(
                "self.minReplicas > 0 "
                "|| self.scaleToZeroAfterSeconds >= self.scaleDownDelaySeconds",
                "spec.autoscaling.scaleToZeroAfterSeconds must be at least scaleDownDelaySeconds: "
                "a model sleeps only after it has scaled down",
                field_path=".scaleToZeroAfterSeconds",
            ),
        )
    )

    min_replicas: int = Field(default=1, ge=0, le=64)
    """Fewest replicas. 0 lets an idle model sleep (scale to zero): the first request through
    a gateway wakes it."""
    max_replicas: int = Field(ge=1, le=64)
    """Most replicas, across the fleet."""
    target_per_replica: float = Field(default=8, gt=0, le=10000)
    """Load one replica should carry: in-flight requests (running plus waiting) for vllm, tgi
    and llamacpp; requests per second through the gateways for ollama and triton, or the
    value of `query`."""
    scale_down_delay_seconds: int = Field(default=300, ge=0, le=86400)
    """How long the load must have stayed low before replicas are removed (to the highest
    count the load asked for in that time)."""
    scale_to_zero_after_seconds: int = Field(default=900, ge=0, le=604800)
    """With minReplicas 0: how long a model must have been idle (no load, no gateway
    requests) before it sleeps."""
    query: str | None = Field(default=None, min_length=1, max_length=4096)
    """PromQL whose value is the model's load, instead of its runtime's metrics. `$owner`
    stands for the value of the pods' llmfleet.io/owner label (scraped as
    llmfleet_io_owner), `$namespace` for the namespace. Must return one number or series to
    add up."""


class ModelPlacement(Placement):
    """Where a model runs: a location, who manages it, cluster and node filters, and how its
    replicas are divided over the fleet."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.maxClusters) || self.minClusters <= self.maxClusters",
                "spec.placement.minClusters must not exceed maxClusters: lower minClusters or "
                "raise maxClusters",
                field_path=".minClusters",
            ),
            cel(
                "self.management != 'managed' || (!has(self.overflow) && !has(self.failover) "
                "&& self.strategy == 'Pack' && !has(self.maxClusters) && self.minClusters == 1)",
                "a managed LLMDeployment runs no replicas: remove strategy, minClusters, "
                "maxClusters, overflow and failover",
                reason="FieldValueForbidden",
            ),
        )
    )

    strategy: Strategy = "Pack"
    """Pack (the default): as few clusters as possible, the one with most free room first.
    Spread: evenly over up to maxClusters clusters of the location."""
    min_clusters: int = Field(default=1, ge=1, le=16)
    """For availability: the model is not Ready on fewer clusters than this."""
    max_clusters: int | None = Field(default=None, ge=1, le=16)
    """At most this many clusters of the preferred location. Default: as many as it takes."""
    overflow: Overflow | None = None
    """Where replicas go that the preferred location cannot fit. Default: nowhere (they wait,
    reported as InsufficientGPU)."""
    failover: Failover | None = None
    """Re-places replicas of an unreachable member after a grace period. Default: off,
    nothing moves while a member is unreachable."""


class LLMDeploymentSpec(ApiModel):
    """Desired state of an LLMDeployment."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"!({MANAGED}) || has(self.managed)",
                "spec.managed is required when spec.placement.management is managed: set its "
                "provider, url and apiKeySecretRef",
                field_path=".managed",
                reason="FieldValueRequired",
            ),
            cel(
                f"{MANAGED} || !has(self.managed)",
                "spec.managed is only for provider-run models: remove it, or set "
                "spec.placement.management to managed",
                field_path=".managed",
                reason="FieldValueForbidden",
            ),
            cel(
                f"!({MANAGED}) || self.placement.location == 'cloud'",
                "a managed LLMDeployment is run by a cloud provider: set "
                "spec.placement.location to cloud",
                field_path=".placement.location",
            ),
            cel(
                f"!({MANAGED}) || (!has(self.gpu) && !has(self.runtime) && !has(self.image))",
                "a managed LLMDeployment runs no pods: remove spec.gpu, spec.runtime and "
                "spec.image",
                reason="FieldValueForbidden",
            ),
            cel(
                f"!({MANAGED}) || !has(self.autoscaling)",
                "a managed LLMDeployment runs no replicas to scale: remove spec.autoscaling",
                field_path=".autoscaling",
                reason="FieldValueForbidden",
            ),
            cel(
                f"!({MANAGED}) || !has(self.validation)",
                "a managed LLMDeployment has no model server in a member cluster to scan: "
                "remove spec.validation",
                field_path=".validation",
                reason="FieldValueForbidden",
            ),
            cel(
                f"!({OLLAMA}) || !has(self.args) || size(self.args) == 0",
                "ollama serve takes no arguments: remove spec.args (runtime ollama)",
                field_path=".args",
                reason="FieldValueForbidden",
            ),
            cel(
                f"!({OLLAMA}) || !has(self.model.uri) || self.model.uri.startsWith('hf://')",
                "ollama pulls its model from the Ollama library (by spec.model.name) or from "
                "Hugging Face: remove spec.model.uri or use hf://ORG/REPO (runtime ollama)",
                field_path=".model.uri",
            ),
            cel(
                "self.placement.location != 'edge' || !has(self.gpu) || self.gpu.count <= 1",
                "edge sites have one GPU at most: set spec.gpu.count to 0 or 1",
                field_path=".gpu.count",
            ),
        )
    )

    model: ModelSource
    """The model to serve."""
    runtime: Runtime | None = None
    """Model server: vllm (the default), tgi, ollama, llamacpp or triton."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Overrides the runtime's default container image."""
    args: list[Arg] = Field(default_factory=list, max_length=64)
    """Extra arguments for the model server (none for ollama, whose server takes none)."""
    replicas: int = Field(default=1, ge=0, le=64)
    """Model server replicas in total, across every cluster the model is placed on. With
    autoscaling: the count it starts from."""
    autoscaling: Autoscaling | None = None
    """Replicas follow the load read from Prometheus. Default: off, `replicas` is the count."""
    gpu: Gpu | None = None
    """GPUs per replica; defaults to one nvidia.com/gpu of any product."""
    resources: Resources | None = None
    """CPU and memory per replica."""
    model_cache: ModelCache | None = None
    """Keeps downloaded weights on a volume instead of a per-pod scratch directory."""
    placement: ModelPlacement
    """Where the model runs and how its replicas are divided over the fleet."""
    managed: ManagedEndpoint | None = None
    """The provider endpoint; required when placement.management is managed."""
    segmentation: SegmentationOverrides | None = None
    """Additions to the segmentation the mode decides."""
    validation: Validation | None = None
    """A red-team scan (garak) of each placement before gateways route to it, and on a
    schedule. Default: off."""


class ClusterPlacement(ApiModel):
    """The workload's state in one member cluster."""

    cluster: str = Field(max_length=253)
    """Member cluster name (in-cluster for the operator's own cluster)."""
    location: str = Field(max_length=16)
    """Location of the cluster."""
    state: str = Field(default="", max_length=32)
    """Placed, Unknown (cluster unreachable), Draining (serving until its replacement is
    ready), or Removing."""
    role: str = Field(default="preferred", max_length=16)
    """preferred (the spec's location), overflow (the preferred location is full) or failover
    (replaces replicas of an unreachable member)."""
    since: str | None = Field(default=None, max_length=64)
    """When the placement entered its state (for Unknown: since when the cluster is silent)."""
    room_since: str | None = Field(default=None, max_length=64)
    """Overflow: since when the preferred location has had room for these replicas."""
    replicas: int = Field(default=0, ge=0)
    """Replicas asked of this cluster."""
    ready_replicas: int = Field(default=0, ge=0)
    """Replicas ready in this cluster."""
    endpoint: str = Field(default="", max_length=2048)
    """OpenAI-compatible base URL of the model in this cluster."""
    validation: str | None = Field(default=None, max_length=16)
    """With spec.validation: the verdict of this cluster's latest scan of what it serves
    (Passed, Failed, Running, Pending, Unknown)."""


class CandidateDecision(ApiModel):
    """One member cluster in the last placement decision: taken or not, and why."""

    cluster: str = Field(max_length=253)
    """Member cluster name."""
    location: str = Field(default="", max_length=16)
    """Location of the cluster."""
    replicas: int = Field(default=0, ge=0)
    """Replicas placed there (0: not taken)."""
    reason: str = Field(default="", max_length=1024)
    """Why it was taken or not: location, selector, policy, free against needed GPUs,
    unreachable."""
    gpus_free: int | None = Field(default=None, ge=0)
    """GPUs of the accepted products free on its eligible nodes when decided."""
    gpus_total: int | None = Field(default=None, ge=0)
    """GPUs of the accepted products on its eligible nodes."""


class AutoscalingStatus(ApiModel):
    """What the autoscaler read and decided."""

    load: float | None = Field(default=None, ge=0)
    """The model's load at the last change (see spec.autoscaling.targetPerReplica)."""
    desired_replicas: int = Field(default=0, ge=0)
    """Replicas the load asks for, across the fleet: what is placed."""
    last_scale_time: str | None = Field(default=None, max_length=64)
    """When the count last changed."""
    reason: str = Field(default="", max_length=1024)
    """Why the count is what it is."""


class LLMDeploymentStatus(ApiModel):
    """Observed state of an LLMDeployment."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this status describes."""
    mode: str = Field(default="", max_length=128)
    """Placement mode, as the catalogue names it (for example 1.3 On-Premises Self-Managed LLM)."""
    placements: list[ClusterPlacement] = Field(default_factory=list, max_length=64)
    """One entry per cluster the workload is placed on."""
    clusters: str = Field(default="", max_length=1024)
    """Where it runs at a glance: cluster=replicas, comma-separated."""
    decision: list[CandidateDecision] = Field(default_factory=list, max_length=64)
    """The last placement decision, one entry per member cluster."""
    segmentation: SegmentationStatus | None = None
    """Security roles applied and the objects realizing them."""
    autoscaling: AutoscalingStatus | None = None
    """The load read and the replicas it asks for, with autoscaling on."""
    validation: ValidationStatus | None = None
    """The scans' results, with spec.validation."""
    child_clusters: list[ClusterName] = Field(default_factory=list, max_length=64)
    """Member clusters holding objects of this model; each is cleaned when it no longer
    should."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Placed, Segmented, Degraded; Autoscaling and Validated when configured."""


class LLMDeployment(ApiModel):
    """A large language model served on GPUs in a cloud, on-prem or edge cluster, or run by a
    provider, with the network segmentation and pod hardening its placement mode needs."""

    spec: LLMDeploymentSpec
    """Desired state."""
    status: LLMDeploymentStatus | None = None
    """Observed state, written by the operator."""
