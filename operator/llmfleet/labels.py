"""The label and annotation vocabulary llmfleet reads and writes (see the API contract)."""

from typing import Final

GROUP: Final = "llmfleet.io"

# Clusters (member Secrets) and nodes: where a workload may run.
LOCATION: Final = f"{GROUP}/location"
LOCATIONS: Final = ("cloud", "onprem", "edge")
# A cluster with both cloud and HCI node pools; its nodes' location labels decide placement.
MIXED: Final = "mixed"
CLUSTER_LOCATIONS: Final = (*LOCATIONS, MIXED)

# A Secret in the operator's namespace with this label set to "true" registers a member cluster.
CLUSTER: Final = f"{GROUP}/cluster"
# Argo CD's cluster Secrets carry this label with the value "cluster"; they are accepted as is.
ARGOCD_SECRET_TYPE: Final = "argocd.argoproj.io/secret-type"  # noqa: S105 - a label key

# Children: ownership across clusters, pod roles and segmentation zones.
OWNER: Final = f"{GROUP}/owner"
ROLE: Final = f"{GROUP}/role"
SEGMENT: Final = f"{GROUP}/segment"
# The MLPipeline stage a child belongs to (training, drift): stages may share a cluster.
STAGE: Final = f"{GROUP}/stage"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
# On validated models' Deployments and scan Jobs: the revision a scan judges.
REVISION: Final = f"{GROUP}/revision"
# On an MLPipeline's inference LLMDeployment: a revision its candidate's scan passed, so
# serving it needs no second scan.
VALIDATED_REVISION: Final = f"{GROUP}/validated-revision"
MANAGED_BY_VALUE: Final = "llmfleet"

# GPU Feature Discovery labels, as NVIDIA's GPU operator writes them on GPU nodes.
GPU_PRODUCT: Final = "nvidia.com/gpu.product"
GPU_COUNT: Final = "nvidia.com/gpu.count"
GPU_MEMORY: Final = "nvidia.com/gpu.memory"
GPU_PRESENT: Final = "nvidia.com/gpu.present"
GPU_RESOURCE: Final = "nvidia.com/gpu"
# The taint GPU node pools carry so that only pods asking for GPUs land there.
GPU_TAINT_KEY: Final = "nvidia.com/gpu"
GPU_TAINT_VALUE: Final = "present"

# On every applied child: hash of the desired object, so unchanged children are not rewritten.
APPLIED_HASH: Final = f"{GROUP}/applied-hash"

# Marks a cluster built for tests and demos; destructive tests refuse any other cluster.
TEST_CLUSTER: Final = f"{GROUP}/test-cluster"
