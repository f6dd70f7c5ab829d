"""The local fleet as data: clusters, node pools, and the Node and Secret objects they become.

Pure functions only; `kwok.py` and `kind.py` turn these objects into running clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmfleet import labels

SYSTEM_NAMESPACE = "llmfleet-system"
# On each member Secret (and, as topology.kubernetes.io/region, on each node): the cluster's
# region, for workloads' `clusterSelector`.
REGION_LABEL = "region"


@dataclass(frozen=True)
class GpuModel:
    product: str  # as GPU Feature Discovery reports it in nvidia.com/gpu.product
    memory_mib: int  # nvidia.com/gpu.memory


H100 = GpuModel("NVIDIA-H100-80GB-HBM3", 81559)
L40S = GpuModel("NVIDIA-L40S", 46068)
A100 = GpuModel("NVIDIA-A100-SXM4-80GB", 81920)


@dataclass(frozen=True)
class NodePool:
    name: str
    count: int
    location: str
    instance_type: str
    cpu: str
    memory: str
    gpu: GpuModel | None = None
    gpus_per_node: int = 0

    def node_names(self, cluster: ClusterSpec) -> list[str]:
        return [f"{cluster.short_name}-{self.name}-{i}" for i in range(self.count)]


@dataclass(frozen=True)
class ClusterSpec:
    name: str  # kwok/kind cluster name, also the member cluster's name in the hub
    short_name: str  # kubeconfig file stem and node name prefix
    location: str
    is_hub: bool
    region: str
    pools: tuple[NodePool, ...]
    # Source range of the cluster's outbound traffic (its nodes' addresses, or its NAT).
    egress_cidr: str = ""

    @property
    def gpu_total(self) -> int:
        return sum(p.count * p.gpus_per_node for p in self.pools)


CLOUD = ClusterSpec(
    name="llmfleet-cloud",
    short_name="cloud",
    location="cloud",
    is_hub=True,
    region="westeurope",
    egress_cidr="10.230.0.0/16",
    pools=(
        NodePool(
            name="gpu-h100",
            count=2,
            location="cloud",
            instance_type="Standard_ND96isr_H100_v5",
            cpu="96",
            memory="1900Gi",
            gpu=H100,
            gpus_per_node=8,
        ),
        NodePool(
            name="cpu",
            count=1,
            location="cloud",
            instance_type="Standard_D16s_v5",
            cpu="16",
            memory="64Gi",
        ),
    ),
)

ONPREM = ClusterSpec(
    name="llmfleet-onprem",
    short_name="onprem",
    location="onprem",
    is_hub=False,
    region="dc-frankfurt",
    egress_cidr="10.240.0.0/16",
    pools=(
        NodePool(
            name="gpu-l40s",
            count=2,
            location="onprem",
            instance_type="hci-l40s-4x",
            cpu="64",
            memory="512Gi",
            gpu=L40S,
            gpus_per_node=4,
        ),
        NodePool(
            name="cpu",
            count=1,
            location="onprem",
            instance_type="hci-general",
            cpu="32",
            memory="128Gi",
        ),
    ),
)

# A second HCI site with another GPU product and region: spreading, failover between on-prem
# clusters, cluster selectors and residency have two on-prem candidates to choose from. It has
# fewer GPUs than llmfleet-onprem, so while both are idle an onprem workload that names neither
# a cluster (clusterSelector) nor a GPU product goes to llmfleet-onprem.
ONPREM2 = ClusterSpec(
    name="llmfleet-onprem-2",
    short_name="onprem2",
    location="onprem",
    is_hub=False,
    region="dc-munich",
    egress_cidr="10.241.0.0/16",
    pools=(
        NodePool(
            name="gpu-a100",
            count=2,
            location="onprem",
            instance_type="hci-a100-2x",
            cpu="32",
            memory="256Gi",
            gpu=A100,
            gpus_per_node=2,
        ),
        NodePool(
            name="cpu",
            count=1,
            location="onprem",
            instance_type="hci-general-small",
            cpu="8",
            memory="32Gi",
        ),
    ),
)

FLEET: tuple[ClusterSpec, ...] = (CLOUD, ONPREM, ONPREM2)
HUB = CLOUD
MEMBERS: tuple[ClusterSpec, ...] = tuple(c for c in FLEET if not c.is_hub)


def cluster_selector(cluster: ClusterSpec) -> dict[str, dict[str, str]]:
    """A workload's `clusterSelector` that narrows its location to this member (by region)."""
    return {"matchLabels": {REGION_LABEL: cluster.region}}


def node_labels(cluster: ClusterSpec, pool: NodePool, node_name: str) -> dict[str, str]:
    node_labels = {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": pool.instance_type,
        "topology.kubernetes.io/region": cluster.region,
        "agentpool": pool.name.replace("-", ""),
        labels.LOCATION: pool.location,
    }
    if pool.gpu is not None:
        node_labels |= {
            labels.GPU_PRESENT: "true",
            labels.GPU_PRODUCT: pool.gpu.product,
            labels.GPU_COUNT: str(pool.gpus_per_node),
            labels.GPU_MEMORY: str(pool.gpu.memory_mib),
        }
    return node_labels


def node_taints(pool: NodePool) -> list[dict[str, str]]:
    if pool.gpu is None:
        return []
    return [{"key": labels.GPU_TAINT_KEY, "value": labels.GPU_TAINT_VALUE, "effect": "NoSchedule"}]


def node_resources(pool: NodePool) -> dict[str, str]:
    resources = {
        "cpu": pool.cpu,
        "memory": pool.memory,
        "pods": "110",
        "ephemeral-storage": "500Gi",
    }
    if pool.gpu is not None:
        resources[labels.GPU_RESOURCE] = str(pool.gpus_per_node)
    return resources


def kwok_node(cluster: ClusterSpec, pool: NodePool, node_name: str) -> dict[str, object]:
    """A Node that kwok keeps alive: capacity and allocatable as a real GPU node reports them."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name,
            "labels": node_labels(cluster, pool, node_name) | {"type": "kwok"},
            # kwokctl's controller manages nodes carrying this annotation.
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": node_taints(pool)},
        "status": {
            "capacity": node_resources(pool),
            "allocatable": node_resources(pool),
        },
    }


def fleet_nodes(cluster: ClusterSpec) -> list[dict[str, object]]:
    return [
        kwok_node(cluster, pool, node_name)
        for pool in cluster.pools
        for node_name in pool.node_names(cluster)
    ]


# On the system namespace: the stamp of the simulated pod lifecycle the cluster runs.
SIMULATION_STAMP = "llmfleet.io/kwok-stages"


def system_namespace(simulation_stamp: str | None = None) -> dict[str, object]:
    namespace_labels = {labels.TEST_CLUSTER: "true"}
    if simulation_stamp:
        namespace_labels[SIMULATION_STAMP] = simulation_stamp
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": SYSTEM_NAMESPACE, "labels": namespace_labels},
    }


def member_secret(cluster: ClusterSpec, kubeconfig: str) -> dict[str, object]:
    """Registers `cluster` in the hub: llmfleet's own member-cluster Secret format."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": f"cluster-{cluster.name}",
            "namespace": SYSTEM_NAMESPACE,
            "labels": {
                labels.CLUSTER: "true",
                labels.LOCATION: cluster.location,
                REGION_LABEL: cluster.region,
                labels.MANAGED_BY: "localfleet",
            },
            "annotations": {f"{labels.GROUP}/egress-cidrs": cluster.egress_cidr},
        },
        "stringData": {"name": cluster.name, "kubeconfig": kubeconfig},
    }
