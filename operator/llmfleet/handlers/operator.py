"""Operator-wide startup: kopf identity and timeouts, clients, watches, thread pool, metrics,
probes."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from llmfleet import metrics
from llmfleet.api import GROUP
from llmfleet.handlers.common import RUNTIME_KEY, Runtime, runtime_of
from llmfleet.kube.cache import ChildCache
from llmfleet.kube.cluster import Cluster
from llmfleet.kube.federation import Federation
from llmfleet.kube.policies import PolicyWatch
from llmfleet.kube.rest import KubeClient
from llmfleet.kube.wakeups import Wakeups
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.reconcile.kinds import KINDS
from llmfleet.reconcile.load import LoadReader
from llmfleet.reconcile.prober import Prober
from llmfleet.reconcile.reads import Reads
from llmfleet.settings import Settings

SYNC_SECONDS = 10


def hub_api_client(settings: Settings) -> client.ApiClient:
    if settings.kubeconfig:
        api: client.ApiClient = config.new_client_from_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
        return api
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def configure_kopf(settings: kopf.OperatorSettings, operator_settings: Settings) -> None:
    # The handlers only watch (llmfleet.handlers.common): kopf stores nothing on the
    # resources. Its finalizer name is one the operator never puts on, so kopf never takes the
    # operator's own (llmfleet.kube.finalizers) off.
    settings.persistence.finalizer = f"{GROUP}/kopf-unused"
    # Explicit watch timeouts: a silent stream is closed and re-established, never trusted.
    settings.watching.server_timeout = operator_settings.watch_server_timeout
    settings.watching.client_timeout = operator_settings.watch_client_timeout
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Throttled requests wait as long as the API server asks, never less.
    settings.networking.enforce_retry_after = True
    settings.posting.reporting_component = "llmfleet"
    settings.posting.event_name_prefix = "llmfleet-"
    settings.posting.level = logging.INFO
    # Events are posted by a bounded number of workers: unbounded, a burst of Events opens a
    # connection per resource, each keeping a 128 KiB TLS buffer while pooled. An Event the
    # API server refuses (its namespace is being deleted) is tried three times in 3 s, not for
    # a minute, so it never holds up the others' Events.
    settings.posting.worker_limit = 4 * operator_settings.api_workers
    settings.posting.default_backoffs = (1, 2)
    settings.execution.max_workers = operator_settings.api_workers


def make_runtime(operator_settings: Settings) -> Runtime:
    wakeups = Wakeups()
    hub_client = KubeClient(hub_api_client(operator_settings), IN_CLUSTER)
    hub = Cluster(hub_client, ChildCache(hub_client, wakeups=wakeups).start())
    prober = Prober(enabled=operator_settings.probe_providers, wake=wakeups.notify).start()
    federation = Federation.of(
        operator_settings, hub, wakeups=wakeups, on_capacity_change=wakeups.room_changed
    )
    policies = PolicyWatch(hub_client, on_change=wakeups.rules_changed).start()
    metrics.CAPACITY.source = federation.gpu_rows
    metrics.zero_reconcile_errors(KINDS)
    load = LoadReader(wake=wakeups.notify, interval=operator_settings.autoscaling_interval).start()
    return Runtime(
        settings=operator_settings,
        federation=federation,
        reads=Reads(hub, prober, policies),
        policies=policies,
        prober=prober,
        wakeups=wakeups,
        load=load,
        pool=ThreadPoolExecutor(
            max_workers=operator_settings.api_workers, thread_name_prefix="llmfleet-api"
        ),
    )


def register(registry: kopf.OperatorRegistry, operator_settings: Settings) -> None:
    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """kopf's own API access: the kubeconfig or in-cluster credentials, as the client
        library finds them."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(id="configure", registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings, operator_settings)
        runtime = make_runtime(operator_settings)
        memo[RUNTIME_KEY] = runtime
        # Resumed resources then compare with a full view of their children from the first
        # pass; a kind not synced in time is listed in place, as without the cache.
        hub = runtime.federation.hub
        if hub.children is not None:
            await runtime.run(hub.children.wait_synced, SYNC_SECONDS)
        if runtime.policies is not None:
            await runtime.run(runtime.policies.wait_synced, SYNC_SECONDS)
        if operator_settings.metrics_port:
            start_http_server(operator_settings.metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped in-cluster

    @kopf.on.cleanup(id="shutdown", registry=registry)
    async def shutdown(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get(RUNTIME_KEY)
        if runtime is None:
            return
        for task in runtime.background:
            task.cancel()
        runtime.prober.stop()
        if runtime.load is not None:
            runtime.load.stop()
        runtime.federation.stop_watches()
        if runtime.policies is not None:
            runtime.policies.stop()
        runtime.pool.shutdown(wait=False, cancel_futures=True)

    @kopf.on.probe(id="hub-api", registry=registry)
    async def hub_api(memo: kopf.Memo, **_: Any) -> str:
        """Liveness: the hub's API server answers this process (kopf restarts silent watches)."""
        runtime = runtime_of(memo)
        await runtime.run(runtime.federation.hub.client.request, "GET", "/version")
        return "ok"
