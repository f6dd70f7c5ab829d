"""`make demo`: the fleet, the CRDs, the operator, a handful of models, and where they landed."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import yaml
from kubernetes import client

from llmfleet.render.common import owner_label
from localfleet import fleet, seed, show, topology
from localfleet.paths import CLUSTER_DIR, REPO_ROOT

NAMESPACE = "llmfleet-demo"
SAMPLES = REPO_ROOT / "config" / "samples" / "llm-deployment-models"
MANIFESTS = [
    REPO_ROOT / "config" / "demo" / "secrets.yaml",
    SAMPLES / "01-llm-cloud-managed-cloud-endpoint.yaml",
    SAMPLES / "02-llm-cloud-unmanaged-cloud-endpoint.yaml",
    SAMPLES / "12-llm-onprem-unmanaged-onprem-endpoint.yaml",
    REPO_ROOT / "config" / "demo" / "onprem-too-big.yaml",
]
KINDS = {"LLMDeployment": "llmdeployments"}


def apply_manifests(api: client.ApiClient) -> list[str]:
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or (doc["kind"] != "Secret" and doc["kind"] not in KINDS):
                continue  # ChatEndpoints of the samples wait for their own controller
            name = doc["metadata"]["name"]
            if doc["kind"] == "Secret":
                core.patch_namespaced_secret(
                    name, NAMESPACE, doc, field_manager="llmfleet-demo", force=True,
                    _content_type="application/apply-patch+yaml",
                )  # fmt: skip
                continue
            objects.patch_namespaced_custom_object(
                "llmfleet.io", "v1alpha1", NAMESPACE, KINDS[doc["kind"]], name, doc,
                field_manager="llmfleet-demo", force=True,
                _content_type="application/apply-patch+yaml",
            )  # fmt: skip
            names.append(name)
    return names


def settled(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return False
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    return (
        conditions.get("Ready", {}).get("status") == "True"
        or conditions.get("Placed", {}).get("status") == "False"
    )


def landing(api_for: dict[str, client.ApiClient], obj: dict[str, Any]) -> tuple[str, str]:
    """Nodes and GPUs of the pods of one LLMDeployment, read from the cluster it landed on."""
    placements = (obj.get("status") or {}).get("placements") or []
    if not placements:
        return "-", "-"
    api = api_for.get(placements[0]["cluster"])
    if api is None:
        return "(provider)", "-"
    owner = owner_label("LLMDeployment", NAMESPACE, obj["metadata"]["name"])
    pods = client.CoreV1Api(api).list_namespaced_pod(
        NAMESPACE, label_selector=f"llmfleet.io/owner={owner}"
    )
    nodes = sorted({p.spec.node_name for p in pods.items if p.spec.node_name})
    gpus = show.gpu_requests_by_node(pods.items)
    return ",".join(nodes) or "-", ",".join(str(gpus.get(n, 0)) for n in nodes) or "-"


def main() -> int:
    kubeconfigs = fleet.up()
    with (
        fleet.api_client(kubeconfigs["cloud"]) as hub,
        fleet.api_client(kubeconfigs["onprem"]) as member,
    ):
        seed.install_crds(hub, REPO_ROOT / "crds")
        seed.apply_namespace(
            client.CoreV1Api(hub),
            {
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                }
            },
        )
        log = CLUSTER_DIR / "operator.log"
        fleet.log(f"starting the operator (log: {log})")
        with log.open("wb") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(kubeconfigs["cloud"]),
                 "--namespace", NAMESPACE, "--resync-seconds", "3", "--metrics-port", "0",
                 "--liveness-port", "18080"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            names = apply_manifests(hub)
            fleet.log(f"applied {len(names)} LLMDeployments in namespace {NAMESPACE}; waiting")
            objects = wait_for(hub, names, timeout=90)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
        api_for = {"in-cluster": hub, topology.ONPREM.name: member}
        rows = []
        for obj in objects:
            status = obj.get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            cluster = ",".join(p["cluster"] for p in status.get("placements") or []) or "-"
            nodes, gpus = landing(api_for, obj)
            ready = conditions.get("Ready", {})
            note = (
                ready.get("message", "")
                if ready.get("status") != "True"
                else ready.get("reason", "")
            )
            rows.append((obj["metadata"]["name"], status.get("mode", "-"), cluster, nodes, gpus,
                         ready.get("status", "-"), note))  # fmt: skip
        print()
        print(
            show.render_table(
                ("LLMDEPLOYMENT", "MODE", "CLUSTER", "NODE", "GPUS", "READY", "WHY"), rows
            )
        )
        print()
        fleet_rows, _ = show.federation_rows(hub)
        print(show.fleet_table(fleet_rows))
        print(
            f"\nThe resources stay in namespace {NAMESPACE}; `make run` keeps reconciling them, "
            "`make cluster-down` removes everything."
        )
    return 0


def wait_for(hub: client.ApiClient, names: list[str], timeout: float) -> list[dict[str, Any]]:
    objects_api = client.CustomObjectsApi(hub)
    deadline = time.monotonic() + timeout
    while True:
        objects = [
            objects_api.get_namespaced_custom_object(
                "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments", n
            )
            for n in names
        ]
        if all(settled(o) for o in objects) or time.monotonic() > deadline:
            return objects
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
