"""LLMDeployment end to end: the operator process against the real clusters of the fleet."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from llmfleet import labels
from llmfleet.api import GROUP, VERSION
from llmfleet.render.common import owner_label
from localfleet import topology
from localfleet.fleet import raw_get
from tests.integration import resources
from tests.integration.conftest import Fleet, Operator, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, create_chat_endpoint, printed, ready
from tests.integration.test_mlpipeline import all_stages_up, pipeline

PLURAL = "llmdeployments"
pytestmark = pytest.mark.usefixtures("operator")


llmd = resources.llm_deployment


def managed_llmd(name: str, **managed: Any) -> dict[str, Any]:
    """A provider-run model (mode 1.1): no GPUs, no pods, the provider's endpoint."""
    body = llmd(name, "cloud")
    del body["spec"]["gpu"]
    body["spec"]["placement"]["management"] = "managed"
    body["spec"]["managed"] = managed
    return body


def create(fleet: Fleet, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def get(fleet: Fleet, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(fleet.cloud).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    )


def patch_spec(fleet: Fleet, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(fleet.cloud).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


def wait_condition(
    fleet: Fleet, namespace: str, name: str, type_: str, status: str, timeout: float = 60
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        obj = get(fleet, namespace, name)
        generation = obj["metadata"]["generation"]
        found = seen["condition"] = condition(obj, type_)
        if found.get("status") == status and found.get("observedGeneration") == generation:
            return obj
        return None

    try:
        return wait_until(reached, what=f"{name} {type_}={status}", timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; the condition was {seen.get('condition')}") from None


def deployment(api: client.ApiClient, namespace: str, name: str) -> Any:
    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def running_pods(api: client.ApiClient, namespace: str, owner: str) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"{labels.OWNER}={owner}"
    )
    return [p for p in pods.items if p.status.phase == "Running"]


def events_for(fleet: Fleet, namespace: str, name: str) -> list[tuple[str, str]]:
    events = client.CoreV1Api(fleet.cloud).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [(e.reason, e.message) for e in events.items]


def test_cloud_model_runs_on_hub_gpus_hardened_and_segmented(
    fleet: Fleet, restricted_namespace: str
) -> None:
    namespace = restricted_namespace
    create(
        fleet,
        namespace,
        llmd("hub-llm", "cloud", gpu={"count": 2, "product": ["NVIDIA-H100-80GB-HBM3"]}),
    )
    obj = wait_condition(fleet, namespace, "hub-llm", "Ready", "True")
    status = obj["status"]
    assert status["mode"] == "1.2 Cloud Self-Managed LLM"
    placement = dict(status["placements"][0])
    assert placement.pop("since")  # when it entered its state
    assert [placement] == [
        {
            "cluster": "in-cluster",
            "location": "cloud",
            "role": "preferred",
            "state": "Placed",
            "replicas": 1,
            "readyReplicas": 1,
            "endpoint": f"http://hub-llm.{namespace}.svc:8000/v1",
        }
    ]
    assert status["clusters"] == "in-cluster=1"
    assert status["segmentation"]["roles"] == [
        "network-boundary", "workload-segmentation", "kernel-minimization", "model-robustness",
    ]  # fmt: skip
    owner = owner_label("LLMDeployment", namespace, "hub-llm")
    [pod] = running_pods(fleet.cloud, namespace, owner)
    node = client.CoreV1Api(fleet.cloud).read_node(pod.spec.node_name)
    assert node.metadata.labels[labels.LOCATION] == "cloud"
    assert node.metadata.labels[labels.GPU_PRODUCT] == "NVIDIA-H100-80GB-HBM3"
    resources = pod.spec.containers[0].resources
    assert resources.requests[labels.GPU_RESOURCE] == resources.limits[labels.GPU_RESOURCE] == "2"
    assert pod.metadata.labels[labels.SEGMENT] == "cloud-model-server"
    assert pod.spec.automount_service_account_token is False
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    # The namespace enforces `restricted`: the pod exists, so the API server admitted it.
    live = deployment(fleet.cloud, namespace, "hub-llm")
    assert live.metadata.owner_references[0].kind == "LLMDeployment"
    policies = client.NetworkingV1Api(fleet.cloud).list_namespaced_network_policy(namespace)
    assert {p.metadata.name for p in policies.items} == {
        "hub-llm-default-deny", "hub-llm-ingress", "hub-llm-egress",
    }  # fmt: skip
    assert ("Placed", "placed on in-cluster") in events_for(fleet, namespace, "hub-llm")


@pytest.mark.usefixtures("idle_gpus")  # GPU models on the member: earlier tests' pods gone
def test_onprem_model_lands_on_the_member_and_is_removed_with_its_resource(
    fleet: Fleet, restricted_namespace: str
) -> None:
    namespace = restricted_namespace
    client.CoreV1Api(fleet.cloud).create_namespaced_secret(
        namespace, {"metadata": {"name": "hf"}, "stringData": {"token": "hf_canary"}}
    )
    create(
        fleet,
        namespace,
        llmd(
            "hci-llm",
            "onprem",
            gpu={"count": 2, "product": ["NVIDIA-L40S"]},
            model={"name": "m", "credentialsSecretRef": {"name": "hf", "key": "token"}},
        ),
    )
    obj = wait_condition(fleet, namespace, "hci-llm", "Ready", "True")
    assert obj["status"]["mode"] == "1.3 On-Premises Self-Managed LLM"
    assert obj["status"]["placements"][0]["cluster"] == topology.ONPREM.name
    assert "network-boundary" not in obj["status"]["segmentation"]["roles"]
    assert deployment(fleet.cloud, namespace, "hci-llm") is None

    member = deployment(fleet.onprem, namespace, "hci-llm")
    assert member.metadata.owner_references is None
    assert member.metadata.labels[labels.OWNER] == owner_label(
        "LLMDeployment", namespace, "hci-llm"
    )
    [pod] = running_pods(
        fleet.onprem, namespace, owner_label("LLMDeployment", namespace, "hci-llm")
    )
    node = client.CoreV1Api(fleet.onprem).read_node(pod.spec.node_name)
    assert node.metadata.labels[labels.LOCATION] == "onprem"
    mirrored = client.CoreV1Api(fleet.onprem).read_namespaced_secret("hf", namespace)
    assert base64.b64decode(mirrored.data["token"]) == b"hf_canary"

    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "hci-llm"
    )

    def gone() -> bool:
        objects = client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL
        )["items"]
        return not objects and deployment(fleet.onprem, namespace, "hci-llm") is None

    wait_until(gone, what="the resource and its member-cluster children to be deleted")
    selector = f"{labels.OWNER}={owner_label('LLMDeployment', namespace, 'hci-llm')}"
    core = client.CoreV1Api(fleet.onprem)
    assert core.list_namespaced_service(namespace, label_selector=selector).items == []
    assert core.list_namespaced_secret(namespace, label_selector=selector).items == []
    networking = client.NetworkingV1Api(fleet.onprem)
    assert networking.list_namespaced_network_policy(namespace, label_selector=selector).items == []


def test_managed_model_runs_no_pods_and_names_a_missing_secret(
    fleet: Fleet, namespace: str
) -> None:
    body = managed_llmd(
        "aoai",
        provider="azure-openai",
        url="https://contoso.openai.azure.com",
        deployment="gpt-4o",
        apiKeySecretRef={"name": "aoai-key", "key": "api-key"},
        egressCIDRs=["20.61.0.0/16"],
    )
    create(fleet, namespace, body)
    obj = wait_condition(fleet, namespace, "aoai", "Ready", "False")
    ready = condition(obj, "Ready")
    assert ready["reason"] == "SecretNotFound"
    assert "Secret aoai-key (key api-key) does not exist" in ready["message"]
    assert client.CoreV1Api(fleet.cloud).list_namespaced_service(namespace).items == []

    client.CoreV1Api(fleet.cloud).create_namespaced_secret(
        namespace, {"metadata": {"name": "aoai-key"}, "stringData": {"api-key": "k"}}
    )
    obj = wait_condition(fleet, namespace, "aoai", "Ready", "True")
    assert obj["status"]["mode"] == "1.1 Cloud Provider-Managed LLM"
    assert obj["status"]["segmentation"]["roles"] == ["network-boundary"]
    service = client.CoreV1Api(fleet.cloud).read_namespaced_service("aoai", namespace)
    assert (service.spec.type, service.spec.external_name) == (
        "ExternalName",
        "contoso.openai.azure.com",
    )
    assert client.AppsV1Api(fleet.cloud).list_namespaced_deployment(namespace).items == []
    egress = client.NetworkingV1Api(fleet.cloud).read_namespaced_network_policy(
        "aoai-provider-egress", namespace
    )
    assert egress.spec.egress[0].to[0].ip_block.cidr == "20.61.0.0/16"


def test_a_model_no_cluster_can_fit_is_not_left_pending(fleet: Fleet, namespace: str) -> None:
    create(fleet, namespace, llmd("too-big", "onprem", gpu={"count": 5}))
    obj = wait_condition(fleet, namespace, "too-big", "Placed", "False")
    placed = condition(obj, "Placed")
    assert placed["reason"] == "InsufficientGPU"
    row = printed(fleet.cloud, namespace, "llmdeployments", "too-big")
    assert row["Reason"] == condition(obj, "Ready")["reason"] != "Placed"
    assert "needs 5 x nvidia.com/gpu" in placed["message"]
    # Each candidate: free and total GPUs of its eligible nodes.
    assert re.search(rf"{topology.ONPREM.name}: no room: \d+/8 NVIDIA-L40S free", placed["message"])
    assert topology.ONPREM2.name in placed["message"]  # every candidate says what it has
    assert topology.A100.product in placed["message"]
    for api in fleet.clients().values():
        assert deployment(api, namespace, "too-big") is None
    assert any(reason == "InsufficientGPU" for reason, _ in events_for(fleet, namespace, "too-big"))


@pytest.mark.usefixtures("idle_gpus")  # GPU models on the member: earlier tests' pods gone
def test_location_change_moves_the_model_and_removes_the_old_placement(
    fleet: Fleet, namespace: str
) -> None:
    create(fleet, namespace, llmd("mover", "onprem", placement=pinned(topology.ONPREM)))
    wait_condition(fleet, namespace, "mover", "Ready", "True")
    assert deployment(fleet.onprem, namespace, "mover") is not None

    patch_spec(
        fleet, namespace, "mover", {"placement": {"location": "cloud", "clusterSelector": None}}
    )
    obj = wait_condition(fleet, namespace, "mover", "Ready", "True")
    assert [p["cluster"] for p in obj["status"]["placements"]] == ["in-cluster"]
    assert obj["status"]["mode"] == "1.2 Cloud Self-Managed LLM"
    assert deployment(fleet.cloud, namespace, "mover") is not None
    wait_until(
        lambda: deployment(fleet.onprem, namespace, "mover") is None,
        what="the old onprem placement to be removed",
    )


def test_scaling_updates_in_place_and_adds_a_disruption_budget(
    fleet: Fleet, namespace: str
) -> None:
    create(fleet, namespace, llmd("scaled", "cloud"))
    wait_condition(fleet, namespace, "scaled", "Ready", "True")
    uid = deployment(fleet.cloud, namespace, "scaled").metadata.uid
    patch_spec(fleet, namespace, "scaled", {"replicas": 3})
    obj = wait_condition(fleet, namespace, "scaled", "Ready", "True")
    assert obj["status"]["placements"][0]["readyReplicas"] == 3
    live = deployment(fleet.cloud, namespace, "scaled")
    assert (live.metadata.uid, live.spec.replicas) == (uid, 3)
    pdb = client.PolicyV1Api(fleet.cloud).read_namespaced_pod_disruption_budget("scaled", namespace)
    assert pdb.spec.max_unavailable == 1

    patch_spec(fleet, namespace, "scaled", {"replicas": 1})
    wait_condition(fleet, namespace, "scaled", "Ready", "True")
    pdbs = client.PolicyV1Api(fleet.cloud).list_namespaced_pod_disruption_budget(namespace)
    assert pdbs.items == []


@pytest.fixture
def mixed_member(fleet: Fleet) -> Iterator[str]:
    """The onprem cluster registered a second time as a `mixed` cluster, with one cloud GPU
    node added to it: a single cluster holding cloud and HCI node pools."""
    kubeconfig = fleet.kubeconfigs["onprem"].read_text()
    secret = {
        "metadata": {
            "name": "cluster-mixed-test",
            "namespace": topology.SYSTEM_NAMESPACE,
            "labels": {labels.CLUSTER: "true", labels.LOCATION: "mixed", "region": "mixed-test"},
        },
        "stringData": {"name": "mixed-test", "kubeconfig": kubeconfig},
    }
    pool = topology.NodePool(
        "gpu-a10", 1, "cloud", "Standard_NV36ads_A10_v5", "36", "440Gi",
        gpu=topology.GpuModel("NVIDIA-A10", 24564), gpus_per_node=1,
    )  # fmt: skip
    node = topology.kwok_node(topology.ONPREM, pool, "mixed-cloud-a10-0")
    client.CoreV1Api(fleet.onprem).create_node(node)
    client.CoreV1Api(fleet.onprem).patch_node_status(
        node["metadata"]["name"], {"status": node["status"]}
    )  # type: ignore[index]
    client.CoreV1Api(fleet.cloud).create_namespaced_secret(topology.SYSTEM_NAMESPACE, secret)
    yield "mixed-test"
    client.CoreV1Api(fleet.cloud).delete_namespaced_secret(
        "cluster-mixed-test", topology.SYSTEM_NAMESPACE
    )
    client.CoreV1Api(fleet.onprem).delete_node("mixed-cloud-a10-0")


def test_a_mixed_cluster_pins_each_workload_to_its_location_nodes(
    fleet: Fleet, namespace: str, mixed_member: str
) -> None:
    selector = {"clusterSelector": {"matchLabels": {"region": "mixed-test"}}}
    create(
        fleet, namespace, llmd("cloud-part", "cloud", placement={"location": "cloud", **selector})
    )
    create(
        fleet, namespace, llmd("hci-part", "onprem", placement={"location": "onprem", **selector})
    )
    for name, location in (("cloud-part", "cloud"), ("hci-part", "onprem")):
        obj = wait_condition(fleet, namespace, name, "Ready", "True")
        assert obj["status"]["placements"][0]["cluster"] == mixed_member
        [pod] = running_pods(fleet.onprem, namespace, owner_label("LLMDeployment", namespace, name))
        node = client.CoreV1Api(fleet.onprem).read_node(pod.spec.node_name)
        assert node.metadata.labels[labels.LOCATION] == location, (name, pod.spec.node_name)
    assert (
        running_pods(
            fleet.onprem, namespace, owner_label("LLMDeployment", namespace, "cloud-part")
        )[0].spec.node_name
        == "mixed-cloud-a10-0"
    )


def test_a_second_onprem_cluster_takes_what_its_region_or_its_gpus_select(
    fleet: Fleet, namespace: str
) -> None:
    """Two on-prem members: a clusterSelector on the region label, or a GPU product only the
    second one has, places an onprem model on llmfleet-onprem-2 and its A100 nodes."""
    create(fleet, namespace, llmd("by-region", "onprem", placement=pinned(topology.ONPREM2)))
    a100 = {"count": 2, "product": [topology.A100.product]}
    create(fleet, namespace, llmd("by-gpu", "onprem", gpu=a100))
    for name in ("by-region", "by-gpu"):
        obj = wait_condition(fleet, namespace, name, "Ready", "True")
        assert obj["status"]["placements"][0]["cluster"] == topology.ONPREM2.name
        owner = owner_label("LLMDeployment", namespace, name)
        [pod] = running_pods(fleet.onprem2, namespace, owner)
        node = client.CoreV1Api(fleet.onprem2).read_node(pod.spec.node_name)
        assert node.metadata.labels[labels.LOCATION] == "onprem"
        assert node.metadata.labels[labels.GPU_PRODUCT] == topology.A100.product
        assert deployment(fleet.onprem, namespace, name) is None


@pytest.fixture
def onprem_outage(fleet: Fleet) -> Iterator[Any]:
    """Points the onprem member Secret at a closed port, as if the HCI cluster went away."""
    core = client.CoreV1Api(fleet.cloud)
    name = f"cluster-{topology.ONPREM.name}"
    original = core.read_namespaced_secret(name, topology.SYSTEM_NAMESPACE)
    broken = yaml.safe_load(base64.b64decode(original.data["kubeconfig"]))
    broken["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"

    def cut() -> None:
        core.patch_namespaced_secret(
            name, topology.SYSTEM_NAMESPACE, {"stringData": {"kubeconfig": yaml.safe_dump(broken)}}
        )

    def restore() -> None:
        data = {"kubeconfig": original.data["kubeconfig"]}
        core.patch_namespaced_secret(name, topology.SYSTEM_NAMESPACE, {"data": data})

    yield cut, restore
    restore()


def test_an_unreachable_member_is_unknown_and_nothing_moves_or_is_deleted(
    fleet: Fleet, namespace: str, onprem_outage: Any
) -> None:
    cut, restore = onprem_outage
    create(fleet, namespace, llmd("steady", "onprem", placement=pinned(topology.ONPREM)))
    wait_condition(fleet, namespace, "steady", "Ready", "True")
    uid = deployment(fleet.onprem, namespace, "steady").metadata.uid

    cut()
    obj = wait_condition(fleet, namespace, "steady", "Ready", "Unknown")
    assert condition(obj, "Ready")["reason"] == "ClusterUnreachable"
    assert obj["status"]["placements"][0]["state"] == "Unknown"
    assert deployment(fleet.cloud, namespace, "steady") is None  # not re-placed on the hub

    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "steady"
    )
    pending = get(fleet, namespace, "steady")
    assert pending["metadata"].get("deletionTimestamp")
    assert deployment(fleet.onprem, namespace, "steady").metadata.uid == uid

    restore()
    wait_until(
        lambda: deployment(fleet.onprem, namespace, "steady") is None,
        what="the pending deletion to complete once the member is back",
        timeout=90,
    )


@pytest.mark.usefixtures("load_balancers")
def test_an_endpoint_whose_model_is_in_a_silent_cluster_is_unknown_and_recovers(
    fleet: Fleet, namespace: str, onprem_outage: Any
) -> None:
    cut, restore = onprem_outage
    create(fleet, namespace, llmd("far-model", "onprem", placement=pinned(topology.ONPREM)))
    create_chat_endpoint(
        fleet.cloud, namespace, "near-chat",
        sites=[{"location": "cloud"}], backends=[{"llmDeploymentRef": {"name": "far-model"}}],
    )  # fmt: skip

    def endpoint(status: str) -> dict[str, Any] | None:
        obj = resources.get(fleet.cloud, namespace, "chatendpoints", "near-chat")
        return obj if condition(obj, "Ready").get("status") == status else None

    wait_until(lambda: endpoint("True"), what="the endpoint to be ready", timeout=120)
    cut()
    wait_condition(fleet, namespace, "far-model", "Ready", "Unknown")
    obj = wait_until(lambda: endpoint("Unknown"), what="the endpoint to say Unknown", timeout=60)
    backend = obj["status"]["backends"][0]
    assert (backend["state"], backend["cluster"]) == ("Unknown", topology.ONPREM.name)
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True"
    assert topology.ONPREM.name in degraded["message"]
    restore()
    wait_until(lambda: endpoint("True"), what="the endpoint to recover", timeout=120)


@pytest.mark.usefixtures("load_balancers")
def test_a_moved_model_leaves_no_cross_cluster_path_behind(fleet: Fleet, namespace: str) -> None:
    create(
        fleet,
        namespace,
        llmd("roamer", "onprem", gpu={"count": 0}, placement=pinned(topology.ONPREM)),
    )
    create_chat_endpoint(
        fleet.cloud, namespace, "roam-chat",
        sites=[{"location": "cloud"}], backends=[{"llmDeploymentRef": {"name": "roamer"}}],
    )  # fmt: skip
    path = "roam-chat-cloud-to-roamer"

    def exported() -> bool:
        services = client.CoreV1Api(fleet.onprem).list_namespaced_service(namespace).items
        return path in {s.metadata.name for s in services}

    wait_until(exported, what="the path from the cloud gateway to the onprem model", timeout=90)
    patch_spec(
        fleet, namespace, "roamer", {"placement": {"location": "cloud", "clusterSelector": None}}
    )
    wait_until(lambda: not exported(), what="the old path to be removed", timeout=120)

    def admitted() -> bool:
        policies = client.NetworkingV1Api(fleet.onprem).list_namespaced_network_policy(namespace)
        return path in {p.metadata.name for p in policies.items}

    def backend_cluster() -> str:
        obj = resources.get(fleet.cloud, namespace, "chatendpoints", "roam-chat")
        return str(obj["status"]["backends"][0]["cluster"])

    # The pass that prunes the path writes the endpoint's status after it: wait for both.
    wait_until(lambda: not admitted(), what="the old path's policy to be removed", timeout=30)
    wait_until(
        lambda: backend_cluster() == "in-cluster",
        what="the endpoint's status to serve the backend from the hub",
        timeout=30,
    )


def test_a_name_longer_than_a_label_value_is_served(fleet: Fleet, namespace: str) -> None:
    name = "a-model-whose-name-is-longer-than-any-kubernetes-label-value-can-be-xy"
    assert len(name) == 70
    create(fleet, namespace, llmd(name, "cloud", gpu={"count": 0}))
    obj = wait_condition(fleet, namespace, name, "Ready", "True", timeout=90)
    assert obj["status"]["placements"][0]["cluster"] == "in-cluster"
    services = client.CoreV1Api(fleet.cloud).list_namespaced_service(namespace).items
    assert all(len(s.metadata.name) <= 63 for s in services)
    assert obj["status"]["placements"][0]["endpoint"].startswith(
        f"http://{services[0].metadata.name}."
    )


WRITE = re.compile(r'verb="(APPLY|PATCH|POST|DELETE)"')
OPERATOR_RESOURCES = re.compile(
    r'resource="(llmdeployments|chatendpoints|deployments|services|serviceaccounts|'
    r"networkpolicies|poddisruptionbudgets|secrets|namespaces|events|configmaps|ingresses|"
    r'mlpipelines|jobs|cronjobs)"'
)


def operator_writes(api: client.ApiClient) -> dict[str, float]:
    """Write requests the API server counted on the resources the operator writes."""
    _, body = raw_get(api, "/metrics", accept="text/plain")
    writes = {}
    for line in body.decode().splitlines():
        is_request_count = line.startswith("apiserver_request_total{")
        # Collection deletes (scope="namespace") are the namespace controller's, not ours; the
        # operator posts core Events only (its RBAC has no events.k8s.io): those are the
        # scheduler's and controllers'.
        by_name = 'scope="namespace"' not in line and 'group="events.k8s.io"' not in line
        if is_request_count and by_name and WRITE.search(line) and OPERATOR_RESOURCES.search(line):
            key, value = line.rsplit(" ", 1)
            writes[key] = float(value)
    return writes


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


@pytest.mark.usefixtures("load_balancers")
def test_no_writes_on_resync_or_restart(fleet: Fleet, namespace: str, operator: Operator) -> None:
    for name, location in (("still-cloud", "cloud"), ("still-hci", "onprem")):
        create(fleet, namespace, llmd(name, location))
    for name in ("still-cloud", "still-hci"):
        wait_condition(fleet, namespace, name, "Ready", "True")
    # A hybrid endpoint over both: gateways in both clusters, a cross-cluster path each way.
    create_chat_endpoint(
        fleet.cloud, namespace, "still-chat",
        sites=[{"location": "cloud"}, {"location": "onprem"}],
        backends=[
            {"llmDeploymentRef": {"name": "still-cloud"}},
            {"llmDeploymentRef": {"name": "still-hci"}},
        ],
    )  # fmt: skip

    def chat_settled() -> bool:
        obj = resources.get(fleet.cloud, namespace, "chatendpoints", "still-chat")
        return ready(obj) and condition(obj, "Degraded").get("status") == "False"

    wait_until(
        chat_settled, what="the hybrid endpoint to be ready with both paths open", timeout=90
    )
    # A pipeline across both clusters: a finished training Job in the member, its own model
    # and endpoint, a drift CronJob (on a schedule that does not fire during the test).
    drift = {"drift": {"schedule": "0 0 1 1 *", "threshold": 0.2, "image": "checker:1"}}
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "mlpipelines",
        pipeline("still-pipeline", ("onprem", "cloud", "onprem"), monitoring=drift),
    )  # fmt: skip
    wait_until(
        lambda: all_stages_up(fleet, namespace, "still-pipeline"),
        what="the pipeline to have every stage up",
        timeout=120,
    )

    apis = fleet.clients()

    def rolled_out() -> bool:
        """Gateways restart when a cross-cluster address arrives; those rollouts are writes."""
        for api in apis.values():
            for d in client.AppsV1Api(api).list_namespaced_deployment(namespace).items:
                counts = (d.status.replicas, d.status.updated_replicas, d.status.ready_replicas)
                current = d.status.observed_generation == d.metadata.generation
                if not current or counts != (d.spec.replicas,) * 3:
                    return False
        return True

    wait_until(rolled_out, what="every rollout to finish", timeout=90)

    def quiet() -> bool:
        """Earlier tests' namespaces are gone: their deletions are writes of their own."""
        return not any(
            ns.status.phase == "Terminating"
            for api in apis.values()
            for ns in client.CoreV1Api(api).list_namespace().items
        )

    wait_until(quiet, what="earlier tests' namespaces to finish terminating", timeout=180)

    # A reconcile of an earlier test's resource may still be in flight when its namespace goes
    # (its status patch and Event then answer 404); one round lets it finish before counting.
    operator.resync_rounds(1, "a resync round before counting")
    before = {c: operator_writes(api) for c, api in apis.items()}
    operator.resync_rounds(3, "three resync rounds over every resource")
    after_resync = {c: operator_writes(api) for c, api in apis.items()}
    assert {c: delta(before[c], after_resync[c]) for c in apis} == {c: {} for c in apis}

    operator.restart()
    operator.resync_rounds(2, "the restarted operator to resync every resource twice")
    after_restart = {c: operator_writes(api) for c, api in apis.items()}
    assert {c: delta(after_resync[c], after_restart[c]) for c in apis} == {c: {} for c in apis}


@pytest.fixture
def argocd_member(fleet: Fleet) -> Iterator[str]:
    """The onprem cluster registered a second time, in Argo CD's cluster-Secret format."""
    kubeconfig = yaml.safe_load(fleet.kubeconfigs["onprem"].read_text())
    cluster, user = kubeconfig["clusters"][0]["cluster"], kubeconfig["users"][0]["user"]
    config = {
        "tlsClientConfig": {
            "caData": cluster["certificate-authority-data"],
            "certData": user["client-certificate-data"],
            "keyData": user["client-key-data"],
        }
    }
    secret = {
        "metadata": {
            "name": "argocd-hci",
            "namespace": topology.SYSTEM_NAMESPACE,
            "labels": {
                labels.ARGOCD_SECRET_TYPE: "cluster",
                labels.LOCATION: "onprem",
                "gitops": "argocd",
            },
        },
        "stringData": {
            "name": "argocd-hci",
            "server": cluster["server"],
            "config": json.dumps(config),
        },
    }
    client.CoreV1Api(fleet.cloud).create_namespaced_secret(topology.SYSTEM_NAMESPACE, secret)
    yield "argocd-hci"
    client.CoreV1Api(fleet.cloud).delete_namespaced_secret("argocd-hci", topology.SYSTEM_NAMESPACE)


def test_a_cluster_registered_by_an_argocd_secret_is_placed_on(
    fleet: Fleet, namespace: str, argocd_member: str
) -> None:
    placement = {"location": "onprem", "clusterSelector": {"matchLabels": {"gitops": "argocd"}}}
    create(fleet, namespace, llmd("via-argocd", "onprem", placement=placement))
    obj = wait_condition(fleet, namespace, "via-argocd", "Ready", "True")
    assert obj["status"]["placements"][0]["cluster"] == argocd_member
    assert deployment(fleet.onprem, namespace, "via-argocd") is not None


def scrape(operator: Operator) -> dict[str, float]:
    """The operator's own metrics endpoint, as Prometheus reads it."""
    with urllib.request.urlopen(
        f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("llmfleet_"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_fleet_metrics_move_with_a_model(fleet: Fleet, namespace: str, operator: Operator) -> None:
    gpus = 'llmfleet_gpus_requested{location="onprem",product="NVIDIA-L40S"}'
    placed = 'llmfleet_placements{cluster="llmfleet-onprem",kind="LLMDeployment"}'
    reconciles = 'llmfleet_reconcile_duration_seconds_count{kind="LLMDeployment"}'
    before = scrape(operator)
    create(
        fleet, namespace, llmd("metered", "onprem", gpu={"count": 2, "product": ["NVIDIA-L40S"]})
    )
    wait_condition(fleet, namespace, "metered", "Ready", "True")
    during = wait_until(
        lambda: (s := scrape(operator)).get(placed, 0) > before.get(placed, 0) and s,
        what="the placement to show in the metrics",
    )
    assert during[gpus] - before.get(gpus, 0) == 2
    assert during[reconciles] > before.get(reconciles, 0)
    applies = sum(
        v
        for k, v in during.items()
        if k.startswith("llmfleet_api_requests_total") and 'verb="APPLY"' in k
    )
    assert applies > sum(
        v
        for k, v in before.items()
        if k.startswith("llmfleet_api_requests_total") and 'verb="APPLY"' in k
    )

    client.CustomObjectsApi(fleet.cloud).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "metered"
    )
    after = wait_until(
        lambda: (s := scrape(operator)).get(placed, 0) == before.get(placed, 0) and s,
        what="the deleted model to leave the metrics",
    )
    assert after.get(gpus, 0) == before.get(gpus, 0)
