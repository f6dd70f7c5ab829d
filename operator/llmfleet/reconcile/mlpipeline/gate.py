"""Gated rollout: with inference.validation, a newly trained run is served first by a candidate
LLMDeployment that no gateway routes to; inference moves to the run only once the
candidate's scan passed. A run that fails keeps the current one serving and is recorded as
not validated; a rollback to a recorded run that passed moves at once, without a new scan.

The first run, with nothing serving yet, is served directly: its own LLMDeployment's
validation keeps gateways from routing to it until it passed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmfleet import status as conditions
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.api.mlpipeline import MLPipelineSpec
from llmfleet.render import mlpipeline as render
from llmfleet.render import validation as scan_render
from llmfleet.render.common import Owner

PASSED, FAILED = "Passed", "Failed"


@dataclass
class Gate:
    runs: list[dict[str, Any]]
    serving: render.Run | None
    # The candidate LLMDeployment to keep while the desired run is scanned, and what its own
    # status says while it is not scanned yet (not placed, loading).
    candidate: dict[str, Any] | None = None
    candidate_says: str = ""
    # The desired run's record once its scan failed: its rollout is blocked.
    blocked: Mapping[str, Any] | None = None


def run_revision(spec: MLPipelineSpec, owner: Owner, run: render.Run) -> str:
    rendered = render.inference(spec, owner, run)
    return scan_render.revision(LLMDeploymentSpec.model_validate(rendered["spec"]))


def scanned(llm: Mapping[str, Any], run_id: str, revision: str) -> tuple[str, str]:
    """What an owned LLMDeployment's status says of `run_id`'s scan: (Passed|Failed|'',
    message)."""
    annotations = (llm.get("metadata") or {}).get("annotations") or {}
    found = (llm.get("status") or {}).get("validation") or {}
    if annotations.get(render.RUN_ANNOTATION) != run_id or found.get("revision") != revision:
        return "", ""
    verdict = str(found.get("verdict") or "")
    if verdict not in (PASSED, FAILED):
        return "", ""
    return verdict, str(found.get("message") or "")


def learn(
    spec: MLPipelineSpec,
    owner: Owner,
    records: list[dict[str, Any]],
    owned: Mapping[str, Mapping[str, Any]],
) -> None:
    """Each run's verdict, from the candidate's scan or the inference LLMDeployment's own
    (first run, scheduled re-validation); a verdict of another revision (the inference or
    validation spec changed since) is forgotten: that run is scanned again."""
    main = owned.get(f"LLMDeployment/{owner.name}", {})
    candidate = owned.get(f"LLMDeployment/{render.candidate_name(owner)}", {})
    for record in records:
        run = _run(record)
        if run is None:  # pragma: no cover - records always have an id
            continue
        revision = run_revision(spec, owner, run)
        if record.get("validationRevision") != revision:
            for key in ("validation", "validationMessage", "validationRevision"):
                record.pop(key, None)
        # The serving model's own scans (scheduled ones too) have the last word on its run.
        verdict, message = scanned(main, run.id, revision)
        if not verdict and not record.get("validation"):
            verdict, message = scanned(candidate, run.id, revision)
        if verdict:
            record.update(
                validation=verdict, validationMessage=message[:1024], validationRevision=revision
            )


def decide(
    spec: MLPipelineSpec,
    owner: Owner,
    run: render.Run,
    *,
    runs: Sequence[Mapping[str, Any]],
    previous: str,
    owned: Mapping[str, Mapping[str, Any]],
) -> Gate:
    """The runs with what their scans said, the run to serve, and the candidate to keep."""
    records = [dict(r) for r in runs]
    learn(spec, owner, records, owned)
    by_id = {str(r["id"]): r for r in records}
    wanted = by_id.get(run.id)
    current = by_id.get(previous)
    # What keeps serving while a new run is scanned: the current run unless its scan failed,
    # else the newest run that passed.
    fallback = current if current is not None and current.get("validation") != FAILED else None
    fallback = fallback or next((r for r in records if r.get("validation") == PASSED), None)
    gate = Gate(records, None)
    if wanted is None:  # not trained yet: what serves keeps serving
        gate.serving = _run(fallback or current or (records[0] if records else None))
        return gate
    said = wanted.get("validation")
    if said == PASSED or fallback is None or fallback is wanted:
        # Passed, or nothing else to serve: its own LLMDeployment's scan gates the gateways.
        gate.serving = _run(wanted)
        gate.blocked = wanted if said == FAILED else None
        return gate
    gate.serving = _run(fallback)
    if said == FAILED:
        gate.blocked = wanted
        return gate
    gate.candidate = render.candidate(spec, owner, run)
    live = owned.get(f"LLMDeployment/{render.candidate_name(owner)}", {})
    ready: Mapping[str, Any] = conditions.find(
        (live.get("status") or {}).get("conditions") or [], "Ready"
    )
    if ready and ready.get("status") != "True":
        gate.candidate_says = f"{ready.get('reason', '')}: {ready.get('message', '')}"[:512]
    return gate


def _run(record: Mapping[str, Any] | None) -> render.Run | None:
    if record is None:
        return None
    return render.Run(str(record["id"]), int(record.get("run", 0)), str(record["artifact"]))


def validated_revision(
    spec: MLPipelineSpec,
    owner: Owner,
    serving: render.Run | None,
    runs: Sequence[Mapping[str, Any]],
) -> str | None:
    """The serving run's revision when a scan of that very revision passed (the inference
    LLMDeployment then need not scan it again)."""
    if serving is None or spec.inference.validation is None:
        return None
    record = next((r for r in runs if r.get("id") == serving.id), {})
    revision = run_revision(spec, owner, serving)
    passed = record.get("validation") == PASSED and record.get("validationRevision") == revision
    return revision if passed else None
