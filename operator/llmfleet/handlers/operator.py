"""Operator-wide startup: kopf identity and timeouts, clients, thread pool, metrics, probes."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from llmfleet.api import GROUP
from llmfleet.kube.cache import WATCHED_KINDS, ChildCache
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import KubeClient
from llmfleet.kube.wakeups import Wakeups
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.reconcile import chatendpoint, llmdeployment, mlpipeline
from llmfleet.settings import Settings

SETTINGS_KEY = "llmfleet_settings"


def hub_api_client(settings: Settings) -> client.ApiClient:
    if settings.kubeconfig:
        api: client.ApiClient = config.new_client_from_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
        return api
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    operator_settings: Settings = memo[SETTINGS_KEY]
    # Own identity: finalizer, progress and diff-base annotations under llmfleet.io.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
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
    settings.execution.max_workers = operator_settings.api_workers

    hub = KubeClient(hub_api_client(operator_settings), IN_CLUSTER)
    memo.wakeups = Wakeups()
    memo.locks = {}
    memo.reconcilers = {
        llmdeployment.KIND: llmdeployment.reconcile,
        chatendpoint.KIND: chatendpoint.reconcile,
        mlpipeline.KIND: mlpipeline.reconcile,
    }
    hub.children = ChildCache(hub, wakeups=memo.wakeups)
    memo.federation = Federation(
        hub=hub,
        location=operator_settings.cluster_location,
        members_namespace=operator_settings.members_namespace,
        egress_cidrs=operator_settings.egress_cidrs,
        member_secrets=operator_settings.member_secrets,
        wakeups=memo.wakeups,
    )
    memo.pool = ThreadPoolExecutor(
        max_workers=operator_settings.api_workers, thread_name_prefix="llmfleet-api"
    )
    memo.settings = operator_settings
    # Resumed resources then compare with a full view of their children from the first pass;
    # a kind not synced in time is listed in place, as without the cache.
    await asyncio.get_running_loop().run_in_executor(
        memo.pool, hub.children.wait_synced, WATCHED_KINDS, 10
    )
    memo.following = {}  # the task of common.follow_children, started by the first reconcile
    if operator_settings.metrics_port:
        start_http_server(operator_settings.metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped in-cluster


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    for task in (memo.get("following") or {}).values():
        task.cancel()
    federation = memo.get("federation")
    if federation is not None:
        federation.stop_watches()
    pool = memo.get("pool")
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


@kopf.on.probe(id="hub-api")
async def hub_api(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the hub's API server answers this process (kopf restarts silent watches)."""
    federation: Federation = memo.federation
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(memo.pool, federation.hub.request, "GET", "/version")
    return "ok"
