"""What the fleet looks like, as gauges: each reconcile records the facts of its resource, a
deletion forgets them, and a scrape adds them up. Facts come from the spec and the status the
reconcile wrote, so the gauges say what the resources' statuses say."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Key = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class Facts:
    kind: str
    mode: str
    location: str
    ready: bool
    degraded: bool
    gpus: tuple[tuple[str, str, int], ...] = ()  # location, product, GPUs requested
    clusters: tuple[str, ...] = ()  # where its workloads run
    sites: tuple[tuple[str, str, bool], ...] = ()  # gateway sites: location, management, ready
    stages: tuple[tuple[str, str], ...] = ()  # pipeline stages: name, phase
    drift: bool | None = None  # pipelines with drift monitoring: detected or not
    replicas: tuple[tuple[str, str, str, int], ...] = ()  # cluster, location, role, replicas
    policy_violation: bool = False  # Ready is False for a FleetPolicy
    # Autoscaled models: the load read (None: missing), the replicas it asks for, and the
    # ready replicas per location.
    load: float | None = None
    desired: int | None = None
    ready_by_location: tuple[tuple[str, int], ...] = ()
    # Validated models: per cluster its latest verdict, and each probe's pass rate there.
    scans: tuple[tuple[str, str], ...] = ()  # cluster, Passed|Failed
    pass_rates: tuple[tuple[str, str, str, float], ...] = ()  # cluster, probe, detector, rate


def _condition(status: Mapping[str, Any], type_: str) -> str:
    for found in status.get("conditions") or []:
        if found.get("type") == type_:
            return str(found.get("status", "Unknown"))
    return "Unknown"


def _reason(status: Mapping[str, Any], type_: str) -> str:
    for found in status.get("conditions") or []:
        if found.get("type") == type_:
            return str(found.get("reason", ""))
    return ""


def facts_of(kind: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> Facts:
    facts = _facts_of(kind, spec, status)
    violation = _reason(status, "Ready") == "PolicyViolation"
    return replace(facts, policy_violation=violation) if violation else facts


def _facts_of(kind: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> Facts:
    ready = _condition(status, "Ready") == "True"
    degraded = _condition(status, "Degraded") == "True"
    if kind == "LLMDeployment":
        placement = spec.get("placement") or {}
        location = str(placement.get("location", ""))
        gpus: tuple[tuple[str, str, int], ...] = ()
        if placement.get("management", "self-managed") == "self-managed":
            gpu = spec.get("gpu") or {}
            scaled = status.get("autoscaling") or {}
            wanted = scaled.get("desiredReplicas", spec.get("replicas", 1))
            count = int(gpu.get("count", 1)) * int(wanted)
            product = "|".join(gpu.get("product") or []) or "any"
            gpus = ((location, product, count),) if count else ()
        clusters = tuple(
            str(p.get("cluster")) for p in status.get("placements") or [] if p.get("cluster")
        )
        replicas = tuple(
            (str(p["cluster"]), str(p.get("location", "")), str(p.get("role") or "preferred"),
             int(p.get("replicas") or 0))
            for p in status.get("placements") or []
            if p.get("cluster") and p.get("state") in ("Placed", "Unknown")
        )  # fmt: skip
        facts = Facts(
            kind, str(status.get("mode", "")), location, ready, degraded, gpus, clusters,
            replicas=replicas, **_scans(status),
        )  # fmt: skip
        autoscaling = status.get("autoscaling")
        if not spec.get("autoscaling") or not autoscaling:
            return facts
        ready_at: Counter[str] = Counter()
        for p in status.get("placements") or []:
            ready_at[str(p.get("location", ""))] += int(p.get("readyReplicas") or 0)
        return replace(
            facts,
            load=autoscaling.get("load"),
            desired=int(autoscaling.get("desiredReplicas") or 0),
            ready_by_location=tuple(sorted(ready_at.items())),
        )
    if kind == "ChatEndpoint":
        sites = tuple(
            (str(s.get("location", "")), str(s.get("management", "")), bool(s.get("ready")))
            for s in status.get("sites") or []
        )
        locations = "+".join(sorted({s.get("location", "") for s in spec.get("sites") or []}))
        clusters = tuple(
            str(s.get("cluster")) for s in status.get("sites") or [] if s.get("cluster")
        )
        return Facts(
            kind, str(status.get("mode", "")), locations, ready, degraded,
            clusters=clusters, sites=sites,
        )  # fmt: skip
    stages = tuple(
        (str(s.get("name", "")), str(s.get("phase", ""))) for s in status.get("stages") or []
    )
    drift = None
    if (spec.get("monitoring") or {}).get("drift"):
        drift = _condition(status, "DriftDetected") == "True"
    location = "/".join(
        str(((spec.get(stage) or {}).get("placement") or {}).get("location", ""))
        for stage in ("training", "inference", "endpoint")
    )
    clusters = tuple(str(s.get("cluster")) for s in status.get("stages") or [] if s.get("cluster"))
    return Facts(
        kind, str(status.get("option", "")), location, ready, degraded,
        clusters=clusters, stages=stages, drift=drift,
    )  # fmt: skip


def _scans(status: Mapping[str, Any]) -> dict[str, Any]:
    entries = (status.get("validation") or {}).get("clusters") or []
    finished = [e for e in entries if e.get("verdict") in ("Passed", "Failed")]
    return {
        "scans": tuple((str(e["cluster"]), str(e["verdict"])) for e in finished),
        "pass_rates": tuple(
            (str(e["cluster"]), str(p.get("probe", "")), str(p.get("detector", "")),
             float(p["passRate"]))
            for e in finished
            for p in e.get("probes") or []
            if p.get("passRate") is not None
        ),
    }  # fmt: skip


class FleetState(Collector):
    """The latest facts per resource; collected as gauges at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[Key, Facts] = {}

    def record(self, key: Key, facts: Facts) -> None:
        with self._lock:
            self._facts[key] = facts

    def forget(self, key: Key) -> None:
        with self._lock:
            self._facts.pop(key, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            items = list(self._facts.items())
        objects = GaugeMetricFamily(
            "llmfleet_objects",
            "Resources by kind, placement mode (LLM and endpoint models, ML options), location "
            "and readiness.",
            labels=["kind", "mode", "location", "ready"],
        )
        gpus = GaugeMetricFamily(
            "llmfleet_gpus_requested",
            "GPUs requested by self-managed LLMDeployments (replicas x GPUs per replica), by "
            "location and accepted product.",
            labels=["location", "product"],
        )
        placements = GaugeMetricFamily(
            "llmfleet_placements",
            "Workloads placed on each member cluster, by kind.",
            labels=["cluster", "kind"],
        )
        sites = GaugeMetricFamily(
            "llmfleet_gateway_sites",
            "ChatEndpoint sites by location, management and readiness.",
            labels=["location", "management", "ready"],
        )
        stages = GaugeMetricFamily(
            "llmfleet_pipeline_stages",
            "MLPipeline stages by stage and phase.",
            labels=["stage", "phase"],
        )
        degraded = GaugeMetricFamily(
            "llmfleet_resource_degraded",
            "1 for each resource whose Degraded condition is True.",
            labels=["kind", "namespace", "name"],
        )
        replicas = GaugeMetricFamily(
            "llmfleet_replicas",
            "Model-server replicas asked of each member cluster, by role: preferred (the spec's "
            "location), overflow (the preferred location is full), failover (replacing an "
            "unreachable member's).",
            labels=["cluster", "location", "role"],
        )
        violations = GaugeMetricFamily(
            "llmfleet_policy_violations",
            "Resources refused, wholly or in part, by a FleetPolicy (Ready reason "
            "PolicyViolation), by kind and namespace.",
            labels=["kind", "namespace"],
        )
        drift = GaugeMetricFamily(
            "llmfleet_pipeline_drift_detected",
            "Per MLPipeline with drift monitoring: 1 when its latest check is above the "
            "threshold, else 0.",
            labels=["namespace", "name"],
        )
        counts: dict[str, Counter[tuple[str, ...]]] = {
            name: Counter()
            for name in (
                "objects",
                "gpus",
                "placements",
                "sites",
                "stages",
                "replicas",
                "violations",
            )
        }
        for (kind, namespace, name), facts in items:
            counts["objects"][(kind, facts.mode, facts.location, str(facts.ready).lower())] += 1
            for location, product, count in facts.gpus:
                counts["gpus"][(location, product)] += count
            for cluster in facts.clusters:
                counts["placements"][(cluster, kind)] += 1
            for location, management, ready in facts.sites:
                counts["sites"][(location, management, str(ready).lower())] += 1
            for stage, phase in facts.stages:
                counts["stages"][(stage, phase)] += 1
            for cluster, location, role, count in facts.replicas:
                counts["replicas"][(cluster, location, role)] += count
            if facts.policy_violation:
                counts["violations"][(kind, namespace)] += 1
            if facts.degraded:
                degraded.add_metric([kind, namespace, name], 1)
            if facts.drift is not None:
                drift.add_metric([namespace, name], int(facts.drift))
        for family, name in (
            (objects, "objects"), (gpus, "gpus"), (placements, "placements"),
            (sites, "sites"), (stages, "stages"), (replicas, "replicas"),
            (violations, "violations"),
        ):  # fmt: skip
            for labels, value in sorted(counts[name].items()):
                family.add_metric(list(labels), value)
        yield from (
            objects, gpus, placements, sites, stages, degraded, drift, replicas, violations
        )  # fmt: skip
        yield from self._autoscaling(items)
        yield from self._validation(items)

    @staticmethod
    def _validation(items: list[tuple[Key, Facts]]) -> Iterator[GaugeMetricFamily]:
        passed = GaugeMetricFamily(
            "llmfleet_validation_passed",
            "Per validated LLMDeployment and cluster: 1 when its latest scan of what it serves "
            "passed, 0 when it failed (absent before the first scan).",
            labels=["namespace", "name", "cluster"],
        )
        rates = GaugeMetricFamily(
            "llmfleet_validation_pass_rate",
            "Per validated LLMDeployment, cluster, garak probe and detector: the share of "
            "evaluations its latest scan passed.",
            labels=["namespace", "name", "cluster", "probe", "detector"],
        )
        for (_, namespace, name), facts in items:
            for cluster, verdict in facts.scans:
                passed.add_metric([namespace, name, cluster], 1 if verdict == "Passed" else 0)
            for cluster, probe, detector, rate in facts.pass_rates:
                rates.add_metric([namespace, name, cluster, probe, detector], rate)
        yield from (passed, rates)

    @staticmethod
    def _autoscaling(items: list[tuple[Key, Facts]]) -> Iterator[GaugeMetricFamily]:
        load = GaugeMetricFamily(
            "llmfleet_autoscaling_load",
            "Per autoscaled LLMDeployment: the load last read from Prometheus (absent while "
            "it cannot be read).",
            labels=["namespace", "name"],
        )
        desired = GaugeMetricFamily(
            "llmfleet_autoscaling_desired_replicas",
            "Per autoscaled LLMDeployment: the replicas its load asks for, across the fleet.",
            labels=["namespace", "name"],
        )
        ready_replicas = GaugeMetricFamily(
            "llmfleet_autoscaling_ready_replicas",
            "Per autoscaled LLMDeployment: its ready replicas at each location.",
            labels=["namespace", "name", "location"],
        )
        for (_, namespace, name), facts in items:
            if facts.desired is None:
                continue
            desired.add_metric([namespace, name], facts.desired)
            if facts.load is not None:
                load.add_metric([namespace, name], facts.load)
            for location, count in facts.ready_by_location:
                ready_replicas.add_metric([namespace, name, location], count)
        yield from (load, desired, ready_replicas)
