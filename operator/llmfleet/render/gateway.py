"""ChatEndpoint -> a LiteLLM gateway for one self-managed site, or the wiring of a managed site.

Pure: backends arrive resolved as routes (one per serving placement of a model, with its URL,
location, cluster and ready replicas; one per provider endpoint); objects come out.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml

from llmfleet import labels
from llmfleet.api.chatendpoint import ChatEndpointSpec, Guardrails, RateLimit, Routing, Site
from llmfleet.api.common import SecretKeyRef
from llmfleet.render.common import Owner, Rendered, bounded, child_metadata, owner_label, refs
from llmfleet.segmentation import policies, roles

GATEWAY_IMAGE = "ghcr.io/berriai/litellm:main-v1.106.2"
PORT = 4000
CONFIG_DIR = "/etc/llmfleet-gateway"
PLUGIN = "llmfleet_gateway"
ROLE = "gateway"
STRATEGIES = {
    "weighted": "simple-shuffle",
    "failover": "simple-shuffle",
    "least-busy": "least-busy",
    "latency": "latency-based-routing",
}


@dataclass(frozen=True)
class ResolvedBackend:
    """One route of a backend as a gateway reaches it: a provider endpoint, or one serving
    placement of an LLMDeployment (a model spread over clusters has one route per cluster,
    all with the backend's name)."""

    name: str
    location: str
    weight: int
    fallback_only: bool
    model: str  # LiteLLM model string: hosted_vllm/..., azure/..., openai/..., azure_ai/...
    api_base: str
    api_version: str | None = None
    key: SecretKeyRef | None = None
    llm_deployment: str | None = None  # set for LLMDeployment backends
    cluster: str | None = None  # cluster of an LLMDeployment backend's model server
    port: int = 0
    egress_cidrs: tuple[str, ...] = ()
    # Ready model-server replicas of the placement; None for a provider endpoint or a model
    # not placed yet (nothing to weigh by).
    ready: int | None = None
    # The model may sleep (autoscaling down to zero): with no ready replica anywhere it gets
    # no request, and wakes from the request counted for it.
    sleeps: bool = False


# Model groups after the primary one (the alias), in the order the gateway tries them.
NEARBY = "nearby"  # the backends' other clusters at the site's location
REMOTE = "remote"  # the other location
FALLBACK = "fallback"  # fallbackOnly backends
STANDBY = "standby"  # placements without a ready replica while their model has ready ones
# Largest factor route weights are scaled by (a backend's weight is at most 100).
MAX_SCALE = 10_000
# What a caller of a model that is starting is told to wait before trying again.
RETRY_AFTER_SECONDS = 10


def site_name(owner: Owner, location: str) -> str:
    """A site's gateway objects; its Service name must be a DNS label."""
    return bounded(f"{owner.name}-{location}")


def key_env(index: int) -> str:
    return f"LLMFLEET_BACKEND_{index}_API_KEY"


def plugin_source() -> str:
    return resources.files("llmfleet.render.gateway_plugin").joinpath(f"{PLUGIN}.py").read_text()


def model_groups(
    alias: str,
    location: str,
    backends: Sequence[ResolvedBackend],
    prefer_local: bool,
    cluster: str | None = None,
) -> tuple[dict[str, list[int]], list[dict[str, list[str]]]]:
    """Route indexes per model group, and the fallback chain of the primary group.

    With `prefer_local`, each backend's routes are ranked from the site: its placement in the
    site's own `cluster`, then its placements in other clusters of the site's location, then
    those at the other location. The primary group (the alias) holds each backend's best
    routes at the site's location; `<alias>--nearby` the other clusters of that location of
    the backends that also run in the site's cluster; `<alias>--remote` the other location
    (the primary group itself when nothing is at the site's location). Without
    `prefer_local`, every route is in the primary group. Fallback-only backends form
    `<alias>--fallback`. A placement without a ready replica while another placement of its
    model has some takes no share of the traffic: it stays as a last resort in
    `<alias>--standby`, tried after everything else (its pods may be about to become ready,
    and a model's readiness in status lags the pods'). A backend with one route is ranked by
    its location alone, as before models were spread over clusters.
    """
    standby = _standby(backends)
    waiting = _waiting(backends)
    regular = [
        i
        for i, b in enumerate(backends)
        if not b.fallback_only and i not in standby and i not in waiting
    ]
    primary, nearby, remote = regular, [], []
    if prefer_local:
        local = [i for i in regular if backends[i].location == location]
        in_cluster = {
            backends[i].name
            for i in local
            if cluster is not None and backends[i].cluster == cluster
        }
        nearby = [
            i for i in local if backends[i].name in in_cluster and backends[i].cluster != cluster
        ]
        if local:
            primary = [i for i in local if i not in nearby]
            remote = [i for i in regular if i not in local]
    groups = {alias: primary}
    for suffix, indexes in (
        (NEARBY, nearby),
        (REMOTE, remote),
        (
            FALLBACK,
            [
                i
                for i, b in enumerate(backends)
                if b.fallback_only and i not in standby and i not in waiting
            ],
        ),
        (STANDBY, sorted(standby)),
    ):
        if indexes:
            groups[f"{alias}--{suffix}"] = indexes
    if not groups[alias]:
        # Nothing of the primary group can answer: the next group takes the alias, so the
        # gateway serves from it rather than failing on an empty group.
        del groups[alias]
        if groups:
            first = next(iter(groups))
            groups = {alias: groups.pop(first), **groups}
    chain = [name for name in groups if name != alias]
    return groups, ([{alias: chain}] if chain and alias in groups else [])


def _waiting(backends: Sequence[ResolvedBackend]) -> set[int]:
    """Routes of models that may sleep and have no ready replica anywhere (asleep, or
    waking): nothing there can answer yet, so no request is sent there. Other models keep
    their routes while they load, as they always had."""
    serving = {b.name for b in backends if b.ready}
    return {
        i for i, b in enumerate(backends) if b.sleeps and b.ready == 0 and b.name not in serving
    }


def starting(
    alias: str,
    location: str,
    backends: Sequence[ResolvedBackend],
    prefer_local: bool,
    cluster: str | None = None,
) -> dict[str, str]:
    """The alias, when none of its backends can answer yet, with what the gateway tells
    callers meanwhile (at once, with Retry-After: never a wait until the timeout)."""
    groups, _ = model_groups(alias, location, backends, prefer_local, cluster)
    if groups:
        return {}
    names = sorted({b.name for i, b in enumerate(backends) if i in _waiting(backends)})
    if not names:
        return {}
    return {
        alias: f"model {alias} is starting ({', '.join(names)}: scaled to zero or loading; "
        f"this request wakes it); retry in {RETRY_AFTER_SECONDS} s"
    }


def wakes(alias: str, backends: Sequence[ResolvedBackend]) -> dict[str, list[str]]:
    """The models a request for the alias counts for (their wake and activity signal): the
    primary backends' LLMDeployments, not the fallback-only ones."""
    names = sorted({b.llm_deployment for b in backends if b.llm_deployment and not b.fallback_only})
    return {alias: names} if names else {}


def _standby(backends: Sequence[ResolvedBackend]) -> set[int]:
    """Routes without a ready replica whose backend has a route with some."""
    serving = {b.name for b in backends if b.ready}
    return {i for i, b in enumerate(backends) if b.ready == 0 and b.name in serving}


def route_weights(
    groups: dict[str, list[int]], backends: Sequence[ResolvedBackend]
) -> dict[int, int]:
    """The weight of each route within its group. A backend's share of a group is its weight
    (at least 1); a backend with several routes in the group divides its share between them
    by their ready replicas (evenly when none is ready). Weights are whole numbers: the
    shares of such backends are scaled by a common multiple, and a backend alone in its
    group, or with a single route there, keeps its weight as it is."""
    weights: dict[int, int] = {}
    for indexes in groups.values():
        by_backend: dict[str, list[int]] = {}
        for i in indexes:
            by_backend.setdefault(backends[i].name, []).append(i)
        parts: dict[str, list[int]] = {}
        for name, routes in by_backend.items():
            if len(routes) > 1:
                ready = [max(backends[i].ready or 0, 0) for i in routes]
                ready = ready if any(ready) else [1] * len(ready)
                divisor = math.gcd(*ready)
                parts[name] = [r // divisor for r in ready]
        scale = math.lcm(*(sum(p) for p in parts.values())) if parts else 1
        scale = min(scale, MAX_SCALE)  # beyond it the shares are rounded down
        for name, routes in by_backend.items():
            share = max(backends[routes[0]].weight, 1) * scale
            for position, i in enumerate(routes):
                part = parts.get(name)
                weights[i] = share if part is None else share * part[position] // sum(part) or 1
    return weights


def route_id(backends: Sequence[ResolvedBackend], index: int) -> str:
    """A route's id in the gateway: the backend's name, with its cluster when the backend has
    several routes."""
    backend = backends[index]
    if sum(1 for b in backends if b.name == backend.name) > 1:
        return f"{backend.name}@{backend.cluster or 'local'}"
    return backend.name


def litellm_config(
    spec: ChatEndpointSpec,
    location: str,
    backends: Sequence[ResolvedBackend],
    cluster: str | None = None,
) -> dict[str, Any]:
    routing = spec.routing or Routing()
    groups, fallbacks = model_groups(
        spec.model_alias, location, backends, routing.prefer_local, cluster
    )
    weights = route_weights(groups, backends)
    model_list = []
    for group, indexes in groups.items():
        for i in indexes:
            backend = backends[i]
            params: dict[str, Any] = {
                "model": backend.model,
                "api_base": backend.api_base,
                "weight": weights[i],
                "timeout": routing.timeout_seconds,
            }
            params["api_key"] = f"os.environ/{key_env(i)}" if backend.key else "none"
            if backend.api_version:
                params["api_version"] = backend.api_version
            model_list.append(
                {
                    "model_name": group,
                    "litellm_params": params,
                    "model_info": {"id": route_id(backends, i)},
                }
            )
    # The plugin's guard enforces the limits and spots prompt injection by pattern; LiteLLM's
    # own heuristic check is left out: its time grows with the prompt (minutes for a long one).
    # The output guard reads answers only when it is on: off adds no hook to any request.
    callbacks = [f"{PLUGIN}.guard"]
    if output_guard(spec) != "off":
        callbacks.append(f"{PLUGIN}.output_guard")
    callbacks.append("prometheus")  # prometheus: request metrics on /metrics/
    return {
        "model_list": model_list,
        "router_settings": {
            "routing_strategy": STRATEGIES[routing.strategy],
            "num_retries": routing.retries,
            "timeout": routing.timeout_seconds,
            "fallbacks": fallbacks,
        },
        "litellm_settings": {
            "callbacks": callbacks,
            "drop_params": True,
        },
        "general_settings": {
            "master_key": "os.environ/LITELLM_MASTER_KEY",
            "custom_auth": f"{PLUGIN}.user_api_key_auth",
        },
    }


def output_guard(spec: ChatEndpointSpec) -> str:
    """The endpoint's output guard: off, redact or block."""
    return (spec.guardrails or Guardrails()).output


def output_guard_env(spec: ChatEndpointSpec) -> list[dict[str, Any]]:
    """The output guard's settings, none when it is off (the gateway's pods stay as they were)."""
    guard = spec.guardrails or Guardrails()
    if guard.output == "off":
        return []
    env = [
        {"name": "LLMFLEET_OUTPUT_GUARD", "value": guard.output},
        {"name": "LLMFLEET_MODEL_ALIAS", "value": spec.model_alias},
    ]
    if guard.output_patterns:
        patterns = [{"name": p.name, "regex": p.regex} for p in guard.output_patterns]
        env.append({"name": "LLMFLEET_OUTPUT_PATTERNS", "value": json.dumps(patterns)})
    return env


def gateway_env(
    spec: ChatEndpointSpec,
    backends: Sequence[ResolvedBackend],
    master_key: SecretKeyRef,
    location: str = "",
    cluster: str | None = None,
) -> list[dict[str, Any]]:
    """Settings of the plugin, and every secret as a reference: never a value in the config."""
    limits = spec.rate_limit or RateLimit()
    guard = spec.guardrails or Guardrails()
    routing = spec.routing or Routing()
    waiting = starting(spec.model_alias, location, backends, routing.prefer_local, cluster)
    env: list[dict[str, Any]] = [
        {"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},
        {"name": "PYTHONPATH", "value": CONFIG_DIR},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - an emptyDir of the pod's own
        {
            "name": "LLMFLEET_AUTH_REQUIRED",
            "value": "true" if spec.auth and spec.auth.api_key_secret_ref else "false",
        },
        {"name": "LLMFLEET_RPM_LIMIT", "value": str(limits.requests_per_minute or 0)},
        {"name": "LLMFLEET_TPM_LIMIT", "value": str(limits.tokens_per_minute or 0)},
        {"name": "LLMFLEET_MAX_INPUT_TOKENS", "value": str(guard.max_input_tokens)},
        {"name": "LLMFLEET_PROMPT_INJECTION", "value": guard.prompt_injection},
        {"name": "LLMFLEET_WAKES", "value": json.dumps(wakes(spec.model_alias, backends))},
        {"name": "LLMFLEET_STARTING", "value": json.dumps(waiting, sort_keys=True)},
        {"name": "LLMFLEET_RETRY_AFTER_SECONDS", "value": str(RETRY_AFTER_SECONDS)},
        *output_guard_env(spec),
        _secret_env("LITELLM_MASTER_KEY", master_key),
    ]
    env += [_secret_env(key_env(i), b.key) for i, b in enumerate(backends) if b.key]
    return env


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def gateway_pod_labels(
    owner: Owner, location: str, backends: Sequence[ResolvedBackend]
) -> dict[str, str]:
    pod_labels = {
        "app.kubernetes.io/name": "chat-gateway",
        "app.kubernetes.io/instance": owner.instance,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
        labels.OWNER: owner.label,
        labels.ROLE: ROLE,
        labels.LOCATION: location,
        labels.SEGMENT: f"{location}-{ROLE}",
    }
    pod_labels |= {
        policies.backend_label(b.llm_deployment): "true" for b in backends if b.llm_deployment
    }
    return pod_labels


def self_managed_site(
    spec: ChatEndpointSpec,
    owner: Owner,
    site: Site,
    backends: Sequence[ResolvedBackend],
    *,
    cluster: str,
    in_owner_cluster: bool,
    master_key: SecretKeyRef,
    metrics_namespace: str,
    ingress_namespace: str = "ingress-nginx",
    image: str | None = None,
) -> Rendered:
    name = site_name(owner, site.location)
    namespace = owner.namespace

    def meta(object_name: str = name) -> dict[str, Any]:
        return child_metadata(owner, object_name, in_owner_cluster=in_owner_cluster,
                              extra_labels={labels.LOCATION: site.location})  # fmt: skip

    selector = {labels.OWNER: owner.label, labels.ROLE: ROLE, labels.LOCATION: site.location}
    config_text = yaml.safe_dump(
        litellm_config(spec, site.location, backends, cluster), sort_keys=False
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(),
        "data": {"config.yaml": config_text, f"{PLUGIN}.py": plugin_source()},
    }
    config_hash = hashlib.sha256(config_text.encode()).hexdigest()[:16]
    deployment = gateway_deployment(
        spec, owner, site, backends, metadata=meta(), selector=selector,
        config_hash=config_hash, master_key=master_key, image=site.image or image or GATEWAY_IMAGE,
        cluster=cluster,
    )  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(),
        "automountServiceAccountToken": False,
    }
    deny, ingress, egress = site_policies(
        spec, owner, backends, metadata=meta(), selector=selector, cluster=cluster,
        metrics_namespace=metrics_namespace, ingress_namespace=ingress_namespace,
        in_owner_cluster=in_owner_cluster,
    )  # fmt: skip
    exposure = spec.exposure
    objects: list[dict[str, Any]] = [
        account,
        config_map,
        deployment,
        service,
        deny,
        ingress,
        egress,
    ]
    if exposure and exposure.ingress:
        objects.append(ingress_object(owner, name, meta(), exposure.ingress))
    site_roles = roles.ENDPOINT_ROLES[(site.location, "self-managed")]
    return Rendered(
        objects=objects,
        roles=site_roles,
        role_objects=roles.realized_by(
            site_roles,
            boundary=refs(ingress, egress),
            segmentation=refs(deny, ingress, egress),
            hardening=refs(deployment, account),
            robustness=refs(config_map),  # the guard and limits live in the gateway's config
        ),
        url=f"http://{name}.{namespace}.svc:{PORT}/v1",
    )


def site_policies(
    spec: ChatEndpointSpec,
    owner: Owner,
    backends: Sequence[ResolvedBackend],
    *,
    metadata: dict[str, Any],
    selector: dict[str, str],
    cluster: str,
    metrics_namespace: str,
    ingress_namespace: str,
    in_owner_cluster: bool,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A site's NetworkPolicies: deny by default, callers in (the exposure's namespaces and
    ranges, the ingress controller, the scraper), backends out."""
    name, namespace, object_labels = metadata["name"], owner.namespace, metadata["labels"]
    exposure = spec.exposure
    callers = list(exposure.allowed_namespaces) if exposure else []
    if exposure and exposure.ingress:
        callers.append(ingress_namespace)
    deny = policies.default_deny(name, namespace, object_labels, selector)
    ingress = policies.ingress_from_callers(
        name, namespace, object_labels, selector, PORT,
        allowed_namespaces=callers,
        metrics_namespace=metrics_namespace,
        allowed_cidrs=exposure.allowed_cidrs if exposure else [],
        same_namespace=True,
    )  # fmt: skip
    egress = gateway_egress(
        name, namespace=namespace, object_labels=object_labels, selector=selector,
        backends=backends, cluster=cluster,
    )  # fmt: skip
    if in_owner_cluster:
        for policy in (deny, ingress, egress):
            policy["metadata"]["ownerReferences"] = [owner.reference()]
    return deny, ingress, egress


def gateway_deployment(
    spec: ChatEndpointSpec,
    owner: Owner,
    site: Site,
    backends: Sequence[ResolvedBackend],
    *,
    metadata: dict[str, Any],
    selector: dict[str, str],
    config_hash: str,
    master_key: SecretKeyRef,
    image: str,
    cluster: str | None = None,
) -> dict[str, Any]:
    """The LiteLLM proxy pods of one site: restricted, pinned to the site's location, rolled
    when their config changes."""
    probe = {"httpGet": {"path": "/health/liveliness", "port": "http"}, "periodSeconds": 10}
    ready_probe = {"httpGet": {"path": "/health/readiness", "port": "http"}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": site.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": gateway_pod_labels(owner, site.location, backends),
                    "annotations": {
                        # A new config rolls the gateways (LiteLLM reads its config at start).
                        f"{labels.GROUP}/config-hash": config_hash,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics/",
                    },
                },
                "spec": {
                    "serviceAccountName": metadata["name"],
                    "automountServiceAccountToken": False,
                    "securityContext": policies.pod_security_context(),
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": labels.LOCATION,
                                                "operator": "In",
                                                "values": [site.location],
                                            }
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "containers": [
                        {
                            "name": "gateway",
                            "image": image,
                            "args": ["--config", f"{CONFIG_DIR}/config.yaml", "--port", str(PORT)],
                            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                            "env": gateway_env(spec, backends, master_key, site.location, cluster),
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"cpu": "2", "memory": "2Gi"},
                            },
                            "startupProbe": {**probe, "failureThreshold": 30},
                            "livenessProbe": probe,
                            "readinessProbe": ready_probe,
                            "securityContext": policies.container_security_context(),
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": metadata["name"]}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def gateway_egress(
    name: str,
    *,
    namespace: str,
    object_labels: dict[str, str],
    selector: dict[str, str],
    backends: Sequence[ResolvedBackend],
    cluster: str,
) -> dict[str, Any]:
    """DNS, the model-server pods of same-cluster backends, and the providers' CIDRs."""
    rules: list[dict[str, Any]] = [policies.dns_rule()]
    for backend in backends:
        if backend.llm_deployment and backend.cluster == cluster:
            rules.append(
                {
                    "to": [
                        {
                            "podSelector": {
                                "matchLabels": {
                                    labels.OWNER: owner_label_of(namespace, backend.llm_deployment),
                                    labels.ROLE: "model-server",
                                }
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": backend.port}],
                }
            )
        elif backend.egress_cidrs:
            port = urlsplit(backend.api_base).port or (
                443 if backend.api_base.startswith("https") else 80
            )
            rules.append(
                {
                    "to": [{"ipBlock": {"cidr": c}} for c in backend.egress_cidrs],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            )
    return policies.policy(
        f"{name}-egress", namespace, object_labels, selector,
        {"policyTypes": ["Egress"], "egress": rules},
    )  # fmt: skip


def owner_label_of(namespace: str, llm_deployment: str) -> str:
    return owner_label("LLMDeployment", namespace, llm_deployment)


def ingress_object(
    owner: Owner, name: str, metadata: dict[str, Any], ingress: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": name, "port": {"number": PORT}}},
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def managed_site(owner: Owner, site: Site) -> Rendered:
    """A provider-run site: its endpoint recorded as an ExternalName Service in the hub."""
    if site.managed is None:
        raise ValueError(f"sites[{site.location}].managed is required for a managed site")
    name = site_name(owner, site.location)
    metadata = child_metadata(
        owner, name, in_owner_cluster=True, extra_labels={labels.LOCATION: site.location}
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ExternalName",
            "externalName": urlsplit(site.managed.url).hostname or "",
            "ports": [{"name": "https", "port": 443}],
        },
    }
    site_roles = roles.ENDPOINT_ROLES[(site.location, "managed")]
    return Rendered(
        objects=[service],
        roles=site_roles,
        role_objects={role: refs(service) for role in site_roles},
        url=site.managed.url,
    )


INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
}


def path_name(owner: Owner, location: str, llm_deployment: str) -> str:
    """Objects that open the path from one site to one backend: `<endpoint>-<site>-to-<model>`."""
    return bounded(f"{site_name(owner, location)}-to-{llm_deployment}")


def export(
    owner: Owner,
    location: str,
    llm_deployment: str,
    port: int,
    *,
    peer_cidrs: Sequence[str],
    in_owner_cluster: bool,
) -> list[dict[str, Any]]:
    """Publishes a model server to a gateway in another cluster: an internal load balancer,
    and a NetworkPolicy admitting that cluster's egress range on the model's port."""
    name = path_name(owner, location, llm_deployment)
    pods = {
        labels.OWNER: owner_label_of(owner.namespace, llm_deployment),
        labels.ROLE: "model-server",
    }
    metadata = child_metadata(owner, name, in_owner_cluster=in_owner_cluster)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "annotations": dict(INTERNAL_LB_ANNOTATIONS)},
        "spec": {
            "type": "LoadBalancer",
            "selector": pods,
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }
    if not peer_cidrs:
        return [service]
    rule = {
        "from": [{"ipBlock": {"cidr": c}} for c in peer_cidrs],
        "ports": [{"protocol": "TCP", "port": port}],
    }
    admit = policies.policy(
        name, owner.namespace, metadata["labels"], pods,
        {"policyTypes": ["Ingress"], "ingress": [rule]},
    )  # fmt: skip
    if in_owner_cluster:
        admit["metadata"]["ownerReferences"] = [owner.reference()]
    return [service, admit]


def provider_ingress(
    owner: Owner, site: Site, backend: ResolvedBackend, *, in_owner_cluster: bool
) -> dict[str, Any] | None:
    """Opens the path from a managed site (the provider's CIDRs) to a self-managed backend."""
    if site.managed is None or not backend.llm_deployment or not site.managed.egress_cidrs:
        return None
    name = f"{site_name(owner, site.location)}-to-{backend.llm_deployment}"[:253]
    metadata = child_metadata(owner, name, in_owner_cluster=in_owner_cluster)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {
                "matchLabels": {
                    labels.OWNER: owner_label_of(owner.namespace, backend.llm_deployment),
                    labels.ROLE: "model-server",
                }
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": c}} for c in site.managed.egress_cidrs],
                    "ports": [{"protocol": "TCP", "port": backend.port}],
                }
            ],
        },
    }
