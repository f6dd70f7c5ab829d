"""Write requests per LLMDeployment, as the API servers count them: on create, over a no-op
resync, and over an operator restart. `make bench-writes` prints a table and writes JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client

from localfleet import fleet, seed
from localfleet.paths import CLUSTER_DIR, REPO_ROOT
from localfleet.show import render_table

NAMESPACE = "bench-writes"
COUNT = 20
WRITE = re.compile(r'verb="(APPLY|PATCH|POST|PUT|DELETE)"')
RESOURCE = re.compile(r'resource="([a-z]+)".*subresource="([a-z]*)".*verb="([A-Z]+)"')
# Written by the operator only; deployments' status PUTs come from the controller manager.
OPERATOR_RESOURCES = {
    "llmdeployments", "deployments", "services", "serviceaccounts", "networkpolicies",
    "poddisruptionbudgets", "secrets", "namespaces", "events",
}  # fmt: skip


def writes(api: client.ApiClient) -> Counter[str]:
    _, body = fleet.raw_get(api, "/metrics", accept="text/plain")
    counts: Counter[str] = Counter()
    for line in body.decode().splitlines():
        if not line.startswith("apiserver_request_total{") or not WRITE.search(line):
            continue
        # Collection deletes are the namespace controller's; the operator deletes by name.
        if 'scope="namespace"' in line:
            continue
        match = RESOURCE.search(line)
        if match is None or match[1] not in OPERATOR_RESOURCES:
            continue
        resource, subresource, verb = match.groups()
        if subresource == "status" and resource == "deployments":
            continue
        # Creates of the custom resources are this benchmark's; events are counted by source.
        if (verb == "POST" and resource == "llmdeployments") or resource == "events":
            continue
        counts[f"{verb} {resource}{'/' + subresource if subresource else ''}"] += int(
            float(line.rsplit(" ", 1)[1])
        )
    return counts


def snapshot(apis: dict[str, client.ApiClient]) -> dict[str, Counter[str]]:
    return {name: writes(api) for name, api in apis.items()}


def diff(
    before: dict[str, Counter[str]], after: dict[str, Counter[str]]
) -> dict[str, dict[str, int]]:
    return {name: {k: v for k, v in (after[name] - before[name]).items() if v} for name in after}


def operator_events(apis: dict[str, client.ApiClient]) -> int:
    """Events the operator posted (the API server's counters mix in the controllers' events)."""
    hub = client.CoreV1Api(apis["cloud"])
    return sum(
        event.count or 1
        for event in hub.list_namespaced_event(NAMESPACE).items
        if (event.source and event.source.component == "llmfleet")
        or event.reporting_component == "llmfleet"
    )


def start_operator(kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(kubeconfig),
             "--namespace", NAMESPACE, "--resync-seconds", "3", "--metrics-port", "0",
             "--liveness-port", "18181"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def ready(objects_api: client.CustomObjectsApi) -> int:
    items = objects_api.list_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments"
    )["items"]
    return sum(
        1
        for o in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (o.get("status") or {}).get("conditions", [])
        )
    )


def create_all(objects_api: client.CustomObjectsApi) -> None:
    for i in range(COUNT):
        body = {
            "apiVersion": "llmfleet.io/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": f"w{i}"},
            "spec": {
                "model": {"name": "m"},
                "gpu": {"count": 1},
                "placement": {"location": "cloud" if i % 2 == 0 else "onprem"},
            },
        }
        objects_api.create_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments", body
        )
    deadline = time.monotonic() + 120
    while ready(objects_api) < COUNT and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(8)  # let the last status writes and events land


def delete_all(objects_api: client.CustomObjectsApi) -> None:
    """Deleted while the operator runs, so finalizers are released and nothing is left."""
    for i in range(COUNT):
        objects_api.delete_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments", f"w{i}"
        )
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and objects_api.list_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", NAMESPACE, "llmdeployments"
        )["items"]
    ):
        time.sleep(1)


def measure(apis: dict[str, client.ApiClient], kubeconfig: Path) -> dict[str, Any]:
    objects_api = client.CustomObjectsApi(apis["cloud"])
    log = CLUSTER_DIR / "bench-writes-operator.log"
    operator = start_operator(kubeconfig, log)
    results: dict[str, Any] = {"resources": COUNT}
    try:
        time.sleep(3)
        before = snapshot(apis)
        create_all(objects_api)
        after_create = snapshot(apis)
        events_after_create = operator_events(apis)
        results["create"] = diff(before, after_create)
        results["create"]["cloud"]["POST events (operator)"] = events_after_create
        time.sleep(15)  # five resync rounds
        after_resync = snapshot(apis)
        results["resync"] = diff(after_create, after_resync)
        operator.terminate()
        operator.wait(timeout=30)
        operator = start_operator(kubeconfig, log)
        time.sleep(15)
        results["restart"] = diff(after_resync, snapshot(apis))
        new_events = operator_events(apis) - events_after_create
        if new_events:
            results["restart"]["cloud"]["POST events (operator)"] = new_events
        delete_all(objects_api)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    return results


@contextmanager
def bench_fleet(namespace: str) -> Iterator[tuple[dict[str, client.ApiClient], Path]]:
    """The local fleet with the CRDs and a namespace of the benchmark's own in every cluster
    (removed afterwards): the API clients, and the hub's kubeconfig for the operator."""
    kubeconfigs = fleet.up()
    apis = {name: fleet.api_client(path) for name, path in kubeconfigs.items()}
    seed.install_crds(apis["cloud"], REPO_ROOT / "crds")
    for api in apis.values():
        seed.apply_namespace(client.CoreV1Api(api), {"metadata": {"name": namespace, "labels": {}}})
    try:
        yield apis, kubeconfigs["cloud"]
    finally:
        for api in apis.values():
            client.CoreV1Api(api).delete_namespace(namespace)


def save(name: str, results: dict[str, Any]) -> Path:
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def main() -> int:
    with bench_fleet(NAMESPACE) as (apis, hub_kubeconfig):
        results = measure(apis, hub_kubeconfig)

    print(f"write requests for {COUNT} LLMDeployments (half cloud/hub, half onprem/member)\n")
    rows = []
    for phase in ("create", "resync", "restart"):
        for cluster, counts in results[phase].items():
            total = sum(counts.values())
            detail = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"
            rows.append((phase, cluster, total, f"{total / COUNT:.2f}", detail))
    print(render_table(("PHASE", "CLUSTER", "WRITES", "PER-RESOURCE", "DETAIL"), rows))
    save("writes", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
