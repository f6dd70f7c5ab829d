"""ChatEndpoint: one OpenAI-compatible endpoint served from one site, or two for hybrid
(cloud + on-prem), in front of self-managed and provider-run backends."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from llmfleet.api.common import (
    DNS_SUBDOMAIN,
    ApiModel,
    Cidr,
    ClusterName,
    Condition,
    LabelSelector,
    LocalObjectRef,
    Location,
    ManagedEndpoint,
    Management,
    NamespaceName,
    SecretKeyRef,
    SegmentationStatus,
    cel,
    validations,
)

Strategy = Literal["weighted", "failover", "least-busy", "latency"]
GuardMode = Literal["block", "flag", "off"]


class Site(ApiModel):
    """One place the endpoint is served from."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.management != 'managed' || has(self.managed)",
                "a managed site is run by a provider: set its `managed` block (provider, url, "
                "apiKeySecretRef)",
                field_path=".managed",
                reason="FieldValueRequired",
            ),
            cel(
                "self.management == 'managed' || !has(self.managed)",
                "`managed` is only for managed sites: remove it, or set management to managed",
                field_path=".managed",
                reason="FieldValueForbidden",
            ),
        )
    )

    location: Location
    """cloud or onprem (edge for a single edge site)."""
    management: Management = "self-managed"
    """self-managed: the operator runs a gateway here; managed: a provider-run endpoint."""
    managed: ManagedEndpoint | None = None
    """The provider endpoint of a managed site."""
    replicas: int = Field(default=1, ge=1, le=16)
    """Gateway replicas of a self-managed site."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Overrides the gateway image of a self-managed site."""
    cluster_selector: LabelSelector | None = None
    """Narrows the member clusters of the location by the labels of their registration Secrets."""


class Backend(ApiModel):
    """A model the endpoint routes to: an LLMDeployment, or a provider-run endpoint."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.llmDeploymentRef) != has(self.managed)",
                "a backend is either an llmDeploymentRef or a managed endpoint: set exactly one",
            )
        )
    )

    name: str | None = Field(default=None, min_length=1, max_length=63, pattern=DNS_SUBDOMAIN)
    """Name of the backend in the gateway and in status; defaults to the LLMDeployment's name
    or the managed deployment's."""
    llm_deployment_ref: LocalObjectRef | None = None
    """An LLMDeployment in the same namespace."""
    managed: ManagedEndpoint | None = None
    """A provider-run endpoint (Azure OpenAI, Azure ML, any OpenAI-compatible URL)."""
    weight: int = Field(default=1, ge=0, le=100)
    """Share of traffic relative to the other backends (weighted routing)."""
    fallback_only: bool = False
    """Only used when the other backends fail."""


class Routing(ApiModel):
    """How requests are spread over backends."""

    strategy: Strategy = "weighted"
    """weighted, failover, least-busy or latency."""
    retries: int = Field(default=2, ge=0, le=10)
    """Retries on another backend after a failure."""
    timeout_seconds: int = Field(default=120, ge=1, le=3600)
    """Per-request timeout."""
    prefer_local: bool = True
    """In a hybrid endpoint, each site prefers backends in its own location and falls back to
    the other site's."""


class Auth(ApiModel):
    """Client authentication at the gateway."""

    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the master key clients present as a bearer token."""


class RateLimit(ApiModel):
    """Limits per gateway, enforced before requests reach a model."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    """Requests per minute."""
    tokens_per_minute: int | None = Field(default=None, ge=1, le=1_000_000_000)
    """Tokens per minute."""


class Guardrails(ApiModel):
    """Input checks at the gateway (the model-robustness role)."""

    prompt_injection: GuardMode = "block"
    """block rejects suspected prompt injection, flag only reports it, off disables the check."""
    max_input_tokens: int = Field(default=8192, ge=1, le=2_000_000)
    """Largest prompt accepted, in tokens."""


class Ingress(ApiModel):
    """An Ingress in front of the gateway."""

    host: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """Host name clients use, for example chat.example.com."""
    class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """IngressClass to use."""
    tls_secret_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN
    )
    """Secret with the TLS certificate for the host."""


class Exposure(ApiModel):
    """Who may call the endpoint."""

    allowed_namespaces: list[NamespaceName] = Field(default_factory=list, max_length=32)
    """Namespaces whose pods may call the gateway."""
    allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=32, alias="allowedCIDRs")
    """Address ranges that may call the gateway."""
    ingress: Ingress | None = None
    """Optional Ingress for callers outside the cluster."""


class ChatEndpointSpec(ApiModel):
    """Desired state of a ChatEndpoint."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "size(self.sites) >= 1 && size(self.sites) <= 2",
                "a ChatEndpoint has 1 site, or 2 for a hybrid endpoint (one cloud, one onprem)",
                field_path=".sites",
            ),
            cel(
                "size(self.sites) != 2 || (self.sites.exists(s, s.location == 'cloud') && "
                "self.sites.exists(s, s.location == 'onprem'))",
                "a hybrid ChatEndpoint has one cloud site and one onprem site",
                field_path=".sites",
            ),
            cel(
                "size(self.backends) >= 1",
                "add at least one backend: an llmDeploymentRef or a managed endpoint",
                field_path=".backends",
                reason="FieldValueRequired",
            ),
            cel(
                "self.backends.exists(b, !b.fallbackOnly)",
                "at least one backend must not be fallbackOnly, or no request is ever served",
                field_path=".backends",
            ),
        )
    )

    model_alias: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
    )
    """The model name clients send (for example chat-default)."""
    sites: list[Site] = Field(max_length=2)
    """Where the endpoint is served: 1 site, or 2 for hybrid (one cloud, one onprem)."""
    backends: list[Backend] = Field(max_length=16)
    """Models behind the endpoint."""
    routing: Routing | None = None
    """How requests are spread over backends."""
    auth: Auth | None = None
    """Client authentication."""
    rate_limit: RateLimit | None = None
    """Request and token limits."""
    guardrails: Guardrails | None = None
    """Prompt-injection and input-size checks."""
    exposure: Exposure | None = None
    """Who may call the endpoint."""


class RouteStatus(ApiModel):
    """One route of a site's gateway: a backend's serving placement, or its one URL."""

    backend: str = Field(max_length=63)
    """Backend name."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster of the placement (empty for a provider endpoint)."""
    location: str = Field(default="", max_length=16)
    """Location of the placement."""
    group: str = Field(default="", max_length=160)
    """Model group in the gateway's config, in the order tried: the model alias (the
    backends' placements in the site's own cluster, or else elsewhere at its location), then
    <alias>--nearby (their other clusters at that location), <alias>--remote (the other
    location), <alias>--fallback (fallbackOnly backends) and <alias>--standby (placements
    without a ready replica while their model has ready ones elsewhere)."""
    weight: int = Field(default=0, ge=0, le=1_000_000)
    """Share of its group's traffic, relative to the group's other routes: the backend's
    weight, divided between its placements by their ready replicas."""
    url: str = Field(default="", max_length=2048)
    """Where the gateway reaches it (a load balancer for a placement in another cluster)."""


class SiteStatus(ApiModel):
    """Observed state of one site."""

    location: str = Field(max_length=16)
    """Location of the site."""
    management: str = Field(max_length=16)
    """self-managed or managed."""
    model: str = Field(default="", max_length=128)
    """Chat endpoint model of the site, as the catalogue names it (2.1 to 2.4)."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster serving the site (empty for a managed site)."""
    url: str = Field(default="", max_length=2048)
    """Base URL of the site."""
    ready: bool = False
    """Whether the site answers."""
    routes: list[RouteStatus] | None = Field(default=None, max_length=256)
    """The routes of a self-managed site's gateway, as its config has them (none for a
    managed site, or one a FleetPolicy refuses)."""


class BackendStatus(ApiModel):
    """Observed state of one backend."""

    name: str = Field(max_length=63)
    """Backend name."""
    location: str = Field(default="", max_length=16)
    """Location of the backend (managed backends count as cloud)."""
    url: str = Field(default="", max_length=2048)
    """Where the gateways reach it."""
    ready: bool = False
    """Whether it is ready."""
    state: str = Field(default="", max_length=16)
    """Ready, NotReady, Unknown (its cluster does not answer), Asleep (scaled to zero: a
    request through a gateway wakes it, and is answered by the other backends meanwhile, or
    with 503 and Retry-After), or Refused (a FleetPolicy forbids it: no gateway routes to
    it)."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster serving a self-managed backend."""


class ChatEndpointStatus(ApiModel):
    """Observed state of a ChatEndpoint."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this status describes."""
    mode: str = Field(default="", max_length=128)
    """LLM deployment model, as the catalogue numbers and names it (for example 15 LLM
    On-Premises with Mixed Managed/Unmanaged Hybrid Endpoints; edge ones have no number)."""
    url: str = Field(default="", max_length=2048)
    """URL of the first ready site."""
    sites: list[SiteStatus] = Field(default_factory=list, max_length=2)
    """One entry per site."""
    clusters: str = Field(default="", max_length=1024)
    """Where each site runs at a glance: location=cluster (or location=managed), comma-separated."""
    backends: list[BackendStatus] = Field(default_factory=list, max_length=16)
    """One entry per backend."""
    segmentation: SegmentationStatus | None = None
    """Security roles applied and the objects realizing them."""
    child_clusters: list[ClusterName] = Field(default_factory=list, max_length=64)
    """Member clusters holding objects of this endpoint (gateways, paths to backends); each is
    cleaned when it no longer should."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Placed, Segmented, Degraded."""


class ChatEndpoint(ApiModel):
    """An OpenAI-compatible chat endpoint served from a cloud site, an on-prem site or both,
    routing to self-managed and provider-run models with auth, rate limits and guardrails."""

    spec: ChatEndpointSpec
    """Desired state."""
    status: ChatEndpointStatus | None = None
    """Observed state, written by the operator."""
