"""Prints the federation as the operator sees it: the hub, the members its Secrets register,
and every node with its location and GPUs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from kubernetes import client, config

from llmfleet import labels
from llmfleet.placement.clusters import (
    MemberCluster,
    in_cluster_member,
    is_member_secret,
    member_from_secret,
)
from localfleet import topology

FINISHED_PHASES = {"Succeeded", "Failed"}
TABLE_HEADERS = (
    *("CLUSTER", "LOCATION", "NODE", "NODE-LOCATION"),
    *("GPU-PRODUCT", "GPUS", "ALLOCATABLE", "IN-USE"),
)


@dataclass(frozen=True)
class NodeRow:
    """One line of the federation table; the fields are its columns, in order."""

    cluster: str
    cluster_location: str
    node: str
    node_location: str
    gpu_product: str
    gpu_capacity: int
    gpu_allocatable: int
    gpu_in_use: int


def gpu_requests_by_node(
    pods: Iterable[Any], resource: str = labels.GPU_RESOURCE
) -> dict[str, int]:
    in_use: dict[str, int] = {}
    for pod in pods:
        if not pod.spec.node_name or pod.status.phase in FINISHED_PHASES:
            continue
        for container in pod.spec.containers:
            requests = (container.resources and container.resources.requests) or {}
            count = int(requests.get(resource, 0))
            in_use[pod.spec.node_name] = in_use.get(pod.spec.node_name, 0) + count
    return in_use


def node_rows(member: MemberCluster, nodes: Iterable[Any], in_use: dict[str, int]) -> list[NodeRow]:
    rows = []
    for node in nodes:
        node_labels = node.metadata.labels or {}
        rows.append(
            NodeRow(
                cluster=member.name if member.kubeconfig else topology.HUB.name + " (hub)",
                cluster_location=member.location,
                node=node.metadata.name,
                node_location=node_labels.get(labels.LOCATION, "-"),
                gpu_product=node_labels.get(labels.GPU_PRODUCT, "-"),
                gpu_capacity=int((node.status.capacity or {}).get(labels.GPU_RESOURCE, 0)),
                gpu_allocatable=int((node.status.allocatable or {}).get(labels.GPU_RESOURCE, 0)),
                gpu_in_use=in_use.get(node.metadata.name, 0),
            )
        )
    return sorted(rows, key=lambda row: (row.cluster, row.node))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(headers), *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def fleet_table(rows: Sequence[NodeRow]) -> str:
    return render_table(TABLE_HEADERS, [astuple(row) for row in rows])


def discover(hub: client.ApiClient) -> tuple[list[MemberCluster], list[str]]:
    """The hub and every member its labelled Secrets register; problems are returned, not raised."""
    members = [in_cluster_member(topology.HUB.location)]
    problems = []
    secrets = client.CoreV1Api(hub).list_namespaced_secret(topology.SYSTEM_NAMESPACE).items
    for secret in secrets:
        secret_labels = secret.metadata.labels or {}
        if not is_member_secret(secret_labels):
            continue
        try:
            members.append(member_from_secret(hub.sanitize_for_serialization(secret)))
        except ValueError as error:
            problems.append(str(error))
    return members, problems


def federation_rows(hub: client.ApiClient) -> tuple[list[NodeRow], list[str]]:
    members, problems = discover(hub)
    rows: list[NodeRow] = []
    for member in members:
        api = (
            config.new_client_from_config_dict(dict(member.kubeconfig))
            if member.kubeconfig
            else hub
        )
        try:
            core = client.CoreV1Api(api)
            in_use = gpu_requests_by_node(core.list_pod_for_all_namespaces().items)
            rows += node_rows(member, core.list_node().items, in_use)
        except Exception as error:  # noqa: BLE001 - an unreachable member is shown, not fatal
            problems.append(f"{member.name} ({member.source}) is unreachable: {error}")
        finally:
            if api is not hub:
                api.close()
    return rows, problems
