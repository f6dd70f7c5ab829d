"""Addresses for LoadBalancer Services, as a cloud's controller would assign them.

kwok simulates kubelets, not cloud controllers, so nothing else gives a LoadBalancer Service
its address in the local fleet. This loop writes `status.loadBalancer` through the real API
server, from a range per cluster; nothing listens on these addresses.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from kubernetes import client


class LoadBalancerSimulator:
    def __init__(self, apis: Mapping[str, client.ApiClient], interval: float = 0.5) -> None:
        self.apis = dict(apis)
        self.interval = interval
        self.assigned = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lb-simulator")

    def start(self) -> LoadBalancerSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for index, api in enumerate(self.apis.values(), start=1):
                try:
                    self.assign(client.CoreV1Api(api), index)
                except Exception:  # noqa: BLE001, S112 - a missed round is retried next tick
                    continue

    def assign(self, core: client.CoreV1Api, cluster_index: int) -> None:
        for service in core.list_service_for_all_namespaces().items:
            if service.spec.type != "LoadBalancer":
                continue
            if service.status.load_balancer and service.status.load_balancer.ingress:
                continue
            self.assigned += 1
            address = f"10.250.{cluster_index}.{self.assigned % 250 + 1}"
            core.patch_namespaced_service_status(
                service.metadata.name,
                service.metadata.namespace,
                {"status": {"loadBalancer": {"ingress": [{"ip": address}]}}},
            )
