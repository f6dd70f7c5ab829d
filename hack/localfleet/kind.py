"""The same fleet on kind, for users with Docker: real kubelets, GPUs faked on node status.

kind nodes are containers, so the GPU pools are ordinary workers that get the labels and taint
of a GPU pool and `nvidia.com/gpu` capacity patched into their status (Kubernetes' documented
way to advertise an extended resource). Pods asking for GPUs are scheduled for real; the
containers they start simply see no GPU.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from localfleet import seed, topology
from localfleet.fleet import api_client
from localfleet.paths import CLUSTER_DIR, kubeconfig_path
from localfleet.topology import ClusterSpec

KIND_VERSION = "v0.29.0"


def kind_binary() -> str:
    found = shutil.which("kind")
    if found:
        return found
    raise RuntimeError(
        f"kind is not installed; install it with `go install sigs.k8s.io/kind@{KIND_VERSION}` "
        "(and make sure Docker is running)"
    )


def kind_config(cluster: ClusterSpec) -> dict[str, Any]:
    workers = sum(pool.count for pool in cluster.pools)
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"apiServerAddress": "127.0.0.1"},
        "nodes": [{"role": "control-plane"}, *({"role": "worker"} for _ in range(workers))],
    }


def pool_assignment(cluster: ClusterSpec, worker_names: list[str]) -> list[tuple[str, Any]]:
    """Pairs kind's workers (sorted) with the fleet's pools, GPU pools first."""
    slots = [pool for pool in cluster.pools for _ in range(pool.count)]
    if len(worker_names) < len(slots):
        raise RuntimeError(
            f"{cluster.name} has {len(worker_names)} kind workers, the fleet needs {len(slots)}; "
            "delete it with `make kind-down` and run `make kind-up` again"
        )
    return list(zip(sorted(worker_names), slots, strict=False))


def seed_kind_nodes(api: client.ApiClient, cluster: ClusterSpec) -> None:
    core = client.CoreV1Api(api)
    seed.apply_namespace(core, topology.system_namespace())
    workers = [
        n.metadata.name
        for n in core.list_node().items
        if "node-role.kubernetes.io/control-plane" not in (n.metadata.labels or {})
    ]
    for node_name, pool in pool_assignment(cluster, workers):
        core.patch_node(
            node_name,
            {
                "metadata": {"labels": topology.node_labels(cluster, pool, node_name)},
                "spec": {"taints": topology.node_taints(pool) or None},
            },
        )
        gpu_resources = {
            k: v for k, v in topology.node_resources(pool).items() if k.startswith("nvidia.com/")
        }
        if gpu_resources:
            core.patch_node_status(
                node_name, {"status": {"capacity": gpu_resources, "allocatable": gpu_resources}}
            )


def up() -> dict[str, Path]:
    kind = kind_binary()
    listed = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, check=True)
    existing = set(listed.stdout.split())
    CLUSTER_DIR.mkdir(parents=True, exist_ok=True)
    kubeconfigs = {}
    for cluster in topology.FLEET:
        if cluster.name not in existing:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
                yaml.safe_dump(kind_config(cluster), config_file)
            create = [kind, "create", "cluster", "--name", cluster.name]
            subprocess.run([*create, "--config", config_file.name, "--wait", "5m"], check=True)
            Path(config_file.name).unlink()
        path = kubeconfig_path(cluster.short_name)
        get_kubeconfig = [kind, "get", "kubeconfig", "--name", cluster.name]
        path.write_text(
            subprocess.run(get_kubeconfig, capture_output=True, text=True, check=True).stdout
        )
        path.chmod(0o600)
        kubeconfigs[cluster.short_name] = path

    for cluster in topology.FLEET:
        with api_client(kubeconfigs[cluster.short_name]) as api:
            seed_kind_nodes(api, cluster)
    with api_client(kubeconfigs[topology.HUB.short_name]) as hub:
        seed.register_members(hub, {c.name: kubeconfigs[c.short_name] for c in topology.FLEET})
    return kubeconfigs


def down() -> None:
    kind = kind_binary()
    for cluster in topology.FLEET:
        subprocess.run([kind, "delete", "cluster", "--name", cluster.name], check=True)
        kubeconfig_path(cluster.short_name).unlink(missing_ok=True)
