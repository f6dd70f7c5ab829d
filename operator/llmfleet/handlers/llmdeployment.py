"""LLMDeployment handlers: thin. They run the reconcile off the event loop and write its result."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import kopf

from llmfleet import metrics
from llmfleet.api import GROUP, VERSION
from llmfleet.kube import apply
from llmfleet.kube.rest import KubeError
from llmfleet.reconcile import Outcome
from llmfleet.reconcile import llmdeployment as reconciler
from llmfleet.render.llmdeployment import CHILD_KINDS

PLURAL = "llmdeployments"
# kopf reads timer intervals when handlers are registered, so the setting arrives by env.
RESYNC_SECONDS = float(os.environ.get("LLMFLEET_RESYNC_SECONDS", "30"))


async def _run(memo: kopf.Memo, fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(memo.pool, fn, *args)


def _write(outcome: Outcome, body: kopf.Body, patch: kopf.Patch) -> None:
    if outcome.status is not None:
        patch.status.update(outcome.status)
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    started = time.perf_counter()
    try:
        outcome = await _run(memo, reconciler.reconcile, body, memo.federation, memo.settings)
    except KubeError as error:
        metrics.RECONCILE_ERRORS.labels(reconciler.KIND, "KubeError").inc()
        raise kopf.TemporaryError(str(error), delay=10) from error
    finally:
        metrics.RECONCILE_SECONDS.labels(reconciler.KIND).observe(time.perf_counter() - started)
    _write(outcome, body, patch)


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", field="spec")
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile(body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, id="resync", interval=RESYNC_SECONDS, initial_delay=5)
async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Safety net: drift in children, replicas becoming ready, clusters coming back."""
    await _reconcile(body, patch, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
async def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Removes the children in every member cluster; the finalizer stays until all are gone."""
    owner = reconciler.owner_of(body)
    federation = memo.federation
    members, _ = await _run(memo, federation.members)
    unreachable = []
    for member in members:
        kinds = (
            *CHILD_KINDS,
            *(() if member.kubeconfig is None else reconciler.MIRRORED_SECRET_KINDS),
        )
        try:
            await _run(
                memo,
                apply.remove_all,
                federation.client(member),
                owner.namespace,
                owner.label,
                kinds,
            )
        except KubeError as error:
            if not error.unreachable:
                raise
            unreachable.append(member.name)
    if unreachable:
        raise kopf.TemporaryError(
            f"children remain in unreachable clusters {', '.join(unreachable)}; retrying",
            delay=15,
        )
