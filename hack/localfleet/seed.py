"""Gives a running cluster its fleet shape: GPU and CPU nodes, the system namespace, members.

Writes only what differs, so running it against an already seeded cluster changes nothing.
"""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from localfleet import topology
from localfleet.paths import HACK_DIR
from localfleet.topology import ClusterSpec

NOT_FOUND = 404


def _is_subset(wanted: dict[str, Any], live: dict[str, Any] | None) -> bool:
    live = live or {}
    return all(live.get(key) == value for key, value in wanted.items())


def apply_kwok_node(core: client.CoreV1Api, manifest: dict[str, Any]) -> bool:
    """Creates or corrects one simulated node; returns True when it wrote anything."""
    name = manifest["metadata"]["name"]
    try:
        live = core.read_node(name)
    except ApiException as error:
        if error.status != NOT_FOUND:
            raise
        core.create_node(manifest)
        return True
    wrote = False
    metadata, spec, status = manifest["metadata"], manifest["spec"], manifest["status"]
    live_taints = [
        {"key": t.key, "value": t.value, "effect": t.effect} for t in (live.spec.taints or [])
    ]
    if (
        not _is_subset(metadata["labels"], live.metadata.labels)
        or not _is_subset(metadata["annotations"], live.metadata.annotations)
        or live_taints != spec["taints"]
    ):
        core.patch_node(
            name,
            {
                "metadata": {"labels": metadata["labels"], "annotations": metadata["annotations"]},
                "spec": {"taints": spec["taints"] or None},
            },
        )
        wrote = True
    if (
        live.status.capacity != status["capacity"]
        or live.status.allocatable != status["allocatable"]
    ):
        core.patch_node_status(
            name, {"status": {"capacity": status["capacity"], "allocatable": status["allocatable"]}}
        )
        wrote = True
    return wrote


def apply_namespace(core: client.CoreV1Api, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    try:
        live = core.read_namespace(name)
    except ApiException as error:
        if error.status != NOT_FOUND:
            raise
        core.create_namespace(manifest)
        return
    if not _is_subset(manifest["metadata"]["labels"], live.metadata.labels):
        core.patch_namespace(name, {"metadata": {"labels": manifest["metadata"]["labels"]}})


def apply_secret(core: client.CoreV1Api, manifest: dict[str, Any]) -> None:
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    try:
        live = core.read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status != NOT_FOUND:
            raise
        core.create_namespaced_secret(namespace, manifest)
        return
    wanted = {key: value.encode() for key, value in manifest["stringData"].items()}
    live_data = {key: base64.b64decode(value) for key, value in (live.data or {}).items()}
    annotations = manifest["metadata"].get("annotations") or {}
    if (
        live_data != wanted
        or not _is_subset(manifest["metadata"]["labels"], live.metadata.labels)
        or not _is_subset(annotations, live.metadata.annotations)
    ):
        core.replace_namespaced_secret(name, namespace, manifest)


def simulation_stamp(api: client.ApiClient) -> str | None:
    """The stages stamp of a seeded cluster ("" if it has none); None before its first seed."""
    try:
        namespace = client.CoreV1Api(api).read_namespace(topology.SYSTEM_NAMESPACE)
    except ApiException as error:
        if error.status != NOT_FOUND:
            raise
        return None
    return str((namespace.metadata.labels or {}).get(topology.SIMULATION_STAMP, ""))


def seed_nodes(api: client.ApiClient, cluster: ClusterSpec, simulation: str | None = None) -> int:
    core = client.CoreV1Api(api)
    apply_namespace(core, topology.system_namespace(simulation))
    return sum(apply_kwok_node(core, node) for node in topology.fleet_nodes(cluster))


def member_access(admin_kubeconfig: Path) -> str:
    """The kubeconfig the operator gets for a member, as a user makes it: the least-privilege
    ServiceAccount of config/member-rbac/ and its token (hack/member-kubeconfig.sh)."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / "member-kubeconfig.sh"), str(admin_kubeconfig)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"hack/member-kubeconfig.sh {admin_kubeconfig} failed:\n{result.stderr}")
    return result.stdout


def register_members(hub: client.ApiClient, admin_kubeconfigs: dict[str, Path]) -> None:
    """Registers every member cluster in the hub as a labelled Secret holding the kubeconfig
    of its least-privilege ServiceAccount."""
    core = client.CoreV1Api(hub)
    for cluster in topology.FLEET:
        if not cluster.is_hub:
            kubeconfig = member_access(admin_kubeconfigs[cluster.name])
            apply_secret(core, topology.member_secret(cluster, kubeconfig))


def install_crds(api: client.ApiClient, directory: Path, timeout: float = 60) -> list[str]:
    """Server-side applies every CRD in `directory` and waits until each is Established."""
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(directory.glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        name = manifest["metadata"]["name"]
        extensions.patch_custom_resource_definition(
            name,
            manifest,
            field_manager="llmfleet-dev",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(extensions.read_custom_resource_definition(name)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} did not become Established in {timeout:.0f}s")
            time.sleep(0.2)
    return names


def _established(crd: Any) -> bool:
    conditions = (crd.status and crd.status.conditions) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)
