"""`make bench-gateway`: what a ChatEndpoint's gateway adds in front of a model server.

No cluster: a ChatEndpoint's gateway objects are rendered by the operator's own render
functions and run with LiteLLM from .venv-gateway on 127.0.0.1 (as the clusterless live
gateway tests do), in front of a model server stub on 127.0.0.1 that answers at once (its own
process; CHUNKS words per answer, streamed one word per event). Measured in one run:

- direct: the model server alone, the floor every gateway figure is compared with;
- plugin on: auth with a key, rate limits far above the load, prompt-injection check, output
  guard `redact` (the answers hold nothing to redact: the guard reads every one all the same);
- plugin off: the same endpoint with no auth and no limits, the prompt-injection check and the
  output guard off. The operator always renders llmfleet's auth hook and pre-call guard (they also
  count the demand that wakes sleeping models): this is the least the plugin does;
- LiteLLM alone: the plugin-off configuration with llmfleet's hooks taken out of config.yaml
  (LiteLLM's own master-key check instead of the auth hook): what LiteLLM itself costs.

For each, whole answers and streamed ones (time to the last chunk):
- latency p50/p99 of one client calling sequentially (after a warm-up); added latency is the
  gateway's percentile minus the direct one;
- requests per second of one gateway replica (one LiteLLM process, as the operator renders it)
  under CONCURRENCY clients for SECONDS (after a warm-up), with the gateway's CPU time per
  request (what bounds its rps, and the figure a busy machine disturbs least) and how much of
  its CPU other processes took meanwhile (a disturbed row is named as such).

With two CPUs or more, each gateway runs on the last CPU and the stub and this load generator
on the others; only the gateway being measured runs (the others are paused with SIGSTOP).
Environment: GATEWAY_BENCH_REQUESTS (sequential calls, 300), GATEWAY_BENCH_SECONDS (saturation
window, 8), GATEWAY_BENCH_CONCURRENCY (16), GATEWAY_BENCH_CHUNKS (32),
GATEWAY_BENCH_VARIANTS (on,off,bare), GATEWAY_BENCH_PIN (1; 0 leaves the scheduler free).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))

from llmfleet.api import ChatEndpointSpec
from llmfleet.api.common import SecretKeyRef
from llmfleet.render.common import Owner
from localfleet import gateway_run
from localfleet.chatstubs import FastChatStub
from localfleet.show import render_table
from writes import save

REQUESTS = int(os.environ.get("GATEWAY_BENCH_REQUESTS", "300"))
WARMUP_REQUESTS = max(REQUESTS // 8, 20)
SECONDS = float(os.environ.get("GATEWAY_BENCH_SECONDS", "8"))
WARMUP_SECONDS = min(3.0, max(SECONDS / 4, 1.0))
CONCURRENCY = int(os.environ.get("GATEWAY_BENCH_CONCURRENCY", "16"))
CHUNKS = int(os.environ.get("GATEWAY_BENCH_CHUNKS", "32"))
VARIANTS = [v for v in os.environ.get("GATEWAY_BENCH_VARIANTS", "on,off,bare").split(",") if v]
PIN = os.environ.get("GATEWAY_BENCH_PIN", "1") != "0"

OWNER = Owner("ChatEndpoint", "bench", "chat", "uid-bench")
ALIAS = "chat"
MASTER = SecretKeyRef(name="chat-keys", key="master")
CLIENT_KEY = "sk-llmfleet-bench-master-key"
PLUGIN = "llmfleet_gateway"
# Other processes' share of the gateway's CPU above which a row is reported as disturbed.
BUSY_PERCENT = 5
LABELS = {
    "direct": "model server (direct)",
    "on": "gateway, plugin on",
    "off": "gateway, plugin off",
    "bare": "gateway, LiteLLM alone",
}
SPECS: dict[str, dict[str, Any]] = {
    "on": {
        "auth": {"apiKeySecretRef": {"name": MASTER.name, "key": MASTER.key}},
        "rateLimit": {"requestsPerMinute": 1_000_000, "tokensPerMinute": 1_000_000_000},
        "guardrails": {"promptInjection": "block", "output": "redact"},
    },
    "off": {"guardrails": {"promptInjection": "off", "output": "off"}},
}
SPECS["bare"] = SPECS["off"]
# The published figures this run is read against (added latency; throughput per instance).
ANCHORS = {
    "litellm_docs": {"added_p50_ms": 2, "added_p99_ms": 13, "rps": 1170, "instances": 4},
    "independent": {"added_p99_ms": 8},
}
ANCHOR_TEXT = {
    "added_p50_ms": "LiteLLM docs: +2 ms",
    "added_p99_ms": "LiteLLM docs: +13 ms; independent: +8 ms",
    "rps": "LiteLLM docs: 1,170/s over 4 instances = 292/s each",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


# ---------------------------------------------------------------------------------------------
# The gateways, as the operator renders them.


def rendered(variant: str, model_url: str) -> list[dict[str, Any]]:
    spec = ChatEndpointSpec.model_validate({
        "modelAlias": ALIAS,
        "sites": [{"location": "onprem"}],
        "backends": [{"llmDeploymentRef": {"name": "stub"}}],
        **SPECS[variant],
    })  # fmt: skip
    return gateway_run.stub_site_objects(spec, OWNER, MASTER, model_url)


def plugin_hooks(config: dict[str, Any]) -> list[str]:
    """llmfleet's hooks a gateway config loads."""
    hooks = [str(c) for c in config["litellm_settings"].get("callbacks") or []]
    hooks.append(str(config["general_settings"].get("custom_auth") or ""))
    return [hook for hook in hooks if hook.startswith(f"{PLUGIN}.")]


def without_plugin(workdir: Path) -> None:
    """The config with llmfleet's hooks taken out: LiteLLM's own master-key check, its own
    callbacks (prometheus), the same routes."""
    path = workdir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    settings = config["litellm_settings"]
    settings["callbacks"] = [c for c in settings["callbacks"] if not c.startswith(f"{PLUGIN}.")]
    config["general_settings"].pop("custom_auth", None)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Gateway:
    variant: str
    running: gateway_run.LocalGateway
    hooks: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.port}/v1"

    @property
    def pid(self) -> int:
        return self.running.process.pid

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@contextmanager
def gateways(model_url: str, root: Path) -> Iterator[dict[str, Gateway]]:
    """Every variant's gateway, started side by side, ready."""
    started: dict[str, Gateway] = {}
    try:
        for variant in VARIANTS:
            workdir = root / variant
            env = gateway_run.gateway_from_objects(
                rendered(variant, model_url), workdir, {(MASTER.name, MASTER.key): CLIENT_KEY}
            )
            if variant == "bare":
                without_plugin(workdir)
            hooks = plugin_hooks(yaml.safe_load((workdir / "config.yaml").read_text()))
            started[variant] = Gateway(variant, gateway_run.LocalGateway(workdir, env), hooks)
        for started_gateway in started.values():
            started_gateway.running.wait_ready()
        yield started
    finally:
        for started_gateway in started.values():
            started_gateway.resume()
            started_gateway.running.stop()


# ---------------------------------------------------------------------------------------------
# CPUs.


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(the gateway's CPU, the others) when there are two or more to split, else (None, None)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not PIN or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` (threads started later inherit their creator's CPUs)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(int(task.name), cpus)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds(cpus: set[int]) -> float:
    """Non-idle time of `cpus` (machine-wide: what else runs on them counts too)."""
    total = 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(v) for v in values]
            total += sum(ticks[:8]) - ticks[3] - ticks[4]  # less idle and iowait
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Load.


@dataclass
class Target:
    name: str
    url: str
    pid: int | None  # the gateway's process, whose CPU use is reported


@dataclass
class Result:
    """One target, one kind of answer."""

    p50_ms: float = math.nan
    p99_ms: float = math.nan
    rps: float = math.nan
    load_p50_ms: float = math.nan
    load_p99_ms: float = math.nan
    gateway_cpu_percent: float | None = None
    # The gateway's CPU time per request under load: what bounds a replica's rps, and what
    # other processes on a shared machine change least.
    gateway_cpu_ms_per_request: float | None = None
    # Other processes' use of the gateway's CPU: what a shared machine took from it.
    others_on_gateway_cpu_percent: float | None = None
    client_cpus_busy_percent: float | None = None
    errors: int = 0
    sequential_requests: int = 0
    load_requests: int = 0
    chunks_seen: int = 0


def request_body(stream: bool) -> bytes:
    message = {"role": "user", "content": "Say something short and friendly."}
    return json.dumps({"model": ALIAS, "messages": [message], "stream": stream}).encode()


HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}


async def call(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, bool]:
    """One chat completion read to its end: seconds, and whether it succeeded."""
    start = time.perf_counter()
    async with session.post(f"{url}/chat/completions", data=body, headers=HEADERS) as response:
        await response.read()
        ok = response.status == 200
    return time.perf_counter() - start, ok


async def check(session: aiohttp.ClientSession, url: str, stream: bool, text: str) -> int:
    """One call whose answer is read: the stub's text, unchanged (and how many chunks)."""
    async with session.post(
        f"{url}/chat/completions", data=request_body(stream), headers=HEADERS
    ) as response:
        raw = await response.text()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {raw[:500]}")
    if not stream:
        got = json.loads(raw)["choices"][0]["message"]["content"]
        chunks = 1
    else:
        events = [
            json.loads(line[5:])
            for line in raw.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"
        ]
        got = "".join(
            (choice.get("delta") or {}).get("content") or ""
            for event in events
            for choice in event.get("choices") or ()
        )
        chunks = sum(1 for event in events if event.get("choices"))
    if got != text:
        raise RuntimeError(f"{url}: the answer changed on the way: {got[:200]!r}")
    return chunks


async def status_without_key(url: str) -> int:
    """The status of a call that presents no key (401 where the gateway asks for one)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/chat/completions",
            data=request_body(False),
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        await response.read()
        return response.status


def litellm_version() -> str:
    found = sorted(gateway_run.LITELLM.parent.parent.glob("lib/python*/site-packages/litellm-*"))
    return found[0].name.removeprefix("litellm-").split(".dist-info")[0] if found else "?"


async def sequential(session: aiohttp.ClientSession, url: str, body: bytes) -> list[float]:
    for _ in range(WARMUP_REQUESTS):
        await call(session, url, body)
    times = []
    for _ in range(REQUESTS):
        seconds, ok = await call(session, url, body)
        if not ok:
            raise RuntimeError(f"{url}: a sequential call failed")
        times.append(seconds)
    return times


async def saturate(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    gateway_cpus: set[int] | None,
    client_cpus: set[int] | None,
) -> dict[str, Any]:
    """CONCURRENCY clients in a loop: the calls that end in the window after the warm-up."""
    begin = time.perf_counter() + WARMUP_SECONDS
    end = begin + SECONDS
    times: list[float] = []
    errors = 0
    marks: dict[str, float] = {}

    async def client() -> None:
        nonlocal errors
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            try:
                seconds, ok = await call(session, target.url, body)
            except aiohttp.ClientError:
                seconds, ok = 0.0, False
            done = time.perf_counter()
            if begin <= done < end:
                if ok:
                    times.append(seconds)
                else:
                    errors += 1

    async def meter() -> None:
        await asyncio.sleep(max(begin - time.perf_counter(), 0))
        if target.pid is not None:
            marks["gateway"] = cpu_seconds(target.pid)
            if gateway_cpus:
                marks["gateway_cpus"] = busy_cpu_seconds(gateway_cpus)
        if client_cpus:
            marks["clients"] = busy_cpu_seconds(client_cpus)
        await asyncio.sleep(max(end - time.perf_counter(), 0))
        if target.pid is not None:
            marks["gateway"] = cpu_seconds(target.pid) - marks["gateway"]
            if gateway_cpus:
                busy = busy_cpu_seconds(gateway_cpus) - marks["gateway_cpus"]
                marks["others"] = max(busy - marks["gateway"], 0.0) / len(gateway_cpus)
        if client_cpus:
            marks["clients"] = busy_cpu_seconds(client_cpus) - marks["clients"]

    await asyncio.gather(meter(), *(client() for _ in range(CONCURRENCY)))
    return {
        "rps": len(times) / SECONDS,
        "load_p50_ms": percentile(times, 50) * 1000,
        "load_p99_ms": percentile(times, 99) * 1000,
        "errors": errors,
        "load_requests": len(times),
        "gateway_cpu_percent": (
            round(100 * marks["gateway"] / SECONDS, 1) if "gateway" in marks else None
        ),
        "gateway_cpu_ms_per_request": (
            1000 * marks["gateway"] / len(times) if "gateway" in marks and times else None
        ),
        "others_on_gateway_cpu_percent": (
            round(100 * marks["others"] / SECONDS, 1) if "others" in marks else None
        ),
        "client_cpus_busy_percent": (
            round(100 * marks["clients"] / SECONDS / len(client_cpus), 1)
            if client_cpus and "clients" in marks
            else None
        ),
    }


async def measure(
    target: Target,
    stream: bool,
    text: str,
    gateway_cpus: set[int] | None,
    client_cpus: set[int] | None,
) -> Result:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        chunks = await check(session, target.url, stream, text)
        body = request_body(stream)
        times = await sequential(session, target.url, body)
        loaded = await saturate(session, target, body, gateway_cpus, client_cpus)
    return Result(
        p50_ms=percentile(times, 50) * 1000,
        p99_ms=percentile(times, 99) * 1000,
        sequential_requests=len(times),
        chunks_seen=chunks,
        **loaded,
    )


# ---------------------------------------------------------------------------------------------
# Report.


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def added(results: dict[str, dict[str, Result]], variant: str, kind: str, key: str) -> float:
    value: float = getattr(results[variant][kind], key) - getattr(results["direct"][kind], key)
    return value


def headline(results: dict[str, dict[str, Result]]) -> list[dict[str, Any]]:
    """The ratios and differences the run is read by, whole and streamed, with the anchors."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, value: Any, anchor: str = "") -> None:
        values = {kind: value(kind) for kind in ("whole", "streamed")}
        rows.append({"figure": figure, **values, "anchor": anchor})

    def rps(variant: str) -> Any:
        return lambda kind: results[variant][kind].rps

    def has(*variants: str) -> bool:
        return all(v in results for v in variants)

    if has("on", "off"):
        row("rps, plugin on / plugin off", lambda k: ratio(rps("on")(k), rps("off")(k)))
    if has("off", "bare"):
        row("rps, plugin off / LiteLLM alone", lambda k: ratio(rps("off")(k), rps("bare")(k)))
    if has("on", "bare"):
        row("rps, plugin on / LiteLLM alone", lambda k: ratio(rps("on")(k), rps("bare")(k)))

    def cpu(variant: str) -> Any:
        return lambda kind: results[variant][kind].gateway_cpu_ms_per_request or math.nan

    if has("on", "off"):
        row("gateway CPU per request, plugin on / plugin off",
            lambda k: ratio(cpu("on")(k), cpu("off")(k)))  # fmt: skip
    if has("off", "bare"):
        row("gateway CPU per request, plugin off / LiteLLM alone",
            lambda k: ratio(cpu("off")(k), cpu("bare")(k)))  # fmt: skip
    if has("on", "off"):
        row(
            "added p99 ms, plugin on - plugin off",
            lambda k: added(results, "on", k, "p99_ms") - added(results, "off", k, "p99_ms"),
        )
    for variant in ("on", "off", "bare"):
        if has(variant):
            name = LABELS[variant].removeprefix("gateway, ")
            row(f"added p50 ms, {name}", lambda k, v=variant: added(results, v, k, "p50_ms"),
                ANCHOR_TEXT["added_p50_ms"])  # fmt: skip
            row(f"added p99 ms, {name}", lambda k, v=variant: added(results, v, k, "p99_ms"),
                ANCHOR_TEXT["added_p99_ms"])  # fmt: skip
    per_instance = ANCHORS["litellm_docs"]["rps"] / ANCHORS["litellm_docs"]["instances"]
    for variant in ("on", "off"):
        if has(variant):
            name = LABELS[variant].removeprefix("gateway, ")
            row(f"rps per replica, {name}", rps(variant), ANCHOR_TEXT["rps"])
            row(f"rps per replica / anchor's per instance, {name}",
                lambda k, v=variant: ratio(rps(v)(k), per_instance))  # fmt: skip
    return rows


def report(results: dict[str, dict[str, Result]]) -> list[dict[str, Any]]:
    rows = []
    for variant, kinds in results.items():
        for kind, result in kinds.items():
            gateway_row = variant != "direct"
            rows.append([
                LABELS[variant], kind,
                fmt(result.p50_ms, 2), fmt(result.p99_ms, 2),
                fmt(added(results, variant, kind, "p50_ms"), 2) if gateway_row else "",
                fmt(added(results, variant, kind, "p99_ms"), 2) if gateway_row else "",
                fmt(result.rps, 0), fmt(result.load_p99_ms, 1),
                fmt(result.gateway_cpu_percent, 0) if gateway_row else "",
                fmt(result.gateway_cpu_ms_per_request, 2) if gateway_row else "",
                fmt(result.others_on_gateway_cpu_percent, 0) if gateway_row else "",
                fmt(result.client_cpus_busy_percent, 0),
                str(result.errors),
            ])  # fmt: skip
    print(
        render_table(
            [
                "target",
                "answer",
                "p50 ms",
                "p99 ms",
                "added p50",
                "added p99",
                f"rps (c={CONCURRENCY})",
                "p99 at load",
                "gateway CPU %",
                "CPU ms/request",
                "others on it %",
                "client CPUs %",
                "errors",
            ],
            rows,
        )
    )
    figures = headline(results)
    print()
    print(
        render_table(
            ["headline", "whole", "streamed", "anchor"],
            [
                [h["figure"], fmt(h["whole"], 2), fmt(h["streamed"], 2), h["anchor"]]
                for h in figures
            ],
        )
    )
    busy = [
        f"{LABELS[variant]} ({kind})"
        for variant, kinds in results.items()
        for kind, result in kinds.items()
        if (result.others_on_gateway_cpu_percent or 0) > BUSY_PERCENT
    ]
    if busy:
        print(
            f"\nother processes took more than {BUSY_PERCENT}% of the gateway's CPU under load"
            f" for: {', '.join(busy)}; their rps and p99 are not clean (CPU ms/request is)"
        )
    return figures


def main() -> int:
    gateway_cpus, client_cpus = cpu_plan()
    all_results: dict[str, dict[str, Result]] = {}
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-gateway-")))
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)  # the stub inherits it
        stub = stack.enter_context(FastChatStub(CHUNKS))
        if client_cpus:
            # Started on every CPU (LiteLLM's start is long), pinned once ready.
            os.sched_setaffinity(0, client_cpus | (gateway_cpus or set()))
        started = stack.enter_context(gateways(stub.url, root))
        if client_cpus and gateway_cpus:
            os.sched_setaffinity(0, client_cpus)
            for running in started.values():
                pin_process(running.pid, gateway_cpus)
        hooks = {variant: g.hooks for variant, g in started.items()}
        without_key = {
            variant: asyncio.run(status_without_key(g.url)) for variant, g in started.items()
        }
        if without_key.get("on", 401) != 401 or without_key.get("off", 200) != 200:
            raise RuntimeError(f"auth is not as configured: statuses without a key {without_key}")
        targets = [Target("direct", stub.url, None)]
        targets += [Target(variant, g.url, g.pid) for variant, g in started.items()]
        for g in started.values():
            g.pause()
        # Whole answers for every target, then streamed ones: drift on a shared machine falls
        # on all targets alike rather than on one.
        for kind, stream in (("whole", False), ("streamed", True)):
            for target in targets:
                measured = started.get(target.name)
                if measured is not None:
                    measured.resume()
                try:
                    result = asyncio.run(
                        measure(target, stream, stub.text, gateway_cpus, client_cpus)
                    )
                finally:
                    if measured is not None:
                        measured.pause()
                all_results.setdefault(target.name, {})[kind] = result
                print(
                    f"{LABELS[target.name]}, {kind}: p50 {fmt(result.p50_ms, 2)} ms,"
                    f" p99 {fmt(result.p99_ms, 2)} ms, {fmt(result.rps, 0)} rps",
                    flush=True,
                )

    print()
    pinning = (
        f"gateway on CPU {sorted(gateway_cpus)}, stub and load generator on CPU"
        f" {sorted(client_cpus)}"
        if gateway_cpus and client_cpus
        else "not pinned"
    )
    print(
        f"{REQUESTS} sequential calls (after {WARMUP_REQUESTS}) per row; {CONCURRENCY} clients"
        f" for {SECONDS:g} s (after {WARMUP_SECONDS:g} s) for rps; {CHUNKS} words per answer,"
        f" streamed one per chunk; {pinning}\n"
    )
    figures = report(all_results)
    print()
    for variant, names in hooks.items():
        print(
            f"{LABELS[variant]}: llmfleet hooks in config.yaml: {', '.join(names) or 'none'};"
            f" a call without a key: {without_key[variant]}"
        )
    path = save(
        "gateway",
        {
            "settings": {
                "requests": REQUESTS, "warmup_requests": WARMUP_REQUESTS, "seconds": SECONDS,
                "warmup_seconds": WARMUP_SECONDS, "concurrency": CONCURRENCY, "chunks": CHUNKS,
                "pinning": pinning, "cpus": os.cpu_count(), "litellm": litellm_version(),
            },
            "hooks": hooks,
            "status_without_key": without_key,
            "results": {
                variant: {kind: asdict(r) for kind, r in kinds.items()}
                for variant, kinds in all_results.items()
            },
            "headline": figures,
            "anchors": ANCHORS,
        },
    )  # fmt: skip
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
