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
from llmfleet.kube import finalizers
from llmfleet.kube.federation import Federation
from llmfleet.kube.policies import PolicyWatch
from llmfleet.kube.rest import NOT_FOUND, KubeError, path_of
from llmfleet.kube.wakeups import Wakeups
from llmfleet.names import owner_label
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
RETRY_SECONDS = 10.0  # an API request failed
ERROR_SECONDS = 60.0  # anything else failed
CLEANUP_SECONDS = 15.0  # a member cluster holding children did not answer
RESYNC_SPREAD = 0.8  # the share of the interval a resync round is spread over
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
    # The generation of each resource this process last reconciled: a newer one is a change.
    handled: dict[tuple[str, str, str], int] = field(default_factory=dict)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def context(self) -> Context:
        return Context(
            fleet=self.federation, settings=self.settings, reads=self.reads, ledger=self.ledger,
            load=self.load, scaling=self.scaling, hold=self.hold,
        )  # fmt: skip

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def due(self, kind: str, body: Mapping[str, Any]) -> bool:
        """Whether a watch event asks for a look: a resource new to this process, a changed
        spec, or a deletion that waits for the operator's cleanup."""
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            return finalizers.holds(body)
        key = (kind, meta["namespace"], meta["name"])
        return self.handled.get(key) != int(meta.get("generation") or 0)

    def hold(self, kind: str, body: Mapping[str, Any]) -> None:
        """The finalizer goes on before the first child in a member cluster is written."""
        written = finalizers.add(self.federation.hub.client, kind, body)
        if written is not None:
            self.reads.seen(kind, written)

    def retry_later(self, kind: str, namespace: str, name: str, delay: float) -> None:
        self.wakeups.register(kind, namespace, name)
        asyncio.get_running_loop().call_later(
            delay, self.wakeups.notify_resource, kind, namespace, name
        )

    def start_background(self) -> None:
        """Wake-ups and the resync, started from a handler so kopf's Event posting is in
        their context."""
        if not self.background:
            self.background = [
                asyncio.create_task(follow_children(self), name="follow-children"),
                asyncio.create_task(resync(self), name="resync"),
            ]

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """A resource gone for good: what the operator kept about it goes too (its GPUs are
        free for others at once)."""
        label = owner_label(kind, namespace, name)
        metrics.FLEET.forget((kind, namespace, name))
        self.ledger.forget(label)
        self.scaling.pop(label, None)
        if self.load is not None:
            self.load.forget(label)
        self.wakeups.forget(kind, namespace, name)
        self.locks.pop((kind, namespace, name), None)
        self.handled.pop((kind, namespace, name), None)


def register_kind(
    registry: kopf.OperatorRegistry,
    settings: Settings,
    kind: str,
    plural: str,
    *,
    also_on_event: Callable[[Runtime, str, str, Mapping[str, Any]], None] | None = None,
) -> None:
    """What every kind has: one watch of its resources, reconciling each resource when it is
    new to the operator (created, or seen first after a start), when its spec changed (its
    generation) and when it is being deleted with children in member clusters. kopf keeps no
    state on the resources: no annotations, and the finalizer only where it is needed."""

    @kopf.on.event(GROUP, VERSION, plural, id="reconcile", registry=registry)
    async def watch(
        body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
    ) -> None:
        """The operator's view of every resource of the kind: wake-ups and endpoints read it
        instead of the API server, and a resource that is gone gets no more Events."""
        runtime = runtime_of(memo)
        deleted = (kwargs.get("type") or "") == "DELETED"
        if deleted:
            runtime.reads.gone(kind, namespace or "", name)
            runtime.forget(kind, namespace or "", name)
        else:
            runtime.reads.seen(kind, body)
        if also_on_event is not None:  # one handler per event: kopf's cost is per handler
            also_on_event(runtime, namespace or "", name, kwargs)
        if not deleted and runtime.due(kind, body):
            await handle(kind, namespace or "", name, runtime, body)


def runtime_of(memo: kopf.Memo) -> Runtime:
    return cast(Runtime, memo[RUNTIME_KEY])


async def handle(
    kind: str,
    namespace: str,
    name: str,
    runtime: Runtime,
    body: Mapping[str, Any] | None = None,
) -> None:
    """One look at a resource, from its watch, a wake-up, a retry or the resync: the cleanup
    when it is being deleted, else a reconcile whose status is written when it changed.
    Failures are retried later (the resync remains the safety net)."""
    if body is None:
        body = await runtime.run(runtime.reads.resource, kind, namespace, name)
    else:
        body = runtime.reads.newest(kind, body)
    if body is None:
        runtime.forget(kind, namespace, name)
        return
    try:
        if body["metadata"].get("deletionTimestamp"):
            if finalizers.holds(body):
                await cleanup(kind, body, runtime)
            return  # being deleted: nothing is applied again
        await reconcile(kind, body, runtime)
    except KubeError as error:
        log.warning("%s %s/%s: %s; retrying in %gs", kind, namespace, name, error, RETRY_SECONDS)
        runtime.retry_later(kind, namespace, name, RETRY_SECONDS)
    except Exception:
        log.exception("%s %s/%s failed; retrying in %gs", kind, namespace, name, ERROR_SECONDS)
        runtime.retry_later(kind, namespace, name, ERROR_SECONDS)


async def reconcile(kind: str, body: Mapping[str, Any], runtime: Runtime) -> None:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if not runtime.reads.known(kind, namespace, name):
        return  # gone (its DELETED event came) while a wake-up or retry was pending
    if runtime.policies is not None and runtime.policies.terminating(namespace):
        return  # its namespace is being deleted, and it with it: nothing more to apply or say
    runtime.start_background()
    runtime.wakeups.register(kind, namespace, name)
    runtime.handled[(kind, namespace, name)] = int(meta.get("generation") or 0)
    outcome = await _run_reconcile(kind, body, runtime)
    if outcome is None:
        return
    if outcome.status is not None:
        written = await runtime.run(
            partial(
                runtime.federation.hub.client.request, "PATCH",
                path_of(kind, namespace, name) + "/status", body={"status": outcome.status},
                content_type="application/merge-patch+json",
            )
        )  # fmt: skip
        if isinstance(written, dict) and written.get("metadata"):
            runtime.reads.seen(kind, written)  # the next pass starts from what it wrote
    _report(kind, body, outcome, runtime.reads)


async def follow_children(runtime: Runtime) -> None:
    """Looks again, about a second later, at the resources whose children changed status (a
    rollout's few status changes come as one) and at those due for a retry."""
    while True:
        await asyncio.sleep(WAKEUP_SECONDS)
        woken = runtime.wakeups.take()
        await asyncio.gather(*(handle(kind, ns, name, runtime) for kind, ns, name in woken))


async def resync(runtime: Runtime) -> None:
    """The safety net (drift in children, replicas becoming ready, clusters coming back,
    managed sites' health): a round over every resource starts once per interval, its
    batches spread over most of it so that a round does not crowd out the changes people
    make."""
    interval = runtime.settings.resync_seconds
    batch = max(1, runtime.settings.api_workers)
    next_round = time.monotonic() + interval
    while True:
        await asyncio.sleep(max(0.0, next_round - time.monotonic()))
        started = time.monotonic()
        next_round = started + interval
        known = runtime.reads.all_known()
        for index, offset in zip(
            range(0, len(known), batch), batch_starts(len(known), batch, interval), strict=True
        ):
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
            chunk = known[index : index + batch]
            await asyncio.gather(*(handle(kind, ns, name, runtime) for kind, ns, name in chunk))
        log.info(
            "Resync round over %d resources done in %.1fs", len(known), time.monotonic() - started
        )


def batch_starts(count: int, batch: int, interval: float) -> list[float]:
    """When each batch of a resync round starts, in seconds from the round's start: evenly
    over RESYNC_SPREAD of the interval, the first at once."""
    batches = -(-count // batch)
    return [interval * RESYNC_SPREAD * k / batches for k in range(batches)]


async def _run_reconcile(kind: str, body: Mapping[str, Any], runtime: Runtime) -> Outcome | None:
    """One reconcile at a time per resource (its watch, wake-ups, retries and the resync)."""
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


async def cleanup(kind: str, body: Mapping[str, Any], runtime: Runtime) -> None:
    """Removes the children in every member cluster, then the finalizer; while a cluster does
    not answer, the finalizer stays and the cleanup is tried again."""
    owner = engine.owner_of(kind, body)
    lock = runtime.locks.setdefault((owner.kind, owner.namespace, owner.name), asyncio.Lock())
    async with lock:
        unreachable = await runtime.run(
            engine.remove_everywhere, runtime.federation, owner, KINDS[kind].children
        )
        if unreachable:
            message = (
                f"children remain in unreachable clusters {', '.join(unreachable)}; the "
                f"deletion completes once they are removed (next try in {CLEANUP_SECONDS:g}s)"
            )
            log.warning("%s %s/%s: %s", owner.kind, owner.namespace, owner.name, message)
            kopf.event(cast(kopf.Body, body), type="Warning", reason="CleanupPending",
                       message=message)  # fmt: skip
            runtime.retry_later(owner.kind, owner.namespace, owner.name, CLEANUP_SECONDS)
            return
        await runtime.run(finalizers.remove, runtime.federation.hub.client, kind, body)
    runtime.forget(owner.kind, owner.namespace, owner.name)
