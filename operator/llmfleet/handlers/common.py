"""What every kind's handlers share: run a reconcile off the event loop and write its outcome."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import kopf

from llmfleet import metrics
from llmfleet.api import GROUP, VERSION
from llmfleet.fleetstate import facts_of
from llmfleet.kube import apply
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import NOT_FOUND, KubeError
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.reconcile import Outcome, forbidden
from llmfleet.render.common import Owner

# kopf reads timer intervals when handlers are registered, so the setting arrives by env.
RESYNC_SECONDS = float(os.environ.get("LLMFLEET_RESYNC_SECONDS", "30"))
# How often a resource with something in motion (pods loading, a Job running) is looked at.
PROGRESS_SECONDS = min(RESYNC_SECONDS, 5.0)
# Ready reasons of a resource that is coming up on its own: model servers loading, gateways
# starting, backends or load-balancer addresses on their way.
COMING_UP_REASONS = frozenset(
    {"ReplicasLoading", "SitesStarting", "NoBackendReady", "CrossClusterPending"}
)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def coming_up(status: kopf.Status, **_: Any) -> bool:
    """Not reconciled yet, or waiting for something that happens without a spec change."""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return ready is None or ready.get("reason") in COMING_UP_REASONS


def timers(plural: str, in_motion: Callable[..., bool]) -> Callable[[Handler], Handler]:
    """The resync as two timers, one running at a time (kopf starts and stops them as the
    status changes): every few seconds while `in_motion`, so readiness shows within seconds,
    and every resync interval once settled."""

    def settled(**kwargs: Any) -> bool:
        return not in_motion(**kwargs)

    def register(fn: Handler) -> Handler:
        kopf.timer(
            GROUP, VERSION, plural, id="resync", interval=RESYNC_SECONDS, initial_delay=5,
            when=settled,
        )(fn)  # fmt: skip
        kopf.timer(
            GROUP, VERSION, plural, id="progress", interval=PROGRESS_SECONDS, initial_delay=2,
            when=in_motion,
        )(fn)  # fmt: skip
        return fn

    return register


async def run(memo: kopf.Memo, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(memo.pool, fn, *args)


async def reconcile(
    kind: str, fn: Callable[..., Outcome], body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo
) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return  # being deleted: the cleanup handler owns it now, nothing is applied again
    started = time.perf_counter()
    try:
        outcome: Outcome = await run(memo, fn, body, memo.federation, memo.settings)
    except KubeError as error:
        if error.status == NOT_FOUND and error.cluster == IN_CLUSTER:
            # Its own namespace is gone with it; the deletion event is on its way.
            metrics.RECONCILE_ERRORS.labels(kind, "Gone").inc()
            return
        metrics.RECONCILE_ERRORS.labels(kind, "Forbidden" if error.forbidden else "KubeError").inc()
        if not error.forbidden:
            raise kopf.TemporaryError(str(error), delay=10) from error
        # Missing rights do not heal by retrying soon: say so where users look; the resync
        # timer tries again.
        outcome = forbidden(body, error)
    finally:
        metrics.RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
    if outcome.status is not None:
        patch.status.update(outcome.status)
    meta = body["metadata"]
    metrics.FLEET.record(
        (kind, meta["namespace"], meta["name"]),
        facts_of(kind, body.get("spec") or {}, outcome.status or body.get("status") or {}),
    )
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


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
    if unreachable:
        raise kopf.TemporaryError(
            f"children remain in unreachable clusters {', '.join(unreachable)}; retrying", delay=15
        )
