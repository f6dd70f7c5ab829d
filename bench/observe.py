"""What the benchmark sees of the LLMDeployments, from one watch: when every resource has
settled (its status reports its generation) and how long each spec change took to show in its
status. The same observer times the operator and the plain loop."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, watch

GROUP, VERSION, PLURAL = "llmfleet.io", "v1alpha1", "llmdeployments"
CREATE_WORKERS = 8


class Observer(threading.Thread):
    """Watches a namespace's LLMDeployments; a resource is settled when its status reports
    its generation with a Ready condition (True when `ready` is asked)."""

    def __init__(self, api: client.ApiClient, namespace: str, *, ready: bool = False) -> None:
        super().__init__(daemon=True)
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.ready = ready
        self.lock = threading.Condition()
        self.settled: set[str] = set()
        self.pending: dict[tuple[str, int], float] = {}  # (name, generation) -> sent
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            listed = self.objects.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
            for obj in listed["items"]:
                self._seen(obj)
            stream = watch.Watch()
            for event in stream.stream(
                self.objects.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                PLURAL, resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=10,
            ):  # fmt: skip
                if event["type"] == "ERROR":
                    break
                if event["type"] != "DELETED":
                    self._seen(event["object"])
                if self.stopping.is_set():
                    stream.stop()

    def _seen(self, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        observed = status.get("observedGeneration")
        ready = next(
            (c["status"] for c in status.get("conditions") or [] if c["type"] == "Ready"), None
        )
        done = (
            observed == obj["metadata"]["generation"]
            and ready is not None
            and (ready == "True" or not self.ready)
        )
        with self.lock:
            (self.settled.add if done else self.settled.discard)(name)
            if observed is not None:
                caught_up = [k for k in self.pending if k[0] == name and k[1] <= observed]
                self.latencies.extend(now - self.pending.pop(k) for k in caught_up)
            self.lock.notify_all()

    def wait_settled(self, count: int, timeout: float) -> float:
        """The moment `count` resources had settled."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.settled) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.settled)} of {count} LLMDeployments settled in {timeout:.0f}s"
                    )
                self.lock.wait(min(left, 1.0))
            return time.monotonic()

    def stop(self) -> None:
        self.stopping.set()


def create_all(api: client.ApiClient, namespace: str, bodies: list[dict[str, Any]]) -> float:
    """Creates every resource at once (8 clients); returns the seconds it took."""
    objects = client.CustomObjectsApi(api)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CREATE_WORKERS) as pool:
        list(
            pool.map(
                lambda body: objects.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body
                ),
                bodies,
            )
        )
    return time.monotonic() - started


def burst(
    api: client.ApiClient, namespace: str, bodies: list[dict[str, Any]], observer: Observer
) -> dict[str, float]:
    started = time.monotonic()
    create_seconds = create_all(api, namespace, bodies)
    done = observer.wait_settled(len(bodies), timeout=max(900, len(bodies) / 2))
    return {
        "create_seconds": create_seconds,
        "settle_seconds": done - started,
        "burst_per_second": len(bodies) / (done - started),
    }


def churn(
    api: client.ApiClient,
    namespace: str,
    names: list[str],
    observer: Observer,
    *,
    per_second: int,
    seconds: int,
) -> dict[str, float]:
    """Spec changes at a steady rate; latency until the status reports each one."""
    objects = client.CustomObjectsApi(api)
    with observer.lock:
        observer.latencies.clear()
    changes = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        tick = time.monotonic()
        for _ in range(per_second):
            name = names[changes % len(names)]
            patch = {"spec": {"args": ["--ctx-size", str(2048 + changes)]}}
            sent = time.monotonic()
            result = objects.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
            with observer.lock:
                observer.pending[(name, int(result["metadata"]["generation"]))] = sent
            changes += 1
        time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with observer.lock:
            if not observer.pending:
                break
        time.sleep(0.5)
    with observer.lock:
        unfinished = len(observer.pending)
        observer.pending.clear()
        ordered = sorted(observer.latencies)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    return {
        "churn_changes": changes,
        "churn_rate_per_second": changes / seconds,
        "churn_p50_seconds": quantile(0.5),
        "churn_p99_seconds": quantile(0.99),
        "churn_max_seconds": ordered[-1] if ordered else float("nan"),
        "churn_unfinished": unfinished,
    }
