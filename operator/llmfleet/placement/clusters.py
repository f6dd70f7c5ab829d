"""Member clusters, read from labelled Secrets in the operator's namespace.

Two formats are accepted as they are:
- llmfleet's own: label `llmfleet.io/cluster: "true"`, keys `kubeconfig` and optional `name`;
- Argo CD's cluster Secret: label `argocd.argoproj.io/secret-type: cluster`, keys `name`,
  `server` and `config` (JSON), so GitOps users register clusters once.
Both need `llmfleet.io/location` to be placed on.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from llmfleet import labels

IN_CLUSTER = "in-cluster"


class MemberSecretError(ValueError):
    """A Secret that looks like a member registration but cannot be used; says how to fix it."""


@dataclass(frozen=True)
class MemberCluster:
    name: str
    location: str
    labels: Mapping[str, str] = field(default_factory=dict)
    # None means the cluster the operator runs in (in-cluster credentials).
    kubeconfig: Mapping[str, Any] | None = None
    source: str = IN_CLUSTER
    # Source addresses of the cluster's outbound traffic, so peers can admit its gateways.
    egress_cidrs: tuple[str, ...] = ()
    # The cluster's own Prometheus, read for the load of autoscaled models placed there
    # (empty: the operator's --prometheus-url).
    prometheus_url: str = ""


EGRESS_CIDRS_ANNOTATION = f"{labels.GROUP}/egress-cidrs"
PROMETHEUS_URL_ANNOTATION = f"{labels.GROUP}/prometheus-url"


def in_cluster_member(
    location: str,
    cluster_labels: Mapping[str, str] | None = None,
    egress_cidrs: tuple[str, ...] = (),
) -> MemberCluster:
    return MemberCluster(
        name=IN_CLUSTER,
        location=location,
        labels=dict(cluster_labels or {}),
        egress_cidrs=egress_cidrs,
    )


def is_member_secret(secret_labels: Mapping[str, str]) -> bool:
    return (
        secret_labels.get(labels.CLUSTER) == "true"
        or secret_labels.get(labels.ARGOCD_SECRET_TYPE) == "cluster"
    )


def member_from_secret(secret: Mapping[str, Any]) -> MemberCluster:
    """Parses a member-cluster Secret (as the API returns it: `data` is base64)."""
    metadata = secret.get("metadata") or {}
    where = f"Secret {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    secret_labels: dict[str, str] = dict(metadata.get("labels") or {})
    data = _decode_data(secret.get("data") or {}, where)

    location = secret_labels.get(labels.LOCATION, "")
    if location not in labels.CLUSTER_LOCATIONS:
        raise MemberSecretError(
            f"{where}: label {labels.LOCATION} is {location or 'missing'!r}; "
            f"set it to one of {', '.join(labels.CLUSTER_LOCATIONS)}"
        )

    if "kubeconfig" in data:
        kubeconfig = _load_kubeconfig(data["kubeconfig"], where)
        name = data.get("name") or _kubeconfig_cluster_name(kubeconfig) or metadata.get("name", "")
    elif "server" in data:
        name = data.get("name") or data["server"]
        kubeconfig = argocd_kubeconfig(name, data["server"], _load_argocd_config(data, where))
    else:
        raise MemberSecretError(
            f"{where}: holds neither a `kubeconfig` key (llmfleet format) nor `server` and "
            "`config` keys (Argo CD format); add one of them"
        )
    annotations = metadata.get("annotations") or {}
    egress = annotations.get(EGRESS_CIDRS_ANNOTATION, "")
    return MemberCluster(
        name=name,
        location=location,
        labels=secret_labels,
        kubeconfig=kubeconfig,
        source=f"secret/{metadata.get('namespace', '')}/{metadata.get('name', '')}",
        egress_cidrs=tuple(c.strip() for c in egress.split(",") if c.strip()),
        prometheus_url=_prometheus_url(annotations.get(PROMETHEUS_URL_ANNOTATION, ""), where),
    )


def _prometheus_url(value: str, where: str) -> str:
    url = value.strip()
    if url and not url.startswith(("http://", "https://")):
        raise MemberSecretError(
            f"{where}: annotation {PROMETHEUS_URL_ANNOTATION} is {url!r}; set it to an http(s) "
            "URL such as http://prometheus.monitoring:9090"
        )
    return url


def argocd_kubeconfig(name: str, server: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The kubeconfig equivalent of an Argo CD cluster Secret's `server` and `config`."""
    tls = config.get("tlsClientConfig") or {}
    cluster: dict[str, Any] = {"server": server}
    if tls.get("insecure"):
        cluster["insecure-skip-tls-verify"] = True
    if tls.get("caData"):
        cluster["certificate-authority-data"] = tls["caData"]
    if tls.get("serverName"):
        cluster["tls-server-name"] = tls["serverName"]

    user: dict[str, Any] = {}
    if config.get("bearerToken"):
        user["token"] = config["bearerToken"]
    if config.get("username"):
        user["username"] = config["username"]
        user["password"] = config.get("password", "")
    if tls.get("certData"):
        user["client-certificate-data"] = tls["certData"]
    if tls.get("keyData"):
        user["client-key-data"] = tls["keyData"]
    exec_config = config.get("execProviderConfig")
    if exec_config:
        user["exec"] = {
            "apiVersion": exec_config.get("apiVersion", "client.authentication.k8s.io/v1beta1"),
            "command": exec_config.get("command", ""),
            "args": list(exec_config.get("args") or []),
            "env": [{"name": k, "value": v} for k, v in (exec_config.get("env") or {}).items()],
            "interactiveMode": "Never",
        }
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def _decode_data(data: Mapping[str, str], where: str) -> dict[str, str]:
    try:
        return {key: base64.b64decode(value, validate=True).decode() for key, value in data.items()}
    except (binascii.Error, UnicodeDecodeError) as error:
        raise MemberSecretError(f"{where}: data is not base64-encoded UTF-8 ({error})") from error


def _load_kubeconfig(text: str, where: str) -> dict[str, Any]:
    try:
        kubeconfig = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MemberSecretError(f"{where}: key `kubeconfig` is not valid YAML ({error})") from error
    if not isinstance(kubeconfig, dict) or not kubeconfig.get("clusters"):
        raise MemberSecretError(
            f"{where}: key `kubeconfig` has no clusters; store a whole kubeconfig "
            "(for example `kubectl config view --raw --minify --flatten`)"
        )
    return kubeconfig


def _load_argocd_config(data: Mapping[str, str], where: str) -> dict[str, Any]:
    try:
        config = json.loads(data.get("config") or "{}")
    except json.JSONDecodeError as error:
        raise MemberSecretError(f"{where}: key `config` is not JSON ({error})") from error
    if not isinstance(config, dict):
        raise MemberSecretError(f"{where}: key `config` must be a JSON object")
    return config


def _kubeconfig_cluster_name(kubeconfig: Mapping[str, Any]) -> str:
    clusters = kubeconfig.get("clusters") or [{}]
    return str(clusters[0].get("name", ""))
