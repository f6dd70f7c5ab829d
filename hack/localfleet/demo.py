"""`make demo`: the fleet, the CRDs, the operator, a handful of models, where they landed,
and a model whose replicas follow the load."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import yaml
from kubernetes import client

from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.api.validation import Validation
from llmfleet.render.common import owner_label
from localfleet import fleet, gateway_run, scan_run, seed, show, topology
from localfleet.demo_autoscaling import LoadAct, print_autoscaling
from localfleet.loadbalancers import LoadBalancerSimulator
from localfleet.paths import CLUSTER_DIR, REPO_ROOT
from localfleet.prometheus import LocalPrometheus

NAMESPACE = "llmfleet-demo"
# The same overflowing model in a namespace a FleetPolicy keeps on-prem: it refuses to overflow.
RESTRICTED_NAMESPACE = "llmfleet-demo-restricted"
OVERFLOW = REPO_ROOT / "config" / "demo" / "overflow.yaml"
POLICY = REPO_ROOT / "config" / "samples" / "fleetpolicy-restricted.yaml"
SAMPLES = REPO_ROOT / "config" / "samples" / "llm-deployment-models"
MANIFESTS = [
    REPO_ROOT / "config" / "demo" / "secrets.yaml",
    SAMPLES / "01-llm-cloud-managed-cloud-endpoint.yaml",
    SAMPLES / "02-llm-cloud-unmanaged-cloud-endpoint.yaml",
    SAMPLES / "10-llm-onprem-unmanaged-onprem-endpoint.yaml",
    REPO_ROOT / "config" / "demo" / "onprem-too-big.yaml",
    OVERFLOW,
]
KINDS = {
    "LLMDeployment": "llmdeployments",
    "ChatEndpoint": "chatendpoints",
    "MLPipeline": "mlpipelines",
}
HYBRID = REPO_ROOT / "config" / "demo" / "hybrid-chat.yaml"
VALIDATION = REPO_ROOT / "config" / "demo" / "validation.yaml"
PIPELINE = REPO_ROOT / "config" / "demo" / "pipeline.yaml"


def apply_manifests(api: client.ApiClient, documents: list[dict[str, Any]]) -> list[str]:
    """Server-side applies the demo's Secrets, models and endpoints; returns the models."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    apply_options: dict[str, Any] = {
        "field_manager": "llmfleet-demo",
        "force": True,
        "_content_type": "application/apply-patch+yaml",
    }
    names = []
    for doc in documents:
        name, kind = doc["metadata"]["name"], doc["kind"]
        if kind == "ChatEndpoint" and name not in ("hybrid-chat", "vetted-chat"):
            continue  # the samples' own endpoints are left out to keep the output short
        if kind == "Secret":
            core.patch_namespaced_secret(name, NAMESPACE, doc, **apply_options)
            continue
        objects.patch_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", NAMESPACE, KINDS[kind], name, doc, **apply_options
        )
        if kind == "LLMDeployment":
            names.append(name)
    return names


def demo_documents() -> list[dict[str, Any]]:
    texts = [path.read_text() for path in MANIFESTS]
    texts.append(HYBRID.read_text())
    texts.append(VALIDATION.read_text())
    texts.append(PIPELINE.read_text())
    return [doc for text in texts for doc in yaml.safe_load_all(text) if doc]


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
    with ExitStack() as stack:
        apis = {
            c.short_name: stack.enter_context(fleet.api_client(kubeconfigs[c.short_name]))
            for c in topology.FLEET
        }
        hub = apis[topology.HUB.short_name]
        # Where status says something landed ("in-cluster" is the hub) -> that cluster's API.
        api_for = {"in-cluster": hub} | {c.name: apis[c.short_name] for c in topology.MEMBERS}
        seed.install_crds(hub, REPO_ROOT / "crds")
        for name, extra in ((NAMESPACE, {}), (RESTRICTED_NAMESPACE, RESTRICTED_LABELS)):
            seed.apply_namespace(
                client.CoreV1Api(hub),
                {
                    "metadata": {
                        "name": name,
                        "labels": {"pod-security.kubernetes.io/enforce": "restricted", **extra},
                    }
                },
            )
        load_act = LoadAct(LocalPrometheus(CLUSTER_DIR / "prometheus"), NAMESPACE)
        stack.callback(load_act.stop)
        log = CLUSTER_DIR / "operator.log"
        fleet.log(f"starting the operator (log: {log})")
        with log.open("wb") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(kubeconfigs["cloud"]),
                 "--namespace", NAMESPACE, "--namespace", RESTRICTED_NAMESPACE,
                 "--resync-seconds", "3", "--metrics-port", "0",
                 "--liveness-port", "18080", "--no-provider-probes",
                 "--egress-cidr", topology.HUB.egress_cidr,
                 "--prometheus-url", load_act.prometheus.url, "--autoscaling-interval", "2"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        balancers = LoadBalancerSimulator(apis).start()
        try:
            names = apply_manifests(hub, demo_documents())
            fleet.log(
                f"applied {len(names)} LLMDeployments, two ChatEndpoints and an MLPipeline; waiting"
            )
            objects = wait_for(hub, names, timeout=90)
            # Once the first copy has taken the on-prem room it could, the restricted copy.
            restricted = apply_restricted(hub)
            refused = wait_for_object(
                hub, "llmdeployments", restricted, decided, 60, namespace=RESTRICTED_NAMESPACE
            )
            for model in ("tiny-llama", "vetted-llm", "unvetted-llm"):
                wait_for_object(hub, "llmdeployments", model, scanned, 90)
            endpoint = wait_for_object(hub, "chatendpoints", "hybrid-chat", routes_settled, 90)
            vetted = wait_for_object(hub, "chatendpoints", "vetted-chat", routes_settled, 90)
            scans = [
                wait_for_object(hub, "llmdeployments", model, scanned, 10)
                for model in ("vetted-llm", "unvetted-llm")
            ]
            # Trained in the cloud, then served on premises.
            pipeline = wait_for_object(hub, "mlpipelines", "support-bot", settled, 120)
            answer, real_scan = ask_the_gateway(api_for, endpoint, hub)
            scaling = load_act.run(hub)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            balancers.stop()
        print_models(api_for, objects)
        print()
        print_residency(next(o for o in objects if o["metadata"]["name"] == restricted), refused)
        print()
        print_endpoint(endpoint, answer)
        print()
        print_validation(scans, vetted, real_scan)
        print()
        print_pipeline(pipeline)
        print()
        print_autoscaling(scaling)
        print()
        fleet_rows, _ = show.federation_rows(hub)
        print(show.fleet_table(fleet_rows))
        print(
            f"\nThe resources stay in namespace {NAMESPACE}; `make run` keeps reconciling them, "
            "`make cluster-down` removes everything."
        )
    return 0


def print_models(api_for: dict[str, client.ApiClient], objects: list[dict[str, Any]]) -> None:
    """Where each LLMDeployment landed: clusters, nodes, GPUs, and why when it is not ready."""
    rows = []
    for obj in objects:
        status = obj.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        cluster = ",".join(p["cluster"] for p in status.get("placements") or []) or "-"
        nodes, gpus = landing(api_for, obj)
        ready = conditions.get("Ready", {})
        note = (
            ready.get("message", "") if ready.get("status") != "True" else ready.get("reason", "")
        )
        rows.append((obj["metadata"]["name"], status.get("mode", "-"), cluster, nodes, gpus,
                     ready.get("status", "-"), note))  # fmt: skip
    print()
    print(
        show.render_table(
            ("LLMDEPLOYMENT", "MODE", "CLUSTER", "NODE", "GPUS", "READY", "WHY"), rows
        )
    )


RESTRICTED_LABELS = {"llmfleet.io/data-class": "restricted"}


def apply_restricted(hub: client.ApiClient) -> str:
    """The residency policy, and the overflowing model again in the namespace it selects."""
    objects = client.CustomObjectsApi(hub)
    options: dict[str, Any] = {
        "field_manager": "llmfleet-demo",
        "force": True,
        "_content_type": "application/apply-patch+yaml",
    }
    policy = yaml.safe_load(POLICY.read_text())
    objects.patch_cluster_custom_object(
        "llmfleet.io", "v1alpha1", "fleetpolicies", policy["metadata"]["name"], policy, **options
    )
    model = yaml.safe_load(OVERFLOW.read_text())
    objects.patch_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", RESTRICTED_NAMESPACE, "llmdeployments",
        model["metadata"]["name"], model, **options,
    )  # fmt: skip
    return str(model["metadata"]["name"])


def decided(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and any(
        c["type"] == "Ready" and c.get("reason") == "PolicyViolation"
        for c in status.get("conditions") or []
    )


def print_residency(overflowing: dict[str, Any], refused: dict[str, Any]) -> None:
    """The same model twice: overflowing to the cloud, and refusing to where a policy rules."""
    rows = []
    for obj in (overflowing, refused):
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        roles = ", ".join(
            f"{p['cluster']}={p.get('replicas', 0)} ({p.get('role', 'preferred')})"
            for p in status.get("placements") or []
            if p.get("state") in ("Placed", "Unknown", "Draining")
        )
        rows.append((obj["metadata"]["namespace"], obj["metadata"]["name"], roles or "-",
                     ready.get("reason", "-"), ready.get("message", "")[:160]))  # fmt: skip
    print(
        "On-prem first, overflow to the cloud; a FleetPolicy keeps a restricted namespace on-prem:"
    )
    print(show.render_table(("NAMESPACE", "LLMDEPLOYMENT", "REPLICAS", "READY", "WHY"), rows))


def wait_for_object(
    hub: client.ApiClient,
    plural: str,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    *,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """The object once `done` says so, or as it is when the time is up (the tables say why)."""
    objects_api = client.CustomObjectsApi(hub)
    deadline = time.monotonic() + timeout
    while True:
        obj = dict(
            objects_api.get_namespaced_custom_object(
                "llmfleet.io", "v1alpha1", namespace, plural, name
            )
        )
        if done(obj) or time.monotonic() > deadline:
            return obj
        time.sleep(1)


def sites_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    current = status.get("observedGeneration") == obj["metadata"]["generation"]
    sites = status.get("sites") or []
    return bool(current and sites and all(s["ready"] for s in sites))


def routes_settled(obj: dict[str, Any]) -> bool:
    """Sites ready, and every backend's scan decided (routed, or held back)."""
    backends = (obj.get("status") or {}).get("backends") or []
    return sites_ready(obj) and all(b.get("state") != "NotReady" for b in backends)


def scanned(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    current = status.get("observedGeneration") == obj["metadata"]["generation"]
    validated = next((c for c in status.get("conditions") or [] if c["type"] == "Validated"), {})
    return current and validated.get("status") in ("True", "False")


def ask_the_gateway(
    api_for: dict[str, client.ApiClient], endpoint: dict[str, Any], hub: client.ApiClient
) -> tuple[str, str]:
    """Runs the on-prem site's gateway as rendered, on 127.0.0.1, in front of llama.cpp's
    llama-server started with the arguments the operator rendered for tiny-llama (a tiny
    random-weight model written here), and asks it a question; then scans that server with
    garak as tiny-llama's validation Job is rendered."""
    sites = (endpoint.get("status") or {}).get("sites") or []
    cluster = next((s.get("cluster") for s in sites if s["location"] == "onprem"), None)
    if cluster is None or cluster not in api_for:
        return f"the on-prem site is not placed ({cluster or 'no cluster'})", "-"
    fleet.log(
        "starting llama-server with tiny-llama's rendered arguments and the on-prem gateway's "
        "LiteLLM proxy locally, as rendered (about 15 s)"
    )
    with gateway_run.before_llamacpp(
        api_for[cluster], NAMESPACE, "tiny-llama", "hybrid-chat-onprem", CLUSTER_DIR / "demo-chat"
    ) as (gateway, server):
        code, answer = gateway.chat("demo-master-key", "Which site answers me?")
        refused, _ = gateway.chat(None, "no key")
        fleet.log("scanning llama-server with garak, as tiny-llama's validation Job runs it")
        real_scan = scan_llama_server(api_for[cluster], hub, server.url)
    if code != 200:
        return f"HTTP {code}: {answer}", real_scan
    # Random weights speak in stray bytes: show the printable ASCII of the answer.
    text = " ".join(re.sub(r"[^ -~]", " ", answer["choices"][0]["message"]["content"]).split())
    text = text[:60]
    tokens = answer["usage"]["completion_tokens"]
    return (
        f"HTTP 200, {tokens} tokens from llama-server: {text!r} (without a key: HTTP {refused})",
        real_scan,
    )


def scan_llama_server(api: client.ApiClient, hub: client.ApiClient, url: str) -> str:
    tiny = client.CustomObjectsApi(hub).get_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments", "tiny-llama"
    )
    spec = LLMDeploymentSpec.model_validate(tiny["spec"])
    placements = (tiny.get("status") or {}).get("placements") or [{}]
    files, container = scan_run.from_cluster(api, NAMESPACE, "tiny-llama")
    found = scan_run.run(
        files, container, model_url=placements[0].get("endpoint", ""), local_url=url,
        workdir=CLUSTER_DIR / "demo-scan",
    )  # fmt: skip
    entry = found.status_entry(spec.validation or Validation())
    probes = ", ".join(
        f"{p['probe']} {p['passed']}/{p['total']}" for p in entry.get("probes") or []
    )
    return f"{entry['verdict']} ({entry['reason']}) in {found.seconds:.1f} s: {probes or '-'}"


def print_endpoint(endpoint: dict[str, Any], answer: str) -> None:
    status = endpoint.get("status") or {}
    rows = [
        (
            endpoint["metadata"]["name"],
            f"{site['location']}/{site['management']}",
            site["model"],
            site["cluster"] or "(provider)",
            site["url"],
            str(site["ready"]),
        )
        for site in status.get("sites") or []
    ]
    print(f"ChatEndpoint hybrid-chat: {status.get('mode', '-')}")
    print(show.render_table(("CHATENDPOINT", "SITE", "MODEL", "CLUSTER", "URL", "READY"), rows))
    print(
        "\nA request through the on-prem gateway (its primary backend m10-llm is a simulated "
        "model server, so it falls back to tiny-llama, served by a real llama.cpp server on "
        f"127.0.0.1; random weights, so the words mean nothing):\n  {answer}"
    )


def print_validation(scans: list[dict[str, Any]], vetted: dict[str, Any], real_scan: str) -> None:
    states = {b["name"]: b["state"] for b in (vetted.get("status") or {}).get("backends") or []}
    rows = []
    for obj in scans:
        status = obj.get("status") or {}
        validated = next(c for c in status.get("conditions") or [] if c["type"] == "Validated")
        name = obj["metadata"]["name"]
        routed = "yes" if states.get(name) == "Ready" else f"no ({states.get(name, '-')})"
        rows.append(
            (name, validated["status"], validated["reason"], routed, validated["message"][:120])
        )
    print("Validation before exposure (garak probes' pass rates against minPassRate):")
    print(show.render_table(("LLMDEPLOYMENT", "VALIDATED", "REASON", "ROUTED", "DETAIL"), rows))
    print(
        "\nA real garak 0.17.1 scan of tiny-llama's llama-server on 127.0.0.1, run as its "
        f"validation Job is rendered:\n  {real_scan}"
    )


def print_pipeline(pipeline: dict[str, Any]) -> None:
    status = pipeline.get("status") or {}
    rows = [
        (s["name"], s["location"], s.get("cluster") or "-", s["phase"], s["child"], s["message"])
        for s in status.get("stages") or []
    ]
    print(f"MLPipeline support-bot: option {status.get('option', '-')}")
    print(show.render_table(("STAGE", "LOCATION", "CLUSTER", "PHASE", "CHILD", "DETAIL"), rows))


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
