"""ChatEndpoint through the engine: resolve the backends and every placement they serve from,
leave out what the namespace's FleetPolicies forbid, place each self-managed site's gateway
with a route to each placement (its own cluster first, then its location, then the other),
open the paths to placements in other clusters, wire managed sites, report."""

from __future__ import annotations

import secrets as token_source
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmfleet import labels
from llmfleet import status as conditions
from llmfleet.api.chatendpoint import (
    Backend,
    ChatEndpointSpec,
    ChatEndpointStatus,
    Routing,
    Site,
)
from llmfleet.api.common import Gpu, ManagedEndpoint, Placement, SecretKeyRef
from llmfleet.api.llmdeployment import DEFAULT_RUNTIME, LLMDeploymentSpec
from llmfleet.children import CHAT_ENDPOINT, WHOLE
from llmfleet.names import service_name
from llmfleet.placement import modes
from llmfleet.placement.clusters import EGRESS_CIDRS_ANNOTATION, IN_CLUSTER, MemberCluster
from llmfleet.placement.policy import Residency, Violation
from llmfleet.reconcile.engine import (
    UNKNOWN,
    Desired,
    Event,
    Executed,
    Finding,
    Kind,
    Plan,
    SpecError,
    Subject,
)
from llmfleet.reconcile.gather import (
    check_secrets,
    member_list,
    mirrored_secrets,
    place,
    reachable,
)
from llmfleet.reconcile.llmdeployment import serving_placement, serving_placements
from llmfleet.reconcile.reads import Context
from llmfleet.render import gateway
from llmfleet.render.common import Owner, Rendered, child_metadata
from llmfleet.render.runtimes import RUNTIMES

KIND = "ChatEndpoint"
PART = CHAT_ENDPOINT.part(WHOLE)
CONDITIONS = ("Ready", "Placed", "Segmented", "Degraded")
AZURE_OPENAI_API_VERSION = "2024-10-21"
# Site problems that mean a gateway has nowhere to run.
NOT_PLACED = ("NoCluster", "InsufficientGPU", "NoNodes", "ClusterUnreachable")
POLICY_VIOLATION = "PolicyViolation"
MESSAGE_LIMIT = 4096  # a condition message's bound


@dataclass(frozen=True)
class Route:
    """Where a backend serves from: one serving placement of its model (cluster, location and
    ready replicas), or its one URL (a provider endpoint, a model not placed yet)."""

    cluster: str | None
    location: str
    ready: int | None = None


@dataclass
class BackendInfo:
    """A backend before it is seen from a particular gateway."""

    name: str
    location: str
    weight: int
    fallback_only: bool
    model: str
    ready: bool | None  # None: its cluster does not answer
    url: str = ""
    api_version: str | None = None
    key: SecretKeyRef | None = None
    llm_deployment: str | None = None
    llm_spec: LLMDeploymentSpec | None = None
    cluster: str | None = None  # the placement a single caller would use (status.backends)
    port: int = 0
    egress_cidrs: tuple[str, ...] = ()
    why: str = ""  # what its model says when it is not ready
    # Every serving placement of a self-managed model; one route otherwise.
    routes: tuple[Route, ...] = ()
    # The spec field that names it (spec.backends[i].managed or .llmDeploymentRef), and
    # whether it is provider-run (a cloud endpoint, whatever its site).
    field: str = ""
    managed: bool = False
    refused: bool = False  # forbidden by a FleetPolicy: left out of every gateway
    # Its model enforces validation and no placement passed: left out of every gateway.
    held_back: str = ""
    asleep: bool = False  # scaled to zero: a request through a gateway wakes it
    sleeps: bool = False  # autoscaled down to zero when idle

    @property
    def state(self) -> str:
        if self.refused:
            return "Refused"
        if self.held_back:
            return "NotValidated"
        if self.asleep:
            return "Asleep"
        return {True: "Ready", False: "NotReady", None: "Unknown"}[self.ready]

    def crosses(self, route: Route, cluster: str) -> bool:
        """A self-managed model's placement in another cluster than the gateway's."""
        return bool(self.llm_deployment and route.cluster and route.cluster != cluster)

    def seen_from(self, route: Route, address: str | None = None) -> gateway.ResolvedBackend:
        """One route for a gateway; `address` is its published load balancer, when the model
        server is in another cluster (reached, and allowed, by that address only)."""
        api_base, egress = self.url, self.egress_cidrs
        if address:
            api_base, egress = f"http://{address}:{self.port}/v1", (f"{address}/32",)
        return gateway.ResolvedBackend(
            name=self.name,
            location=route.location,
            weight=self.weight,
            fallback_only=self.fallback_only,
            model=self.model,
            api_base=api_base,
            api_version=self.api_version,
            key=self.key,
            llm_deployment=self.llm_deployment,
            cluster=route.cluster,
            port=self.port,
            egress_cidrs=egress,
            ready=route.ready,
            sleeps=self.sleeps,
        )


@dataclass
class SiteFacts:
    site: Site
    index: int = 0
    cluster: MemberCluster | None = None
    problem: Finding | None = None
    healthy: bool | None = None  # a managed site's last probe
    # Per crossing route (backend name, cluster): the address its export has, None while
    # pending (or while its cluster is silent and no earlier pass recorded it).
    addresses: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # Clusters of crossing routes that do not answer.
    silent: set[str] = field(default_factory=set)
    mirrored: list[dict[str, Any]] = field(default_factory=list)
    # A backend's cluster does not answer and its route's address is not known: the site's
    # gateway is left as it is until it does (unless a policy forbids one of its routes).
    frozen: bool = False
    # What the FleetPolicies forbid: the site itself (it is not deployed), and the routes it
    # may not take, by backend name and cluster (None: the backend's one route).
    refused: list[Violation] = field(default_factory=list)
    forbidden: set[tuple[str, str | None]] = field(default_factory=set)

    @property
    def location(self) -> str:
        """Where its traffic leaves from: a provider-run site is a cloud endpoint."""
        return modes.MANAGED_LOCATION if self.site.management == "managed" else self.site.location

    def allowed(self, info: BackendInfo) -> list[Route]:
        if info.refused or info.held_back:
            return []
        return [r for r in info.routes if (info.name, r.cluster) not in self.forbidden]


@dataclass
class Facts:
    spec: ChatEndpointSpec
    owner: Owner
    old: Mapping[str, Any]
    generation: int
    mode: str
    backends: list[BackendInfo]
    key: SecretKeyRef
    settings: Any
    members: dict[str, MemberCluster]
    sites: list[SiteFacts] = field(default_factory=list)
    new_key: dict[str, Any] | None = None
    # Every part of the spec the namespace's FleetPolicies forbid, each named once.
    violations: list[Violation] = field(default_factory=list)


def managed_model(managed: ManagedEndpoint, alias: str) -> tuple[str, str | None]:
    deployment = managed.deployment or alias
    if managed.provider == "azure-openai":
        return f"azure/{deployment}", managed.api_version or AZURE_OPENAI_API_VERSION
    if managed.provider == "azure-ml":
        return f"azure_ai/{deployment}", managed.api_version
    return f"openai/{deployment}", managed.api_version


# --- gather ---------------------------------------------------------------------------------


def resolve(ctx: Context, namespace: str, spec: ChatEndpointSpec) -> list[BackendInfo]:
    return [resolve_one(ctx, namespace, spec, b, i) for i, b in enumerate(spec.backends)]


def resolve_one(
    ctx: Context, namespace: str, spec: ChatEndpointSpec, backend: Backend, index: int
) -> BackendInfo:
    weight, fallback_only = backend.weight, backend.fallback_only
    if backend.managed is not None:
        model, version = managed_model(backend.managed, spec.model_alias)
        return BackendInfo(
            name=backend.name or f"managed-{index}", location=modes.MANAGED_LOCATION,
            model=model, ready=True, url=backend.managed.url, api_version=version,
            key=backend.managed.api_key_secret_ref,
            egress_cidrs=tuple(backend.managed.egress_cidrs), weight=weight,
            fallback_only=fallback_only, routes=(Route(None, modes.MANAGED_LOCATION),),
            field=f"spec.backends[{index}].managed", managed=True,
        )  # fmt: skip
    ref = backend.llm_deployment_ref
    if ref is None:
        raise SpecError(
            "InvalidSpec",
            f"spec.backends[{index}] names neither llmDeploymentRef nor managed: set one",
        )
    body = ctx.reads.resource("LLMDeployment", namespace, ref.name)
    if body is None:
        raise SpecError(
            "BackendNotFound",
            f"backend {backend.name or ref.name}: LLMDeployment {ref.name} does not exist in "
            f"namespace {namespace}; create it or fix spec.backends[{index}].llmDeploymentRef",
        )
    llm = LLMDeploymentSpec.model_validate(body.get("spec") or {})
    status = body.get("status") or {}
    ready_condition = conditions.find(status.get("conditions") or [], "Ready")
    ready: bool | None = ready_condition.get("status") == "True"
    if ready_condition.get("reason") == "ClusterUnreachable":
        ready = None
    name = backend.name or ref.name
    why = str(ready_condition.get("message", ""))
    field_name = f"spec.backends[{index}].llmDeploymentRef"
    if llm.managed is not None:
        model, version = managed_model(llm.managed, llm.model.name)
        return BackendInfo(
            name=name, location=modes.MANAGED_LOCATION, model=model, ready=ready,
            url=llm.managed.url, api_version=version, key=llm.managed.api_key_secret_ref,
            llm_spec=llm, egress_cidrs=tuple(llm.managed.egress_cidrs), weight=weight,
            fallback_only=fallback_only, why=why, routes=(Route(None, modes.MANAGED_LOCATION),),
            field=field_name, managed=True,
        )  # fmt: skip
    port = RUNTIMES[llm.runtime or DEFAULT_RUNTIME].port
    serving = serving_placement(status)
    if ready is not True and any(
        p.get("state") in ("Placed", "Draining") and int(p.get("readyReplicas") or 0) > 0
        for p in serving_placements(status)
    ):
        ready = True  # some of its clusters serve: a short or silent one does not stop them
    routes, held_back = validated_routes(
        llm, status, routes_of(status, llm.placement.location), ref.name
    )
    return BackendInfo(
        name=name, location=llm.placement.location, model=f"hosted_vllm/{llm.model.name}",
        ready=ready, url=f"http://{service_name(ref.name)}.{namespace}.svc:{port}/v1",
        llm_deployment=ref.name, llm_spec=llm, cluster=serving.get("cluster") or None,
        port=port, weight=weight, fallback_only=fallback_only, why=why,
        routes=routes, held_back=held_back, field=field_name,
        asleep=ready_condition.get("reason") == "ScaledToZero",
        sleeps=llm.autoscaling is not None and llm.autoscaling.min_replicas == 0,
    )  # fmt: skip


def validated_routes(
    llm: LLMDeploymentSpec, status: Mapping[str, Any], routes: tuple[Route, ...], name: str
) -> tuple[tuple[Route, ...], str]:
    """With spec.validation.enforce, the routes to placements whose latest scan of what the
    spec serves passed; and, when none did, why the model is held back."""
    if llm.validation is None or not llm.validation.enforce:
        return routes, ""
    # The status describes the revision its model servers run: the operator writes it in the
    # pass that applies a changed spec to them, so a status not yet current still describes
    # the servers as they are.
    found = status.get("validation") or {}
    passed = {
        str(p.get("cluster"))
        for p in status.get("placements") or []
        if p.get("validation") == "Passed"
    }
    kept = tuple(r for r in routes if r.cluster in passed)
    if kept:
        return kept, ""
    why = str(found.get("message") or "") or "not scanned yet"
    return (), f"LLMDeployment {name} has not passed validation: {why}"


def routes_of(status: Mapping[str, Any], location: str) -> tuple[Route, ...]:
    """A self-managed model's routes: each serving placement (placed, silent, or draining
    until its replacement is ready), by cluster name; one route to the model's Service while
    it is placed nowhere yet."""
    found = {
        str(p["cluster"]): Route(
            str(p["cluster"]), str(p.get("location") or location), int(p.get("readyReplicas") or 0)
        )
        for p in serving_placements(status)
        if p.get("cluster")
    }
    return tuple(found[c] for c in sorted(found)) or (Route(None, location),)


def required_secrets(
    spec: ChatEndpointSpec, backends: Sequence[BackendInfo], sites: Sequence[SiteFacts] = ()
) -> list[SecretKeyRef]:
    """The Secrets the endpoint reads; a backend or site a policy refuses needs none."""
    refused_sites = {s.index for s in sites if s.refused}
    refs = [b.key for b in backends if b.key and not b.refused]
    if spec.auth and spec.auth.api_key_secret_ref:
        refs.append(spec.auth.api_key_secret_ref)
    refs += [
        s.managed.api_key_secret_ref
        for i, s in enumerate(spec.sites)
        if s.managed and s.managed.api_key_secret_ref and i not in refused_sites
    ]
    return refs


def master_key(
    ctx: Context, spec: ChatEndpointSpec, owner: Owner
) -> tuple[SecretKeyRef, dict[str, Any] | None]:
    """The auth Secret, or a generated key the proxy needs to start (auth stays off), with the
    Secret to create when it does not exist yet."""
    if spec.auth and spec.auth.api_key_secret_ref:
        return spec.auth.api_key_secret_ref, None
    ref = SecretKeyRef(name=f"{owner.name}-gateway-key", key="master-key")
    if ctx.reads.secret(owner.namespace, ref.name) is not None:
        return ref, None
    return ref, {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_metadata(owner, ref.name, in_owner_cluster=True),
        "stringData": {ref.key: token_source.token_urlsafe(32)},
    }


def gather(subject: Subject, ctx: Context) -> Facts:
    spec: ChatEndpointSpec = subject.spec
    owner = subject.owner
    backends = resolve(ctx, owner.namespace, spec)
    residency = ctx.reads.residency(owner.namespace)
    sites = [SiteFacts(site, index) for index, site in enumerate(spec.sites)]
    found = refuse(residency, sites, backends)
    check_secrets(ctx.reads, owner.namespace, required_secrets(spec, backends, sites))
    llm_specs = {b.llm_deployment: b.llm_spec for b in backends if b.llm_deployment and b.llm_spec}
    llm_specs |= {b.name: b.llm_spec for b in backends if b.llm_spec}
    key, new_key = master_key(ctx, spec, owner)
    members, _ = ctx.fleet.members()
    facts = Facts(
        spec=spec, owner=owner, old=subject.old, generation=subject.generation,
        mode=modes.chat_endpoint_mode(spec, llm_specs) or "", backends=backends, key=key,
        settings=ctx.settings, members={m.name: m for m in members}, new_key=new_key,
        violations=found,
    )  # fmt: skip
    for site in sites:
        if not site.refused:
            gather_site(ctx, facts, site)
    facts.sites = sites
    return facts


def refuse(
    residency: Residency, sites: Sequence[SiteFacts], backends: Sequence[BackendInfo]
) -> list[Violation]:
    """Marks what the namespace's FleetPolicies forbid: a site at a location they rule out or
    a provider-run one while they deny managed providers (not deployed); a provider-run
    backend likewise (left out of every gateway); and a route from a site to a placement at
    another location while they deny cross-location routing (left out of that site's
    gateway). Returns the violations, each once."""
    found: list[Violation | None] = []
    for backend in backends:
        if backend.managed:
            refused = [
                residency.managed_violation(backend.field, remedy="use a self-managed backend"),
                residency.location_violation(
                    modes.MANAGED_LOCATION, backend.field, remedy="remove the backend"
                ),
            ]
            backend.refused = any(refused)
            found += refused
    for site in sites:
        field_name = f"spec.sites[{site.index}]"
        refused = [residency.location_violation(site.site.location, f"{field_name}.location")]
        if site.site.management == "managed":
            refused.append(
                residency.managed_violation(
                    f"{field_name}.managed", remedy="use a self-managed site instead"
                )
            )
            if site.site.location != modes.MANAGED_LOCATION:
                refused.append(
                    residency.location_violation(
                        modes.MANAGED_LOCATION,
                        f"{field_name}.managed",
                        remedy="use a self-managed site",
                    )
                )
        site.refused = [v for v in refused if v is not None]
        found += site.refused
        if site.refused:
            continue
        for backend in backends:
            if backend.refused:
                continue
            for route in backend.routes:
                crossing = residency.cross_location_violation(
                    site.location, route.location, backend.field
                )
                if crossing is not None:
                    site.forbidden.add((backend.name, route.cluster))
                    found.append(crossing)
    return list(dict.fromkeys(v for v in found if v is not None))


def gather_site(ctx: Context, facts: Facts, found: SiteFacts) -> None:
    owner, site = facts.owner, found.site
    if site.management == "managed":
        url = gateway.managed_site(owner, site).url
        found.healthy = ctx.reads.prober.health(url, owner.label)
        return
    placement = Placement(location=site.location, cluster_selector=site.cluster_selector)
    current = next(
        (
            s.get("cluster")
            for s in facts.old.get("sites") or []
            if s.get("location") == site.location and s.get("cluster")
        ),
        None,
    )
    where = place(ctx.fleet, placement, Gpu(count=0), current)
    found.cluster = where.cluster
    if where.cluster is None or where.unreachable:
        reason = where.decision.reason
        found.problem = Finding(reason, f"{site.location} site: {where.decision.message}")
        if where.unreachable:
            found.problem = Finding(
                reason,
                f"{site.location} site: cluster {where.cluster.name if where.cluster else ''} is "
                f"unreachable ({where.decision.message}); nothing is moved or deleted",
                where.cluster.name if where.cluster else "",
                UNKNOWN,
            )
        return
    cluster = where.cluster
    recorded = recorded_addresses(facts.old, site.location)
    unknown = False
    for info in facts.backends:
        for route in found.allowed(info):
            if not info.crosses(route, cluster.name) or route.cluster is None:
                continue
            answered, address = export_address(ctx, facts, site, info, route)
            if not answered:
                found.silent.add(route.cluster)
                address = recorded.get((info.name, route.cluster))
                unknown = unknown or address is None
            found.addresses[(info.name, route.cluster)] = address
    # A route to a silent cluster keeps the address an earlier pass recorded; without one the
    # gateway is left as it is, unless a policy forbids one of its routes: then it is
    # rendered without the forbidden routes (and without the silent ones it cannot address).
    found.frozen = unknown and not (found.forbidden or any(b.refused for b in facts.backends))
    if cluster.kubeconfig is not None:
        refs = [facts.key, *(b.key for b in facts.backends if b.key and not b.refused)]
        found.mirrored = mirrored_secrets(ctx.reads, owner, refs, creating=facts.new_key)


def recorded_addresses(old: Mapping[str, Any], location: str) -> dict[tuple[str, str], str]:
    """The load-balancer addresses of a site's crossing routes, as its status recorded them."""
    site: Mapping[str, Any] = next(
        (s for s in old.get("sites") or [] if s.get("location") == location), {}
    )
    found = {}
    for route in site.get("routes") or []:
        host = urlsplit(str(route.get("url", ""))).hostname
        cluster = str(route.get("cluster") or "")
        if cluster and cluster != site.get("cluster") and host:
            found[(str(route.get("backend")), cluster)] = host
    return found


def export_address(
    ctx: Context, facts: Facts, site: Site, info: BackendInfo, route: Route
) -> tuple[bool, str | None]:
    """Whether the model's cluster answers, and the load-balancer address of the model's
    export to this site there once it has one."""
    member = facts.members.get(route.cluster or "")
    if member is None or info.llm_deployment is None:
        return True, None
    if not reachable(ctx.fleet, member):
        return False, None
    name = gateway.path_name(facts.owner, site.location, info.llm_deployment)
    live = member_list(
        ctx.fleet, member, "Service", facts.owner.namespace, f"{labels.OWNER}={facts.owner.label}"
    )
    if live is None:
        return False, None
    service = next((s for s in live if s["metadata"]["name"] == name), {})
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return True, (str(ingress[0]["ip"]) if ingress and ingress[0].get("ip") else None)


# --- plan -----------------------------------------------------------------------------------


@dataclass
class SitePlan:
    """What the plan decided for one site, for the report."""

    entry: dict[str, Any]
    rendered: Rendered | None = None
    reachable_backends: int = -1  # -1: a managed, unplaced or refused site
    pending: list[str] = field(default_factory=list)
    routes: list[gateway.ResolvedBackend] = field(default_factory=list)


@dataclass
class EndpointPlan(Plan):
    sites: list[SitePlan] = field(default_factory=list)


def plan(facts: Facts) -> EndpointPlan:
    result = EndpointPlan()
    if facts.new_key is not None:
        result.creations.append(facts.new_key)
    for found in facts.sites:
        if found.refused:
            result.sites.append(SitePlan(site_entry(found.site, "", "")))  # not deployed
        elif found.site.management == "managed":
            result.sites.append(plan_managed_site(facts, found, result))
        else:
            result.sites.append(plan_self_managed_site(facts, found, result))
    return result


def plan_managed_site(facts: Facts, found: SiteFacts, result: EndpointPlan) -> SitePlan:
    site, owner = found.site, facts.owner
    rendered = gateway.managed_site(owner, site)
    result.add(Desired(IN_CLUSTER, PART, rendered.objects))
    for info in facts.backends:
        for route in found.allowed(info):
            member = facts.members.get(route.cluster or "")
            if member is None:
                continue
            policy = gateway.provider_ingress(
                owner, site, info.seen_from(route), in_owner_cluster=member.kubeconfig is None
            )
            if policy is not None:
                result.add(Desired(member.name, PART, [policy]))
    return SitePlan(site_entry(site, "", rendered.url), rendered)


def plan_self_managed_site(facts: Facts, found: SiteFacts, result: EndpointPlan) -> SitePlan:
    site, owner, cluster = found.site, facts.owner, found.cluster
    if found.problem is not None or cluster is None:
        if found.problem is not None:
            result.findings.append(found.problem)
        if cluster is not None:
            result.add(Desired(cluster.name, PART, None))  # silent: left as it is
        return SitePlan(site_entry(site, "", ""))
    pending: list[str] = []
    resolved = []
    for info in facts.backends:
        for route in found.allowed(info):
            if not info.crosses(route, cluster.name) or route.cluster is None:
                resolved.append(info.seen_from(route))
                continue
            reached = plan_crossing(
                facts, found, info, route, gateway_cluster=cluster, result=result, pending=pending
            )
            if reached is not None:
                resolved.append(reached)
    settings = facts.settings
    rendered = gateway.self_managed_site(
        facts.spec, owner, site, resolved, cluster=cluster.name,
        in_owner_cluster=cluster.kubeconfig is None, master_key=facts.key,
        metrics_namespace=settings.metrics_namespace,
        ingress_namespace=settings.ingress_namespace, image=settings.gateway_image,
    )  # fmt: skip
    objects = None if found.frozen else [*found.mirrored, *rendered.objects]
    result.add(Desired(cluster.name, PART, objects))
    return SitePlan(
        site_entry(site, cluster.name, rendered.url), rendered, len(resolved), pending, resolved
    )


def plan_crossing(
    facts: Facts,
    found: SiteFacts,
    info: BackendInfo,
    route: Route,
    *,
    gateway_cluster: MemberCluster,
    result: EndpointPlan,
    pending: list[str],
) -> gateway.ResolvedBackend | None:
    """Opens the path from a site's gateway to a placement in another cluster (a load
    balancer and the policy admitting the gateway's cluster); the route once it has an
    address. A silent cluster's export is left as it is."""
    site, cluster, where = found.site, gateway_cluster, str(route.cluster)
    member = facts.members.get(where)
    if member is not None and info.llm_deployment is not None:
        if where in found.silent:
            result.add(Desired(member.name, PART, None))
        else:
            exported = gateway.export(
                facts.owner, site.location, info.llm_deployment, info.port,
                peer_cidrs=cluster.egress_cidrs, in_owner_cluster=member.kubeconfig is None,
            )  # fmt: skip
            result.add(Desired(member.name, PART, exported))
            if not cluster.egress_cidrs:
                pending.append(
                    f"{info.name} in {member.name} admits no traffic from {cluster.name}: "
                    f"annotate its registration Secret with {EGRESS_CIDRS_ANNOTATION} (or pass "
                    "--egress-cidr for the operator's own cluster)"
                )
    address = found.addresses.get((info.name, where))
    if address is not None:
        return info.seen_from(route, address)
    if where in found.silent:
        pending.append(
            f"{info.name} in {where}: the cluster does not answer and its address for the "
            f"{site.location} site is not known yet"
        )
    else:
        pending.append(
            f"{info.name} in {where} has no load-balancer address yet for the {site.location} site"
        )
    return None


def site_entry(site: Site, cluster: str, url: str) -> dict[str, Any]:
    return {
        "location": site.location,
        "management": site.management,
        "model": modes.endpoint_model(site.location, site.management),
        "cluster": cluster,
        "url": url,
        "ready": False,
    }


# --- status ---------------------------------------------------------------------------------


def report(facts: Facts, planned: Plan, executed: Executed) -> tuple[dict[str, Any], list[Event]]:
    if not isinstance(planned, EndpointPlan):  # pragma: no cover - plan() makes one
        raise TypeError("a ChatEndpoint plan")
    owner = facts.owner
    sites = []
    for found, site_plan in zip(facts.sites, planned.sites, strict=True):
        entry = dict(site_plan.entry)
        if found.site.management == "managed":
            entry["ready"] = bool(found.healthy)
        elif entry["cluster"]:
            name = gateway.site_name(owner, found.site.location)
            deployment = executed.object(entry["cluster"], f"Deployment/{name}")
            replicas = int((deployment.get("status") or {}).get("readyReplicas") or 0)
            entry["ready"] = replicas >= found.site.replicas
        routes = site_routes(facts, found, site_plan)
        if routes:
            entry["routes"] = routes
        sites.append(entry)
    backends = [
        {
            "name": b.name, "location": b.location, "url": b.url,
            "ready": bool(b.ready) and not b.refused and not b.held_back,
            "state": b.state, "cluster": b.cluster or "",
        }
        for b in facts.backends
    ]  # fmt: skip
    pending = [p for s in planned.sites for p in s.pending]
    reachable_everywhere = all(s.reachable_backends != 0 for s in planned.sites)
    problems = list(planned.findings)
    silent = [b for b in facts.backends if b.ready is None and not b.refused]
    ready, reason, why = readiness(facts, sites, problems, pending, reachable_everywhere)
    roles: list[str] = []
    objects: set[str] = set()
    for site_plan in planned.sites:
        if site_plan.rendered is not None:
            roles += [r for r in site_plan.rendered.roles if r not in roles]
            objects |= set(site_plan.rendered.segmentation_objects())
    placed = not any(f.reason in NOT_PLACED for f in problems)
    placed_reason, placed_message = ("Placed", "sites placed") if placed else (reason, why)
    degraded: tuple[bool, str, str] = (
        False,
        "AsExpected",
        "every site and backend is as specified",
    )
    if facts.violations:
        # What a policy forbids is left out; the rest runs. Ready says what to fix first.
        refusal = "; ".join(v.message for v in facts.violations)[:MESSAGE_LIMIT]
        ready, reason, why = False, POLICY_VIOLATION, refusal
        degraded = (True, POLICY_VIOLATION, refusal)
        if any(s.refused for s in facts.sites):
            placed, placed_reason, placed_message = False, POLICY_VIOLATION, refusal
    elif silent:
        degraded = (True, "BackendUnreachable", unreachable_message(silent))
    elif pending:
        degraded = (True, "CrossClusterPending", "; ".join(pending))
    elif ready is not True and (problems or reason not in ("SitesStarting", "NoBackendReady")):
        degraded = (True, reason, why)
    items: list[tuple[str, bool | None, str, str]] = [
        ("Ready", ready, reason, why),
        ("Placed", placed, placed_reason, placed_message),
        ("Segmented", bool(roles), "RolesApplied", ", ".join(roles)),
        ("Degraded", *degraded),
    ]
    new = {
        "mode": facts.mode,
        "url": next((s["url"] for s in sites if s["ready"]), ""),
        "sites": sites,
        "clusters": site_clusters(sites),
        "backends": backends,
        "segmentation": {"roles": roles, "objects": sorted(objects)},
        "conditions": conditions.conditions_of(
            items, generation=facts.generation, previous=facts.old.get("conditions") or []
        ),
    }
    return new, []


def site_routes(facts: Facts, found: SiteFacts, site_plan: SitePlan) -> list[dict[str, Any]]:
    """The routes of a site's gateway as its config has them: group, weight and URL of each
    backend's placement. A gateway left as it is keeps the routes recorded before."""
    if found.site.management == "managed" or found.refused:
        return []
    if found.frozen or (found.problem is not None and found.problem.severity == UNKNOWN):
        before: Mapping[str, Any] = next(
            (s for s in facts.old.get("sites") or [] if s.get("location") == found.site.location),
            {},
        )
        return [dict(r) for r in before.get("routes") or []]
    resolved = site_plan.routes
    routing = facts.spec.routing or Routing()
    cluster = found.cluster.name if found.cluster else None
    groups, _ = gateway.model_groups(
        facts.spec.model_alias, found.site.location, resolved, routing.prefer_local, cluster
    )
    weights = gateway.route_weights(groups, resolved)
    return [
        {
            "backend": resolved[i].name,
            "cluster": resolved[i].cluster or "",
            "location": resolved[i].location,
            "group": group,
            "weight": weights[i],
            "url": resolved[i].api_base,
        }
        for group, indexes in groups.items()
        for i in indexes
    ]


def unreachable_message(silent: Sequence[BackendInfo]) -> str:
    return "; ".join(
        f"backend {b.name} in cluster {b.cluster or '(unknown)'}: {b.why}" for b in silent
    )


def readiness(
    facts: Facts,
    sites: Sequence[Mapping[str, Any]],
    problems: Sequence[Finding],
    pending: Sequence[str],
    reachable_everywhere: bool,
) -> tuple[bool | None, str, str]:
    if problems:
        first = problems[0]
        return (None if first.severity == UNKNOWN else False), first.reason, first.message
    if not all(s["ready"] for s in sites):
        waiting = ", ".join(f"the {s['location']} site" for s in sites if not s["ready"])
        return False, "SitesStarting", f"waiting for {waiting}"
    serving = [b for b in facts.backends if b.ready and not b.refused and not b.held_back]
    if not serving:
        silent = [b for b in facts.backends if b.ready is None]
        if silent:
            return None, "BackendUnreachable", unreachable_message(silent)
        held = [b.held_back for b in facts.backends if b.held_back]
        if held:
            return False, "NotValidated", "; ".join(held)[:MESSAGE_LIMIT]
        return False, "NoBackendReady", "no backend is ready yet"
    if pending and not reachable_everywhere:
        return False, "CrossClusterPending", "; ".join(pending)
    names = ", ".join(b.name for b in serving)
    return True, "Ready", f"every site serves; {names} ready"


def clusters_in_status(status: Mapping[str, Any]) -> list[str]:
    return [str(s.get("cluster")) for s in status.get("sites") or [] if s.get("cluster")]


KIND_SPEC: Kind[Facts] = Kind(
    name=KIND,
    children=CHAT_ENDPOINT,
    spec_model=ChatEndpointSpec,
    status_model=ChatEndpointStatus,
    gather=gather,
    plan=plan,
    report=report,
    clusters_in_status=clusters_in_status,
    condition_types=CONDITIONS,
)


def site_clusters(sites: Sequence[Mapping[str, Any]]) -> str:
    """Where each site runs at a glance (kubectl get): location=cluster, or =managed."""
    return ",".join(f"{s['location']}={s.get('cluster') or 'managed'}" for s in sites)[:1024]
