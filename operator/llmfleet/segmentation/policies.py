"""Role -> objects: NetworkPolicies and pod hardening, as pure builders."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from llmfleet import labels

PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def pod_security_context() -> dict[str, Any]:
    """Pod Security Standards `restricted`, plus a fixed non-root identity."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def helper_pod_spec(
    account: str,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    scheduling: Mapping[str, Any],
) -> dict[str, Any]:
    """The pod of a run-to-completion helper next to a model (drift check, validation scan):
    hardened, no token, never restarted in place."""
    return {
        "restartPolicy": "Never",
        "serviceAccountName": account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        **scheduling,
        "containers": containers,
        "volumes": volumes,
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def policy(
    name: str,
    namespace: str,
    object_labels: Mapping[str, str],
    pod_selector: Mapping[str, str],
    spec: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(object_labels)},
        "spec": {"podSelector": {"matchLabels": dict(pod_selector)}, **spec},
    }


def dns_rule() -> dict[str, Any]:
    """Egress to the cluster DNS in kube-system, which every workload needs."""
    kube_system = {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    return {"to": [{"namespaceSelector": kube_system}], "ports": DNS_PORTS}


def backend_label(llm_deployment: str) -> str:
    """A gateway pod label per LLMDeployment it calls; that model server admits only those."""
    name = llm_deployment
    if len(name) > 63:
        name = hashlib.sha256(name.encode()).hexdigest()[:40]
    return f"backend.{labels.GROUP}/{name}"


def default_deny(
    name: str, namespace: str, object_labels: Mapping[str, str], pod_selector: Mapping[str, str]
) -> dict[str, Any]:
    """Nothing in or out of the workload's pods unless another policy allows it."""
    return policy(
        f"{name}-default-deny", namespace, object_labels, pod_selector,
        {"policyTypes": ["Ingress", "Egress"]},
    )  # fmt: skip


def ingress_from_callers(
    name: str,
    namespace: str,
    object_labels: Mapping[str, str],
    pod_selector: Mapping[str, str],
    port: int,
    *,
    allowed_namespaces: Sequence[str],
    metrics_namespace: str,
    allowed_cidrs: Sequence[str] = (),
    callers: Sequence[Mapping[str, str]] = (),
    same_namespace: bool = False,
) -> dict[str, Any]:
    """Declared edges only: the callers' pods (or the whole namespace), declared namespaces
    and address ranges, and the metrics scraper."""
    namespaces = sorted({*allowed_namespaces, metrics_namespace})
    sources: list[dict[str, Any]] = []
    sources += [{"podSelector": {"matchLabels": dict(c)}} for c in callers]
    if same_namespace:
        sources.append({"podSelector": {}})
    sources += [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in namespaces
    ]
    sources += [{"ipBlock": {"cidr": cidr}} for cidr in allowed_cidrs]
    return policy(
        f"{name}-ingress",
        namespace,
        object_labels,
        pod_selector,
        {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}],
        },
    )


def egress_to_declared(
    name: str,
    namespace: str,
    object_labels: Mapping[str, str],
    pod_selector: Mapping[str, str],
    *,
    public_https: bool,
    cidrs: Sequence[str],
) -> dict[str, Any]:
    """DNS, the model source (public HTTPS for hf:// and s3://) and declared CIDRs only."""
    rules: list[dict[str, Any]] = [dns_rule()]
    if public_https:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            }
        )
    if cidrs:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]})
    return policy(
        f"{name}-egress", namespace, object_labels, pod_selector,
        {"policyTypes": ["Egress"], "egress": rules},
    )  # fmt: skip


def only_to_model(
    name: str,
    namespace: str,
    object_labels: Mapping[str, str],
    pod_selector: Mapping[str, str],
    *,
    model_pods: Mapping[str, str],
    port: int,
) -> list[dict[str, Any]]:
    """A helper workload next to a model (drift checks, validation scans): default deny, and
    egress to DNS and the model server's pods on its port, nothing else."""
    to_model = policy(
        f"{name}-egress", namespace, object_labels, pod_selector,
        {
            "policyTypes": ["Egress"],
            "egress": [
                dns_rule(),
                {
                    "to": [{"podSelector": {"matchLabels": dict(model_pods)}}],
                    "ports": [{"protocol": "TCP", "port": port}],
                },
            ],
        },
    )  # fmt: skip
    return [default_deny(name, namespace, object_labels, pod_selector), to_model]


def provider_egress(
    name: str, namespace: str, object_labels: Mapping[str, str], cidrs: Sequence[str]
) -> dict[str, Any]:
    """Lets the namespace's gateways reach a provider-run model over HTTPS, and nothing else."""
    return policy(
        f"{name}-provider-egress",
        namespace,
        object_labels,
        {labels.ROLE: "gateway"},
        {
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ],
        },
    )
