"""Operator settings, from command-line flags with environment-variable defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from llmfleet import labels

# Built from Dockerfile.garak: garak (pinned, without torch) on python:3.11-slim, non-root.
DEFAULT_VALIDATION_IMAGE = "ghcr.io/llmfleet/garak:0.17.1"


@dataclass(frozen=True)
class Settings:
    # Namespaces whose custom resources are reconciled; empty means every namespace.
    namespaces: tuple[str, ...] = ()
    # Location of the cluster the operator runs in (it is a member too: "in-cluster").
    cluster_location: str = "cloud"
    # Where member-cluster Secrets live (normally the operator's own namespace).
    members_namespace: str = "llmfleet-system"
    # Namespace of the Prometheus scraper, allowed to reach model and gateway metrics.
    metrics_namespace: str = "monitoring"
    kubeconfig: str | None = None
    json_logs: bool = False
    verbose: bool = False
    liveness_port: int = 8080
    metrics_port: int = 9090
    # Safety-net resync of every resource; level-based, so a resync over unchanged objects
    # makes no writes.
    resync_seconds: float = 30.0
    # Watch streams that stay silent longer than this are restarted (kopf issues #585, #1276).
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    api_workers: int = 8
    # Source addresses of this cluster's outbound traffic: member clusters admit its gateways.
    egress_cidrs: tuple[str, ...] = ()
    # Namespace of the ingress controller, let into gateways that have `exposure.ingress`.
    ingress_namespace: str = "ingress-nginx"
    # Managed ChatEndpoint sites are probed over HTTP(S); off where that would leave the machine.
    probe_providers: bool = True
    # The gateway image for every self-managed site without its own `image` (mirrors, pins).
    gateway_image: str | None = None
    # The drift checker image for MLPipelines without `monitoring.drift.image`.
    drift_image: str | None = None
    # The scanner image for validations without their own `image` (garak and python).
    validation_image: str = DEFAULT_VALIDATION_IMAGE
    # Member-cluster Secrets by name (read one by one); empty: every labelled Secret.
    member_secrets: tuple[str, ...] = ()
    # The Prometheus autoscaled models' load is read from (a member may name its own).
    prometheus_url: str = ""
    # Seconds between two reads of the load.
    autoscaling_interval: float = 15.0


def _env(name: str, default: str) -> str:
    return os.environ.get(f"LLMFLEET_{name}", default)


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="llmfleet run", description="Run the llmfleet operator.")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[n for n in _env("NAMESPACES", "").split(",") if n],
        help="namespace to watch (repeatable; env LLMFLEET_NAMESPACES, comma-separated); "
        "default: all namespaces",
    )
    parser.add_argument(
        "--cluster-location",
        default=_env("CLUSTER_LOCATION", "cloud"),
        choices=[*labels.LOCATIONS, "mixed"],
        help="location of the cluster the operator runs in (env LLMFLEET_CLUSTER_LOCATION); "
        "mixed: its nodes' llmfleet.io/location labels decide",
    )
    parser.add_argument(
        "--members-namespace",
        default=_env("MEMBERS_NAMESPACE", "llmfleet-system"),
        help="namespace of member-cluster Secrets (env LLMFLEET_MEMBERS_NAMESPACE)",
    )
    parser.add_argument(
        "--member-secret",
        action="append",
        default=[n for n in _env("MEMBER_SECRETS", "").split(",") if n],
        help="name of a member-cluster Secret in the members namespace (repeatable; env "
        "LLMFLEET_MEMBER_SECRETS); the operator then reads only these, by name, and needs no "
        "right to list Secrets; default: every Secret labelled as a member cluster",
    )
    parser.add_argument(
        "--metrics-namespace",
        default=_env("METRICS_NAMESPACE", "monitoring"),
        help="namespace of the metrics scraper (env LLMFLEET_METRICS_NAMESPACE)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig of the hub cluster; default: in-cluster credentials",
    )
    parser.add_argument("--json-logs", action="store_true", default=_env("JSON_LOGS", "") == "1")
    parser.add_argument("--verbose", action="store_true", default=_env("VERBOSE", "") == "1")
    parser.add_argument("--liveness-port", type=int, default=int(_env("LIVENESS_PORT", "8080")))
    parser.add_argument("--metrics-port", type=int, default=int(_env("METRICS_PORT", "9090")))
    parser.add_argument("--resync-seconds", type=float, default=float(_env("RESYNC_SECONDS", "30")))
    parser.add_argument(
        "--gateway-image",
        default=_env("GATEWAY_IMAGE", "") or None,
        help="LiteLLM proxy image for ChatEndpoint gateways (env LLMFLEET_GATEWAY_IMAGE); "
        "default: the pinned release",
    )
    parser.add_argument(
        "--drift-image",
        default=_env("DRIFT_IMAGE", "") or None,
        help="drift checker image for MLPipelines that set monitoring.drift without an image "
        '(env LLMFLEET_DRIFT_IMAGE); it writes {"score": S} to its termination message',
    )
    parser.add_argument(
        "--validation-image",
        default=_env("VALIDATION_IMAGE", "") or DEFAULT_VALIDATION_IMAGE,
        help="scanner image (garak and python) for validations without an image "
        f"(env LLMFLEET_VALIDATION_IMAGE; default {DEFAULT_VALIDATION_IMAGE}, built from "
        "Dockerfile.garak)",
    )
    parser.add_argument(
        "--egress-cidr",
        action="append",
        default=[c for c in _env("EGRESS_CIDRS", "").split(",") if c],
        help="source range of this cluster's outbound traffic, admitted by model servers in "
        "member clusters that its gateways call (repeatable; env LLMFLEET_EGRESS_CIDRS)",
    )
    parser.add_argument(
        "--ingress-namespace",
        default=_env("INGRESS_NAMESPACE", "ingress-nginx"),
        help="namespace of the ingress controller (env LLMFLEET_INGRESS_NAMESPACE)",
    )
    parser.add_argument(
        "--no-provider-probes",
        dest="probe_providers",
        action="store_false",
        default=_env("PROVIDER_PROBES", "1") != "0",
        help="do not probe managed endpoints' URLs (env LLMFLEET_PROVIDER_PROBES=0)",
    )
    parser.add_argument(
        "--prometheus-url",
        default=_env("PROMETHEUS_URL", ""),
        help="Prometheus that scrapes model servers and gateways, read for the load of "
        "autoscaled LLMDeployments (env LLMFLEET_PROMETHEUS_URL); a member cluster may name "
        "its own with the annotation llmfleet.io/prometheus-url on its registration Secret",
    )
    parser.add_argument(
        "--autoscaling-interval",
        type=float,
        default=float(_env("AUTOSCALING_INTERVAL", "15")),
        help="seconds between two reads of the load of autoscaled models "
        "(env LLMFLEET_AUTOSCALING_INTERVAL)",
    )
    args = parser.parse_args(argv)
    if args.prometheus_url and not args.prometheus_url.startswith(("http://", "https://")):
        parser.error(f"--prometheus-url {args.prometheus_url!r} must be an http(s) URL")
    if args.autoscaling_interval < 1:
        parser.error("--autoscaling-interval must be at least 1 second")
    return Settings(
        namespaces=tuple(args.namespace),
        cluster_location=args.cluster_location,
        members_namespace=args.members_namespace,
        metrics_namespace=args.metrics_namespace,
        kubeconfig=args.kubeconfig,
        json_logs=args.json_logs,
        verbose=args.verbose,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        resync_seconds=args.resync_seconds,
        probe_providers=args.probe_providers,
        ingress_namespace=args.ingress_namespace,
        egress_cidrs=tuple(args.egress_cidr),
        gateway_image=args.gateway_image,
        drift_image=args.drift_image,
        validation_image=args.validation_image,
        member_secrets=tuple(args.member_secret),
        prometheus_url=args.prometheus_url.rstrip("/"),
        autoscaling_interval=args.autoscaling_interval,
    )
