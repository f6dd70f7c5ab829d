"""What every kind's handlers share: run a reconcile off the event loop and write its outcome."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, cast

import kopf

from llmfleet import metrics
from llmfleet.fleetstate import facts_of
from llmfleet.kube import apply
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import NOT_FOUND, KubeError, path_of
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.reconcile import Outcome, forbidden
from llmfleet.render.common import Owner

# kopf reads timer intervals when handlers are registered, so the setting arrives by env.
RESYNC_SECONDS = float(os.environ.get("LLMFLEET_RESYNC_SECONDS", "30"))
WAKEUP_SECONDS = 1.0
log = logging.getLogger(__name__)


async def run(memo: kopf.Memo, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(memo.pool, fn, *args)


async def reconcile(
    kind: str, fn: Callable[..., Outcome], body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo
) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return  # being deleted: the cleanup handler owns it now, nothing is applied again
    if "task" not in memo.following:
        # Started from a handler, so kopf's Event posting is in the task's context.
        memo.following["task"] = asyncio.create_task(follow_children(memo), name="follow-children")
    meta = body["metadata"]
    memo.wakeups.register(kind, meta["namespace"], meta["name"])
    try:
        outcome = await _run_reconcile(kind, fn, body, memo)
    except KubeError as error:
        raise kopf.TemporaryError(str(error), delay=10) from error
    if outcome is None:
        return
    if outcome.status is not None:
        patch.status.update(outcome.status)
    _report(kind, body, outcome)


async def reconcile_woken(kind: str, namespace: str, name: str, memo: kopf.Memo) -> None:
    """A reconcile outside kopf's handlers, for a resource whose children changed status:
    the status is patched here; the resync timer stays the safety net."""
    hub = memo.federation.hub
    body = await run(memo, hub.get, kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        memo.wakeups.forget(kind, namespace, name)
        return
    outcome = await _run_reconcile(kind, memo.reconcilers[kind], body, memo)
    if outcome is None:
        return
    if outcome.status is not None:
        await run(
            memo, partial(hub.request, "PATCH", path_of(kind, namespace, name) + "/status",
                          body={"status": outcome.status},
                          content_type="application/merge-patch+json"),
        )  # fmt: skip
    _report(kind, body, outcome)


async def follow_children(memo: kopf.Memo) -> None:
    """Reconciles, about a second later, the resources whose children changed status (a
    rollout's few status changes come as one); errors are left to the resync timer."""
    while True:
        await asyncio.sleep(WAKEUP_SECONDS)
        woken = memo.wakeups.take()
        results = await asyncio.gather(
            *(reconcile_woken(kind, ns, name, memo) for kind, ns, name in woken),
            return_exceptions=True,
        )
        for (kind, ns, name), result in zip(woken, results, strict=True):
            if isinstance(result, KubeError):
                log.debug("reconcile of %s %s/%s after a child changed: %s", kind, ns, name, result)
            elif isinstance(result, Exception):
                log.warning(
                    "reconcile of %s %s/%s after a child changed failed: %r", kind, ns, name, result
                )


async def _run_reconcile(
    kind: str, fn: Callable[..., Outcome], body: Mapping[str, Any], memo: kopf.Memo
) -> Outcome | None:
    """One reconcile at a time per resource (kopf's handlers and the wake-ups share it)."""
    meta = body["metadata"]
    lock = memo.locks.setdefault((kind, meta["namespace"], meta["name"]), asyncio.Lock())
    started = time.perf_counter()
    try:
        async with lock:
            outcome: Outcome = await run(memo, fn, body, memo.federation, memo.settings)
    except KubeError as error:
        if error.status == NOT_FOUND and error.cluster == IN_CLUSTER:
            # Its own namespace is gone with it; the deletion event is on its way.
            metrics.RECONCILE_ERRORS.labels(kind, "Gone").inc()
            return None
        metrics.RECONCILE_ERRORS.labels(kind, "Forbidden" if error.forbidden else "KubeError").inc()
        if not error.forbidden:
            raise
        # Missing rights do not heal by retrying soon: say so where users look; the resync
        # timer tries again.
        outcome = forbidden(body, error)
    finally:
        metrics.RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
    return outcome


def _report(kind: str, body: Mapping[str, Any], outcome: Outcome) -> None:
    meta = body["metadata"]
    metrics.FLEET.record(
        (kind, meta["namespace"], meta["name"]),
        facts_of(kind, body.get("spec") or {}, outcome.status or body.get("status") or {}),
    )
    for event in outcome.events:
        kopf.event(
            cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message
        )


async def remove_everywhere(
    memo: kopf.Memo, owner: Owner, hub_kinds: Iterable[str], member_kinds: Iterable[str]
) -> None:
    """Removes the owner's children in every member cluster; retries while one is unreachable."""
    federation: Federation = memo.federation
    members, _ = await run(memo, federation.members)
    unreachable = []
    for member in members:
        kinds = tuple(hub_kinds if member.kubeconfig is None else member_kinds)
        try:
            await run(
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
    if not unreachable:
        metrics.FLEET.forget((owner.kind, owner.namespace, owner.name))
        memo.wakeups.forget(owner.kind, owner.namespace, owner.name)
        memo.locks.pop((owner.kind, owner.namespace, owner.name), None)
    if unreachable:
        raise kopf.TemporaryError(
            f"children remain in unreachable clusters {', '.join(unreachable)}; retrying", delay=15
        )
