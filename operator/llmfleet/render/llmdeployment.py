"""LLMDeployment -> model server objects for one cluster (or the provider wiring of mode 1.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from llmfleet import labels
from llmfleet.api.common import Gpu
from llmfleet.api.llmdeployment import DEFAULT_RUNTIME, LLMDeploymentSpec
from llmfleet.render import scheduling
from llmfleet.render.common import Owner, Rendered, child_metadata, refs, service_name
from llmfleet.render.runtimes import CACHE_DIR, MODEL_DIR, RUNTIMES, TMP_DIR
from llmfleet.segmentation import policies, roles

ROLE = "model-server"
PUBLIC_SOURCES = ("hf://", "s3://")


def gpu_of(spec: LLMDeploymentSpec) -> Gpu:
    return spec.gpu or Gpu()


def pod_labels(owner: Owner, location: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "llm",
        "app.kubernetes.io/instance": owner.instance,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
        labels.OWNER: owner.label,
        labels.ROLE: ROLE,
        labels.LOCATION: location,
        labels.SEGMENT: f"{location}-{ROLE}",
    }


def selector_labels(owner: Owner) -> dict[str, str]:
    return {labels.OWNER: owner.label, labels.ROLE: ROLE}


def model_reference(
    spec: LLMDeploymentSpec,
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """The model argument for the runtime, plus volumes and mounts its source needs."""
    uri = spec.model.uri or f"hf://{spec.model.name}"
    if uri.startswith("hf://"):
        return uri.removeprefix("hf://"), [], []
    if uri.startswith("pvc://"):
        claim, _, path = uri.removeprefix("pvc://").partition("/")
        volume = {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        mount = {"name": "model", "mountPath": MODEL_DIR, "readOnly": True}
        return f"{MODEL_DIR}/{path}".rstrip("/"), [volume], [mount]
    return uri, [], []  # s3:// and oci:// are handed to the runtime's own loader


def deployment(
    spec: LLMDeploymentSpec,
    owner: Owner,
    location: str,
    *,
    in_owner_cluster: bool,
    replicas: int | None = None,
) -> dict[str, Any]:
    runtime = RUNTIMES[spec.runtime or DEFAULT_RUNTIME]
    gpu = gpu_of(spec)
    model, model_volumes, model_mounts = model_reference(spec)
    port = runtime.port

    env: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": CACHE_DIR},
        {"name": "HOME", "value": TMP_DIR},
        *runtime.env(),
    ]
    if spec.model.credentials_secret_ref:
        ref = spec.model.credentials_secret_ref
        env.append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        )
    cache: dict[str, Any] = {"emptyDir": {}}
    if spec.model_cache:
        cache = {"persistentVolumeClaim": {"claimName": spec.model_cache.claim_name}}
    volumes: list[dict[str, Any]] = [
        {"name": "cache", **cache},
        {"name": "tmp", "emptyDir": {}},
        *model_volumes,
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "cache", "mountPath": CACHE_DIR},
        {"name": "tmp", "mountPath": TMP_DIR},
        *model_mounts,
    ]
    if runtime.gpu and gpu.count:
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}})
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})  # noqa: S108 - NCCL shared memory

    probe = {"httpGet": {"path": runtime.health_path, "port": "http"}}
    image = spec.image or runtime.image
    fetch = runtime.fetch(spec.model.uri, spec.model.name)
    init_containers = [
        {
            "name": "fetch-model",
            "image": image,
            "command": fetch,
            "env": list(env),
            "resources": scheduling.container_resources(Gpu(count=0), spec.resources),
            "securityContext": policies.container_security_context(),
            "volumeMounts": [m for m in mounts if m["name"] != "shm"],
        }
    ] if fetch else []  # fmt: skip
    pod_spec: dict[str, Any] = {
        "serviceAccountName": owner.name,
        "automountServiceAccountToken": False,
        "securityContext": policies.pod_security_context(),
        **scheduling.pod_scheduling(
            location, gpu, spec.placement.node_selector, spec.placement.tolerations
        ),
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": [
            {
                "name": "server",
                "image": image,
                "args": [*runtime.args(model, spec.model.name, gpu.count), *spec.args],
                "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                "env": env,
                "resources": scheduling.container_resources(gpu, spec.resources),
                "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 180},
                "readinessProbe": {**probe, "periodSeconds": 10},
                "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3},
                "securityContext": policies.container_security_context(),
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(owner, owner.name, in_owner_cluster=in_owner_cluster),
        "spec": {
            "replicas": spec.replicas if replicas is None else replicas,
            "selector": {"matchLabels": selector_labels(owner)},
            # New pods come up before old ones go: a model change never drops serving.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": pod_labels(owner, location)}, "spec": pod_spec},
        },
    }


def self_managed(
    spec: LLMDeploymentSpec,
    owner: Owner,
    location: str,
    *,
    in_owner_cluster: bool,
    metrics_namespace: str,
    replicas: int | None = None,
    revision: str = "",
) -> Rendered:
    """Model server, Service, ServiceAccount, PDB and the NetworkPolicies of the mode's roles.
    `revision`: what a validation scan judges, on the Deployment (not its pods: adding it
    restarts nothing), so a scan starts only once the servers serve it."""
    runtime = RUNTIMES[spec.runtime or DEFAULT_RUNTIME]
    name, namespace = owner.name, owner.namespace
    server = deployment(spec, owner, location, in_owner_cluster=in_owner_cluster, replicas=replicas)
    if revision:
        server["metadata"]["annotations"] = {labels.REVISION: revision}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": child_metadata(owner, name, in_owner_cluster=in_owner_cluster),
            "automountServiceAccountToken": False,
        },
        server,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_metadata(
                owner, service_name(name), in_owner_cluster=in_owner_cluster
            ),
            "spec": {
                "selector": selector_labels(owner),
                "ports": [{"name": "http", "port": runtime.port, "targetPort": "http"}],
            },
        },
    ]
    if (spec.replicas if replicas is None else replicas) > 1:
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": child_metadata(owner, name, in_owner_cluster=in_owner_cluster),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(owner)}},
            }
        )
    mode_roles = roles.LLM_ROLES[(location, "self-managed")]
    object_labels = child_metadata(owner, name, in_owner_cluster=in_owner_cluster)["labels"]
    pods = selector_labels(owner)
    segmentation = spec.segmentation
    deny = policies.default_deny(name, namespace, object_labels, pods)
    backend = policies.backend_label(owner.name)
    ingress = policies.ingress_from_callers(
        name, namespace, object_labels, pods, runtime.port,
        allowed_namespaces=segmentation.allowed_namespaces if segmentation else [],
        metrics_namespace=metrics_namespace,
        callers=[
            {labels.ROLE: "gateway", backend: "true"},  # gateways that route to this model
            {labels.ROLE: "drift-monitor", backend: "true"},  # its pipeline's drift checks
            {labels.ROLE: "validation", backend: "true"},  # its validation scans
        ],
    )  # fmt: skip
    uri = spec.model.uri or f"hf://{spec.model.name}"
    egress = policies.egress_to_declared(
        name, namespace, object_labels, pods,
        public_https=uri.startswith(PUBLIC_SOURCES),
        cidrs=segmentation.extra_egress_cidrs if segmentation else [],
    )  # fmt: skip
    for policy in (deny, ingress, egress):
        if in_owner_cluster:
            policy["metadata"]["ownerReferences"] = [owner.reference()]
    objects += [deny, ingress, egress]
    return Rendered(
        objects=objects,
        roles=mode_roles,
        role_objects=roles.realized_by(
            mode_roles,
            boundary=refs(ingress, egress),
            segmentation=refs(deny, ingress, egress),
            hardening=refs(objects[1], objects[0]),  # the Deployment and its ServiceAccount
            robustness=refs(ingress),  # only gateways, which hold the guard, reach the model
        ),
        url=f"http://{service_name(name)}.{namespace}.svc:{runtime.port}{runtime.api_path}",
    )


def managed(spec: LLMDeploymentSpec, owner: Owner) -> Rendered:
    """Mode 1.1: no pods. The provider's host as an ExternalName Service, and egress to it."""
    if spec.managed is None:
        raise ValueError("spec.managed is required when placement.management is managed")
    host = urlsplit(spec.managed.url).hostname or ""
    meta = child_metadata(owner, service_name(owner.name), in_owner_cluster=True)
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": "ExternalName",
                "externalName": host,
                "ports": [{"name": "https", "port": 443}],
            },
        }
    ]
    if spec.managed.egress_cidrs:
        objects.append(
            policies.provider_egress(
                owner.name, owner.namespace, meta["labels"], spec.managed.egress_cidrs
            )
        )
        objects[-1]["metadata"]["ownerReferences"] = [owner.reference()]
    return Rendered(
        objects=objects,
        roles=roles.LLM_ROLES[("cloud", "managed")],
        role_objects={roles.NETWORK_BOUNDARY: refs(*objects)},
        url=spec.managed.url,
    )
