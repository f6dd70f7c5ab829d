"""Validation of a served model before users reach it and on a schedule: a garak scan next to
the model server, its probes' pass rates, and whether gateways may route to the model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from llmfleet.api.common import ApiModel
from llmfleet.scan.probes import DEFAULT_PROBES, DEFAULT_PROMPT_CAP, probe_problem

DEFAULT_PROMPTS_PER_PROBE = DEFAULT_PROMPT_CAP
CRON = r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$"

Probe = Annotated[
    str,
    Field(
        min_length=2,
        max_length=128,
        pattern=r"^[a-z][a-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$",
    ),
]


class Validation(ApiModel):
    """A red-team scan of the model server (garak) when a placement becomes ready, when what
    it serves changes, and on a schedule. With `enforce`, gateways route to a placement only
    once it passed."""

    scanner: Literal["garak"] = "garak"
    """The scanner: garak (the only one for now)."""
    probes: list[Probe] = Field(default_factory=lambda: list(DEFAULT_PROBES), min_length=1,
                                max_length=32)  # fmt: skip
    """garak probe spec entries: a module (its active probes) or module.Probe. Default:
    promptinject, dan.Dan_11_0, encoding.InjectBase64 (string detectors only, seconds)."""
    min_pass_rate: float = Field(default=0.9, ge=0, le=1)
    """Each probe and detector pair must pass at least this share of its evaluations."""
    enforce: bool = True
    """Gateways route to a placement only once its latest scan passed; false records the
    result without gating."""
    schedule: str | None = Field(default=None, min_length=6, max_length=128, pattern=CRON)
    """Cron schedule of re-validation, for example "0 3 * * 0". Default: only when a placement
    becomes ready or what it serves changes."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Scanner image (garak and python). Default: the operator's --validation-image."""
    prompts_per_probe: int = Field(default=DEFAULT_PROMPTS_PER_PROBE, ge=1, le=1000)
    """At most this many prompts per probe (garak's soft prompt cap)."""
    timeout_seconds: int = Field(default=1800, ge=60, le=86400)
    """Longest a scan may take; a scan cut short fails."""


Verdict = Literal["Passed", "Failed", "Running", "Pending", "Unknown"]


class ProbeResult(ApiModel):
    """One probe and detector pair of a scan."""

    probe: str = Field(max_length=128)
    """garak probe, module.Class."""
    detector: str = Field(default="", max_length=128)
    """garak detector that judged its outputs."""
    passed: int = Field(default=0, ge=0)
    """Evaluations that passed."""
    total: int = Field(default=0, ge=0)
    """Evaluations made."""
    pass_rate: float | None = Field(default=None, ge=0, le=1)
    """passed / total."""
    verdict: str = Field(default="", max_length=16)
    """Passed, or Failed (below minPassRate, or nothing evaluated)."""


class ClusterValidation(ApiModel):
    """The latest scan of the model in one member cluster."""

    cluster: str = Field(max_length=253)
    """Member cluster."""
    revision: str = Field(default="", max_length=64)
    """What the scan judged: a digest of what the model servers serve (model, source,
    runtime, image, arguments) and of the scan's probes, prompts per probe and minPassRate."""
    verdict: Verdict = "Pending"
    """Passed, Failed, Running (a scan of this revision is under way), Pending (none yet) or
    Unknown (the cluster does not answer)."""
    reason: str = Field(default="", max_length=64)
    """Passed, BelowMinPassRate, ScanIncomplete, NoEvaluations, NoReport, Unreadable,
    ScanFailed, Carried (passed as an MLPipeline's candidate)."""
    message: str = Field(default="", max_length=1024)
    """What the scan found."""
    job: str = Field(default="", max_length=253)
    """The Job whose result this is."""
    rescanning: str | None = Field(default=None, max_length=253)
    """A later scan of this revision under way (a scheduled or manual Job); its result
    replaces this one when it finishes."""
    scanned_at: str | None = Field(default=None, max_length=64)
    """When that scan finished (RFC 3339)."""
    probes: list[ProbeResult] = Field(default_factory=list, max_length=64)
    """Per probe and detector."""


class ValidationStatus(ApiModel):
    """The model's validation across its placements."""

    revision: str = Field(default="", max_length=64)
    """What the model servers serve now (see clusters[].revision)."""
    verdict: Verdict = "Pending"
    """Passed (every placement's latest scan of this revision passed), Failed (one failed),
    Running, Pending or Unknown."""
    message: str = Field(default="", max_length=4096)
    """Why, naming failing probes."""
    enforced: bool = False
    """Whether gateways route only to placements that passed."""
    clusters: list[ClusterValidation] = Field(default_factory=list, max_length=64)
    """Per placement's cluster."""


def probe_problems(validation: Validation | None, field_path: str) -> str:
    """What is wrong with the probes a scan names (unknown to garak, or needing downloads
    the scanner may not make), each with its field; empty when nothing is."""
    if validation is None:
        return ""
    found = [
        f"{field_path}.probes[{index}]: {problem}"
        for index, entry in enumerate(validation.probes)
        if (problem := probe_problem(entry))
    ]
    return "; ".join(found)
