"""ChatEndpoint: resolve backends, place each self-managed site's gateway, wire managed sites,
apply per cluster, read back, report."""

from __future__ import annotations

import secrets as token_source
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llmfleet import status as conditions
from llmfleet.api.chatendpoint import Backend, ChatEndpointSpec, Site
from llmfleet.api.common import Gpu, ManagedEndpoint, Placement, SecretKeyRef
from llmfleet.api.llmdeployment import DEFAULT_RUNTIME, LLMDeploymentSpec
from llmfleet.kube import apply
from llmfleet.kube.federation import Federation
from llmfleet.kube.rest import KubeClient, KubeError
from llmfleet.placement import modes
from llmfleet.placement.clusters import EGRESS_CIDRS_ANNOTATION, MemberCluster
from llmfleet.placement.select import candidates, decide
from llmfleet.reconcile import Event, Outcome
from llmfleet.render import gateway
from llmfleet.render.common import Owner, Rendered, child_metadata
from llmfleet.render.runtimes import RUNTIMES
from llmfleet.settings import Settings

KIND = "ChatEndpoint"
KINDS = (*gateway.GATEWAY_KINDS, "Secret")
AZURE_OPENAI_API_VERSION = "2024-10-21"


class SpecError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class BackendInfo:
    """A backend before it is seen from a particular gateway."""

    name: str
    location: str
    weight: int
    fallback_only: bool
    model: str
    ready: bool
    url: str = ""
    api_version: str | None = None
    key: SecretKeyRef | None = None
    llm_deployment: str | None = None
    llm_spec: LLMDeploymentSpec | None = None
    cluster: str | None = None
    port: int = 0
    egress_cidrs: tuple[str, ...] = ()

    def crosses_to(self, cluster: str) -> bool:
        """A self-managed model placed in another cluster than the gateway's."""
        return bool(self.llm_deployment and self.cluster and self.cluster != cluster)

    def seen_from(self, address: str | None = None) -> gateway.ResolvedBackend:
        """The backend for a gateway; `address` is its published load balancer, when the
        model server is in another cluster (reached, and allowed, by that address only)."""
        api_base, egress = self.url, self.egress_cidrs
        if address:
            api_base, egress = f"http://{address}:{self.port}/v1", (f"{address}/32",)
        return gateway.ResolvedBackend(
            name=self.name,
            location=self.location,
            weight=self.weight,
            fallback_only=self.fallback_only,
            model=self.model,
            api_base=api_base,
            api_version=self.api_version,
            key=self.key,
            llm_deployment=self.llm_deployment,
            cluster=self.cluster,
            port=self.port,
            egress_cidrs=egress,
        )


@dataclass
class Plan:
    """Desired objects per cluster, and what status will say about each site."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clients: dict[str, KubeClient] = field(default_factory=dict)
    sites: list[dict[str, Any]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    role_objects: set[str] = field(default_factory=set)
    problems: list[tuple[str, str]] = field(default_factory=list)
    # Paths from a site to a backend in another cluster that are not open yet.
    pending: list[str] = field(default_factory=list)

    # Per self-managed site: how many backends its gateway can reach.
    reachable: list[int] = field(default_factory=list)

    def reachable_everywhere(self) -> bool:
        return all(count > 0 for count in self.reachable)

    def add(self, cluster: str, client: KubeClient, objects: list[dict[str, Any]]) -> None:
        self.clients[cluster] = client
        known = {apply.ref(o) for o in self.objects.setdefault(cluster, [])}
        self.objects[cluster] += [o for o in objects if apply.ref(o) not in known]


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(KIND, meta["namespace"], meta["name"], meta.get("uid", ""))


def managed_model(managed: ManagedEndpoint, alias: str) -> tuple[str, str | None]:
    deployment = managed.deployment or alias
    if managed.provider == "azure-openai":
        return f"azure/{deployment}", managed.api_version or AZURE_OPENAI_API_VERSION
    if managed.provider == "azure-ml":
        return f"azure_ai/{deployment}", managed.api_version
    return f"openai/{deployment}", managed.api_version


def resolve(hub: KubeClient, namespace: str, spec: ChatEndpointSpec) -> list[BackendInfo]:
    infos = []
    for index, backend in enumerate(spec.backends):
        infos.append(resolve_one(hub, namespace, spec, backend, index))
    return infos


def resolve_one(
    hub: KubeClient, namespace: str, spec: ChatEndpointSpec, backend: Backend, index: int
) -> BackendInfo:
    weight, fallback_only = backend.weight, backend.fallback_only
    if backend.managed is not None:
        model, version = managed_model(backend.managed, spec.model_alias)
        return BackendInfo(
            name=backend.name or f"managed-{index}",
            location=modes.MANAGED_LOCATION,
            model=model,
            ready=True,
            url=backend.managed.url,
            api_version=version,
            key=backend.managed.api_key_secret_ref,
            egress_cidrs=tuple(backend.managed.egress_cidrs),
            weight=weight,
            fallback_only=fallback_only,
        )
    ref = backend.llm_deployment_ref
    assert ref is not None  # noqa: S101 - the CRD requires one of the two
    body = hub.get("LLMDeployment", namespace, ref.name)
    if body is None:
        raise SpecError(
            "BackendNotFound",
            f"backend {backend.name or ref.name}: LLMDeployment {ref.name} does not exist in "
            f"namespace {namespace}; create it or fix spec.backends[{index}].llmDeploymentRef",
        )
    llm = LLMDeploymentSpec.model_validate(body.get("spec") or {})
    status = body.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    name = backend.name or ref.name
    if llm.managed is not None:
        model, version = managed_model(llm.managed, llm.model.name)
        return BackendInfo(
            name=name,
            location=modes.MANAGED_LOCATION,
            model=model,
            ready=ready,
            url=llm.managed.url,
            api_version=version,
            key=llm.managed.api_key_secret_ref,
            llm_spec=llm,
            egress_cidrs=tuple(llm.managed.egress_cidrs),
            weight=weight,
            fallback_only=fallback_only,
        )
    placements = status.get("placements") or []
    port = RUNTIMES[llm.runtime or DEFAULT_RUNTIME].port
    return BackendInfo(
        name=name, location=llm.placement.location, model=f"hosted_vllm/{llm.model.name}",
        ready=ready, url=f"http://{ref.name}.{namespace}.svc:{port}/v1", llm_deployment=ref.name,
        llm_spec=llm,
        cluster=placements[0]["cluster"] if placements else None,
        port=port, weight=weight, fallback_only=fallback_only,
    )  # fmt: skip


def required_secrets(spec: ChatEndpointSpec, backends: list[BackendInfo]) -> list[SecretKeyRef]:
    refs = [b.key for b in backends if b.key]
    if spec.auth and spec.auth.api_key_secret_ref:
        refs.append(spec.auth.api_key_secret_ref)
    refs += [
        s.managed.api_key_secret_ref
        for s in spec.sites
        if s.managed and s.managed.api_key_secret_ref
    ]
    return refs


def master_key(hub: KubeClient, spec: ChatEndpointSpec, owner: Owner) -> SecretKeyRef:
    """The auth Secret, or a generated key the proxy needs to start (auth stays off)."""
    if spec.auth and spec.auth.api_key_secret_ref:
        return spec.auth.api_key_secret_ref
    ref = SecretKeyRef(name=f"{owner.name}-gateway-key", key="master-key")
    if hub.get("Secret", owner.namespace, ref.name) is None:
        hub.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": child_metadata(owner, ref.name, in_owner_cluster=True),
                "stringData": {ref.key: token_source.token_urlsafe(32)},
            }
        )
    return ref


def mirrored(hub: KubeClient, owner: Owner, refs: list[SecretKeyRef]) -> list[dict[str, Any]]:
    """Secrets a member cluster's gateway pods read, kept equal to the hub's."""
    by_name: dict[str, dict[str, str]] = {}
    for ref in refs:
        source = hub.get("Secret", owner.namespace, ref.name) or {}
        by_name.setdefault(ref.name, {})[ref.key] = (source.get("data") or {}).get(ref.key, "")
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": child_metadata(owner, name, in_owner_cluster=False),
            "type": "Opaque",
            "data": data,
        }
        for name, data in sorted(by_name.items())
    ]


def probe(url: str, enabled: bool) -> bool:
    """A managed site answers (any status below 500) at its URL; always True when disabled."""
    if not enabled:
        return True
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - http(s) by CRD
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def reconcile(body: Mapping[str, Any], federation: Federation, settings: Settings) -> Outcome:
    meta = body["metadata"]
    old = dict(body.get("status") or {})
    generation = int(meta.get("generation", 0))
    owner = owner_of(body)
    hub = federation.hub
    try:
        spec = ChatEndpointSpec.model_validate(body.get("spec") or {})
        backends = resolve(hub, owner.namespace, spec)
        check_secrets(hub, owner.namespace, required_secrets(spec, backends))
    except ValidationError as error:
        return failed(old, generation, "InvalidSpec", f"the spec does not parse: {error}")
    except SpecError as problem:
        return failed(old, generation, problem.reason, problem.message)

    llm_specs = {b.llm_deployment: b.llm_spec for b in backends if b.llm_deployment and b.llm_spec}
    llm_specs |= {b.name: b.llm_spec for b in backends if b.llm_spec}
    mode = modes.chat_endpoint_mode(spec, llm_specs) or ""
    plan = plan_sites(spec, owner, backends, federation, settings)
    try:
        live = execute(plan, owner, federation, old)
    except KubeError as error:
        if not error.unreachable:
            raise
        plan.problems.append(("ClusterUnreachable", error.message))
        live = {}
    return report(
        old, generation, mode=mode, spec=spec, owner=owner, plan=plan, backends=backends,
        live=live, settings=settings,
    )  # fmt: skip


def check_secrets(hub: KubeClient, namespace: str, refs: list[SecretKeyRef]) -> None:
    missing = [r for r in refs if not _has_key(hub, namespace, r)]
    if missing:
        names = ", ".join(f"{r.name} (key {r.key})" for r in missing)
        raise SpecError(
            "SecretNotFound",
            f"Secret {names} does not exist in namespace {namespace}: create it, or fix the "
            "reference in the spec",
        )


def _has_key(hub: KubeClient, namespace: str, ref: SecretKeyRef) -> bool:
    secret = hub.get("Secret", namespace, ref.name)
    return secret is not None and ref.key in (secret.get("data") or {})


def plan_sites(
    spec: ChatEndpointSpec,
    owner: Owner,
    backends: list[BackendInfo],
    federation: Federation,
    settings: Settings,
) -> Plan:
    plan = Plan()
    members, _ = federation.members()
    by_name = {m.name: m for m in members}
    key = master_key(federation.hub, spec, owner)
    for site in spec.sites:
        if site.management == "managed":
            rendered = gateway.managed_site(owner, site)
            plan.add("in-cluster", federation.hub, rendered.objects)
            for info in backends:
                member = by_name.get(info.cluster or "")
                policy = gateway.provider_ingress(
                    owner,
                    site,
                    info.seen_from(),
                    in_owner_cluster=member is not None and member.kubeconfig is None,
                )
                if policy and member is not None:
                    plan.add(member.name, federation.client(member), [policy])
            plan.sites.append(site_entry(site, "", rendered.url))
            note_roles(plan, rendered)
            continue
        cluster = place_site(site, members, federation, plan)
        if cluster is None:
            plan.sites.append(site_entry(site, "", ""))
            continue
        in_owner = cluster.kubeconfig is None
        resolved = []
        for info in backends:
            if not info.crosses_to(cluster.name):
                resolved.append(info.seen_from())
                continue
            address = publish(
                plan, federation=federation, by_name=by_name, owner=owner, site=site,
                info=info, gateway_cluster=cluster,
            )  # fmt: skip
            if address is None:
                plan.pending.append(
                    f"{info.name} in {info.cluster} has no load-balancer address yet for the "
                    f"{site.location} site"
                )
            else:
                resolved.append(info.seen_from(address))
        plan.reachable.append(len(resolved))
        rendered = gateway.self_managed_site(
            spec,
            owner,
            site,
            resolved,
            cluster=cluster.name,
            in_owner_cluster=in_owner,
            master_key=key,
            metrics_namespace=settings.metrics_namespace,
            ingress_namespace=settings.ingress_namespace,
            image=settings.gateway_image,
        )
        objects = list(rendered.objects)
        if not in_owner:
            refs = [key, *(b.key for b in resolved if b.key)]
            objects = mirrored(federation.hub, owner, refs) + objects
        plan.add(cluster.name, federation.client(cluster), objects)
        plan.sites.append(site_entry(site, cluster.name, rendered.url))
        note_roles(plan, rendered)
    return plan


def publish(
    plan: Plan,
    *,
    federation: Federation,
    by_name: Mapping[str, MemberCluster],
    owner: Owner,
    site: Site,
    info: BackendInfo,
    gateway_cluster: MemberCluster,
) -> str | None:
    """Exports a model server to a gateway in another cluster; returns its address once the
    load balancer has one."""
    member = by_name.get(info.cluster or "")
    if member is None or info.llm_deployment is None:
        return None
    client = federation.client(member)
    objects = gateway.export(
        owner, site.location, info.llm_deployment, info.port,
        peer_cidrs=gateway_cluster.egress_cidrs, in_owner_cluster=member.kubeconfig is None,
    )  # fmt: skip
    plan.add(member.name, client, objects)
    if not gateway_cluster.egress_cidrs:
        plan.pending.append(
            f"{info.name} in {member.name} admits no traffic from {gateway_cluster.name}: "
            f"annotate its registration Secret with {EGRESS_CIDRS_ANNOTATION} (or pass "
            "--egress-cidr for the operator's own cluster)"
        )
    live = client.get("Service", owner.namespace, objects[0]["metadata"]["name"]) or {}
    ingress = ((live.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return str(ingress[0]["ip"]) if ingress and ingress[0].get("ip") else None


def place_site(
    site: Site, members: list[MemberCluster], federation: Federation, plan: Plan
) -> MemberCluster | None:
    placement = Placement(location=site.location, cluster_selector=site.cluster_selector)
    inventories = {m.name: federation.inventory(m) for m in candidates(placement, members)}
    decision = decide(placement, Gpu(count=0), members, inventories)
    if decision.cluster is None:
        plan.problems.append((decision.reason, f"{site.location} site: {decision.message}"))
        return None
    if decision.reason == "ClusterUnreachable":
        plan.problems.append((decision.reason, f"{site.location} site: {decision.message}"))
        return None
    return decision.cluster


def site_entry(site: Site, cluster: str, url: str) -> dict[str, Any]:
    return {
        "location": site.location,
        "management": site.management,
        "model": modes.endpoint_model(site.location, site.management),
        "cluster": cluster,
        "url": url,
        "ready": False,
    }


def note_roles(plan: Plan, rendered: Rendered) -> None:
    plan.roles += [r for r in rendered.roles if r not in plan.roles]
    plan.role_objects |= {ref for refs in rendered.role_objects.values() for ref in refs}


def execute(
    plan: Plan, owner: Owner, federation: Federation, old: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """One sync per cluster; clusters that held this endpoint's objects before are cleared."""
    live: dict[str, dict[str, Any]] = {}
    for cluster, objects in plan.objects.items():
        client = plan.clients[cluster]
        if client is not federation.hub:
            apply.ensure_namespace(client, owner.namespace)
        kinds = KINDS if client is not federation.hub else gateway.GATEWAY_KINDS
        result = apply.sync(client, owner.namespace, owner.label, objects, kinds)
        live |= {f"{cluster}/{key}": value for key, value in result.live.items()}
    members, _ = federation.members()
    used_before = {s.get("cluster") for s in old.get("sites") or []} - {""}
    for member in members:
        if member.name in used_before and member.name not in plan.objects:
            kinds = gateway.GATEWAY_KINDS if member.kubeconfig is None else KINDS
            apply.remove_all(federation.client(member), owner.namespace, owner.label, kinds)
    return live


def report(
    old: dict[str, Any],
    generation: int,
    *,
    mode: str,
    spec: ChatEndpointSpec,
    owner: Owner,
    plan: Plan,
    backends: list[BackendInfo],
    live: Mapping[str, Mapping[str, Any]],
    settings: Settings,
) -> Outcome:
    for entry, site in zip(plan.sites, spec.sites, strict=True):
        if site.management == "managed":
            entry["ready"] = probe(entry["url"], settings.probe_providers)
        elif entry["cluster"]:
            deployment = live.get(
                f"{entry['cluster']}/Deployment/{gateway.site_name(owner, site.location)}", {}
            )
            ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
            entry["ready"] = ready >= site.replicas
    backend_status: list[dict[str, Any]] = [
        {"name": b.name, "location": b.location, "url": b.url, "ready": b.ready} for b in backends
    ]
    sites_ready = all(s["ready"] for s in plan.sites)
    serving = any(b["ready"] for b in backend_status)
    if plan.problems:
        reason, message = plan.problems[0]
        ready, why = False, message
    elif not sites_ready:
        reason, ready, why = (
            "SitesStarting",
            False,
            "waiting for "
            + ", ".join(f"the {s['location']} site" for s in plan.sites if not s["ready"]),
        )
    elif not serving:
        reason, ready, why = "NoBackendReady", False, "no backend is ready yet"
    elif plan.pending and not plan.reachable_everywhere():
        reason, ready, why = "CrossClusterPending", False, "; ".join(plan.pending)
    else:
        reason, ready, why = (
            "Ready",
            True,
            "every site serves; "
            + ", ".join(b["name"] for b in backend_status if b["ready"])
            + " ready",
        )
    previous = old.get("conditions") or []

    def cond(type_: str, value: bool | None, r: str, m: str) -> dict[str, Any]:
        return conditions.condition(
            type_, value, reason=r, message=m, generation=generation, previous=previous
        )

    placed = not any(
        r in ("NoCluster", "InsufficientGPU", "NoNodes", "ClusterUnreachable")
        for r, _ in plan.problems
    )
    new = {
        "observedGeneration": generation,
        "mode": mode,
        "url": next((s["url"] for s in plan.sites if s["ready"]), ""),
        "sites": plan.sites,
        "backends": backend_status,
        "segmentation": {"roles": plan.roles, "objects": sorted(plan.role_objects)},
        "conditions": [
            cond("Ready", ready, reason, why),
            cond(
                "Placed", placed, "Placed" if placed else reason, "sites placed" if placed else why
            ),
            cond("Segmented", bool(plan.roles), "RolesApplied", ", ".join(plan.roles)),
            cond(
                "Degraded",
                bool(plan.pending) or (not ready and bool(plan.problems)),
                "CrossClusterPending" if plan.pending else reason,
                "; ".join(plan.pending) if plan.pending else why,
            ),
        ],
    }
    events = ready_event(old, new)
    return Outcome(status=new if new != old else None, events=events)


def ready_event(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    before = conditions.find(old.get("conditions") or [], "Ready")
    after = conditions.find(new["conditions"], "Ready")
    if (before.get("status"), before.get("reason")) == (after["status"], after["reason"]):
        return []
    kind = (
        "Normal" if after["status"] == "True" or after["reason"] == "SitesStarting" else "Warning"
    )
    return [Event(kind, str(after["reason"]), str(after["message"]))]


def failed(old: dict[str, Any], generation: int, reason: str, message: str) -> Outcome:
    previous = old.get("conditions") or []
    kept: dict[str, Any] = {
        k: old[k] for k in ("mode", "url", "sites", "backends", "segmentation") if k in old
    }
    new = {
        **kept,
        "observedGeneration": generation,
        "conditions": [
            conditions.condition(
                t, v, reason=reason, message=message, generation=generation, previous=previous
            )
            for t, v in (
                ("Ready", False),
                ("Placed", None),
                ("Segmented", None),
                ("Degraded", True),
            )
        ],
    }
    return Outcome(status=new if new != old else None, events=ready_event(old, new))
