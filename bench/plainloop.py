"""The limit the operator is measured against: a plain loop with none of the operator's
machinery (no kopf, no placement, no caches, no wake-ups), which watches the LLMDeployments of
a namespace and, for each new generation, server-side-applies the children the operator's own
render makes for it and writes one status, with the operator's client and its number of
workers. On a spec change it applies only the children that changed (one, the Deployment).

    python bench/plainloop.py --kubeconfig HUB --namespace NS --status STATUS.json \
        [--placements PLACEMENTS.json --member NAME=KUBECONFIG ...] [--workers 8]

`--status` is a status the operator wrote (every resource gets it, with its generation);
`--placements` maps resource names to the member cluster the operator placed them in (the
hub when absent). Runs until it is terminated.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from llmfleet import labels
from llmfleet.api.llmdeployment import LLMDeploymentSpec
from llmfleet.kube import apply
from llmfleet.kube.rest import KubeClient, path_of
from llmfleet.placement.clusters import IN_CLUSTER
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner
from llmfleet.settings import Settings

GROUP, VERSION, PLURAL, KIND = "llmfleet.io", "v1alpha1", "llmdeployments", "LLMDeployment"


class PlainLoop:
    def __init__(
        self,
        hub: KubeClient,
        members: dict[str, KubeClient],
        status: dict[str, Any],
        placements: dict[str, str],
    ) -> None:
        self.hub = hub
        self.members = members
        self.status = status
        self.placements = placements
        self.applied: dict[str, dict[str, str]] = {}  # name -> child ref -> applied hash
        self.lock = threading.Lock()

    def handle(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        spec = LLMDeploymentSpec.model_validate(obj.get("spec") or {})
        owner = Owner(KIND, namespace, name, meta["uid"])
        cluster = self.placements.get(name, IN_CLUSTER)
        target = self.members.get(cluster, self.hub)
        in_owner_cluster = target is self.hub
        objects = render.self_managed(
            spec, owner, spec.placement.location, in_owner_cluster=in_owner_cluster,
            metrics_namespace=Settings().metrics_namespace, replicas=spec.replicas,
        ).objects  # fmt: skip
        with self.lock:
            applied = self.applied.setdefault(name, {})
        if not in_owner_cluster and not applied:
            apply.ensure_namespace(target, namespace)
        for child in objects:
            stamped = apply.with_hash(child)
            digest = stamped["metadata"]["annotations"][labels.APPLIED_HASH]
            ref = apply.ref(child)
            if applied.get(ref) != digest:
                target.apply(stamped)
                applied[ref] = digest
        self.hub.request(
            "PATCH", path_of(KIND, namespace, name) + "/status",
            body={"status": {**self.status, "observedGeneration": meta["generation"]}},
            content_type="application/merge-patch+json",
        )  # fmt: skip

    def forget(self, name: str) -> None:
        with self.lock:
            self.applied.pop(name, None)


def run(loop: PlainLoop, api: client.ApiClient, namespace: str, workers: int) -> None:
    objects = client.CustomObjectsApi(api)
    pool = ThreadPoolExecutor(max_workers=workers)
    handled: dict[str, int] = {}

    def take(obj: dict[str, Any], deleted: bool) -> None:
        name = obj["metadata"]["name"]
        if deleted:
            handled.pop(name, None)
            loop.forget(name)
            return
        generation = int(obj["metadata"].get("generation") or 0)
        if handled.get(name) != generation:
            handled[name] = generation
            pool.submit(loop.handle, obj).add_done_callback(_report_failure)

    while True:
        listed = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        for obj in listed["items"]:
            take(obj, deleted=False)
        stream = watch.Watch()
        for event in stream.stream(
            objects.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=300,
        ):  # fmt: skip
            if event["type"] == "ERROR":
                break  # expired: list again
            take(event["object"], deleted=event["type"] == "DELETED")


def _report_failure(future: Any) -> None:
    error = future.exception()
    if error is not None:
        print(f"plain loop: {error!r}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--status", required=True, type=Path)
    parser.add_argument("--placements", type=Path)
    parser.add_argument("--member", action="append", default=[], help="NAME=KUBECONFIG")
    parser.add_argument("--workers", type=int, default=Settings().api_workers)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    members = {}
    for entry in args.member:
        name, path = entry.split("=", 1)
        member_api = config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
        members[name] = KubeClient(member_api, name)
    placements = json.loads(args.placements.read_text()) if args.placements else {}
    loop = PlainLoop(
        KubeClient(api, IN_CLUSTER), members, json.loads(args.status.read_text()), placements
    )
    run(loop, api, args.namespace, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
