"""Brings the local fleet up and down: the same code for `make cluster-up` and the test fixture."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from kubernetes import client, config

from localfleet import components, kwok, seed, topology
from localfleet.paths import CLUSTER_DIR, HACK_DIR, bin_dir, ensure_binaries, kubeconfig_path

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pinned_versions() -> dict[str, str]:
    versions = {}
    for line in (HACK_DIR / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def raw_get(
    api: client.ApiClient, path: str, accept: str = "application/json", timeout: float = 30
) -> tuple[int, bytes]:
    """GET any API path (readyz, discovery, OpenAPI, Table views): status and body."""
    method, url, headers, _, _ = api.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, headers, _request_timeout=timeout)
    response.read()
    return response.status, response.data


def is_ready(kubeconfig: Path) -> bool:
    if not kubeconfig.exists():
        return False
    api = api_client(kubeconfig)
    try:
        status, body = raw_get(api, "/readyz", accept="text/plain", timeout=5)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    finally:
        api.close()
    return status == 200 and body == b"ok"


def _bring_up(
    cluster: topology.ClusterSpec,
    existing: set[str],
    ports: kwok.PortAllocator,
    bin_dir: Path,
    kube_version: str,
) -> Path:
    """Starts, restarts, reuses or creates one cluster and seeds its nodes; its kubeconfig."""
    path = kubeconfig_path(cluster.short_name)
    if cluster.name in existing:
        path.write_text(kwok.kubeconfig(cluster))
        running = components.running_by_component(cluster)
        exited = [name for name, up in running.items() if not up]
        if is_ready(path) and not exited:
            log(f"{cluster.name}: already running")
        elif exited and any(running.values()):
            log(f"{cluster.name}: restarting, as these exited: {', '.join(exited)}")
            kwok.stop(cluster)
            kwok.start(cluster)
            path.write_text(kwok.kubeconfig(cluster))
        else:
            log(f"{cluster.name}: starting the stopped cluster")
            kwok.start(cluster)
            path.write_text(kwok.kubeconfig(cluster))
        with api_client(path) as api:
            stamp = seed.simulation_stamp(api)
        if stamp not in (None, kwok.STAGES_STAMP):
            log(f"{cluster.name}: the simulated pod lifecycle changed; recreating the cluster")
            kwok.delete(cluster)
            kwok.create(cluster, bin_dir, kube_version, ports.ports())
    else:
        log(f"{cluster.name}: creating ({cluster.location}); allow a minute or two")
        kwok.create(cluster, bin_dir, kube_version, ports.ports())
    path.write_text(kwok.kubeconfig(cluster))
    path.chmod(0o600)
    with api_client(path) as api:
        written = seed.seed_nodes(api, cluster, kwok.STAGES_STAMP)
    log(f"{cluster.name}: {written} node(s) created or corrected")
    return path


def _each_cluster(work: Callable[[topology.ClusterSpec], T]) -> dict[str, T]:
    """Runs `work` for every cluster of the fleet side by side; any failure is raised once
    every cluster is done (none is left half-started behind a failing neighbour)."""
    with ThreadPoolExecutor(max_workers=len(topology.FLEET)) as pool:
        futures = {c.short_name: pool.submit(work, c) for c in topology.FLEET}
    failures = [error for f in futures.values() if (error := f.exception()) is not None]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise RuntimeError("; ".join(str(error) for error in failures)) from failures[0]
    return {name: f.result() for name, f in futures.items()}


def up() -> dict[str, Path]:
    """Starts (or reuses) every cluster of the fleet, side by side, seeds each and registers
    the members in the hub; returns the kubeconfigs by short name."""
    started = time.monotonic()
    bin_dir = ensure_binaries()
    kube_version = pinned_versions()["K8S_VERSION"].removeprefix("v")
    CLUSTER_DIR.mkdir(parents=True, exist_ok=True)
    existing = kwok.existing_clusters()
    ports = kwok.PortAllocator()
    kubeconfigs = _each_cluster(
        lambda cluster: _bring_up(cluster, existing, ports, bin_dir, kube_version)
    )
    with api_client(kubeconfigs[topology.HUB.short_name]) as hub:
        seed.register_members(hub, {c.name: kubeconfigs[c.short_name] for c in topology.FLEET})
    log(f"fleet ready in {time.monotonic() - started:.0f}s")
    return kubeconfigs


def down() -> None:
    existing = kwok.existing_clusters() if (bin_dir() / "kwokctl").exists() else set()

    def delete(cluster: topology.ClusterSpec) -> None:
        if cluster.name in existing:
            log(f"{cluster.name}: deleting")
            kwok.delete(cluster)
        kubeconfig_path(cluster.short_name).unlink(missing_ok=True)

    _each_cluster(delete)


def external_kubeconfigs() -> dict[str, Path] | None:
    """Clusters given by the user (kind, AKS...) instead of the local kwok fleet: one
    LLMFLEET_<SHORT NAME>_KUBECONFIG per cluster of the fleet."""
    paths = {
        cluster.short_name: os.environ.get(f"LLMFLEET_{cluster.short_name.upper()}_KUBECONFIG")
        for cluster in topology.FLEET
    }
    if not any(paths.values()):
        return None
    missing = [name for name, path in paths.items() if not path]
    if missing:
        raise RuntimeError(
            "set every LLMFLEET_<CLUSTER>_KUBECONFIG or none; missing: "
            + ", ".join(f"LLMFLEET_{name.upper()}_KUBECONFIG" for name in missing)
        )
    return {name: Path(path) for name, path in paths.items() if path}
