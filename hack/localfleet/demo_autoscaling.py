"""The demo's autoscaling act: a real Prometheus reads vLLM's in-flight requests for
`llama-elastic` from a stand-in for its pods; the load rises past what on-prem holds, then
falls, and the replicas follow: on-prem first, the cloud as overflow, the cloud given back
first."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client

from llmfleet.render.common import owner_label
from localfleet import fleet, show
from localfleet.paths import REPO_ROOT
from localfleet.prometheus import LocalPrometheus, Target
from localfleet.stubs import MetricsStub

MANIFEST = REPO_ROOT / "config" / "demo" / "autoscaling.yaml"
NAME = "llama-elastic"
RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"
Row = tuple[str, str, str, str, str]


class LoadAct:
    """Prometheus and the stand-in for the model's pods; started before the operator."""

    def __init__(self, prometheus: LocalPrometheus, namespace: str) -> None:
        self.prometheus = prometheus
        self.namespace = namespace
        self.pods = MetricsStub()
        owner = owner_label("LLMDeployment", namespace, NAME)
        labels = {"namespace": namespace, "llmfleet_io_owner": owner}
        # A fresh store: an earlier run's last samples would still count for five minutes.
        shutil.rmtree(prometheus.workdir / "data", ignore_errors=True)
        prometheus.start([Target(self.pods.target, "/metrics", labels)])
        self.set_load(4)

    def set_load(self, in_flight: int) -> None:
        waiting = in_flight // 4
        self.pods.set(RUNNING, in_flight - waiting)
        self.pods.set(WAITING, waiting)

    def stop(self) -> None:
        self.prometheus.stop()
        self.pods.close()

    def run(self, hub: client.ApiClient) -> list[Row]:
        """Applies the model; load 4, then 30, then 4 again: where the replicas are at each."""
        manifest = yaml.safe_load(MANIFEST.read_text())
        objects = client.CustomObjectsApi(hub)
        objects.patch_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", self.namespace, "llmdeployments", NAME, manifest,
            field_manager="llmfleet-demo", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip
        rows: list[Row] = []
        started = time.monotonic()
        for load, wanted, overflow in ((4, 1, False), (30, 4, True), (4, 1, False)):
            self.set_load(load)
            fleet.log(f"{NAME}: {load} requests in flight; waiting for {wanted} replica(s)")
            obj = self._wait(hub, lambda o, w=wanted, f=overflow, n=load: _reached(o, n, w, f), 120)
            rows.append(_row(obj, time.monotonic() - started, load))
        return rows

    def _wait(
        self, hub: client.ApiClient, done: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        objects = client.CustomObjectsApi(hub)
        deadline = time.monotonic() + timeout
        while True:
            obj = dict(
                objects.get_namespaced_custom_object(
                    "llmfleet.io", "v1alpha1", self.namespace, "llmdeployments", NAME
                )
            )
            if done(obj) or time.monotonic() > deadline:
                return obj
            time.sleep(1)


def _placed(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p for p in (obj.get("status") or {}).get("placements") or [] if p.get("state") == "Placed"
    ]


def _reached(obj: dict[str, Any], load: int, wanted: int, overflow: bool) -> bool:
    status = obj.get("status") or {}
    scaling = status.get("autoscaling") or {}
    placed = _placed(obj)
    ready = sum(int(p.get("readyReplicas") or 0) for p in placed)
    overflowing = any(p.get("role") == "overflow" and p.get("replicas") for p in placed)
    return (
        scaling.get("load") == load
        and scaling.get("desiredReplicas") == wanted
        and sum(int(p.get("replicas") or 0) for p in placed) == wanted
        and ready >= wanted
        and overflowing == overflow
    )


def _row(obj: dict[str, Any], after: float, load: int) -> Row:
    scaling = (obj.get("status") or {}).get("autoscaling") or {}
    where = ", ".join(
        f"{p['cluster']}={p.get('replicas', 0)} ({p.get('role', 'preferred')})"
        for p in _placed(obj)
        if p.get("replicas")
    )
    return (f"{after:.0f} s", str(load), str(scaling.get("desiredReplicas", "-")), where or "-",
            str(scaling.get("reason", ""))[:90])  # fmt: skip


def print_autoscaling(rows: list[Row]) -> None:
    print(
        f"Autoscaling {NAME} from the load Prometheus reads (8 in-flight requests per replica; "
        "on-prem first, the cloud as overflow):"
    )
    print(show.render_table(("AFTER", "LOAD", "DESIRED", "REPLICAS", "WHY"), rows))
