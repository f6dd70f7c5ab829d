"""MLPipeline: training, inference and endpoint stages, each on cloud or HCI compute."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from llmfleet.api.chatendpoint import Auth, Exposure, Guardrails, RateLimit
from llmfleet.api.common import (
    ApiModel,
    Arg,
    ClusterName,
    Condition,
    Gpu,
    Resources,
    StagePlacement,
    cel,
    validations,
)
from llmfleet.api.llmdeployment import Runtime
from llmfleet.api.validation import Validation

URI_PATTERN = r"^(hf|pvc|oci|s3)://.+"


class PipelineModel(ApiModel):
    """The base model and where each run's trained artifact goes."""

    base: str = Field(min_length=6, max_length=2048, pattern=URI_PATTERN)
    """Model to fine-tune: hf://, pvc://, oci:// or s3:// URI."""
    artifact_uri: str = Field(
        min_length=6, max_length=2048, pattern=URI_PATTERN, alias="artifactURI"
    )
    """Where training writes and inference reads; {name} is replaced by the pipeline's name
    and {run} by the run's id, `<spec.run>-<hash of the training spec>` (for example
    s3://models/team-a/{name}/{run} becomes s3://models/team-a/chat/3-9f2c1a7b). Without
    {run}, every run writes to the same place."""


class Dataset(ApiModel):
    """The training data."""

    uri: str = Field(min_length=6, max_length=2048, pattern=URI_PATTERN)
    """Dataset location: pvc://CLAIM/PATH, s3://BUCKET/PATH, hf://ORG/DATASET or oci://IMAGE."""


class TrainingStage(ApiModel):
    """A training Job that produces the run's artifact."""

    placement: StagePlacement
    """cloud or onprem compute."""
    image: str = Field(min_length=1, max_length=512)
    """Trainer image."""
    command: list[Arg] = Field(default_factory=list, max_length=32)
    """Entrypoint of the trainer."""
    args: list[Arg] = Field(default_factory=list, max_length=64)
    """Arguments of the trainer."""
    gpu: Gpu | None = None
    """GPUs of the training pod."""
    resources: Resources | None = None
    """CPU and memory of the training pod."""
    dataset: Dataset
    """The training data."""
    backoff_limit: int = Field(default=2, ge=0, le=10)
    """Retries of a failed training pod before the run fails."""
    active_deadline_seconds: int = Field(default=86400, ge=60, le=1_209_600)
    """Longest a run may take."""


class InferenceStage(ApiModel):
    """An LLMDeployment owned by the pipeline, serving the latest successful artifact."""

    placement: StagePlacement
    """cloud or onprem compute."""
    runtime: Runtime | None = None
    """Model server: vllm (the default), tgi, ollama, llamacpp or triton."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Overrides the runtime's default image."""
    gpu: Gpu | None = None
    """GPUs per replica."""
    replicas: int = Field(default=1, ge=0, le=64)
    """Model server replicas."""
    validation: Validation | None = None
    """A red-team scan (garak) of each newly trained run, served by a candidate
    LLMDeployment, before inference moves to it; a run that fails keeps the current one
    serving. Also passed to the inference LLMDeployment (scheduled re-validation)."""


class EndpointStage(ApiModel):
    """A ChatEndpoint owned by the pipeline, in front of the inference stage."""

    placement: StagePlacement
    """cloud or onprem compute for the gateway."""
    guardrails: Guardrails | None = None
    """Prompt-injection and input-size checks."""
    rate_limit: RateLimit | None = None
    """Request and token limits."""
    auth: Auth | None = None
    """Client authentication."""
    exposure: Exposure | None = None
    """Who may call the endpoint."""


class Drift(ApiModel):
    """A scheduled drift check on the inference site."""

    schedule: str = Field(
        min_length=6,
        max_length=128,
        pattern=r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$",
    )
    """Cron schedule, for example "0 * * * *"."""
    threshold: float = Field(gt=0, le=1)
    """Drift score above which DriftDetected becomes True."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Overrides the drift checker image."""


class Monitoring(ApiModel):
    """Monitoring of the served model."""

    drift: Drift | None = None
    """Drift detection."""


class MLPipelineSpec(ApiModel):
    """Desired state of an MLPipeline."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.inference.validation) || self.model.artifactURI.contains('{run}')",
                "spec.model.artifactURI must contain {run} with spec.inference.validation: each "
                "run's artifact is scanned on its own, so runs must not overwrite each other's",
                field_path=".model.artifactURI",
            ),
        )
    )

    model: PipelineModel
    """Base model and artifact location."""
    run: int = Field(default=0, ge=0, le=1_000_000)
    """Bump to train a new run with an unchanged spec."""
    training: TrainingStage
    """Training stage."""
    inference: InferenceStage
    """Inference stage."""
    endpoint: EndpointStage
    """Endpoint stage."""
    monitoring: Monitoring | None = None
    """Drift monitoring."""


class StageStatus(ApiModel):
    """Observed state of one stage."""

    name: str = Field(max_length=16)
    """training, inference or endpoint."""
    location: str = Field(default="", max_length=16)
    """Location of the stage."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster running the stage."""
    phase: str = Field(default="Pending", max_length=16)
    """Pending, Queued (training waits for GPUs to free up), Running, Succeeded, Failed,
    Unschedulable, Refused (a FleetPolicy forbids the stage: nothing of it runs) or Unknown
    (cluster unreachable)."""
    start_time: str | None = Field(default=None, max_length=64)
    """When the stage started (RFC 3339)."""
    completion_time: str | None = Field(default=None, max_length=64)
    """When the stage finished (RFC 3339)."""
    artifact: str = Field(default="", max_length=2048)
    """Artifact the stage produced (training) or serves (inference)."""
    child: str = Field(default="", max_length=512)
    """The stage's object, as Kind/name (Job, LLMDeployment or ChatEndpoint)."""
    message: str = Field(default="", max_length=4096)
    """Why the stage is in its phase."""


class RunRecord(ApiModel):
    """A training run and its artifact."""

    id: str = Field(max_length=32)
    """Run id: `<spec.run>-<hash of the training spec>`."""
    run: int = Field(ge=0)
    """spec.run of the run."""
    artifact: str = Field(max_length=2048)
    """Artifact URI of the run."""
    succeeded_at: str | None = Field(default=None, max_length=64)
    """When training succeeded (RFC 3339)."""
    validation: str | None = Field(default=None, max_length=16)
    """With inference.validation: Passed (inference may move to it), Failed (its rollout
    is blocked) or empty (not scanned yet)."""
    validation_message: str | None = Field(default=None, max_length=1024)
    """What its scan found."""
    validation_revision: str | None = Field(default=None, max_length=64)
    """What that scan judged (see LLMDeployment status.validation.revision): a changed
    inference or validation spec is a new revision, scanned again before it serves."""


class DriftStatus(ApiModel):
    """Result of the latest completed drift check."""

    score: float | None = None
    """Measured drift score."""
    threshold: float | None = None
    """Threshold it was compared with."""
    checked_at: str | None = Field(default=None, max_length=64)
    """When the check finished (RFC 3339)."""
    job: str = Field(default="", max_length=253)
    """The Job that measured it."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster running the drift checks (the inference site)."""


class MLPipelineStatus(ApiModel):
    """Observed state of an MLPipeline."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this status describes."""
    option: str = Field(default="", max_length=128)
    """ML deployment option, as the catalogue names it (for example 2 Training using HCI
    Compute; Inference and Endpoint using Cloud Compute)."""
    current_stage: str = Field(default="", max_length=16)
    """Stage in progress, or Serving once every stage is up."""
    stages: list[StageStatus] = Field(default_factory=list, max_length=3)
    """One entry per stage."""
    clusters: str = Field(default="", max_length=1024)
    """Where each stage runs at a glance: stage=cluster, comma-separated."""
    serving_run: str = Field(default="", max_length=32)
    """Id of the run whose artifact the inference stage serves."""
    runs: list[RunRecord] = Field(default_factory=list, max_length=32)
    """Successful runs, newest first. A rollback is a spec change back to an earlier run's
    training spec: its artifact is served again without retraining."""
    drift: DriftStatus | None = None
    """The latest drift check."""
    child_clusters: list[ClusterName] = Field(default_factory=list, max_length=64)
    """Member clusters holding objects of this pipeline's stages; each is cleaned when it no
    longer should."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Trained, Serving, DriftDetected, Degraded."""


class MLPipeline(ApiModel):
    """Training, inference and endpoint stages placed on cloud or HCI compute: the eight ML
    deployment options, with staged rollout of new runs and drift monitoring."""

    spec: MLPipelineSpec
    """Desired state."""
    status: MLPipelineStatus | None = None
    """Observed state, written by the operator."""
