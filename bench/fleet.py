"""`make bench`: the operator at 1,000 LLMDeployments on the local fleet.

Measures, and prints as a table (and bench/results/fleet.json):
- burst: every resource created at once -> all children applied and status written (per second);
- churn: spec changes at a steady rate -> p50/p99 until status.observedGeneration catches up;
- write requests per resource on create, over a no-op resync and over an operator restart
  (the API server's own counters);
- the operator's peak RSS and CPU seconds, and its cold start to a completed no-op pass;
- the hub API server's p99 latency of mutating requests during the run, against its 1 s SLO,
  so that the figures are the operator's and not a saturated control plane's.

The operator is pinned to one CPU and the control plane to the others where there are two or
more. LLMDEPLOYMENTS, CHURN_PER_SECOND and CHURN_SECONDS (environment) scale it down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from localfleet import fleet
from localfleet.paths import CLUSTER_DIR, bin_dir
from localfleet.show import render_table
from writes import bench_fleet, diff, save, snapshot

NAMESPACE = "bench-fleet"
COUNT = int(os.environ.get("LLMDEPLOYMENTS", "1000"))
CHURN_PER_SECOND = int(os.environ.get("CHURN_PER_SECOND", "20"))
CHURN_SECONDS = int(os.environ.get("CHURN_SECONDS", "120"))
RESYNC_SECONDS = 30  # the operator's default
GROUP, VERSION, PLURAL = "llmfleet.io", "v1alpha1", "llmdeployments"
CONTROL_PLANE = (
    "kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok-controller",
)  # fmt: skip
SLO_SECONDS = 1.0
TARGETS = {
    "burst_per_second": ">= 25",
    "churn_p99_seconds": "<= 1",
    "writes_resync": "0",
    "writes_restart": "0",
    "peak_rss_mib": "<= 200",
    "cold_start_seconds": "<= 10",
}


def model(i: int) -> dict[str, Any]:
    """A CPU model with no replicas: every child is applied and reported, no pod runs, so
    the control plane's pod machinery does not compete with the operator for the CPUs."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": f"bench-{i:04d}"},
        "spec": {
            "model": {"name": f"bench/model-{i}"},
            "runtime": "llamacpp",
            "gpu": {"count": 0},
            "replicas": 0,
            "placement": {"location": "cloud"},
        },
    }


# --- processes ------------------------------------------------------------------------------


def control_plane_pids() -> list[int]:
    """The local fleet's control-plane processes (kwokctl runs copies of the cached binaries
    from its work directory, next to the binary cache)."""
    cache = str(bin_dir().parent.parent)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if command.startswith(cache) and Path(command).name in CONTROL_PLANE:
            pids.append(int(entry.name))
    return pids


def pin(pids: list[int], cpus: set[int]) -> dict[int, set[int]]:
    before = {}
    for pid in pids:
        try:
            before[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, cpus)
        except OSError:
            continue
    return before


def process_figures(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds (user + system) of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak / 1024, (int(fields[11]) + int(fields[12])) / ticks


class Operator:
    def __init__(self, kubeconfig: Path, cpus: set[int] | None) -> None:
        self.kubeconfig = kubeconfig
        self.cpus = cpus
        self.log = CLUSTER_DIR / "bench-fleet-operator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        cpus = self.cpus
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(self.kubeconfig),
                 "--namespace", NAMESPACE, "--resync-seconds", str(RESYNC_SECONDS),
                 "--metrics-port", "0", "--liveness-port", "18282", "--no-provider-probes"],
                stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,  # noqa: PLW1509 - affinity only
            )  # fmt: skip

    def handled(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


# --- API server -----------------------------------------------------------------------------


def mutating_latency_buckets(api: client.ApiClient) -> dict[float, float]:
    """Cumulative counts of the hub's mutating resource requests by latency bucket."""
    _, body = fleet.raw_get(api, "/metrics", accept="text/plain")
    buckets: dict[float, float] = {}
    for line in body.decode().splitlines():
        if not line.startswith("apiserver_request_duration_seconds_bucket{"):
            continue
        if not any(f'verb="{v}"' in line for v in ("POST", "PUT", "PATCH", "APPLY", "DELETE")):
            continue
        if 'scope="resource"' not in line and 'scope="namespace"' not in line:
            continue
        le = line.split('le="', 1)[1].split('"', 1)[0]
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0) + float(line.rsplit(" ", 1)[1])
    return buckets


def p99_of(before: dict[float, float], after: dict[float, float]) -> float:
    delta = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    total = delta.get(float("inf"), 0)
    if not total:
        return 0.0
    return next(bound for bound in sorted(delta) if delta[bound] >= 0.99 * total)


# --- phases ---------------------------------------------------------------------------------


def settled(items: list[dict[str, Any]]) -> int:
    return sum(
        1
        for o in items
        if (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
        and any(c["type"] == "Ready" for c in o["status"].get("conditions", []))
    )


def wait_settled(objects: client.CustomObjectsApi, count: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = objects.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        if settled(items) >= count:
            return time.monotonic()
        time.sleep(1)
    raise TimeoutError(f"not every LLMDeployment settled within {timeout:.0f}s")


def burst(objects: client.CustomObjectsApi) -> dict[str, float]:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: objects.create_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, model(i)
                ),
                range(COUNT),
            )
        )
    created = time.monotonic()
    done = wait_settled(objects, COUNT, timeout=max(600, COUNT))
    return {
        "create_seconds": created - started,
        "settle_seconds": done - started,
        "burst_per_second": COUNT / (done - started),
    }


def churn(api: client.ApiClient) -> dict[str, float]:
    """Spec changes at a steady rate; latency until the status reports each one."""
    objects = client.CustomObjectsApi(api)
    pending: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def observe() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            objects.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL,
            timeout_seconds=CHURN_SECONDS + 120,
        ):  # fmt: skip
            obj = event["object"]
            seen = (obj.get("status") or {}).get("observedGeneration")
            name = obj["metadata"]["name"]
            with lock:
                caught_up = [
                    k for k in pending if k[0] == name and seen is not None and k[1] <= seen
                ]
                latencies.extend(time.monotonic() - pending.pop(key) for key in caught_up)
            if stop.is_set() and not pending:
                stream.stop()

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    time.sleep(2)
    changes = 0
    started = time.monotonic()
    while time.monotonic() - started < CHURN_SECONDS:
        tick = time.monotonic()
        for _ in range(CHURN_PER_SECOND):
            name = f"bench-{changes % COUNT:04d}"
            patch = {"spec": {"args": ["--ctx-size", str(2048 + changes)]}}
            sent = time.monotonic()
            result = objects.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, patch
            )
            with lock:
                pending[(name, int(result["metadata"]["generation"]))] = sent
            changes += 1
        time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
    stop.set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if not pending:
                break
        time.sleep(0.5)
    with lock:
        unfinished = len(pending)
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    return {
        "churn_changes": changes,
        "churn_rate_per_second": changes / CHURN_SECONDS,
        "churn_p50_seconds": quantile(0.5),
        "churn_p99_seconds": quantile(0.99),
        "churn_max_seconds": ordered[-1] if ordered else float("nan"),
        "churn_unfinished": unfinished,
    }


def remove_all(objects: client.CustomObjectsApi) -> None:
    objects.delete_collection_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    deadline = time.monotonic() + max(600, COUNT)
    while time.monotonic() < deadline:
        if not objects.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]:
            return
        time.sleep(2)


def run(apis: dict[str, client.ApiClient], kubeconfig: Path) -> dict[str, Any]:
    hub = apis["cloud"]
    objects = client.CustomObjectsApi(hub)
    cpus = sorted(os.sched_getaffinity(0))
    operator_cpus = {cpus[-1]} if len(cpus) >= 2 else None
    restore = pin(control_plane_pids(), set(cpus[:-1])) if operator_cpus else {}
    results: dict[str, Any] = {"resources": COUNT, "cpus": len(cpus), "pinned": bool(restore)}
    operator = Operator(kubeconfig, operator_cpus)
    latency_before = mutating_latency_buckets(hub)
    operator.start()
    try:
        time.sleep(5)
        writes_before = snapshot(apis)
        results.update(burst(objects))
        time.sleep(10)  # the last Events land
        after_create = snapshot(apis)
        results["writes_create"] = diff(writes_before, after_create)
        if operator.process is None:
            raise RuntimeError("the operator did not start")
        results["peak_rss_mib"], results["cpu_seconds_burst"] = process_figures(
            operator.process.pid
        )

        time.sleep(RESYNC_SECONDS + 10)  # one full resync round, and more
        after_resync = snapshot(apis)
        results["writes_resync"] = diff(after_create, after_resync)

        operator.stop()
        operator.start()
        handled = "Handler 'reconcile' succeeded"
        deadline = time.monotonic() + max(300, COUNT)
        while operator.handled(handled) < COUNT and time.monotonic() < deadline:
            time.sleep(0.2)
        results["cold_start_seconds"] = time.monotonic() - operator.started
        time.sleep(10)
        results["writes_restart"] = diff(after_resync, snapshot(apis))

        cpu_before_churn = process_figures(operator.process.pid)[1]
        results.update(churn(hub))
        rss, cpu = process_figures(operator.process.pid)
        results["peak_rss_mib"] = max(results["peak_rss_mib"], rss)
        results["cpu_seconds_churn"] = cpu - cpu_before_churn
        results["apiserver_mutating_p99_seconds"] = p99_of(
            latency_before, mutating_latency_buckets(hub)
        )
        remove_all(objects)
    finally:
        operator.stop()
        for pid, affinity in restore.items():
            try:
                os.sched_setaffinity(pid, affinity)
            except OSError:
                continue
    return results


def total(writes: dict[str, dict[str, int]]) -> int:
    return sum(sum(counts.values()) for counts in writes.values())


def report(results: dict[str, Any]) -> str:
    n = results["resources"]
    per_resource = total(results["writes_create"]) / n
    cpu = f"{results['cpu_seconds_burst']:.0f}s burst, {results['cpu_seconds_churn']:.0f}s churn"
    rows = [
        (
            "burst: resources settled per second",
            f"{results['burst_per_second']:.1f}",
            TARGETS["burst_per_second"],
            (
                f"{n} created in {results['create_seconds']:.0f}s, all settled after "
                f"{results['settle_seconds']:.0f}s"
            ),
        ),
        (
            "churn: spec change -> status p50",
            f"{results['churn_p50_seconds']:.2f}s",
            "-",
            f"{results['churn_changes']} changes at {results['churn_rate_per_second']:.1f}/s",
        ),
        (
            "churn: spec change -> status p99",
            f"{results['churn_p99_seconds']:.2f}s",
            TARGETS["churn_p99_seconds"],
            f"max {results['churn_max_seconds']:.2f}s, unfinished {results['churn_unfinished']}",
        ),
        ("writes per resource on create", f"{per_resource:.2f}", "-", "Events not counted"),
        (
            "writes on a no-op resync",
            str(total(results["writes_resync"])),
            TARGETS["writes_resync"],
            f"{n} resources, one {RESYNC_SECONDS}s round and more",
        ),
        ("writes on an operator restart", str(total(results["writes_restart"])),
         TARGETS["writes_restart"], ""),
        ("operator peak RSS", f"{results['peak_rss_mib']:.0f} MiB", TARGETS["peak_rss_mib"],
         f"at {n} resources"),
        ("operator CPU", cpu, "-", ""),
        (
            "cold start to a completed no-op pass",
            f"{results['cold_start_seconds']:.1f}s",
            TARGETS["cold_start_seconds"],
            f"{n} resources resumed",
        ),
        (
            "hub API server mutating p99",
            f"{results['apiserver_mutating_p99_seconds']:.2f}s",
            f"<= {SLO_SECONDS:g} (SLO)",
            f"operator pinned apart: {results['pinned']} ({results['cpus']} CPUs)",
        ),
    ]  # fmt: skip
    return render_table(("FIGURE", "MEASURED", "TARGET", "NOTE"), rows)


def main() -> int:
    with bench_fleet(NAMESPACE) as (apis, hub_kubeconfig):
        results = run(apis, hub_kubeconfig)
    print(report(results))
    print(f"\nJSON: {save('fleet', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
