"""`make bench`: the operator against its limit on the local fleet, at 1,000, 3,000 and 5,000
LLMDeployments, and 300 GPU models scheduled across two clusters.

Every figure is measured twice in the same run: with the operator, and with a plain loop
(bench/plainloop.py: the same children from the operator's own render and one status write
each, with the operator's client and workers, and nothing else) that shows what the control
plane allows that day. The ratios are the headline; the absolute figures move with the machine.

Per scale: burst (every resource created at once -> all children applied and status written),
churn (spec changes at a steady rate -> p50/p99 until status.observedGeneration), writes per
resource on create, on a no-op resync and on a restart (the API servers' own counters), peak
RSS and CPU per resource, cold start to a completed no-op pass, and the hub API server's p99
of mutating requests. The operator (or the loop) is pinned to one CPU and the control plane
to the others where there are two or more.

Environment: BENCH_SCALES ("1000,3000,5000"), GPU_MODELS (300; 0 skips), CHURN_PER_SECOND
(20), CHURN_SECONDS (60), PROFILE (1: py-spy records the operator's burst at each scale).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from localfleet import fleet, seed, topology
from localfleet.paths import CLUSTER_DIR, REPO_ROOT, bin_dir
from localfleet.show import render_table
from observe import Observer, burst, churn, create_all
from writes import diff, save, snapshot

SCALES = [
    int(n)
    for n in os.environ.get(
        "BENCH_SCALES", os.environ.get("LLMDEPLOYMENTS", "1000,3000,5000")
    ).split(",")
    if n.strip()
]
GPU_MODELS = int(os.environ.get("GPU_MODELS", "300"))
CHURN_PER_SECOND = int(os.environ.get("CHURN_PER_SECOND", "20"))
CHURN_SECONDS = int(os.environ.get("CHURN_SECONDS", "60"))
PROFILE = os.environ.get("PROFILE", "") == "1"
RESYNC_SECONDS = 30  # the operator's default
GROUP, VERSION, PLURAL = "llmfleet.io", "v1alpha1", "llmdeployments"
CONTROL_PLANE = (
    "kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok-controller",
)  # fmt: skip
SLO_SECONDS = 1.0
GPU_NAMESPACE = "bench-gpu"
CHILDREN = 6  # Deployment, Service, ServiceAccount and three NetworkPolicies
TARGETS = {
    "burst_ratio": ">= 0.8",
    "churn_p99_seconds": "<= 1 (flat)",
    "writes_per_resource": f"<= {CHILDREN + 2}",
    "writes_resync": "0",
    "writes_restart": "0",
    "peak_rss_mib": "<= 150 at 1,000",
    "cold_start_seconds": "<= 10 at 5,000",
}
# A Go operator (KubeAI, controller-runtime) on the same local API server: 300 CPU models to
# serving with 5.3 CPU-seconds and 88 MiB peak.
GO_OPERATOR = {"cpu_ms_per_resource": 5.3 / 300 * 1000, "peak_rss_mib": 88.0}


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


def process_figures(pid: int) -> tuple[float, float, float]:
    """Peak RSS and current RSS (MiB) and CPU seconds (user + system) of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {
        key: value.split()[0]
        for key, _, value in (line.partition(":") for line in status.splitlines())
        if value.split()
    }
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    return int(fields["VmHWM"]) / 1024, int(fields["VmRSS"]) / 1024, cpu


class Process:
    """The operator or the plain loop, pinned to its CPU, logging to a file."""

    def __init__(self, name: str, command: list[str], cpus: set[int] | None) -> None:
        self.command = command
        self.cpus = cpus
        self.log = CLUSTER_DIR / f"bench-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        cpus = self.cpus
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,  # noqa: PLW1509 - affinity only
            )  # fmt: skip

    @property
    def pid(self) -> int:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.command[:3]} is not running: see {self.log}")
        return self.process.pid

    def figures(self) -> tuple[float, float, float]:
        return process_figures(self.pid)

    def handled(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def operator(kubeconfig: Path, namespace: str, cpus: set[int] | None) -> Process:
    return Process(
        "operator",
        [sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(kubeconfig),
         "--namespace", namespace, "--resync-seconds", str(RESYNC_SECONDS),
         "--metrics-port", "0", "--liveness-port", "18282", "--no-provider-probes"],
        cpus,
    )  # fmt: skip


def plain_loop(
    kubeconfig: Path,
    namespace: str,
    cpus: set[int] | None,
    status: dict[str, Any],
    *,
    placements: dict[str, str] | None = None,
    members: dict[str, Path] | None = None,
) -> Process:
    status_file = CLUSTER_DIR / f"bench-loop-status-{namespace}.json"
    status_file.write_text(json.dumps(status))
    command = [
        sys.executable, str(REPO_ROOT / "bench" / "plainloop.py"), "--kubeconfig", str(kubeconfig),
        "--namespace", namespace, "--status", str(status_file),
    ]  # fmt: skip
    if placements:
        placements_file = CLUSTER_DIR / f"bench-loop-placements-{namespace}.json"
        placements_file.write_text(json.dumps(placements))
        command += ["--placements", str(placements_file)]
    for name, path in (members or {}).items():
        command += ["--member", f"{name}={path}"]
    return Process("loop", command, cpus)


class Profiler:
    """py-spy sampling a process while it holds the GIL (PROFILE=1): where its CPU goes."""

    def __init__(self, pid: int, name: str) -> None:
        self.output = REPO_ROOT / "bench" / "results" / f"profile-{name}.txt"
        self.output.parent.mkdir(exist_ok=True)
        spy = Path(sys.executable).parent / "py-spy"
        self.process = subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--gil",
             "--output", str(self.output), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        """The top functions by own time, and the operator's and kopf's by inclusive time
        (shares of the samples)."""
        self.process.send_signal(2)
        self.process.wait(timeout=60)
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_short(frame) for frame in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + int(count)
            for frame in set(frames):
                if "llmfleet/" in frame or "kopf/" in frame:
                    inclusive[frame] = inclusive.get(frame, 0) + int(count)
            total += int(count)

        def top(counts: dict[str, int], n: int) -> list[tuple[str, float]]:
            ranked = sorted(counts.items(), key=lambda item: -item[1])[:n]
            return [(name, c / total) for name, c in ranked] if total else []

        return {"own": top(own, 12), "inclusive": top(inclusive, 25)}


def _short(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` as `fn (pkg/mod.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "operator/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


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


# --- namespaces -----------------------------------------------------------------------------


def fresh_namespace(apis: dict[str, client.ApiClient], name: str) -> None:
    for api in apis.values():
        seed.apply_namespace(client.CoreV1Api(api), {"metadata": {"name": name, "labels": {}}})


def remove_namespace(apis: dict[str, client.ApiClient], name: str, timeout: float = 1800) -> float:
    """Deletes the namespace everywhere and waits until it is gone (its objects with it), so
    that the next phase does not share the control plane with the garbage collector."""
    started = time.monotonic()
    for api in apis.values():
        try:
            client.CoreV1Api(api).delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
    for api in apis.values():
        core = client.CoreV1Api(api)
        while time.monotonic() - started < timeout:
            try:
                core.read_namespace(name)
            except ApiException as error:
                if error.status == 404:
                    break
                raise
            time.sleep(2)
    return time.monotonic() - started


@contextmanager
def pinned() -> Iterator[set[int] | None]:
    """The CPU of the process under test; the control plane gets the others meanwhile."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield None
        return
    restore = pin(control_plane_pids(), set(cpus[:-1]))
    try:
        yield {cpus[-1]}
    finally:
        for pid, affinity in restore.items():
            try:
                os.sched_setaffinity(pid, affinity)
            except OSError:
                continue


def total(writes: dict[str, dict[str, int]]) -> int:
    return sum(sum(counts.values()) for counts in writes.values())


# --- phases ---------------------------------------------------------------------------------


def operator_phase(
    apis: dict[str, client.ApiClient], kubeconfig: Path, count: int, cpus: set[int] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operator: burst, writes, a resync, a restart, churn. Returns the figures and a
    status it wrote (the plain loop writes the same)."""
    namespace = f"bench-op-{count}"
    hub = apis["cloud"]
    fresh_namespace(apis, namespace)
    process = operator(kubeconfig, namespace, cpus)
    observer = Observer(hub, namespace)
    observer.start()
    results: dict[str, Any] = {}
    latency_before = mutating_latency_buckets(hub)
    process.start()
    try:
        time.sleep(5)
        _, results["idle_rss_mib"], cpu_idle = process.figures()
        writes_before = snapshot(apis)
        profiler = Profiler(process.pid, f"operator-burst-{count}") if PROFILE else None
        results.update(burst(hub, namespace, [model(i) for i in range(count)], observer))
        if profiler is not None:
            results["profile_burst"] = profiler.stop()
        time.sleep(10)  # the last Events land
        after_create = snapshot(apis)
        results["writes_create"] = diff(writes_before, after_create)
        results["peak_rss_mib"], results["rss_mib"], cpu = process.figures()
        results["cpu_seconds_burst"] = cpu - cpu_idle
        status = client.CustomObjectsApi(hub).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, model(0)["metadata"]["name"]
        )["status"]

        time.sleep(RESYNC_SECONDS + 10)  # one full resync round, and more
        after_resync = snapshot(apis)
        results["writes_resync"] = diff(after_create, after_resync)
        results["cpu_seconds_resync"] = process.figures()[2] - cpu

        results.update(cold_start(process, count))
        time.sleep(10)
        results["writes_restart"] = diff(after_resync, snapshot(apis))

        churned = churn_phase(
            process, hub, namespace, count, observer=observer, latency_before=latency_before
        )
        results.update(churned, peak_rss_mib=max(results["peak_rss_mib"], churned["peak_rss_mib"]))
    finally:
        observer.stop()
        process.stop()
    results["cleanup_seconds"] = remove_namespace(apis, namespace)
    return results, status


def churn_phase(
    process: Process,
    hub: client.ApiClient,
    namespace: str,
    count: int,
    *,
    observer: Observer,
    latency_before: dict[float, float],
) -> dict[str, Any]:
    """Churn, with the process's CPU for it, its peak RSS so far and the hub's mutating p99
    since `latency_before`."""
    cpu_before = process.figures()[2]
    names = [model(i)["metadata"]["name"] for i in range(count)]
    results = churn(
        hub, namespace, names, observer, per_second=CHURN_PER_SECOND, seconds=CHURN_SECONDS
    )
    peak, _, cpu = process.figures()
    return {
        **results,
        "peak_rss_mib": peak,
        "cpu_seconds_churn": cpu - cpu_before,
        "apiserver_mutating_p99_seconds": p99_of(latency_before, mutating_latency_buckets(hub)),
    }


def cold_start(process: Process, count: int) -> dict[str, Any]:
    """A restart: the seconds from the process start until every resource was looked at."""
    process.stop()
    process.start()
    profiler = Profiler(process.pid, f"operator-cold-start-{count}") if PROFILE else None
    handled = "Handler 'reconcile' succeeded"
    deadline = time.monotonic() + max(300, count)
    while process.handled(handled) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    results: dict[str, Any] = {"cold_start_seconds": time.monotonic() - process.started}
    if profiler is not None:
        results["profile_cold_start"] = profiler.stop()
    return results


def loop_phase(
    apis: dict[str, client.ApiClient],
    kubeconfig: Path,
    count: int,
    cpus: set[int] | None,
    status: dict[str, Any],
) -> dict[str, Any]:
    """The plain loop under the same burst and churn."""
    namespace = f"bench-loop-{count}"
    hub = apis["cloud"]
    fresh_namespace(apis, namespace)
    process = plain_loop(kubeconfig, namespace, cpus, status)
    observer = Observer(hub, namespace)
    observer.start()
    results: dict[str, Any] = {}
    latency_before = mutating_latency_buckets(hub)
    process.start()
    try:
        time.sleep(3)
        _, results["idle_rss_mib"], cpu_idle = process.figures()
        writes_before = snapshot(apis)
        results.update(burst(hub, namespace, [model(i) for i in range(count)], observer))
        time.sleep(5)
        results["writes_create"] = diff(writes_before, snapshot(apis))
        results["peak_rss_mib"], _, cpu = process.figures()
        results["cpu_seconds_burst"] = cpu - cpu_idle
        churned = churn_phase(
            process, hub, namespace, count, observer=observer, latency_before=latency_before
        )
        results.update(churned, peak_rss_mib=max(results["peak_rss_mib"], churned["peak_rss_mib"]))
    finally:
        observer.stop()
        process.stop()
    results["cleanup_seconds"] = remove_namespace(apis, namespace)
    return results


def scale_point(apis: dict[str, client.ApiClient], kubeconfig: Path, count: int) -> dict[str, Any]:
    print(f"[bench] {count} LLMDeployments: the operator", flush=True)
    with pinned() as cpus:
        ours, status = operator_phase(apis, kubeconfig, count, cpus)
        print(f"[bench] {count} LLMDeployments: the plain loop", flush=True)
        loop = loop_phase(apis, kubeconfig, count, cpus, status)
    return {"resources": count, "operator": ours, "loop": loop, **ratios(count, ours, loop)}


def ratios(count: int, ours: dict[str, Any], loop: dict[str, Any]) -> dict[str, float]:
    growth = ours["peak_rss_mib"] - ours["idle_rss_mib"]
    return {
        "burst_ratio": ours["burst_per_second"] / loop["burst_per_second"],
        "churn_p99_ratio": ours["churn_p99_seconds"] / loop["churn_p99_seconds"],
        "writes_per_resource": total(ours["writes_create"]) / count,
        "loop_writes_per_resource": total(loop["writes_create"]) / count,
        "cpu_ms_per_resource": ours["cpu_seconds_burst"] / count * 1000,
        "loop_cpu_ms_per_resource": loop["cpu_seconds_burst"] / count * 1000,
        "rss_kib_per_resource": growth * 1024 / count,
    }


# --- 300 GPU models, scheduled --------------------------------------------------------------


def gpu_model(i: int) -> dict[str, Any]:
    """One GPU and one replica, half in the cloud, half on-premises."""
    body = model(i)
    body["metadata"]["name"] = f"gpu-{i:04d}"
    body["spec"].update(
        runtime="vllm", gpu={"count": 1}, replicas=1,
        placement={"location": "cloud" if i % 2 == 0 else "onprem"},
    )  # fmt: skip
    return body


def bench_pools(models: int) -> dict[str, list[dict[str, Any]]]:
    """Simulated GPU nodes added for the run: room for every model in its location."""
    nodes: dict[str, list[dict[str, Any]]] = {}
    for spec in topology.FLEET:
        if spec.name == topology.ONPREM2.name:
            continue
        pool = next(p for p in spec.pools if p.gpu is not None)
        wanted = (models + 1) // 2
        extra = max(0, -(-(wanted - spec.gpu_total) // pool.gpus_per_node))
        bench_pool = replace(pool, name=f"bench-{pool.name}", count=extra)
        nodes[spec.short_name] = [
            topology.kwok_node(spec, bench_pool, name) for name in bench_pool.node_names(spec)
        ]
    return nodes


def ready_deployments(apis: dict[str, client.ApiClient], namespace: str) -> int:
    ready = 0
    for api in apis.values():
        for deployment in client.AppsV1Api(api).list_namespaced_deployment(namespace).items:
            ready += int(((deployment.status and deployment.status.ready_replicas) or 0) >= 1)
    return ready


def wait_deployments_ready(
    apis: dict[str, client.ApiClient], namespace: str, count: int, timeout: float
) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready_deployments(apis, namespace) >= count:
            return time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(f"not every model server was ready within {timeout:.0f}s")


def gpu_phase(
    apis: dict[str, client.ApiClient], kubeconfigs: dict[str, Path], count: int
) -> dict[str, Any]:
    """From apply to every model Ready, with the operator; then the plain loop applying the
    same children where the operator placed them, until every model server is ready."""
    added = bench_pools(count)
    for short_name, nodes in added.items():
        core = client.CoreV1Api(apis[short_name])
        for node in nodes:
            seed.apply_kwok_node(core, node)
    results: dict[str, Any] = {"models": count, "nodes_added": sum(map(len, added.values()))}
    try:
        with pinned() as cpus:
            status, placements = gpu_operator(apis, kubeconfigs, count, cpus, results)
            gpu_loop(
                apis, kubeconfigs, count, cpus,
                status=status, placements=placements, results=results,
            )  # fmt: skip
    finally:
        for short_name, nodes in added.items():
            core = client.CoreV1Api(apis[short_name])
            for node in nodes:
                try:
                    core.delete_node(node["metadata"]["name"])
                except ApiException as error:
                    if error.status != 404:
                        raise
    results["ratio"] = results["loop_seconds"] / results["operator_seconds"]
    return results


def gpu_operator(
    apis: dict[str, client.ApiClient],
    kubeconfigs: dict[str, Path],
    count: int,
    cpus: set[int] | None,
    results: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Returns a status the operator wrote and where it placed each model."""
    hub = apis["cloud"]
    objects = client.CustomObjectsApi(hub)
    fresh_namespace(apis, GPU_NAMESPACE)
    process = operator(kubeconfigs["cloud"], GPU_NAMESPACE, cpus)
    observer = Observer(hub, GPU_NAMESPACE, ready=True)
    observer.start()
    process.start()
    try:
        time.sleep(5)
        cpu_idle = process.figures()[2]
        started = time.monotonic()
        create_all(hub, GPU_NAMESPACE, [gpu_model(i) for i in range(count)])
        results["operator_seconds"] = observer.wait_settled(count, 900) - started
        results["operator_peak_rss_mib"], _, cpu = process.figures()
        results["operator_cpu_seconds"] = cpu - cpu_idle
        items = objects.list_namespaced_custom_object(GROUP, VERSION, GPU_NAMESPACE, PLURAL)
        placements = {
            o["metadata"]["name"]: str(o["status"]["placements"][0]["cluster"])
            for o in items["items"]
        }
        results["placed"] = {
            cluster: sum(1 for c in placements.values() if c == cluster)
            for cluster in sorted(set(placements.values()))
        }
        # Deleted while the operator runs: it removes what the members hold.
        objects.delete_collection_namespaced_custom_object(GROUP, VERSION, GPU_NAMESPACE, PLURAL)
        while objects.list_namespaced_custom_object(GROUP, VERSION, GPU_NAMESPACE, PLURAL)["items"]:
            time.sleep(1)
    finally:
        observer.stop()
        process.stop()
    remove_namespace(apis, GPU_NAMESPACE)
    return items["items"][0]["status"], placements


def gpu_loop(
    apis: dict[str, client.ApiClient],
    kubeconfigs: dict[str, Path],
    count: int,
    cpus: set[int] | None,
    *,
    status: dict[str, Any],
    placements: dict[str, str],
    results: dict[str, Any],
) -> None:
    short_names = {spec.name: spec.short_name for spec in topology.FLEET}
    members = {
        cluster: kubeconfigs[short_names[cluster]]
        for cluster in set(placements.values())
        if short_names.get(cluster, "cloud") != "cloud"
    }
    fresh_namespace(apis, GPU_NAMESPACE)
    process = plain_loop(
        kubeconfigs["cloud"], GPU_NAMESPACE, cpus, status, placements=placements, members=members
    )
    process.start()
    try:
        time.sleep(3)
        cpu_idle = process.figures()[2]
        started = time.monotonic()
        create_all(apis["cloud"], GPU_NAMESPACE, [gpu_model(i) for i in range(count)])
        results["loop_seconds"] = wait_deployments_ready(apis, GPU_NAMESPACE, count, 900) - started
        results["loop_peak_rss_mib"], _, cpu = process.figures()
        results["loop_cpu_seconds"] = cpu - cpu_idle
    finally:
        process.stop()
    remove_namespace(apis, GPU_NAMESPACE)


# --- report ---------------------------------------------------------------------------------


def headline(points: list[dict[str, Any]]) -> str:
    rows = []
    for point in points:
        ours, loop = point["operator"], point["loop"]
        rows.append((
            f"{point['resources']:,}",
            (
                f"{ours['burst_per_second']:.1f} / {loop['burst_per_second']:.1f} = "
                f"{point['burst_ratio']:.2f}"
            ),
            f"{ours['churn_p99_seconds']:.2f}s / {loop['churn_p99_seconds']:.2f}s",
            f"{point['writes_per_resource']:.2f} / {point['loop_writes_per_resource']:.2f}",
            f"{total(ours['writes_resync'])} / {total(ours['writes_restart'])}",
            f"{ours['peak_rss_mib']:.0f} MiB ({point['rss_kib_per_resource']:.0f} KiB each)",
            f"{point['cpu_ms_per_resource']:.1f} / {point['loop_cpu_ms_per_resource']:.1f}",
            f"{ours['cold_start_seconds']:.1f}s",
        ))  # fmt: skip
    rows.append((
        "target", TARGETS["burst_ratio"], TARGETS["churn_p99_seconds"],
        TARGETS["writes_per_resource"], "0 / 0", TARGETS["peak_rss_mib"],
        f"Go operator {GO_OPERATOR['cpu_ms_per_resource']:.1f}", TARGETS["cold_start_seconds"],
    ))  # fmt: skip
    return render_table(
        ("RESOURCES", "BURST/S OPERATOR / LOOP = RATIO", "CHURN P99 OPERATOR / LOOP",
         "WRITES EACH OPERATOR / LOOP", "WRITES RESYNC / RESTART", "OPERATOR PEAK RSS",
         "CPU MS EACH OPERATOR / LOOP", "COLD START"),
        rows,
    )  # fmt: skip


def details(point: dict[str, Any]) -> str:
    ours, loop = point["operator"], point["loop"]
    rows = [
        ("create (8 clients)", f"{ours['create_seconds']:.0f}s", f"{loop['create_seconds']:.0f}s"),
        ("all settled after", f"{ours['settle_seconds']:.0f}s", f"{loop['settle_seconds']:.0f}s"),
        ("churn p50 / p99 / max", *(
            f"{r['churn_p50_seconds']:.2f} / {r['churn_p99_seconds']:.2f} / "
            f"{r['churn_max_seconds']:.2f}s ({r['churn_changes']} changes, "
            f"{r['churn_unfinished']} unfinished)" for r in (ours, loop)
        )),
        ("writes on create", *(
            ", ".join(f"{k}={v}" for c in r["writes_create"].values() for k, v in sorted(c.items()))
            for r in (ours, loop)
        )),
        ("CPU burst / churn", *(
            f"{r['cpu_seconds_burst']:.1f}s / {r['cpu_seconds_churn']:.1f}s" for r in (ours, loop)
        )),
        ("RSS idle / peak", *(
            f"{r['idle_rss_mib']:.0f} / {r['peak_rss_mib']:.0f} MiB" for r in (ours, loop)
        )),
        ("CPU of a no-op resync round", f"{ours['cpu_seconds_resync']:.1f}s", "-"),
        ("hub API server mutating p99", *(
            f"{r['apiserver_mutating_p99_seconds']:.2f}s (SLO {SLO_SECONDS:g}s)"
            for r in (ours, loop)
        )),
    ]  # fmt: skip
    return render_table(("AT " + f"{point['resources']:,}", "OPERATOR", "PLAIN LOOP"), rows)


def gpu_table(gpu: dict[str, Any]) -> str:
    rows = [
        ("apply -> every model Ready / server ready",
         f"{gpu['operator_seconds']:.1f}s", f"{gpu['loop_seconds']:.1f}s",
         f"loop / operator = {gpu['ratio']:.2f}"),
        ("CPU seconds", f"{gpu['operator_cpu_seconds']:.1f}", f"{gpu['loop_cpu_seconds']:.1f}",
         "Go operator: 5.3 for 300 CPU models"),
        ("peak RSS", f"{gpu['operator_peak_rss_mib']:.0f} MiB",
         f"{gpu['loop_peak_rss_mib']:.0f} MiB", "Go operator: 88 MiB"),
        ("placed", ", ".join(f"{k}={v}" for k, v in gpu["placed"].items()), "same",
         f"{gpu['nodes_added']} simulated GPU nodes added"),
    ]  # fmt: skip
    return render_table(
        (f"{gpu['models']} GPU MODELS, 1 REPLICA", "OPERATOR", "PLAIN LOOP", "NOTE"), rows
    )


def profile_tables(point: dict[str, Any]) -> str:
    tables = []
    for phase in ("burst", "cold_start"):
        profile = point["operator"].get(f"profile_{phase}")
        if not profile:
            continue
        for measure in ("own", "inclusive"):
            rows = [(name[:110], f"{share:.1%}") for name, share in profile[measure]]
            title = f"OPERATOR {phase.replace('_', ' ').upper()} AT {point['resources']:,}"
            tables.append(render_table((f"{title}: {measure.upper()} TIME", "SHARE"), rows))
    return "\n\n".join(tables)


def main() -> int:
    kubeconfigs = fleet.up()
    apis = {name: fleet.api_client(path) for name, path in kubeconfigs.items()}
    seed.install_crds(apis["cloud"], REPO_ROOT / "crds")
    results: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "scales": []}
    for count in SCALES:
        results["scales"].append(scale_point(apis, kubeconfigs["cloud"], count))
        save("fleet", results)
    if GPU_MODELS:
        print(f"[bench] {GPU_MODELS} GPU models", flush=True)
        results["gpu"] = gpu_phase(apis, kubeconfigs, GPU_MODELS)
    path = save("fleet", results)
    print()
    print(headline(results["scales"]))
    for point in results["scales"]:
        print()
        print(details(point))
        if PROFILE:
            print()
            print(profile_tables(point))
    if "gpu" in results:
        print()
        print(gpu_table(results["gpu"]))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
