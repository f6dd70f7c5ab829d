"""What every kind's handlers share: the runtime, a reconcile run off the event loop through
the engine, its outcome written, and the cleanup of every cluster on deletion."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import kopf

from llmfleet import metrics
from llmfleet.api import GROUP, VERSION
from llmfleet.fleetstate import facts_of
from llmfleet.kube.federation import Federation
from llmfleet.kube.policies import PolicyWatch
from llmfleet.kube.rest import NOT_FOUND, KubeError, path_of
from llmfleet.kube.wakeups import Wakeups
from llmfleet.placement.autoscale import Memory
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.placement.ledger import Ledger
from llmfleet.reconcile import engine
from llmfleet.reconcile.engine import Outcome
from llmfleet.reconcile.kinds import KINDS
from llmfleet.reconcile.load import LoadReader
from llmfleet.reconcile.prober import Prober
from llmfleet.reconcile.reads import Context, Reads
from llmfleet.settings import Settings

WAKEUP_SECONDS = 1.0
RUNTIME_KEY = "runtime"
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the handlers share, typed: made once at startup, kept in kopf's memo."""

    settings: Settings
    federation: Federation
    reads: Reads
    prober: Prober
    wakeups: Wakeups
    pool: ThreadPoolExecutor
    ledger: Ledger = field(default_factory=Ledger)
    policies: PolicyWatch | None = None
    load: LoadReader | None = None
    scaling: dict[str, Memory] = field(default_factory=dict)
    locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)
    following: asyncio.Task[None] | None = None

    @property
    def context(self) -> Context:
        return Context(
            fleet=self.federation, settings=self.settings, reads=self.reads, ledger=self.ledger,
            load=self.load, scaling=self.scaling,
        )  # fmt: skip

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def register_kind(
    registry: kopf.OperatorRegistry,
    settings: Settings,
    kind: str,
    plural: str,
    resync_doc: str,
    *,
    also_on_event: Callable[[Runtime, str, str, Mapping[str, Any]], None] | None = None,
) -> None:
    """What every kind has: a reconcile on resume, create and spec change, the resync timer
    (the safety net: `resync_doc` says what it catches), and the cleanup on deletion."""

    @kopf.on.resume(GROUP, VERSION, plural, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, plural, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, plural, id="reconcile", field="spec", registry=registry)
    async def reconcile_handler(
        body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
    ) -> None:
        await reconcile(kind, body, patch, memo)

    @kopf.timer(
        GROUP, VERSION, plural, id="resync", interval=settings.resync_seconds, initial_delay=5,
        registry=registry,
    )  # fmt: skip
    async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await reconcile(kind, body, patch, memo)

    resync.__doc__ = resync_doc

    @kopf.on.delete(GROUP, VERSION, plural, id="cleanup", registry=registry)
    async def cleanup_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Removes the children in every member cluster; the finalizer stays until all are
        gone."""
        await cleanup(kind, body, memo)

    @kopf.on.event(GROUP, VERSION, plural, id="remember", registry=registry)
    async def remember(
        body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
    ) -> None:
        """The operator's view of every resource of the kind: wake-ups and endpoints read it
        instead of the API server, and a resource that is gone gets no more Events."""
        runtime = runtime_of(memo)
        if (kwargs.get("type") or "") == "DELETED":
            runtime.reads.gone(kind, namespace or "", name)
        else:
            runtime.reads.seen(kind, body)
        if also_on_event is not None:  # one handler per event: kopf's cost is per handler
            also_on_event(runtime, namespace or "", name, kwargs)


def runtime_of(memo: kopf.Memo) -> Runtime:
    return cast(Runtime, memo[RUNTIME_KEY])


async def reconcile(kind: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return  # being deleted: the cleanup handler owns it now, nothing is applied again
    runtime = runtime_of(memo)
    meta = body["metadata"]
    if not runtime.reads.known(kind, meta["namespace"], meta["name"]):
        # Gone (its DELETED event came) while kopf still runs a timer for it: nothing to do.
        return
    if runtime.policies is not None and runtime.policies.terminating(meta["namespace"]):
        return  # its namespace is being deleted, and it with it: nothing more to apply or say
    if runtime.following is None:
        # Started from a handler, so kopf's Event posting is in the task's context.
        runtime.following = asyncio.create_task(follow_children(runtime), name="follow-children")
    runtime.wakeups.register(kind, meta["namespace"], meta["name"])
    try:
        outcome = await _run_reconcile(kind, runtime.reads.newest(kind, body), runtime)
    except KubeError as error:
        raise kopf.TemporaryError(str(error), delay=10) from error
    if outcome is None:
        return
    if outcome.status is not None:
        patch.status.update(outcome.status)
    _report(kind, body, outcome, runtime.reads)


async def reconcile_woken(kind: str, namespace: str, name: str, runtime: Runtime) -> None:
    """A reconcile outside kopf's handlers, for a resource whose children changed status:
    the status is patched here; the resync timer stays the safety net."""
    hub = runtime.federation.hub
    body = await runtime.run(runtime.reads.resource, kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        runtime.wakeups.forget(kind, namespace, name)
        return
    if runtime.policies is not None and runtime.policies.terminating(namespace):
        return
    outcome = await _run_reconcile(kind, body, runtime)
    if outcome is None:
        return
    if outcome.status is not None:
        written = await runtime.run(
            partial(
                hub.client.request, "PATCH", path_of(kind, namespace, name) + "/status",
                body={"status": outcome.status}, content_type="application/merge-patch+json",
            )
        )  # fmt: skip
        if isinstance(written, dict) and written.get("metadata"):
            runtime.reads.seen(kind, written)  # the next pass starts from what it wrote
    _report(kind, body, outcome, runtime.reads)


async def follow_children(runtime: Runtime) -> None:
    """Reconciles, about a second later, the resources whose children changed status (a
    rollout's few status changes come as one); errors are left to the resync timer."""
    while True:
        await asyncio.sleep(WAKEUP_SECONDS)
        woken = runtime.wakeups.take()
        results = await asyncio.gather(
            *(reconcile_woken(kind, ns, name, runtime) for kind, ns, name in woken),
            return_exceptions=True,
        )
        for (kind, ns, name), result in zip(woken, results, strict=True):
            if isinstance(result, KubeError):
                log.debug("reconcile of %s %s/%s after a child changed: %s", kind, ns, name, result)
            elif isinstance(result, Exception):
                log.warning(
                    "reconcile of %s %s/%s after a child changed failed: %r", kind, ns, name, result
                )


async def _run_reconcile(kind: str, body: Mapping[str, Any], runtime: Runtime) -> Outcome | None:
    """One reconcile at a time per resource (kopf's handlers and the wake-ups share it)."""
    meta = body["metadata"]
    lock = runtime.locks.setdefault((kind, meta["namespace"], meta["name"]), asyncio.Lock())
    started = time.perf_counter()
    try:
        async with lock:
            outcome: Outcome = await runtime.run(
                engine.reconcile, KINDS[kind], body, runtime.context
            )
    except KubeError as error:
        if error.status == NOT_FOUND and error.cluster == IN_CLUSTER:
            # Its own namespace is gone with it; the deletion event is on its way.
            metrics.RECONCILE_ERRORS.labels(kind, metrics.GONE).inc()
            return None
        metrics.RECONCILE_ERRORS.labels(kind, metrics.KUBE_ERROR).inc()
        raise
    finally:
        metrics.RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
    if outcome.status is not None and _condition(outcome.current, "Ready") == "Forbidden":
        metrics.RECONCILE_ERRORS.labels(kind, metrics.FORBIDDEN).inc()
    runtime.wakeups.wait_for_room(
        kind, meta["namespace"], meta["name"], waits_for_room(outcome.current)
    )
    return outcome


def waits_for_room(status: Mapping[str, Any]) -> bool:
    """Whether a resource waits for GPUs to free up: a model short of them or overflowing (it
    moves home when room opens), a queued training run."""
    return any(
        c.get("reason") in ("InsufficientGPU", "Queued", "Overflowing")
        for c in status.get("conditions") or []
    )


def _condition(status: Mapping[str, Any], type_: str) -> str:
    found: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == type_), {}
    )
    return str(found.get("reason", ""))


def _report(kind: str, body: Mapping[str, Any], outcome: Outcome, reads: Reads) -> None:
    meta = body["metadata"]
    metrics.FLEET.record(
        (kind, meta["namespace"], meta["name"]),
        facts_of(kind, body.get("spec") or {}, outcome.current or body.get("status") or {}),
    )
    if not reads.known(kind, meta["namespace"], meta["name"]):
        return  # deleted meanwhile (its namespace may be gone): an Event would be refused
    for event in outcome.events:
        kopf.event(
            cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message
        )


async def cleanup(kind: str, body: kopf.Body, memo: kopf.Memo) -> None:
    """Removes the children in every member cluster; the finalizer stays until all are gone."""
    runtime = runtime_of(memo)
    owner = engine.owner_of(kind, body)
    unreachable = await runtime.run(
        engine.remove_everywhere, runtime.federation, owner, KINDS[kind].children
    )
    if unreachable:
        raise kopf.TemporaryError(
            f"children remain in unreachable clusters {', '.join(unreachable)}; retrying", delay=15
        )
    metrics.FLEET.forget((owner.kind, owner.namespace, owner.name))
    runtime.ledger.forget(owner.label)  # its GPUs are free for others at once
    runtime.scaling.pop(owner.label, None)
    if runtime.load is not None:
        runtime.load.forget(owner.label)
    runtime.wakeups.forget(owner.kind, owner.namespace, owner.name)
    runtime.locks.pop((owner.kind, owner.namespace, owner.name), None)
